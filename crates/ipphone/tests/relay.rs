//! `ipphone relay` between two real UDP sockets: what it drops, delays and
//! caps is what it was told to, both ways, and the same seed replays.

mod common;

use std::net::UdpSocket;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Relay(Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a relay from a free port to `to`; returns it and its port.
fn relay(to: u16, extra: &[&str]) -> (Relay, u16) {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = ipphone()
        .args([
            "relay",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--to",
            &format!("127.0.0.1:{to}"),
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    (Relay(child), port)
}

/// Sends `count` numbered datagrams, one a millisecond, from a client
/// through the relay to a server that echoes them; returns which numbers
/// the server got, which echoes came back, and the server's arrival delays.
fn exchange(extra: &[&str], count: u32) -> (Vec<u32>, Vec<u32>, Vec<Duration>) {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (_relay, port) = relay(server.local_addr().unwrap().port(), extra);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.connect(("127.0.0.1", port)).unwrap();
    client.set_nonblocking(true).unwrap();
    server.set_nonblocking(true).unwrap();
    let start = Instant::now();
    let (mut got, mut echoed, mut delays) = (Vec::new(), Vec::new(), Vec::new());
    let mut buf = [0u8; 2048];
    let mut sent = 0;
    let deadline = start + Duration::from_millis(u64::from(count) + 2_000);
    while Instant::now() < deadline {
        if sent < count && start.elapsed() >= Duration::from_millis(u64::from(sent)) {
            let mut packet = sent.to_be_bytes().to_vec();
            packet.resize(160, 0);
            client.send(&packet).unwrap();
            sent += 1;
        }
        while let Ok((n, from)) = server.recv_from(&mut buf) {
            let k = u32::from_be_bytes(buf[..4].try_into().unwrap());
            got.push(k);
            delays.push(
                start
                    .elapsed()
                    .saturating_sub(Duration::from_millis(u64::from(k))),
            );
            server.send_to(&buf[..n], from).unwrap();
        }
        while let Ok(n) = client.recv(&mut buf) {
            echoed.push(u32::from_be_bytes(buf[..4].try_into().unwrap()));
            let _ = n;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    (got, echoed, delays)
}

#[test]
fn a_clean_relay_carries_everything_both_ways() {
    let (got, echoed, _) = exchange(&[], 500);
    assert_eq!(got.len(), 500);
    assert_eq!(echoed.len(), 500);
}

#[test]
fn loss_is_as_configured_each_way_and_replays_from_the_seed() {
    let args = ["--loss", "10", "--seed", "42"];
    let (got, echoed, _) = exchange(&args, 1_000);
    let forward = 1.0 - got.len() as f64 / 1_000.0;
    assert!((0.06..0.14).contains(&forward), "forward loss {forward}");
    let back = 1.0 - echoed.len() as f64 / got.len() as f64;
    assert!((0.06..0.14).contains(&back), "loss back {back}");
    let (again, _, _) = exchange(&args, 1_000);
    assert_eq!(got, again, "the same seed drops the same packets");
}

#[test]
fn delay_and_jitter_are_added() {
    let (got, _, delays) = exchange(&["--delay", "40", "--jitter", "10"], 300);
    assert_eq!(got.len(), 300);
    let mut sorted = delays.clone();
    sorted.sort();
    let low = sorted[sorted.len() / 50].as_secs_f64() * 1000.0;
    let high = sorted[sorted.len() * 49 / 50].as_secs_f64() * 1000.0;
    // Jitter of ±10 ms that keeps the order piles packets sent close
    // together behind the slowest: the spread is narrower than 20 ms, and
    // a loaded machine adds its own (tens of ms on a busy two-core CI
    // machine), but it is there. The delay itself is never shorter.
    assert!(
        low >= 29.0 && high <= 150.0 && high - low >= 5.0,
        "delays {low:.1}..{high:.1} ms"
    );
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "jitter keeps the order"
    );
}

#[test]
fn a_rate_cap_limits_throughput() {
    // 160-byte packets at 1000/s are 1.28 Mbit/s; a 320 kbit/s cap carries a quarter.
    let (got, _, _) = exchange(&["--rate", "320", "--queue", "100"], 1_000);
    let share = got.len() as f64 / 1_000.0;
    assert!(
        (0.2..0.35).contains(&share),
        "{} of 1000 through the cap",
        got.len()
    );
}

#[test]
fn bad_settings_are_refused() {
    for args in [
        &["--loss", "150"][..],
        &["--burst", "0.5"],
        &["--rate", "0"],
    ] {
        let out = ipphone()
            .args(["relay", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:9"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
}
