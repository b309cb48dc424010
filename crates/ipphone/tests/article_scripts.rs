//! The article's own kind of peer: a Perl script that copies raw 8-bit PCM
//! between a "sound card" (here files, paced in real time like /dev/dsp) and
//! a TCP socket, full duplex, with a fork. ipphone must answer it and call it.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use media::dsp::correlate;
use proto::legacy::pcm;

/// In the manner of the article's scripts: fork, one process copies the
/// socket to the speaker, the other the microphone to the socket; with no
/// sound card, the microphone is a raw file read at 8000 bytes a second.
const PERL_PHONE: &str = r#"
use strict; use IO::Socket::INET; use Time::HiRes qw(sleep time);
my ($mode, $addr, $mic, $speaker) = @ARGV;
my $sock;
if ($mode eq 'call') {
    $sock = IO::Socket::INET->new(PeerAddr => $addr, Proto => 'tcp') or die "connect: $!";
} else {
    my $server = IO::Socket::INET->new(LocalAddr => $addr, Listen => 1, ReuseAddr => 1) or die "listen: $!";
    print STDOUT "ready\n"; STDOUT->flush;
    $sock = $server->accept or die "accept: $!";
}
binmode $sock;
my $pid = fork;
if ($pid == 0) {
    open(my $spk, '>', $speaker) or die; binmode $spk;
    my $buf;
    while (sysread($sock, $buf, 1024)) { syswrite($spk, $buf) }
    exit 0;
}
open(my $in, '<', $mic) or die; binmode $in;
my $start = time; my $sent = 0; my $buf;
while (my $n = sysread($in, $buf, 80)) {
    syswrite($sock, $buf) or last;
    $sent += $n;
    my $due = $start + $sent / 8000;
    my $wait = $due - time; sleep($wait) if $wait > 0;
}
shutdown($sock, 1);
waitpid($pid, 0);
"#;

fn perl(mode: &str, addr: &str, mic: &Path, speaker: &Path) -> Command {
    let mut c = Command::new("perl");
    c.args([
        "-e",
        PERL_PHONE,
        mode,
        addr,
        mic.to_str().unwrap(),
        speaker.to_str().unwrap(),
    ]);
    c
}

/// Speech as the article's sound card would give it: 8 kHz unsigned 8-bit.
fn speech_u8(path: &Path, seconds: f64) -> (Vec<i16>, Vec<u8>) {
    let (samples, rate) = read_wav(path);
    let mut narrow = resample(&samples, rate, pcm::SAMPLE_RATE);
    narrow.truncate((seconds * 8_000.0) as usize);
    let mut bytes = vec![0u8; narrow.len()];
    pcm::encode(&narrow, &mut bytes);
    (narrow, bytes)
}

fn align_u8(sent: &[i16], received_u8: &[u8]) -> correlate::Alignment {
    let mut received = vec![0i16; received_u8.len()];
    pcm::decode(received_u8, &mut received);
    correlate::align(sent, &received, 8_000).expect("the recording lines up")
}

#[test]
fn the_article_script_calls_ipphone() {
    let dir = scratch("perl-calls");
    let (sent, bytes) = speech_u8(&speech(SPEECH), 6.0);
    let mic = dir.join("mic.raw");
    std::fs::write(&mic, &bytes).unwrap();
    let heard_by_perl = dir.join("perl-heard.raw");
    let heard = dir.join("ipphone-heard.wav");
    let answer = speech(SPEECH_2);

    let (mut callee, port) = Phone::listen(&[
        "--protocol",
        "tcp-pcm",
        "--calls",
        "1",
        "--mic",
        answer.to_str().unwrap(),
        "--speaker",
        heard.to_str().unwrap(),
    ]);
    let status = perl("call", &format!("127.0.0.1:{port}"), &mic, &heard_by_perl)
        .status()
        .unwrap();
    assert!(status.success(), "the perl phone failed");
    assert_eq!(callee.exit_code(Duration::from_secs(20)), 0);
    assert_eq!(
        callee.wait_for("hangup", Duration::from_secs(1))["reason"],
        "remote"
    );

    let up = align_speech_samples(&sent, &heard);
    let (answer_pcm, _) = speech_u8(&answer, 5.0);
    let down = align_u8(&answer_pcm, &std::fs::read(&heard_by_perl).unwrap());
    eprintln!(
        "perl -> ipphone {:.1} ms r={:.3}; ipphone -> perl {:.1} ms r={:.3}",
        ms(up.lag, 8_000),
        up.correlation,
        ms(down.lag, 8_000),
        down.correlation
    );
    // What ipphone recorded is judged piece by piece (a delay step on a busy
    // machine is not distortion); the script records bytes as they arrive.
    assert_speech_arrived(&pieces(&sent, &heard), 8_000, 0.95, 0.3, 200.0);
    assert!(
        down.correlation > 0.95 && ms(down.lag, 8_000) < 200.0,
        "{down:?}"
    );
}

#[test]
fn ipphone_calls_the_article_script() {
    let dir = scratch("perl-answers");
    let (answer_pcm, mut bytes) = speech_u8(&speech(SPEECH_2), 8.0);
    // The script hangs up when its microphone file ends: keep it talking
    // (in silence) for longer than ipphone's call lasts.
    bytes.resize(8 * 8_000, 128);
    let mic = dir.join("mic.raw");
    std::fs::write(&mic, &bytes).unwrap();
    let heard_by_perl = dir.join("perl-heard.raw");
    let heard = dir.join("ipphone-heard.wav");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut receiver = perl("listen", &format!("127.0.0.1:{port}"), &mic, &heard_by_perl)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = [0u8; 6];
    std::io::Read::read_exact(receiver.stdout.as_mut().unwrap(), &mut ready).unwrap();

    let caller_mic = speech(SPEECH);
    let mut caller = Phone::spawn(&[
        "call",
        &format!("127.0.0.1:{port}"),
        "--protocol",
        "tcp-pcm",
        "--duration",
        "6",
        "--mic",
        caller_mic.to_str().unwrap(),
        "--speaker",
        heard.to_str().unwrap(),
    ]);
    assert_eq!(caller.exit_code(Duration::from_secs(30)), 0);
    assert_eq!(
        caller.wait_for("hangup", Duration::from_secs(1))["reason"],
        "duration"
    );
    let _ = receiver.kill();
    let _ = receiver.wait();

    let (sent, _) = speech_u8(&caller_mic, 5.0);
    let up = align_u8(&sent, &std::fs::read(&heard_by_perl).unwrap());
    let down = align_speech_samples(&answer_pcm, &heard);
    eprintln!(
        "ipphone -> perl {:.1} ms r={:.3}; perl -> ipphone {:.1} ms r={:.3}",
        ms(up.lag, 8_000),
        up.correlation,
        ms(down.lag, 8_000),
        down.correlation
    );
    assert!(up.correlation > 0.95 && ms(up.lag, 8_000) < 200.0, "{up:?}");
    assert_speech_arrived(&pieces(&answer_pcm, &heard), 8_000, 0.95, 0.3, 200.0);
}

/// Half-second pieces of `sent` lined up one by one in the recording.
fn pieces(sent: &[i16], recording: &Path) -> Vec<correlate::Alignment> {
    let (heard, rate) = read_wav(recording);
    assert_eq!(rate, 8_000);
    sent.chunks_exact(4_000)
        .enumerate()
        .filter(|(_, p)| p.iter().any(|&s| s.abs() > 1_000))
        .filter_map(|(i, p)| correlate::align(p, &heard[(i * 4_000).min(heard.len())..], 4_000))
        .collect()
}

fn align_speech_samples(sent: &[i16], recording: &Path) -> correlate::Alignment {
    let (heard, rate) = read_wav(recording);
    assert_eq!(rate, 8_000);
    correlate::align(sent, &heard, 8_000).expect("the recording lines up")
}
