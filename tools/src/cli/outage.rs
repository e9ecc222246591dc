//! A dependency made unreachable while the fleet runs: a TCP relay in front of it that
//! can be cut. Cut, it closes every relayed connection and refuses new ones (accepts
//! and closes at once), as a lost network path or a dead host looks to a client; the
//! service behind it keeps its data and serves everyone else on the machine.

use std::sync::Arc;
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Relay {
    /// Where the fleet connects instead of the service.
    pub port: u16,
    cut: watch::Sender<bool>,
}

impl Relay {
    /// Relays 127.0.0.1:`port` (picked here) to 127.0.0.1:`target`, until dropped.
    pub async fn start(target: u16) -> anyhow::Result<Arc<Self>> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (cut, watch) = watch::channel(false);
        let relay = Arc::new(Relay { port, cut });
        let weak = Arc::downgrade(&relay);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if weak.strong_count() == 0 {
                    break;
                }
                if *watch.borrow() {
                    drop(client);
                    continue;
                }
                tokio::spawn(relay_one(client, target, watch.clone()));
            }
        });
        Ok(relay)
    }

    /// Cuts (`true`) or restores (`false`) the path.
    pub fn cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

async fn relay_one(mut client: TcpStream, target: u16, mut cut: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", target)).await else {
        return;
    };
    tokio::select! {
        _ = copy_bidirectional(&mut client, &mut server) => {}
        _ = cut.wait_for(|c| *c) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn echo() -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        port
    }

    async fn round_trip(port: u16) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await else {
            return false;
        };
        if s.write_all(b"ping").await.is_err() {
            return false;
        }
        let mut buf = [0; 4];
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(2), s.read_exact(&mut buf)).await,
            Ok(Ok(_))
        ) && &buf == b"ping"
    }

    #[tokio::test]
    async fn a_cut_path_closes_open_connections_and_refuses_new_ones_until_restored() {
        let relay = Relay::start(echo().await).await.unwrap();
        let mut open = TcpStream::connect(("127.0.0.1", relay.port)).await.unwrap();
        assert!(round_trip(relay.port).await);
        relay.cut(true);
        let mut buf = [0; 1];
        let closed = tokio::time::timeout(std::time::Duration::from_secs(2), open.read(&mut buf));
        assert!(
            matches!(closed.await, Ok(Ok(0)) | Ok(Err(_))),
            "an open connection is closed"
        );
        assert!(!round_trip(relay.port).await);
        relay.cut(false);
        assert!(round_trip(relay.port).await);
    }
}
