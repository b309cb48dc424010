//! `ipphone tones`: each country's tones written to WAV and checked by
//! frequency (Goertzel) and cadence; unknown names and countries are usage
//! errors.

mod common;

use common::*;
use media::dsp::tones::goertzel;

fn write(name: &str, country: &str, seconds: &str) -> (Vec<i16>, u32) {
    let dir = scratch(&format!("tones-{name}-{country}"));
    let out = dir.join("tone.wav");
    let status = ipphone()
        .args([
            "tones",
            name,
            "--country",
            country,
            "--seconds",
            seconds,
            "--out",
        ])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "{name} {country}: {status}");
    assert!(!dir.join("tone.wav.part").exists(), "a .part file was left");
    read_wav(&out)
}

/// Power at `f` in each 20 ms block: on or off.
fn on_off(pcm: &[i16], rate: u32, f: f64) -> Vec<bool> {
    pcm.chunks_exact(rate as usize / 50)
        .map(|b| goertzel(b, rate, f) > 1e-4)
        .collect()
}

#[test]
fn german_busy_is_425_hz_480_ms_on_480_off() {
    let (pcm, rate) = write("busy", "de", "3");
    assert_eq!(rate, 8_000);
    assert_eq!(pcm.len(), 24_000);
    let blocks = on_off(&pcm, rate, 425.0);
    // 24 blocks on, 24 off, three times, and 6 of the fourth (to a block).
    let on = blocks.iter().filter(|&&b| b).count();
    assert!(
        (76..=80).contains(&on),
        "{on} of {} blocks on",
        blocks.len()
    );
    assert!(blocks[..23].iter().all(|&b| b));
    assert!(blocks[25..47].iter().all(|&b| !b));
    assert!(goertzel(&pcm[..4_000], rate, 1_000.0) < 1e-6);
}

#[test]
fn us_dial_tone_is_continuous_350_and_440_hz() {
    let (pcm, rate) = write("dial", "us", "1");
    for f in [350.0, 440.0] {
        assert!(on_off(&pcm, rate, f).iter().all(|&b| b), "{f} Hz");
    }
}

#[test]
fn uk_ringback_is_the_double_ring() {
    let (pcm, rate) = write("ringback", "uk", "3");
    let blocks = on_off(&pcm, rate, 400.0);
    // 400 on, 200 off, 400 on, 2000 off.
    assert!(blocks[..19].iter().all(|&b| b));
    assert!(blocks[21..29].iter().all(|&b| !b));
    assert!(blocks[31..49].iter().all(|&b| b));
    assert!(blocks[51..149].iter().all(|&b| !b));
}

#[test]
fn unknown_tones_and_countries_are_usage_errors() {
    let out = scratch("tones-bad").join("x.wav");
    for args in [["hum", "us"], ["busy", "xx"]] {
        let status = ipphone()
            .args(["tones", args[0], "--country", args[1], "--out"])
            .arg(&out)
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(2), "{args:?}");
    }
    assert!(!out.exists());
}
