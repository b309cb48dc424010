//! Call-progress tones and ringing, generated rather than recorded: one or
//! two sine frequencies switched on and off in a cadence, as the country
//! tone plans of ITU-T E.180 describe them.

use std::f64::consts::TAU;

/// A tone: up to two frequencies summed, and a cadence of (on, off)
/// milliseconds repeated for ever; an empty cadence is continuous.
#[derive(Debug, Clone, PartialEq)]
pub struct ToneSpec {
    pub frequencies: Vec<f64>,
    pub cadence: Vec<(u32, u32)>,
    /// Peak level of the sum, 0 to 1 of full scale.
    pub level: f64,
    /// Amplitude modulation at this frequency (Japan's 400 Hz × 16 Hz).
    pub modulation: Option<f64>,
}

impl ToneSpec {
    /// The North American ringing signal heard by an answering phone's
    /// user: 440 + 480 Hz, 2 s on, 4 s off (E.180 Supplement 2, US).
    pub fn ringtone() -> Self {
        plan("us", ToneName::Ringtone).expect("the US plan has a ringtone")
    }
}

/// The tones a phone plays locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToneName {
    /// Off hook, ready to dial.
    Dial,
    /// The far end is ringing (played when it sends 180 without early media).
    Ringback,
    Busy,
    /// Congestion, or reorder: the network cannot complete the call.
    Congestion,
    /// Another call is waiting, during a call.
    CallWaiting,
    /// An incoming call, on this phone's own speaker.
    Ringtone,
}

impl ToneName {
    pub const ALL: [ToneName; 6] = [
        ToneName::Dial,
        ToneName::Ringback,
        ToneName::Busy,
        ToneName::Congestion,
        ToneName::CallWaiting,
        ToneName::Ringtone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ToneName::Dial => "dial",
            ToneName::Ringback => "ringback",
            ToneName::Busy => "busy",
            ToneName::Congestion => "congestion",
            ToneName::CallWaiting => "call-waiting",
            ToneName::Ringtone => "ringtone",
        }
    }

    pub fn parse(name: &str) -> Option<ToneName> {
        let name = name.to_ascii_lowercase();
        ToneName::ALL
            .into_iter()
            .find(|t| t.as_str() == name)
            .or(match name.as_str() {
                "reorder" => Some(ToneName::Congestion),
                "callwaiting" | "waiting" => Some(ToneName::CallWaiting),
                "ring" | "ringing" => Some(ToneName::Ringtone),
                _ => None,
            })
    }
}

/// The countries whose tone plans ipphone knows (ITU-T E.180 Supplement 2,
/// and BT SIN 350 for the United Kingdom).
pub const COUNTRIES: [&str; 5] = ["us", "uk", "de", "fr", "jp"];

/// The tone `name` of `country`'s plan.
pub fn plan(country: &str, name: ToneName) -> Option<ToneSpec> {
    use ToneName::*;
    let spec = |frequencies: &[f64], cadence: &[(u32, u32)]| ToneSpec {
        frequencies: frequencies.to_vec(),
        cadence: cadence.to_vec(),
        level: 0.25,
        modulation: None,
    };
    let modulated = |f: f64, cadence: &[(u32, u32)]| ToneSpec {
        modulation: Some(16.0),
        ..spec(&[f], cadence)
    };
    Some(match (country.to_ascii_lowercase().as_str(), name) {
        ("us", Dial) => spec(&[350.0, 440.0], &[]),
        ("us", Ringback | Ringtone) => spec(&[440.0, 480.0], &[(2_000, 4_000)]),
        ("us", Busy) => spec(&[480.0, 620.0], &[(500, 500)]),
        ("us", Congestion) => spec(&[480.0, 620.0], &[(250, 250)]),
        ("us", CallWaiting) => spec(&[440.0], &[(300, 9_700)]),
        ("uk", Dial) => spec(&[350.0, 440.0], &[]),
        ("uk", Ringback | Ringtone) => spec(&[400.0, 450.0], &[(400, 200), (400, 2_000)]),
        ("uk", Busy) => spec(&[400.0], &[(375, 375)]),
        ("uk", Congestion) => spec(&[400.0], &[(400, 350), (225, 525)]),
        ("uk", CallWaiting) => spec(&[400.0], &[(100, 4_000)]),
        ("de", Dial) => spec(&[425.0], &[]),
        ("de", Ringback | Ringtone) => spec(&[425.0], &[(1_000, 4_000)]),
        ("de", Busy) => spec(&[425.0], &[(480, 480)]),
        ("de", Congestion) => spec(&[425.0], &[(240, 240)]),
        ("de", CallWaiting) => spec(&[425.0], &[(200, 200), (200, 5_000)]),
        ("fr", Dial) => spec(&[440.0], &[]),
        ("fr", Ringback | Ringtone) => spec(&[440.0], &[(1_500, 3_500)]),
        ("fr", Busy) => spec(&[440.0], &[(500, 500)]),
        ("fr", Congestion) => spec(&[440.0], &[(250, 250)]),
        ("fr", CallWaiting) => spec(&[440.0], &[(300, 10_000)]),
        ("jp", Dial) => spec(&[400.0], &[]),
        ("jp", Ringback | Ringtone) => modulated(400.0, &[(1_000, 2_000)]),
        ("jp", Busy | Congestion) => spec(&[400.0], &[(500, 500)]),
        ("jp", CallWaiting) => modulated(400.0, &[(500, 8_000)]),
        _ => return None,
    })
}

/// The country of a POSIX locale (`LC_ALL`, `LC_MESSAGES` or `LANG` as
/// `en_GB.UTF-8`): its tone plan if ipphone has one, else `us`.
pub fn country_of_locale(locale: &str) -> &'static str {
    let territory = locale
        .split(['.', '@'])
        .next()
        .and_then(|l| l.split('_').nth(1))
        .unwrap_or("")
        .to_ascii_lowercase();
    match territory.as_str() {
        "gb" | "uk" => "uk",
        "de" | "at" => "de",
        "fr" | "be" => "fr",
        "jp" => "jp",
        _ => "us",
    }
}

/// Generates a [`ToneSpec`] sample by sample.
#[derive(Debug, Clone)]
pub struct Tone {
    spec: ToneSpec,
    rate: u32,
    /// Samples generated so far.
    n: u64,
    /// Length of one cadence cycle, in samples (0: continuous).
    cycle: u64,
}

impl Tone {
    pub fn new(spec: ToneSpec, rate: u32) -> Self {
        let cycle = spec
            .cadence
            .iter()
            .map(|&(on, off)| u64::from(on + off))
            .sum::<u64>()
            * u64::from(rate)
            / 1000;
        Tone {
            spec,
            rate: rate.max(1),
            n: 0,
            cycle,
        }
    }

    /// Fills `out` with the next samples.
    pub fn fill(&mut self, out: &mut [i16]) {
        let amplitude =
            self.spec.level.clamp(0.0, 1.0) * 32_767.0 / self.spec.frequencies.len().max(1) as f64;
        for sample in out {
            let on = self.sounding(self.n);
            let t = self.n as f64 / f64::from(self.rate);
            let value: f64 = if on {
                let envelope = self
                    .spec
                    .modulation
                    .map_or(1.0, |m| 0.5 * (1.0 + (TAU * m * t).sin()));
                self.spec
                    .frequencies
                    .iter()
                    .map(|f| (TAU * f * t).sin())
                    .sum::<f64>()
                    * amplitude
                    * envelope
            } else {
                0.0
            };
            *sample = value.round().clamp(-32_768.0, 32_767.0) as i16;
            self.n += 1;
        }
    }

    fn sounding(&self, n: u64) -> bool {
        if self.cycle == 0 {
            return true;
        }
        let mut at = (n % self.cycle) * 1000 / u64::from(self.rate);
        for &(on, off) in &self.spec.cadence {
            if at < u64::from(on) {
                return true;
            }
            at = at.saturating_sub(u64::from(on));
            if at < u64::from(off) {
                return false;
            }
            at -= u64::from(off);
        }
        false
    }
}

/// The two frequencies of a DTMF digit (ITU-T Q.23): 0-9, `*`, `#`, A-D.
pub fn dtmf(digit: char) -> Option<ToneSpec> {
    const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLUMNS: [f64; 4] = [1_209.0, 1_336.0, 1_477.0, 1_633.0];
    let (row, column) = match digit.to_ascii_uppercase() {
        '1' => (0, 0),
        '2' => (0, 1),
        '3' => (0, 2),
        'A' => (0, 3),
        '4' => (1, 0),
        '5' => (1, 1),
        '6' => (1, 2),
        'B' => (1, 3),
        '7' => (2, 0),
        '8' => (2, 1),
        '9' => (2, 2),
        'C' => (2, 3),
        '*' => (3, 0),
        '0' => (3, 1),
        '#' => (3, 2),
        'D' => (3, 3),
        _ => return None,
    };
    Some(ToneSpec {
        frequencies: vec![ROWS[row], COLUMNS[column]],
        cadence: Vec::new(),
        level: 0.2,
        modulation: None,
    })
}

/// The power of `frequency` in `pcm` (Goertzel), normalised so that a
/// full-scale sine reads about 0.5 whatever the length.
pub fn goertzel(pcm: &[i16], rate: u32, frequency: f64) -> f64 {
    if pcm.is_empty() {
        return 0.0;
    }
    let coefficient = 2.0 * (TAU * frequency / f64::from(rate)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in pcm {
        let s0 = f64::from(x) / 32_768.0 + coefficient * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
    2.0 * power / (pcm.len() as f64 * pcm.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the tone sounds in each 20 ms block, from its power at its
    /// first frequency.
    fn sounding(pcm: &[i16], rate: u32, f: f64) -> Vec<bool> {
        pcm.chunks_exact(rate as usize / 50)
            .map(|b| goertzel(b, rate, f) > 1e-4)
            .collect()
    }

    /// On/off run lengths in ms, from 20 ms blocks.
    fn runs(blocks: &[bool]) -> Vec<(bool, u32)> {
        let mut runs: Vec<(bool, u32)> = Vec::new();
        for &b in blocks {
            match runs.last_mut() {
                Some((on, n)) if *on == b => *n += 20,
                _ => runs.push((b, 20)),
            }
        }
        runs
    }

    #[test]
    fn every_plan_has_every_tone_with_its_frequencies_and_cadence() {
        let rate = 8_000;
        for country in COUNTRIES {
            for name in ToneName::ALL {
                let spec = plan(country, name).unwrap();
                let cycle: u32 = spec.cadence.iter().map(|(a, b)| a + b).sum();
                let seconds = if cycle == 0 {
                    1
                } else {
                    (2 * cycle).div_ceil(1000)
                };
                let mut pcm = vec![0i16; (rate * seconds) as usize];
                Tone::new(spec.clone(), rate).fill(&mut pcm);
                let f = spec.frequencies[0];
                // Its own frequency is there, a foreign one is not.
                let loud = pcm
                    .chunks_exact(rate as usize / 10)
                    .map(|b| goertzel(b, rate, f))
                    .fold(0.0, f64::max);
                assert!(loud > 0.001, "{country} {name:?}: {f} Hz missing");
                let other = pcm
                    .chunks_exact(rate as usize / 10)
                    .map(|b| goertzel(b, rate, 1_300.0))
                    .fold(0.0, f64::max);
                assert!(other < loud / 100.0, "{country} {name:?}: not clean");
                // The cadence, to a block or two of 20 ms.
                let observed = runs(&sounding(&pcm, rate, f));
                let expected: Vec<(bool, u32)> = spec
                    .cadence
                    .iter()
                    .flat_map(|&(on, off)| [(true, on), (false, off)])
                    .collect();
                if expected.is_empty() {
                    assert_eq!(
                        observed,
                        vec![(true, 1_000 * seconds)],
                        "{country} {name:?}"
                    );
                } else {
                    for (i, (&(on, ms), &(on2, ms2))) in
                        observed.iter().zip(expected.iter().cycle()).enumerate()
                    {
                        if i + 1 == observed.len() {
                            break;
                        }
                        assert_eq!(on, on2, "{country} {name:?}: {observed:?}");
                        assert!(
                            ms.abs_diff(ms2) <= 40 || (on && spec.modulation.is_some()),
                            "{country} {name:?}: {observed:?} against {expected:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn dtmf_digits_have_their_row_and_column() {
        let rate = 8_000;
        let mut pcm = vec![0i16; 800];
        Tone::new(dtmf('5').unwrap(), rate).fill(&mut pcm);
        assert!(goertzel(&pcm, rate, 770.0) > 0.003);
        assert!(goertzel(&pcm, rate, 1_336.0) > 0.003);
        assert!(goertzel(&pcm, rate, 697.0) < 0.0003);
        assert!(dtmf('x').is_none());
    }

    #[test]
    fn locales_pick_their_plans() {
        assert_eq!(country_of_locale("en_GB.UTF-8"), "uk");
        assert_eq!(country_of_locale("de_DE.UTF-8"), "de");
        assert_eq!(country_of_locale("fr_FR"), "fr");
        assert_eq!(country_of_locale("ja_JP.eucJP"), "jp");
        assert_eq!(country_of_locale("C"), "us");
        assert_eq!(country_of_locale("en_US.UTF-8"), "us");
    }

    #[test]
    fn the_ringtone_has_its_frequencies_and_cadence() {
        let rate = 8_000;
        let mut tone = Tone::new(ToneSpec::ringtone(), rate);
        let mut pcm = vec![0i16; rate as usize * 6];
        tone.fill(&mut pcm);
        let on = &pcm[..rate as usize * 2];
        let off = &pcm[rate as usize * 2..];
        for f in [440.0, 480.0] {
            assert!(goertzel(on, rate, f) > 0.005, "{f} Hz");
        }
        assert!(goertzel(on, rate, 1_000.0) < 1e-5);
        assert!(off.iter().all(|&s| s == 0), "4 s of silence");
        // The cycle repeats.
        let mut next = vec![0i16; rate as usize];
        tone.fill(&mut next);
        assert!(goertzel(&next, rate, 440.0) > 0.005);
    }
}
