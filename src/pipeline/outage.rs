//! Riding out an outage of Redis or of the broker's publishing side. A delivery handed
//! back (nack with requeue) raises the broker's delivery count, and enough of those
//! dead-letter a valid command (payfleet's crash-loop guard, then the quorum queue's own
//! limit). So while a service is away the worker takes no deliveries and holds those it
//! has, unacked, and tries them again once the service answers: an outage of any length
//! costs no delivery.

use super::handle::HandleError;
use crate::bus::PublishError;
use crate::outcome::AnnounceError;
use crate::state::StoreError;
use crate::telemetry::label::Service;
use std::sync::Arc;
use tokio::sync::watch;

/// What becomes of a delivery whose handling failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// The service is away: hold the delivery and try it again once it is back.
    Hold(Service),
    /// This call failed, not a service: hand the delivery back (it counts as one).
    HandBack,
}

pub fn after_failure(e: &HandleError) -> AfterFailure {
    let store = |e: &StoreError| match e.is_outage() {
        true => AfterFailure::Hold(Service::Redis),
        false => AfterFailure::HandBack,
    };
    let publish = |e: &PublishError| match e {
        PublishError::Amqp(_) | PublishError::Nacked | PublishError::NoConfirm(_) => {
            AfterFailure::Hold(Service::Amqp)
        }
        // No queue takes it (a topology to fix), or headers no frame carries: no wait
        // would help.
        PublishError::Unroutable { .. } | PublishError::HeadersTooLarge(_) => {
            AfterFailure::HandBack
        }
    };
    match e {
        HandleError::Store(e) | HandleError::Announce(AnnounceError::Store(e)) => store(e),
        HandleError::Publish(e) | HandleError::Announce(AnnounceError::Publish(e)) => publish(e),
    }
}

/// Open while the services answer; closed by whoever first finds one away, and opened
/// again by the consume loop once it answers.
#[derive(Clone)]
pub struct ServiceGate(Arc<watch::Sender<Option<Service>>>);

impl ServiceGate {
    /// Closed until `service` was seen to answer.
    pub fn closed(service: Service) -> Self {
        ServiceGate(Arc::new(watch::channel(Some(service)).0))
    }

    pub fn close(&self, service: Service) {
        self.0.send_if_modified(|away| {
            let first = away.is_none();
            if first {
                *away = Some(service);
            }
            first
        });
    }

    pub fn open(&self) {
        self.0.send_replace(None);
    }

    /// The service found away, while the gate is closed.
    pub fn away(&self) -> Option<Service> {
        *self.0.borrow()
    }

    pub async fn wait_open(&self) {
        let _ = self.0.subscribe().wait_for(Option::is_none).await;
    }

    pub fn changes(&self) -> watch::Receiver<Option<Service>> {
        self.0.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    fn redis_error(kind: ErrorKind) -> StoreError {
        StoreError::Redis(Error::from(kind).into())
    }

    #[test]
    fn a_redis_outage_holds_the_delivery() {
        let refused = redis_error(ErrorKind::ConnectionRefused);
        assert_eq!(
            after_failure(&HandleError::Store(refused)),
            AfterFailure::Hold(Service::Redis)
        );
        let reset = redis_error(ErrorKind::ConnectionReset);
        assert_eq!(
            after_failure(&HandleError::Announce(AnnounceError::Store(reset))),
            AfterFailure::Hold(Service::Redis)
        );
    }

    #[test]
    fn a_broker_that_takes_no_message_holds_the_delivery() {
        for e in [
            PublishError::Nacked,
            PublishError::NoConfirm(std::time::Duration::from_secs(30)),
            PublishError::Amqp(lapin::Error::from(Error::from(ErrorKind::BrokenPipe))),
        ] {
            assert_eq!(
                after_failure(&HandleError::Publish(e)),
                AfterFailure::Hold(Service::Amqp)
            );
        }
        assert_eq!(
            after_failure(&HandleError::Announce(AnnounceError::Publish(
                PublishError::Nacked
            ))),
            AfterFailure::Hold(Service::Amqp)
        );
    }

    #[test]
    fn a_call_that_failed_by_itself_is_handed_back() {
        let odd = StoreError::Protocol("item 0: nil".into());
        assert_eq!(
            after_failure(&HandleError::Store(odd)),
            AfterFailure::HandBack
        );
        let unroutable = PublishError::Unroutable {
            exchange: "x".into(),
            routing_key: "k".into(),
        };
        assert_eq!(
            after_failure(&HandleError::Publish(unroutable)),
            AfterFailure::HandBack
        );
    }

    #[tokio::test]
    async fn the_gate_names_the_first_service_found_away_until_it_opens() {
        let gate = ServiceGate::closed(Service::Redis);
        assert_eq!(gate.away(), Some(Service::Redis));
        gate.open();
        gate.wait_open().await;
        gate.close(Service::Amqp);
        gate.close(Service::Redis);
        assert_eq!(gate.away(), Some(Service::Amqp), "the first one");
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.wait_open().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        gate.open();
        waiting.await.unwrap();
    }
}
