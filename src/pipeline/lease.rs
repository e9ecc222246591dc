//! Keeping the lease on a claimed command while the provider is called.

use super::handle::{Ctx, Handler};
use crate::state::Lease;

impl Handler {
    /// Runs a provider call while renewing the lease, so that a slow provider does not
    /// hand the command to a second worker mid-call.
    pub(super) async fn renewing<T>(
        &self,
        ctx: &Ctx<'_>,
        lease: &Lease,
        call: impl std::future::Future<Output = T>,
    ) -> T {
        let every = std::time::Duration::from_millis((self.settings.lease_ms / 3).max(1));
        let mut call = std::pin::pin!(call);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                out = &mut call => return out,
                _ = tick.tick() => {
                    match self.store.renew(&ctx.cmd.key, lease, self.settings.lease_ms).await {
                        Ok(true) => {}
                        // Lost or unreachable: the call goes on (it may be processed);
                        // the write after it is fenced if another worker took over.
                        Ok(false) => tracing::warn!("lease lost during a provider call"),
                        Err(e) => tracing::warn!(error = %e, "cannot renew the lease"),
                    }
                }
            }
        }
    }
}
