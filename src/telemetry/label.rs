//! Metric label values. Every label set is an enum: its values are spelled once, the
//! series start at zero from its `ALL`, and a call site can only name a value that
//! exists, so dashboards and the code cannot drift apart.

use crate::contract::{EventStatus, Method, Operation, ProviderName, State};

/// A bounded set of label values.
pub trait Label: Copy + 'static {
    /// Every value, in the order the series are created.
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
}

/// Declares a label enum whose variants and spellings come from one list.
macro_rules! labels {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl Label for $name {
            const ALL: &'static [Self] = &[$($name::$variant),+];

            fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }
    };
}

/// The contract's own enums label by their wire names.
macro_rules! contract_labels {
    ($($name:ident),+) => {
        $(impl Label for $name {
            const ALL: &'static [Self] = &$name::ALL;

            fn as_str(self) -> &'static str {
                $name::as_str(self)
            }
        })+
    };
}

contract_labels!(ProviderName, Method, Operation, EventStatus, State);

labels! {
    /// Pipeline stages of [`Metrics::stage`](super::Metrics::stage).
    Stage {
        QueueWait => "queue_wait",
        Validate => "validate",
        Idempotency => "idempotency",
        RateLimit => "rate_limit",
        Token => "token",
        Provider => "provider",
        Publish => "publish",
    }
}

labels! {
    /// How a worker finished a delivery that published no event.
    NoEvent {
        Retrying => "retrying",
        Duplicate => "duplicate",
        DeadLettered => "dead_lettered",
        /// Another worker owns it now.
        Fenced => "fenced",
        /// The outcome is unknown and retries are spent: the reconciler settles it.
        Unresolved => "unresolved",
        /// A copy of a payment that waits for the provider's result.
        Awaiting => "awaiting",
        /// Its record vanished mid-flight.
        RecordLost => "record_lost",
        /// Not finished: given back to the broker (infrastructure failed).
        HandedBack => "handed_back",
    }
}

/// How a worker finished a delivery: the event it published, or why none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    Event(EventStatus),
    NoEvent(NoEvent),
}

impl Finished {
    pub fn as_str(self) -> &'static str {
        match self {
            Finished::Event(s) => s.as_str(),
            Finished::NoEvent(n) => n.as_str(),
        }
    }

    /// Every value, event statuses first.
    pub fn all() -> impl Iterator<Item = Finished> {
        let events = EventStatus::ALL.into_iter().map(Finished::Event);
        events.chain(NoEvent::ALL.iter().map(|n| Finished::NoEvent(*n)))
    }
}

labels! {
    /// A kind of request to a provider.
    ProviderRequest {
        Submit => "submit",
        Status => "status",
    }
}

labels! {
    /// What a provider request came to: `ok` or the class of its error.
    RequestResult {
        Ok => "ok",
        NotSent => "not_sent",
        Unknown => "unknown",
        Refused => "refused",
        AlreadyExists => "already_exists",
        Throttled => "throttled",
    }
}

labels! {
    /// How one HTTP exchange with a provider ended: the class of its status, or the
    /// transport failure that left it without one (a timeout and a 5xx both make an
    /// `unknown` result; here they differ).
    HttpClass {
        Success => "2xx",
        Redirect => "3xx",
        ClientError => "4xx",
        ServerError => "5xx",
        /// No answer within the request timeout.
        Timeout => "timeout",
        /// No connection (refused, unreachable, TLS handshake failed).
        Connect => "connect",
        /// The connection failed mid-request, or the answer could not be read.
        Broken => "broken",
    }
}

impl HttpClass {
    /// The class of an HTTP status (a 1xx, which reqwest never returns, counts as 2xx).
    pub fn of_status(status: u16) -> Self {
        match status {
            ..300 => HttpClass::Success,
            300..400 => HttpClass::Redirect,
            400..500 => HttpClass::ClientError,
            _ => HttpClass::ServerError,
        }
    }
}

labels! {
    /// Why a command was parked in a delay queue.
    RetryReason {
        /// Another worker holds its lease.
        Busy => "busy",
        /// Its event is being published by another process.
        EventPending => "event_pending",
        /// Too early to ask the provider for its status.
        StatusNotYet => "status_not_yet",
        NotSent => "not_sent",
        Unknown => "unknown",
        Throttled => "throttled",
        Refused => "refused",
        AlreadyExists => "already_exists",
    }
}

labels! {
    /// Why a message went to the dead-letter queue.
    DeadLetterReason {
        Undecodable => "undecodable",
        IdempotencyConflict => "idempotency_conflict",
        DeliveryLimit => "delivery_limit",
        /// Headers too large for a worker to carry on.
        Oversize => "oversize",
    }
}

labels! {
    /// What became of a provider callback.
    CallbackResult {
        Applied => "applied",
        Duplicate => "duplicate",
        Conflicting => "conflicting",
        RefusedSignature => "refused_signature",
        RefusedSecret => "refused_secret",
        Malformed => "malformed",
        UnknownPayment => "unknown_payment",
        /// Names other money than the command's: refused, noted on its record.
        Mismatch => "mismatch",
        InProgress => "in_progress",
        /// A redirect before the worker recorded Gate's answer: Gate resends it.
        TooEarly => "too_early",
        /// A redirect after the payment moved on.
        Late => "late",
        /// The provider is not enabled on this gateway (`<provider>.enabled = false`).
        NotEnabled => "not_enabled",
        Error => "error",
    }
}

labels! {
    /// What the reconciler did with a payment it checked.
    ReconcilerAction {
        Settled => "settled",
        Expired => "expired",
        NeverSent => "never_sent",
        StillOpen => "still_open",
        /// No status slot in the account's rate limit soon: asked next round.
        RateLimited => "rate_limited",
        /// The status answer carried the customer's action data a lost answer or
        /// callback should have brought: `action_required` recorded and published.
        ActionRecovered => "action_recovered",
        /// Past its threshold and still in progress at a provider that settles nothing
        /// then (epay): left open, logged, for an operator.
        Overdue => "overdue",
        Dropped => "dropped",
        Error => "error",
    }
}

labels! {
    /// A backing service the processes reconnect to.
    Service {
        Amqp => "amqp",
        Redis => "redis",
    }
}

labels! {
    /// What a callback's lag is measured from.
    LagSince {
        /// payfleet's last submission: how long the provider took.
        Submitted => "submitted",
        /// The provider's operation time: how late the callback was delivered.
        ProviderTime => "provider_time",
    }
}

labels! {
    /// A rate-limiter decision.
    RateLimitDecision {
        Allowed => "allowed",
        Waited => "waited",
        /// Parked in a delay queue.
        Deferred => "deferred",
        /// Redis away: the local share decided.
        Fallback => "fallback",
    }
}

labels! {
    /// An HTTP listener.
    Listener {
        /// The gateway's public port: providers' callbacks.
        Callbacks => "callbacks",
        /// `/metrics`, `/healthz`, `/readyz`.
        Ops => "ops",
    }
}

labels! {
    /// Why the server closed a connection before its client did.
    ConnectionCut {
        /// Past the connection cap: answered 503.
        Full => "full",
        /// Past the cap with 503 answers piled up too: closed unanswered.
        Shed => "shed",
        /// A request head not complete within the header timeout of its first byte.
        HeaderTimeout => "header_timeout",
        /// A body not complete within the body timeout: answered 408.
        BodyTimeout => "body_timeout",
        /// Silent with no request in progress for the idle timeout.
        IdleTimeout => "idle_timeout",
    }
}
