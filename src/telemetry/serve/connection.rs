//! One connection: hyper serves its requests while a watch closes it when a client is
//! too slow with a request head or silent too long between requests. hyper's own
//! header timer starts when a connection waits for a request, so it would count the
//! idle wait as header time; the two are told apart here, as nginx does.

use super::Served;
use crate::telemetry::label::ConnectionCut;
use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tower::ServiceExt;

/// Where a connection stands, for its deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No request in progress since `since`; `heard` is the first byte after it.
    Waiting {
        since: Instant,
        heard: Option<Instant>,
    },
    /// A request head has arrived and is being answered (its body has a deadline of
    /// its own, kept by the body middleware).
    Answering,
}

impl Phase {
    /// When the connection is to be cut, and why; none while a request is answered.
    fn deadline(self, limits: &super::Limits) -> Option<(Instant, ConnectionCut)> {
        match self {
            Phase::Waiting { since, heard: None } => {
                Some((since + limits.idle, ConnectionCut::IdleTimeout))
            }
            Phase::Waiting {
                heard: Some(first), ..
            } => Some((first + limits.header_read, ConnectionCut::HeaderTimeout)),
            Phase::Answering => None,
        }
    }
}

struct Activity {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Activity {
    fn set(&self, update: impl FnOnce(&mut Phase)) {
        let mut phase = self.phase.lock().expect("phase lock");
        let before = *phase;
        update(&mut phase);
        if *phase != before {
            self.changed.notify_one();
        }
    }

    fn get(&self) -> Phase {
        *self.phase.lock().expect("phase lock")
    }

    fn heard(&self) {
        self.set(|p| {
            if let Phase::Waiting {
                heard: h @ None, ..
            } = p
            {
                *h = Some(Instant::now());
            }
        });
    }
}

/// Marks a request in progress until dropped (answered, or its connection gone).
struct Answering(Arc<Activity>);

impl Answering {
    fn start(activity: Arc<Activity>) -> Self {
        activity.set(|p| *p = Phase::Answering);
        Answering(activity)
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.set(|p| {
            *p = Phase::Waiting {
                since: Instant::now(),
                heard: None,
            }
        });
    }
}

/// The socket, noting each read that brought bytes.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.heard();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serves one connection until the client closes it, a deadline passes, or `closing`
/// (once its request in progress, if any, is answered).
pub(super) async fn serve(
    stream: TcpStream,
    router: Router,
    served: &Served,
    mut closing: watch::Receiver<bool>,
) {
    let open = served.metrics.connections_open(served.listener);
    open.inc();
    let activity = Arc::new(Activity {
        phase: Mutex::new(Phase::Waiting {
            since: Instant::now(),
            heard: None,
        }),
        changed: Notify::new(),
    });
    let io = TokioIo::new(Watched {
        stream,
        activity: activity.clone(),
    });
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let answering = Answering::start(requests.clone());
        let router = router.clone();
        async move {
            let response = router.oneshot(req.map(Body::new)).await;
            drop(answering);
            response
        }
    });
    // hyper's header timer is off: it would start at the idle wait (see the top).
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let mut shutting_down = false;
    let cut = loop {
        let deadline = activity.get().deadline(&served.limits);
        let expired = async {
            match deadline {
                Some((at, _)) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = conn.as_mut() => break None,
            // Stopping: a request being answered is finished, anything else dropped
            // (a half-sent head would otherwise hold the stop for its timeout).
            _ = closing.changed(), if !shutting_down => {
                if activity.get() != Phase::Answering {
                    break None;
                }
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = activity.changed.notified() => {}
            _ = expired => {
                if let Some((at, why)) = activity.get().deadline(&served.limits)
                    && at <= Instant::now()
                {
                    break Some(why);
                }
            }
        }
    };
    // Dropping the connection closes the socket.
    if let Some(why) = cut {
        served.metrics.connection_cut(served.listener, why);
    }
    open.dec();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::serve::Limits;
    use std::time::Duration;

    const LIMITS: Limits = Limits {
        header_read: Duration::from_secs(2),
        body: Duration::from_secs(3),
        idle: Duration::from_secs(5),
        max_connections: 1,
        max_body_bytes: 1,
    };

    #[test]
    fn a_silent_connection_waits_the_idle_timeout() {
        let since = Instant::now();
        let phase = Phase::Waiting { since, heard: None };
        assert_eq!(
            phase.deadline(&LIMITS),
            Some((since + LIMITS.idle, ConnectionCut::IdleTimeout))
        );
    }

    #[test]
    fn a_started_head_must_end_within_the_header_timeout_of_its_first_byte() {
        let since = Instant::now();
        let first = since + Duration::from_secs(4);
        let phase = Phase::Waiting {
            since,
            heard: Some(first),
        };
        assert_eq!(
            phase.deadline(&LIMITS),
            Some((first + LIMITS.header_read, ConnectionCut::HeaderTimeout))
        );
    }

    #[test]
    fn a_request_being_answered_has_no_connection_deadline() {
        assert_eq!(Phase::Answering.deadline(&LIMITS), None);
    }
}
