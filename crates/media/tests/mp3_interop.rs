//! The tcp-mp3 codec against the article's own tools: what `lame -r -s 16 -m
//! m -b 32 - -` writes, `Mp3Decoder` must play, and what `Mp3Encoder` sends,
//! `mpg123 -s -` must play. Real speech goes through each path and comes out
//! checked by cross-correlation with what went in.
//!
//! Needs the Debian packages `lame`, `mpg123` and `codec2-examples`, which the
//! README's test command (`scripts/test`) installs. Without them these tests
//! fail, saying so: they never pass by skipping.

use std::io::{ErrorKind, Write};
use std::process::{Command, Stdio};

use ipphone_media::codec::mp3::{CODEC_DELAY, FRAME_SAMPLES, Mp3Decoder, Mp3Encoder, Mp3Stats};
use ipphone_media::dsp::correlate::align;
use proto::legacy::mp3::{Expect, FrameKind, Framer};

/// Harvard sentences, 10.8 s, 16 kHz mono (Debian `codec2-examples`).
const SPEECH: &str = "/usr/share/codec2/raw/speech_orig_16k.wav";
const INSTALL: &str = "run the README's test command (scripts/test), which installs \
                       lame, mpg123 and codec2-examples";

fn speech() -> Vec<i16> {
    let reader = hound::WavReader::open(SPEECH)
        .unwrap_or_else(|e| panic!("cannot read {SPEECH} ({e}): {INSTALL}"));
    let spec = reader.spec();
    assert_eq!((spec.sample_rate, spec.channels), (16_000, 1), "{SPEECH}");
    reader
        .into_samples::<i16>()
        .collect::<Result<_, _>>()
        .expect("the WAV file decodes")
}

fn to_bytes(pcm: &[i16]) -> Vec<u8> {
    pcm.iter().flat_map(|s| s.to_le_bytes()).collect()
}

fn from_bytes(raw: &[u8]) -> Vec<i16> {
    raw.chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Runs `program` with `input` on its standard input and returns its
/// standard output.
fn run(program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| match e.kind() {
            ErrorKind::NotFound => panic!("`{program}` is not installed: {INSTALL}"),
            _ => panic!("cannot start `{program}`: {e}"),
        });
    let mut stdin = child.stdin.take().expect("stdin was piped");
    let input = input.to_vec();
    // Write from another thread: the tool's output pipe would fill up and
    // stall it while we are still writing.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("the tool runs");
    writer
        .join()
        .expect("writer thread")
        .expect("the tool reads all its input");
    assert!(
        output.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The article's sending side: `lame -r -s 16 -m m -b 32 - -`.
fn lame_cbr(pcm: &[i16]) -> Vec<u8> {
    let args = [
        "-r", "-s", "16", "-m", "m", "-b", "32", "--silent", "-", "-",
    ];
    run("lame", &args, &to_bytes(pcm))
}

/// The article's receiving side: `mpg123 -s -`, raw samples at the
/// stream's own rate and channel count (16 kHz mono here).
fn mpg123(mp3: &[u8]) -> Vec<i16> {
    from_bytes(&run("mpg123", &["-q", "-s", "-"], mp3))
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Decodes `mp3` fed in random pieces of 1 to 400 bytes, as TCP delivers it.
fn decode(mp3: &[u8], rng: &mut Rng) -> (Vec<i16>, Mp3Stats) {
    let mut decoder = Mp3Decoder::new();
    let mut out = Vec::new();
    let mut rest = mp3;
    while !rest.is_empty() {
        let n = (1 + rng.below(400)).min(rest.len());
        decoder.decode(&rest[..n], &mut out);
        rest = &rest[n..];
    }
    (out, decoder.stats())
}

/// Splits a clean stream into its frames.
fn frames(mp3: &[u8]) -> Vec<Vec<u8>> {
    let mut framer = Framer::new(Expect::TCP_MP3);
    let mut out = Vec::new();
    let mut rest = mp3;
    while !rest.is_empty() {
        let n = framer.push(rest);
        rest = &rest[n..];
        while let Some(f) = framer.poll_frame() {
            out.push(f.bytes.to_vec());
        }
    }
    assert!(out.concat() == mp3, "a clean stream is nothing but frames");
    out
}

#[test]
fn lame_stream_decodes_in_random_pieces() {
    let speech = speech();
    let mp3 = lame_cbr(&speech);
    assert_eq!(
        mp3.len() % 144,
        0,
        "CBR 32 kbit/s at 16 kHz: 144-byte frames"
    );
    let (decoded, stats) = decode(&mp3, &mut Rng(1));
    assert_eq!(stats.frames as usize, mp3.len() / 144);
    assert_eq!((stats.bad_frames, stats.skipped_bytes), (0, 0), "{stats:?}");
    assert_eq!(decoded.len(), stats.frames as usize * FRAME_SAMPLES);
    let a = align(&speech, &decoded, 4000).expect("speech came out");
    assert_eq!(a.lag, CODEC_DELAY, "{a:?}");
    // Measured 0.9956.
    assert!(a.correlation > 0.98, "{a:?}");

    // And it is what mpg123 hears from the same stream.
    let reference = mpg123(&mp3);
    let b = align(&reference, &decoded, 100).expect("mpg123 played it");
    assert_eq!(b.lag, 0, "{b:?}");
    assert!(b.correlation > 0.999, "{b:?}");
}

/// Garbage between frames costs nothing: the framer skips it, and since no
/// frame was lost the decoder's bit reservoir is still right.
#[test]
fn lame_stream_with_garbage_between_frames() {
    let speech = speech();
    let mp3 = lame_cbr(&speech);
    let (clean, _) = decode(&mp3, &mut Rng(2));

    let mut rng = Rng(3);
    let mut dirty = Vec::new();
    let mut garbage = 0;
    for (i, frame) in frames(&mp3).iter().enumerate() {
        dirty.extend_from_slice(frame);
        if i % 7 == 6 {
            let n = 1 + rng.below(64);
            dirty.extend((0..n).map(|_| rng.next() as u8));
            garbage += n;
        }
    }
    let (decoded, stats) = decode(&dirty, &mut rng);
    assert_eq!(stats.skipped_bytes, garbage as u64, "{stats:?}");
    assert_eq!(stats.bad_frames, 0, "{stats:?}");
    assert!(
        decoded == clean,
        "garbage changed the audio ({} samples, {} without garbage)",
        decoded.len(),
        clean.len()
    );
    let a = align(&speech, &decoded, 4000).expect("speech came out");
    assert_eq!(a.lag, CODEC_DELAY, "{a:?}");
    assert!(a.correlation > 0.98, "{a:?}");
}

/// What ipphone sends, mpg123 plays.
#[test]
fn mpg123_plays_our_stream() {
    let speech = speech();
    let mut encoder = Mp3Encoder::new().expect("LAME accepts the article's settings");
    let mut mp3 = Vec::new();
    for piece in speech.chunks(160) {
        encoder.encode(piece, &mut mp3).expect("encodes");
    }
    encoder.flush(&mut mp3).expect("flushes");
    let played = mpg123(&mp3);
    assert_eq!(played.len(), mp3.len() / 144 * FRAME_SAMPLES);
    let a = align(&speech, &played, 4000).expect("speech came out");
    assert_eq!(a.lag, CODEC_DELAY, "{a:?}");
    // Measured 0.9962.
    assert!(a.correlation > 0.98, "{a:?}");
}

/// A VBR stream (`lame -V 5`) decodes too, from a pipe and from a file,
/// where LAME puts an ID3v2 tag and a Xing frame in front of the audio.
#[test]
fn lame_vbr_stream_with_tags_decodes() {
    let speech = speech();
    let raw = to_bytes(&speech);
    let vbr = ["-r", "-s", "16", "-m", "m", "-V", "5", "--silent"];

    let piped = run("lame", &[&vbr[..], &["-", "-"]].concat(), &raw);
    let (from_pipe, stats) = decode(&piped, &mut Rng(4));
    assert_eq!((stats.bad_frames, stats.skipped_bytes), (0, 0), "{stats:?}");
    let a = align(&speech, &from_pipe, 4000).expect("speech came out");
    assert_eq!(a.lag, CODEC_DELAY, "{a:?}");
    assert!(a.correlation > 0.98, "{a:?}");

    // A file, so that LAME can go back and write its Xing/LAME tag frame.
    let path = std::env::temp_dir().join(format!("ipphone-mp3-interop-{}.mp3", std::process::id()));
    let path_str = path.to_str().expect("temporary path is UTF-8");
    let tag = ["--add-id3v2", "--tt", "ipphone interop", "-", path_str];
    run("lame", &[&vbr[..], &tag].concat(), &raw);
    let file = std::fs::read(&path).expect("lame wrote the file");
    let _ = std::fs::remove_file(&path);
    assert!(file.starts_with(b"ID3"), "an ID3v2 tag first");
    let mut framer = Framer::new(Expect::TCP_MP3);
    let mut kinds = Vec::new();
    for chunk in file.chunks(1000) {
        assert_eq!(framer.push(chunk), chunk.len());
        while let Some(f) = framer.poll_frame() {
            kinds.push(f.kind);
        }
    }
    assert_eq!(kinds.first(), Some(&FrameKind::Xing), "then the Xing frame");
    let (from_file, stats) = decode(&file, &mut Rng(5));
    assert_eq!((stats.bad_frames, stats.skipped_bytes), (0, 0), "{stats:?}");
    assert!(
        from_file == from_pipe,
        "the tags changed the audio ({} samples, {} from the pipe)",
        from_file.len(),
        from_pipe.len()
    );
}
