//! ECommPay Gate, simulated from the HomeBank and Banks of India documents.

pub mod book;
pub mod callbacks;
pub mod codes;
pub mod gate;
pub mod homebank_payout;
pub mod india_banks;
pub mod india_hours;
pub mod india_pages;
pub mod india_payout;
pub mod india_refund;
pub mod india_sale;
pub mod report;
pub mod signature;
pub mod status;

use crate::Sandbox;
use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;

/// Gate's documented endpoints.
pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route(homebank_payout::PATH, post(homebank_payout::handle))
        .route(status::PATH, post(status::handle))
        .route(india_sale::PATH, post(india_sale::handle))
        .route(india_payout::PATH, post(india_payout::handle))
        .route(india_refund::PATH, post(india_refund::handle))
        .route(india_banks::SALE_PATH, post(india_banks::sale))
        .route(india_banks::PAYOUT_PATH, post(india_banks::payout))
}

/// The pages a Banks of India customer is redirected to (no faults injected there).
pub fn bank_pages() -> Router<Arc<Sandbox>> {
    Router::new()
        .route(
            india_pages::BANK_PAGE,
            get(india_pages::bank_page).post(india_pages::pay),
        )
        .route(
            india_pages::SELECT_PAGE,
            get(india_pages::select_page).post(india_pages::select_and_pay),
        )
}
