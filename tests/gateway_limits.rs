//! The gateway on real sockets against slow, idle and too many clients: each limit
//! closes what it should, quickly, and the ops listener answers throughout. Limits are
//! set short here so the tests run in seconds.

mod common;

use payfleet_tools::local::LocalFleet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A gateway (and the sandbox) with the given limits; everything else long.
async fn gateway(
    label: &str,
    set: impl FnOnce(&mut payfleet::config::GatewaySettings),
) -> LocalFleet {
    let mut s = common::settings(label);
    let g = &mut s.gateway;
    g.header_read_timeout_ms = 30_000;
    g.body_timeout_ms = 30_000;
    g.idle_timeout_ms = 30_000;
    set(g);
    LocalFleet::start(s, 0)
        .await
        .expect("the gateway starts: are RabbitMQ and Redis running?")
}

/// Reads until the server closes the connection (EOF or reset); returns what it sent
/// and how long that took. Panics if it is still open after `within`.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> (String, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((start + within).into(), stream.read(&mut buf)).await {
            Err(_) => panic!(
                "still open after {within:?}; received {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), start.elapsed())
}

async fn get(url: String) -> (u16, String) {
    let r = reqwest::get(&url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

#[tokio::test]
async fn a_slow_loris_is_cut_after_the_header_timeout() {
    let fleet = gateway("t-gw-loris", |g| g.header_read_timeout_ms = 600).await;
    let mut loris = TcpStream::connect(fleet.gateway_addr).await.unwrap();
    loris
        .write_all(b"POST /callbacks/ecommpay HTTP/1.1\r\nHost: gateway\r\n")
        .await
        .unwrap();
    // One more header byte now and then: never silent, never done.
    let (mut reader, mut writer) = loris.into_split();
    let drip = tokio::spawn(async move {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if writer.write_all(b"X").await.is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    drip.abort();
    assert!(closed.is_ok(), "a slow header held the connection for 5 s");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(500),
        "closed after {took:?}, before the timeout"
    );
    let (_, metrics) = get(format!("http://{}/metrics", fleet.gateway_ops_addr)).await;
    let line =
        "payfleet_http_connections_cut_total{listener=\"callbacks\",reason=\"header_timeout\"} 1";
    assert!(metrics.contains(line), "no {line}");
    fleet.stop().await.unwrap();
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let fleet = gateway("t-gw-idle", |g| g.idle_timeout_ms = 600).await;
    // One complete request, answered, then silence on the kept-alive connection.
    let mut conn = TcpStream::connect(fleet.gateway_addr).await.unwrap();
    conn.write_all(b"GET /nothing-here HTTP/1.1\r\nHost: gateway\r\n\r\n")
        .await
        .unwrap();
    let (answer, took) = until_closed(&mut conn, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert!(took >= Duration::from_millis(500), "closed after {took:?}");
    // A connection that never says anything goes the same way.
    let mut silent = TcpStream::connect(fleet.gateway_addr).await.unwrap();
    let (answer, took) = until_closed(&mut silent, Duration::from_secs(5)).await;
    assert_eq!(answer, "");
    assert!(took >= Duration::from_millis(500), "closed after {took:?}");
    fleet.stop().await.unwrap();
}

#[tokio::test]
async fn a_body_slower_than_the_body_timeout_is_answered_408_and_closed() {
    let fleet = gateway("t-gw-body", |g| g.body_timeout_ms = 600).await;
    let mut conn = TcpStream::connect(fleet.gateway_addr).await.unwrap();
    conn.write_all(
        b"POST /callbacks/ecommpay HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"pay",
    )
    .await
    .unwrap();
    let (answer, took) = until_closed(&mut conn, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(took >= Duration::from_millis(500), "closed after {took:?}");
    fleet.stop().await.unwrap();
}

#[tokio::test]
async fn past_the_connection_cap_a_new_connection_gets_503_and_ops_still_answer() {
    let fleet = gateway("t-gw-cap", |g| g.max_connections = 4).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut c = TcpStream::connect(fleet.gateway_addr).await.unwrap();
        c.write_all(b"POST /callbacks/ecommpay HTTP/1.1\r\nHost: gateway\r\n")
            .await
            .unwrap();
        held.push(c);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let refused = reqwest::Client::new()
        .post(format!("http://{}/callbacks/ecommpay", fleet.gateway_addr))
        .body("{}")
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("an answer, not a hang");
    assert_eq!(refused.status().as_u16(), 503);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    let ops = fleet.gateway_ops_addr;
    assert_eq!(
        get(format!("http://{ops}/healthz")).await,
        (200, "ok".into())
    );
    assert_eq!(get(format!("http://{ops}/readyz")).await.0, 200);
    let (_, metrics) = get(format!("http://{ops}/metrics")).await;
    for line in [
        "payfleet_http_connections_cut_total{listener=\"callbacks\",reason=\"full\"} 1",
        "payfleet_http_connections_open{listener=\"callbacks\"} 4",
    ] {
        assert!(metrics.contains(line), "no {line}");
    }
    // The held connections gone, callbacks are served again.
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let served = reqwest::Client::new()
        .post(format!("http://{}/callbacks/ecommpay", fleet.gateway_addr))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_ne!(served.status().as_u16(), 503);
    fleet.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_and_probes_are_served_on_the_ops_port_only() {
    let fleet = gateway("t-gw-ops", |_| {}).await;
    let (public, ops): (SocketAddr, SocketAddr) = (fleet.gateway_addr, fleet.gateway_ops_addr);
    assert_ne!(public.port(), ops.port());
    for path in ["/metrics", "/healthz", "/readyz"] {
        assert_eq!(
            get(format!("http://{public}{path}")).await.0,
            404,
            "{path} on the callback port"
        );
        // Ready once its first look at RabbitMQ and Redis answered.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        let mut status = get(format!("http://{ops}{path}")).await.0;
        while status != 200 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            status = get(format!("http://{ops}{path}")).await.0;
        }
        assert_eq!(status, 200, "{path} on the ops port");
    }
    let (_, metrics) = get(format!("http://{ops}/metrics")).await;
    assert!(metrics.contains("process=\"gateway\""), "{metrics}");
    assert_eq!(
        get(format!("http://{ops}/callbacks/ecommpay")).await.0,
        404,
        "callbacks on the ops port"
    );
    fleet.stop().await.unwrap();
}
