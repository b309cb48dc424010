//! The command line: subcommands, flags and the exit codes scripts rely on.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use media::audio::AudioSpec;

/// Exit codes. Scripts depend on these numbers: never renumber them.
pub mod exit {
    /// The call connected and ended (by either side, or by `--duration`).
    pub const OK: u8 = 0;
    /// Something else went wrong: audio, files, an unexpected I/O error.
    pub const FAILURE: u8 = 1;
    /// The command line was wrong.
    pub const USAGE: u8 = 2;
    /// Nobody accepts calls at that address (connection refused).
    pub const REFUSED: u8 = 3;
    /// The far end is in another call and turned this one away.
    pub const BUSY: u8 = 4;
    /// The address could not be reached: no route, no answer, unknown host.
    pub const UNREACHABLE: u8 = 5;
    /// The far end turned the call down (SIP 603 Decline).
    pub const DECLINED: u8 = 6;
}

const EXIT_CODES: &str = "\
Exit status:
  0  the call connected and ended (either side hung up, or --duration passed)
  1  another failure (audio device, file, I/O)
  2  bad usage
  3  refused: nothing accepts calls at that address
  4  busy: the far end is in another call
  5  unreachable: no route, no answer, or an unknown host
  6  declined: the far end turned the call down (SIP)";

#[derive(Debug, Parser)]
#[command(
    name = "ipphone",
    version,
    about = "An IP telephone for the terminal",
    long_about = "An IP telephone for the terminal.\n\n\
        Calls another machine and talks, full duplex, through the sound card, or headless \
        with WAV files as microphone and speaker. Speaks SIP with RTP media (Opus, G.711) \
        to other SIP phones, and the two TCP stream formats of \"An IP Telephone in 74 Lines \
        of Perl\": raw 8-bit PCM (tcp-pcm) and MP3 (tcp-mp3).",
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// More detail on stderr (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Wait for calls and take them, one at a time.
    Listen(ListenArgs),
    /// Call another phone.
    Call(CallArgs),
    /// Make a whole call on this machine with nothing to set up, and report how it went.
    Demo(DemoArgs),
    /// List the sound devices ipphone can use.
    Devices,
    /// Relay UDP between two parties, adding loss, delay, jitter or a bandwidth cap.
    Relay(crate::relay::RelayArgs),
    /// The telephone directory: add, list, edit, remove, import and export contacts (vCard).
    Contacts(ContactsArgs),
    /// Call the last address dialled again (any `call` options may follow).
    Redial(RedialArgs),
    /// List the messages the answering machine recorded.
    Messages {
        /// One JSON object per message.
        #[arg(long)]
        json: bool,
    },
    /// Show the calls made and received (the history in ~/.local/state/ipphone/history.jsonl).
    History(HistoryArgs),
    /// Play a call-progress tone (dial, ringback, busy, congestion, call-waiting, ringtone), or write it to a WAV file.
    Tones(TonesArgs),
}

/// The transport of SIP's own messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SipTransport {
    Udp,
    Tcp,
}

/// How a call's audio travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// SIP signalling (RFC 3261) with RTP media negotiated by SDP: calls and answers other SIP phones.
    Sip,
    /// One TCP connection, raw unsigned 8-bit PCM at 8 kHz mono each way (the article's first pair).
    TcpPcm,
    /// One TCP connection, an MPEG-2 layer III stream at 16 kHz mono, 32 kbit/s each way (the article's second pair).
    TcpMp3,
    /// RTP over UDP with no signalling: Opus or G.711, jitter buffer, FEC, RTCP (rtcp-mux).
    Rtp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Sip => "sip",
            Protocol::TcpPcm => "tcp-pcm",
            Protocol::TcpMp3 => "tcp-mp3",
            Protocol::Rtp => "rtp",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct AudioArgs {
    /// Microphone: `default` (the sound card), a device name, FILE.wav, or `null` (silence).
    #[arg(long, value_name = "SPEC", default_value = "default", value_parser = parse_spec)]
    pub mic: AudioSpec,

    /// Speaker: `default` (the sound card), a device name, FILE.wav (a recording), or `null`.
    #[arg(long, value_name = "SPEC", default_value = "default", value_parser = parse_spec)]
    pub speaker: AudioSpec,

    /// One JSON object per event on stdout; human-readable lines stay on stderr.
    #[arg(long)]
    pub json: bool,

    /// The tone plan of the ringtone, ringback and busy tones on a sound-card speaker: us, uk, de, fr, jp, or off [default: from the locale].
    #[arg(long, value_name = "COUNTRY")]
    pub tones: Option<String>,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct ListenArgs {
    /// The call protocol.
    #[arg(long, value_enum, default_value = "sip")]
    pub protocol: Protocol,

    /// Address and port to wait on [default: 0.0.0.0:5060 for sip, 0.0.0.0:5000 for the others].
    #[arg(long, value_name = "ADDR:PORT")]
    pub bind: Option<SocketAddr>,

    /// Exit after this many calls.
    #[arg(long, value_name = "N")]
    pub calls: Option<u32>,

    /// The codec: for sip, the only one to accept (default: Opus, then PCMU, then PCMA); for rtp, the one to use (default opus).
    #[arg(long, value_enum)]
    pub codec: Option<crate::rtp_call::Codec>,

    /// SIP: answer only calls for this user (the user part of the request URI); without it, any.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// SIP: register with this account of the configuration file and take its calls (default: the first account there, if any).
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,

    /// SIP: the configuration file [default: ~/.config/ipphone/config.toml].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// SIP: a call not answered within SECS of ringing [default: 20] goes to the answering machine (a greeting, then a message recorded to ~/.local/share/ipphone/messages).
    #[arg(long, value_name = "SECS", num_args = 0..=1, require_equals = true, default_missing_value = "20")]
    pub voicemail: Option<f64>,

    /// SIP: the answering machine's greeting [default: a short beep].
    #[arg(long, value_name = "FILE.wav")]
    pub greeting: Option<PathBuf>,

    /// SIP: the longest message the answering machine records, in seconds.
    #[arg(long, value_name = "SECS", default_value = "120")]
    pub max_message: f64,

    /// SIP: answer by itself, at once or after SECS seconds of ringing.
    #[arg(long, value_name = "SECS", num_args = 0..=1, require_equals = true, default_missing_value = "0")]
    pub auto_answer: Option<f64>,

    #[command(flatten)]
    pub audio: AudioArgs,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct CallArgs {
    /// Whom to call: `sip:user@host[:port]`, `user@host[:port]` or `host:port` for sip; `host:port` for the others; or a contact's name (a unique part of it will do) or speed-dial number.
    pub target: String,

    /// The contacts file to look names up in [default: ~/.config/ipphone/contacts.toml].
    #[arg(long, value_name = "FILE")]
    pub contacts: Option<PathBuf>,

    /// The call protocol.
    #[arg(long, value_enum, default_value = "sip")]
    pub protocol: Protocol,

    /// Hang up after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,

    /// Give up connecting after this many seconds.
    #[arg(long, value_name = "SECS", default_value = "10")]
    pub timeout: f64,

    /// The codec: for sip, the only one to offer (default: Opus, PCMU and PCMA); for rtp, the one to use (default opus).
    #[arg(long, value_enum)]
    pub codec: Option<crate::rtp_call::Codec>,

    /// On busy, no answer or unreachable, try again up to N times.
    #[arg(long, value_name = "N")]
    pub redial: Option<u32>,

    /// Seconds between redial attempts.
    #[arg(long, value_name = "SECS", default_value = "10")]
    pub every: f64,

    /// Wait and dial at TIME: HH:MM[:SS] (local time, the next to come), or +SECS / +Nm / +Nh from now.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,

    /// SIP: send the signalling over UDP or TCP (a target's `;transport=tcp` asks for TCP too).
    #[arg(long, value_enum, default_value = "udp")]
    pub transport: SipTransport,

    /// SIP: call through this account of the configuration file (its proxy, its credentials). Without it, a target that is a bare name or at the first account's domain goes through that account; others are called directly.
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,

    /// SIP: the configuration file [default: ~/.config/ipphone/config.toml].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Digits (0-9, *, #, A-D) to send as RFC 4733 events once the far end is
    /// heard (RTP calls).
    #[arg(long, value_name = "DIGITS")]
    pub dtmf: Option<String>,

    #[command(flatten)]
    pub audio: AudioArgs,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The call protocol the two phones use.
    #[arg(long, value_enum, default_value = "sip")]
    pub protocol: Protocol,

    /// The codec of a sip or rtp demo call.
    #[arg(long, value_enum, default_value = "opus")]
    pub codec: crate::rtp_call::Codec,

    /// Where to write what the answering phone heard.
    #[arg(long, value_name = "FILE.wav", default_value = "ipphone-demo.wav")]
    pub out: PathBuf,

    /// Seconds of test signal each phone sends.
    #[arg(long, value_name = "SECS", default_value = "6")]
    pub seconds: f64,

    /// One JSON object per event on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ContactsArgs {
    /// The contacts file [default: ~/.config/ipphone/contacts.toml].
    #[arg(long, value_name = "FILE", global = true)]
    pub contacts: Option<PathBuf>,

    #[command(subcommand)]
    pub command: crate::contacts::ContactsCommand,
}

#[derive(Debug, Args)]
pub struct RedialArgs {
    /// Options of `ipphone call`, e.g. --duration 30 --redial 3.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CALL OPTIONS"
    )]
    pub rest: Vec<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// One JSON object per call, as stored.
    #[arg(long)]
    pub json: bool,

    /// Only the last N calls.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    /// Read this history file instead.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TonesArgs {
    /// The tone: dial, ringback, busy, congestion (reorder), call-waiting, ringtone.
    pub name: String,

    /// The country's tone plan: us, uk, de, fr, jp [default: from the locale, else us].
    #[arg(long, value_name = "C")]
    pub country: Option<String>,

    /// How long to play it.
    #[arg(long, value_name = "S", default_value = "5")]
    pub seconds: f64,

    /// Write it to this WAV file (8 kHz mono) instead of playing it.
    #[arg(long, value_name = "FILE.wav")]
    pub out: Option<PathBuf>,

    /// Where to play it: `default` (the sound card) or a device name.
    #[arg(long, value_name = "SPEC", default_value = "default", value_parser = parse_spec)]
    pub speaker: AudioSpec,
}

fn parse_spec(s: &str) -> Result<AudioSpec, String> {
    s.parse()
        .map_err(|e: media::audio::AudioError| e.to_string())
}
