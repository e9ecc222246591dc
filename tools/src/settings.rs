//! A local fleet's settings: the core's (workers, gateway, reconciler) and the
//! simulator's, read from the same file and environment. It derefs to the core's
//! [`Settings`], so `s.worker.x` and `s.sandbox.x` read alike.

use payfleet::config::{Needs, Settings};
use payfleet_sim::SimSettings;
use payfleet_sim::settings::{ECOMMPAY_SECRET_VAR, EPAY_SECRET_VAR, secret_from_env};
use secrecy::SecretString;
use std::ops::{Deref, DerefMut};
use std::path::Path;

#[derive(Debug, Clone)]
pub struct FleetSettings {
    pub core: Settings,
    pub sandbox: SimSettings,
    /// The key the simulator signs ECommPay answers and callbacks with.
    pub sandbox_ecommpay_secret_key: Option<SecretString>,
    /// The `client_secret` the simulator's epay token endpoint accepts.
    pub sandbox_epay_client_secret: Option<SecretString>,
}

impl FleetSettings {
    /// Both halves from the defaults, `file` and the process environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Ok(FleetSettings {
            core: Settings::load(file, Needs::Settings)?,
            sandbox: SimSettings::load(file)?,
            sandbox_ecommpay_secret_key: secret_from_env(ECOMMPAY_SECRET_VAR).ok(),
            sandbox_epay_client_secret: secret_from_env(EPAY_SECRET_VAR).ok(),
        })
    }
}

impl Deref for FleetSettings {
    type Target = Settings;

    fn deref(&self) -> &Settings {
        &self.core
    }
}

impl DerefMut for FleetSettings {
    fn deref_mut(&mut self) -> &mut Settings {
        &mut self.core
    }
}
