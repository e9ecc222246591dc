//! payfleet-sim: a simulator of the payment providers payfleet calls, written from the
//! provider documents (`shared/provider-docs/`) as a second reading, independent of
//! payfleet's client code, so that a misreading on one side is caught by the other.
//!
//! Map of modules:
//! - [`settings`]: `SimSettings` from the `[sandbox]` section, secrets from the env;
//! - [`money`]: amounts as each document defines them, read without floats;
//! - [`ecommpay`]: ECommPay Gate: `signature` (HMAC-SHA512 over the flattened body),
//!   `gate` (request checks, error answers), `codes`, `book` (payments Gate knows),
//!   `report` (callback and status bodies), `callbacks` (signed callbacks and their
//!   tricks), one file per method: `homebank_payout`, `india_sale` (+ `india_pages`,
//!   the bank pages a purchase redirects to), `india_payout` (+ `india_hours`),
//!   `india_refund`, `india_banks`, `status`;
//! - [`epay`]: Halyk epay: `book` (tokens, transactions), `answer` (answer bodies,
//!   codes), `token`, `google_pay`, `p2p_transfer`, `confirm`, `check_status`,
//!   `postlink`;
//! - [`faults`]: fault injection and configured answers (`PUT /sandbox/faults`);
//! - [`limits`]: per-account limits answering 429 (`PUT /sandbox/limits`);
//! - [`arrivals`]: when each request arrived (`GET /sandbox/arrivals`);
//! - [`stats`]: what the simulator saw (`GET /sandbox/stats`);
//! - [`callbacks`]: delivery with resends until HTTP 200;
//! - [`ops`]: `/healthz`, `/readyz`, `/metrics`;
//! - [`web`]: URL and HTML escaping.

// A refused request's answer is the `Err` of the checks and goes back to the client as
// is: boxing every one would only add noise.
#![allow(clippy::result_large_err)]

pub mod arrivals;
pub mod callbacks;
pub mod ecommpay;
pub mod epay;
pub mod faults;
pub mod limits;
pub mod money;
pub mod ops;
pub mod settings;
mod stats;
pub mod web;

pub use faults::Faults;
pub use settings::SimSettings;
pub use stats::{CallbackStats, Stats};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use secrecy::SecretString;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};

/// The simulator's state, shared by every handler as `Arc<Sandbox>`.
pub struct Sandbox {
    pub settings: SimSettings,
    pub ecommpay_secret: SecretString,
    pub epay_client_secret: SecretString,
    pub stats: Mutex<Stats>,
    pub ecommpay: Mutex<ecommpay::book::Payments>,
    pub epay: Mutex<epay::book::Book>,
    pub faults: RwLock<Faults>,
    pub http: reqwest::Client,
    pub arrivals: arrivals::Arrivals,
    pub limits: limits::AccountLimits,
}

impl Sandbox {
    pub fn new(
        settings: SimSettings,
        ecommpay_secret: SecretString,
        epay_client_secret: SecretString,
    ) -> Arc<Self> {
        Arc::new(Sandbox {
            settings,
            ecommpay_secret,
            epay_client_secret,
            stats: Mutex::default(),
            ecommpay: Mutex::default(),
            epay: Mutex::default(),
            faults: RwLock::default(),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            arrivals: Default::default(),
            limits: Default::default(),
        })
    }

    pub fn stats(&self) -> Stats {
        self.stats.lock().expect("stats lock").clone()
    }

    /// Changes the stats under their lock.
    pub fn with_stats<T>(&self, f: impl FnOnce(&mut Stats) -> T) -> T {
        f(&mut self.stats.lock().expect("stats lock"))
    }

    pub fn faults(&self) -> Faults {
        self.faults.read().expect("faults lock").clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.faults.write().expect("faults lock") = faults;
    }

    /// The configured answers in force.
    pub fn answers(&self) -> faults::Answers {
        self.faults.read().expect("faults lock").answers.clone()
    }
}

/// Every route: the providers' documented paths (with limits, faults and arrivals in
/// front), the bank pages, the `/sandbox/*` controls and the ops endpoints.
pub fn router(sandbox: Arc<Sandbox>) -> Router {
    use axum::middleware::from_fn_with_state;
    let providers = ecommpay::routes()
        .merge(epay::routes())
        .layer(from_fn_with_state(sandbox.clone(), faults::inject))
        .layer(from_fn_with_state(sandbox.clone(), limits::count_and_limit))
        // Outermost, so an arrival is timed before any injected delay.
        .layer(from_fn_with_state(sandbox.clone(), arrivals::record));
    Router::new()
        .merge(providers)
        .merge(ecommpay::bank_pages())
        .merge(control_routes())
        .merge(ops::routes())
        .with_state(sandbox)
}

fn control_routes() -> Router<Arc<Sandbox>> {
    use axum::Json;
    type S = State<Arc<Sandbox>>;
    Router::new()
        .route(
            "/sandbox/stats",
            get(|State(s): S| async move { Json(s.stats()) }),
        )
        .route(
            "/sandbox/arrivals",
            get(|State(s): S| async move { Json(s.arrivals.all()) }),
        )
        .route(
            "/sandbox/faults",
            get(|State(s): S| async move { Json(s.faults()) }).put(
                |State(s): S, Json(f): Json<Faults>| async move {
                    s.set_faults(f);
                    Json(s.faults())
                },
            ),
        )
        .route(
            "/sandbox/limits",
            get(|State(s): S| async move { Json(s.limits.get()) }).put(
                |State(s): S, Json(l): Json<limits::Limits>| async move {
                    s.limits.set(l);
                    Json(s.limits.get())
                },
            ),
        )
}

/// Serves the simulator on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    sandbox: Arc<Sandbox>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(sandbox))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Loads the settings (defaults, the file named by `PAYFLEET_CONFIG` if set, the
/// environment) and the secrets, then serves until SIGTERM or SIGINT.
pub async fn run_from_env() -> anyhow::Result<()> {
    let file = std::env::var_os("PAYFLEET_CONFIG").map(std::path::PathBuf::from);
    let settings = SimSettings::load(file.as_deref())?;
    run(settings).await
}

/// Serves `settings` (secrets from the environment) until SIGTERM or SIGINT.
pub async fn run(settings: SimSettings) -> anyhow::Result<()> {
    let ecommpay = settings::secret_from_env(settings::ECOMMPAY_SECRET_VAR)?;
    let epay = settings::secret_from_env(settings::EPAY_SECRET_VAR)?;
    let listener = tokio::net::TcpListener::bind(settings.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "payfleet-sim listening");
    serve(
        listener,
        Sandbox::new(settings, ecommpay, epay),
        stop_signal(),
    )
    .await?;
    tracing::info!("payfleet-sim stopped");
    Ok(())
}

/// Completes on SIGTERM or SIGINT.
pub async fn stop_signal() {
    let int = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = int => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = int.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = int.await;
    }
}
