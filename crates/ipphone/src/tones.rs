//! `ipphone tones NAME`: plays a call-progress tone of a country's plan on
//! the speaker, or writes it to a WAV file, to preview the tones the phone
//! plays (and to test them).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use media::audio::{AudioSpec, PlayoutConfig, Speaker};
use media::dsp::tones::{COUNTRIES, Tone, ToneName, country_of_locale, plan};

use crate::cli::{TonesArgs, exit};
use crate::phone::Interrupt;

const RATE: u32 = 8_000;

/// The country of the tone plan: `--tones`/`--country` if given, else the
/// locale's (LC_ALL, LC_MESSAGES, LANG), else the US plan.
pub fn default_country() -> &'static str {
    ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|v| !v.is_empty()))
        .map_or("us", |locale| country_of_locale(&locale))
}

pub fn run(args: TonesArgs, interrupt: &Interrupt) -> anyhow::Result<u8> {
    let Some(name) = ToneName::parse(&args.name) else {
        let names: Vec<&str> = ToneName::ALL.iter().map(|t| t.as_str()).collect();
        eprintln!(
            "ipphone: no tone called {}: try {}",
            args.name,
            names.join(", ")
        );
        return Ok(exit::USAGE);
    };
    let country = args
        .country
        .clone()
        .unwrap_or_else(|| default_country().to_owned());
    let Some(spec) = plan(&country, name) else {
        eprintln!(
            "ipphone: no tone plan for {country}: ipphone knows {}",
            COUNTRIES.join(", ")
        );
        return Ok(exit::USAGE);
    };
    if !(args.seconds > 0.0 && args.seconds <= 3_600.0) {
        bail!("--seconds takes a length between 0 and 3600");
    }
    let samples = (args.seconds * f64::from(RATE)).round() as usize;
    let mut tone = Tone::new(spec, RATE);
    if let Some(out) = &args.out {
        let mut pcm = vec![0i16; samples];
        tone.fill(&mut pcm);
        media::audio::wav::write_mono(out, RATE, &pcm)
            .with_context(|| format!("writing {}", out.display()))?;
        eprintln!(
            "{} tone ({country}), {:.1} s, written to {}",
            name.as_str(),
            args.seconds,
            out.display()
        );
        return Ok(exit::OK);
    }
    play(&mut tone, &args.speaker, samples, interrupt)?;
    Ok(exit::OK)
}

/// Plays `samples` of `tone` on `speaker` in real time, until done or Ctrl-C.
fn play(
    tone: &mut Tone,
    speaker: &AudioSpec,
    samples: usize,
    interrupt: &Interrupt,
) -> anyhow::Result<()> {
    let mut out = Speaker::open(speaker, RATE, PlayoutConfig::default())
        .context("opening the speaker (--speaker)")?;
    let mut frame = [0i16; RATE as usize / 50];
    let mut left = samples;
    let started = Instant::now();
    while left > 0 && !interrupt.take() {
        while out.queued_time() < Duration::from_millis(100) && left > 0 {
            let n = frame.len().min(left);
            tone.fill(&mut frame[..n]);
            out.push(&frame[..n]);
            left -= n;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // Let what is queued play out.
    let deadline = started + Duration::from_secs_f64(samples as f64 / f64::from(RATE) + 0.5);
    while out.queued_time() > Duration::ZERO && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}
