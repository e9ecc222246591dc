//! The faults the chaos run turns on at the sandbox: provider errors, timeouts, resets
//! and malformed answers, lost, late and duplicated callbacks, and the providers'
//! documented answers a client must not take at face value.

use payfleet_sim::Faults;
use payfleet_sim::faults::{Answers, CallbackFaults, EndpointFaults};

pub fn chaos_faults() -> Faults {
    Faults {
        endpoints: [(
            "*".to_owned(),
            EndpointFaults {
                error_rate: 0.02,
                error_after_rate: 0.02,
                timeout_rate: 0.01,
                timeout_ms: 3000,
                slow_ms: 0,
                reset_rate: 0.01,
                malformed_rate: 0.01,
            },
        )]
        .into(),
        callbacks: CallbackFaults {
            loss_rate: 0.05,
            duplicate_rate: 0.05,
            late_rate: 0.05,
            late_ms: 2000,
        },
        answers: chaos_answers(),
    }
}

/// The providers' documented answers that a client must not take at face value
/// (issue 14), each now and then.
fn chaos_answers() -> Answers {
    Answers {
        ecommpay_dropped_rate: 0.02,
        ecommpay_not_found_404_rate: 0.3,
        ecommpay_not_found_200_rate: 0.4,
        ecommpay_not_found_signed_rate: 0.5,
        // Signed, and refused: a mismatched amount is noted, an unknown payment creates
        // nothing; the authentic callback (or the status query) settles the payment.
        ecommpay_callback_mismatch_rate: 0.05,
        ecommpay_callback_unknown_payment_rate: 0.05,
        ecommpay_callback_empty_object_rate: 0.05,
        ecommpay_status_without_action_rate: 0.5,
        ecommpay_refund_id_as_purchase_rate: 0.3,
        epay_status_lag_rate: 0.1,
        epay_status_lag_ms: 1500,
        epay_p2p_status_split_rate: 0.5,
        epay_confirm_redirect_rate: 0.5,
        // Of the rest, half answer with the page itself or, when failed, `code` 0.
        epay_confirm_page_rate: 0.5,
        epay_confirm_code_zero_rate: 0.5,
        epay_google_pay_status_rate: 0.5,
        epay_postlink_replay_rate: 0.1,
        epay_replay_ms: 2000,
        // Not one of issue 14's answers.
        epay_token_single_use_rate: 0.0,
        // Safe only while the wait before a resend (2 minutes, 600 ms at chaos's
        // scale) outlasts check-status's lag (1.5 s here): tests/epay.rs covers it.
        epay_duplicate_invoice_paid_rate: 0.0,
    }
}
