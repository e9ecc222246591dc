//! How long a payment may stay silent before the reconciler judges it: the worker that
//! parks a command and the reconciler that looks at it must agree on it.

use std::time::Duration;

/// A command waiting for its own retry is only judged by the reconciler after this
/// long without any change: its retry may come back late, never is what we look for.
pub const RETRY_SILENCE: Duration = Duration::from_secs(60);

/// How long past twice its delay the reconciler waits for a parked command: after a
/// broker restart, delay queues have been seen releasing messages seconds late.
pub const PARKED_GRACE: Duration = RETRY_SILENCE;
