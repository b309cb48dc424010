//! The article's MP3 telephone: ipphone to ipphone, and ipphone against the
//! very tools the article piped its audio through, LAME and mpg123.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use media::dsp::correlate;

const RATE: u32 = 16_000;

fn tool(name: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "{name} is not installed: run the README's test command (scripts/test), which installs it"
    );
    Command::new(name)
}

fn speech_16k(path: &Path) -> Vec<i16> {
    let (samples, rate) = read_wav(path);
    resample(&samples, rate, RATE)
}

fn s16le(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

#[test]
fn speech_crosses_both_ways() {
    let dir = scratch("tcp-mp3");
    let (caller_mic, callee_mic) = (speech(SPEECH), speech(SPEECH_2));
    let callee_heard = dir.join("callee-heard.wav");
    let caller_heard = dir.join("caller-heard.wav");
    let (mut callee, port) = Phone::listen(&[
        "--protocol",
        "tcp-mp3",
        "--calls",
        "1",
        "--mic",
        callee_mic.to_str().unwrap(),
        "--speaker",
        callee_heard.to_str().unwrap(),
    ]);
    let mut caller = Phone::spawn(&[
        "call",
        &format!("127.0.0.1:{port}"),
        "--protocol",
        "tcp-mp3",
        "--duration",
        "11.5",
        "--mic",
        caller_mic.to_str().unwrap(),
        "--speaker",
        caller_heard.to_str().unwrap(),
    ]);
    assert_eq!(caller.exit_code(Duration::from_secs(40)), 0);
    assert_eq!(callee.exit_code(Duration::from_secs(10)), 0);
    // 32 kbit/s is 4000 bytes a second.
    let sent = caller.wait_for("hangup", Duration::ZERO)["bytes_sent"]
        .as_u64()
        .unwrap();
    assert!((40_000..=48_000).contains(&sent), "bytes sent {sent}");

    let up = align_speech(&caller_mic, &callee_heard);
    let down = align_speech(&callee_mic, &caller_heard);
    eprintln!(
        "tcp-mp3 delay: caller->callee {:.1} ms (r={:.3}), callee->caller {:.1} ms (r={:.3})",
        ms(up.lag, RATE),
        up.correlation,
        ms(down.lag, RATE),
        down.correlation
    );
    for (sent, heard) in [(&caller_mic, &callee_heard), (&callee_mic, &caller_heard)] {
        assert_speech_arrived(&align_pieces(sent, heard), RATE, 0.9, 0.3, 200.0);
    }
}

/// The article's sending half: raw audio from the "sound card" (paced here
/// at 16 kHz) through `lame -r -s 16 -m m -b 32 - -` into the socket.
#[test]
fn ipphone_plays_what_lame_sends() {
    let dir = scratch("from-lame");
    let heard = dir.join("heard.wav");
    let speech = speech_16k(&speech(SPEECH));
    let (mut callee, port) = Phone::listen(&[
        "--protocol",
        "tcp-mp3",
        "--calls",
        "1",
        "--mic",
        "null",
        "--speaker",
        heard.to_str().unwrap(),
    ]);
    let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut lame = tool("lame")
        .args(["-r", "-s", "16", "-m", "m", "-b", "32", "--quiet", "-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = lame.stdin.take().unwrap();
    let pcm = s16le(&speech[..RATE as usize * 6]);
    let feeder = std::thread::spawn(move || {
        let start = Instant::now();
        for (i, chunk) in pcm.chunks(320).enumerate() {
            stdin.write_all(chunk).unwrap();
            let due = start + Duration::from_millis(10 * (i as u64 + 1));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    });
    let mut stdout = lame.stdout.take().unwrap();
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        let n = stdout.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n;
        socket.write_all(&buf[..n]).unwrap();
    }
    feeder.join().unwrap();
    assert!(lame.wait().unwrap().success());
    assert!(total > 20_000, "lame wrote {total} bytes");
    std::thread::sleep(Duration::from_millis(500));
    drop(socket);
    assert_eq!(callee.exit_code(Duration::from_secs(20)), 0);

    let (got, rate) = read_wav(&heard);
    assert_eq!(rate, RATE);
    let a =
        correlate::align(&speech[..RATE as usize * 5], &got, RATE as usize * 3).expect("aligned");
    // This delay includes lame's own buffering in the pipe: the article's delay.
    eprintln!(
        "lame -> ipphone: {:.1} ms (r={:.3})",
        ms(a.lag, RATE),
        a.correlation
    );
    assert!(a.correlation > 0.9, "{a:?}");
}

/// The article's receiving half: what ipphone sends, played by `mpg123 -s -`.
#[test]
fn mpg123_plays_what_ipphone_sends() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let mic = speech(SPEECH);
    let mut caller = Phone::spawn(&[
        "call",
        &format!("127.0.0.1:{port}"),
        "--protocol",
        "tcp-mp3",
        "--duration",
        "6",
        "--mic",
        mic.to_str().unwrap(),
        "--speaker",
        "null",
    ]);
    let (mut socket, _) = server.accept().unwrap();
    let mut mpg123 = tool("mpg123")
        .args(["-q", "-s", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = mpg123.stdin.take().unwrap();
    let mut stdout = mpg123.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut raw = Vec::new();
        stdout.read_to_end(&mut raw).unwrap();
        raw
    });
    // The article's receiver sends audio too: keep ipphone's call open with
    // a stream of silence frames it can decode (here: none; raw silence is
    // just bytes that are not MP3, which it must skip).
    socket.write_all(&[0u8; 64]).unwrap();
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        match socket.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                total += n;
                stdin.write_all(&buf[..n]).unwrap();
            }
        }
    }
    drop(stdin);
    let raw = reader.join().unwrap();
    assert!(mpg123.wait().unwrap().success());
    assert_eq!(caller.exit_code(Duration::from_secs(20)), 0);
    assert!(total > 20_000, "ipphone sent {total} bytes");
    let decoded: Vec<i16> = raw
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let sent = speech_16k(&mic);
    let a = correlate::align(&sent[..RATE as usize * 5], &decoded, RATE as usize).expect("aligned");
    eprintln!(
        "ipphone -> mpg123: lag {:.1} ms (r={:.3})",
        ms(a.lag, RATE),
        a.correlation
    );
    assert!(a.correlation > 0.9, "{a:?}");
}

/// Garbage, a truncated frame and a vanished peer on the MP3 stream: the
/// listener plays the good frames, skips the rest and answers the next call.
#[test]
fn garbage_and_truncated_frames_are_skipped() {
    let dir = scratch("mp3-garbage");
    let heard = dir.join("heard.wav");
    let speech = speech_16k(&speech(SPEECH));
    let out = tool("lame")
        .args(["-r", "-s", "16", "-m", "m", "-b", "32", "--quiet", "-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut lame| {
            let pcm = s16le(&speech[..RATE as usize * 4]);
            let mut stdin = lame.stdin.take().unwrap();
            std::thread::spawn(move || stdin.write_all(&pcm));
            lame.wait_with_output()
        })
        .unwrap();
    let mp3 = out.stdout;
    let (mut callee, port) = Phone::listen(&[
        "--protocol",
        "tcp-mp3",
        "--calls",
        "2",
        "--mic",
        "null",
        "--speaker",
        heard.to_str().unwrap(),
    ]);
    let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut seed = 99u32;
    let mut garbage = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (seed >> 16) as u8
            })
            .collect()
    };
    // Garbage first, then the stream in real-time-sized pieces with garbage
    // every second, then half a frame, then the peer vanishes.
    socket.write_all(&garbage(3_000)).unwrap();
    let start = Instant::now();
    for (i, piece) in mp3.chunks(144).enumerate() {
        socket.write_all(piece).unwrap();
        if i % 28 == 27 {
            socket.write_all(&garbage(50)).unwrap();
        }
        let due = start + Duration::from_millis(36 * (i as u64 + 1));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    socket.write_all(&mp3[..72]).unwrap();
    drop(socket);
    let ended = callee.wait_for("hangup", Duration::from_secs(20));
    assert_eq!(ended["reason"], "remote");

    let mut next = Phone::spawn(&[
        "call",
        &format!("127.0.0.1:{port}"),
        "--protocol",
        "tcp-mp3",
        "--duration",
        "1",
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    assert_eq!(next.exit_code(Duration::from_secs(20)), 0);
    assert_eq!(callee.exit_code(Duration::from_secs(20)), 0);

    // Each resynchronisation costs the speaker a short underrun, so the
    // delay steps up a little at each burst of garbage: check the speech
    // piece by piece rather than as one alignment.
    let (got, _) = read_wav(&heard);
    let pieces: Vec<_> = speech[..RATE as usize * 4]
        .chunks(RATE as usize / 2)
        .enumerate()
        .map(|(i, piece)| {
            let from = i * RATE as usize / 2;
            correlate::align(piece, &got[from.min(got.len())..], RATE as usize / 2)
                .expect("aligned")
        })
        .collect();
    eprintln!("through garbage: {pieces:?}");
    let mean = pieces.iter().map(|a| a.correlation).sum::<f64>() / pieces.len() as f64;
    assert!(mean > 0.85, "mean correlation {mean}");
    assert!(pieces.iter().all(|a| ms(a.lag, RATE) < 300.0));
}
