//! Each method's own fields in a command (`details`), typed and validated while
//! deserialising: what a publisher sends. The provider's file for the method builds its
//! request from them.

pub mod confirm_3ds;
mod epay;
pub mod google_pay;
pub mod homebank_payout;
pub mod india;
pub mod india_payout;
pub mod india_refund;
pub mod india_sale;
pub mod p2p_transfer;

pub use confirm_3ds::Confirm3ds;
pub use google_pay::GooglePay;
pub use homebank_payout::HomebankPayout;
pub use india_payout::IndiaPayout;
pub use india_refund::IndiaRefund;
pub use india_sale::IndiaSale;
pub use p2p_transfer::P2pTransfer;
