//! ipphone: an IP telephone for the terminal.
//!
//! The `ipphone` program is [`run`]. The modules whose parsers read what a
//! user writes (the configuration, the contacts book) are public so that the
//! fuzz targets can reach them; the rest is the program's own.
#![forbid(unsafe_code)]

mod call;
mod cli;
mod codec;
pub mod config;
pub mod contacts;
mod demo;
mod events;
mod history;
mod phone;
mod redial;
mod relay;
mod ring;
mod rtp_call;
mod screen;
mod sip_net;
mod sip_phone;
mod tones;
mod voicemail;
mod xdg;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, exit};

/// The `ipphone` program: parses the command line, runs the command, and
/// returns its exit status.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    init_logging(cli.verbose);
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("ipphone: {e:#}");
            ExitCode::from(exit::FAILURE)
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let interrupt = phone::Interrupt::install()?;
    match cli.command {
        Command::Listen(args) => phone::listen(args, &interrupt),
        Command::Call(args) => phone::call(args, &interrupt),
        Command::Demo(args) => demo::run(args, &interrupt),
        Command::Devices => devices(),
        Command::Relay(args) => relay::run(args, &interrupt),
        Command::Tones(args) => tones::run(args, &interrupt),
        Command::Contacts(args) => contacts::run(args.command, args.contacts.as_deref()),
        Command::Messages { json } => voicemail::list(json),
        Command::Redial(args) => redial::run(&args.rest, &interrupt),
        Command::History(args) => history::show(args.file.as_deref(), args.json, args.limit),
    }
}

fn devices() -> anyhow::Result<u8> {
    match media::audio::device::list() {
        Ok(devices) if !devices.is_empty() => {
            for d in devices {
                let dir = match (d.input, d.output) {
                    (true, true) => "in/out",
                    (true, false) => "in",
                    (false, true) => "out",
                    (false, false) => "-",
                };
                let default = if d.default { " (default)" } else { "" };
                println!("{:<6} {}{default}", dir, d.name);
            }
            Ok(exit::OK)
        }
        Ok(_) => {
            eprintln!("ipphone: no sound devices found");
            Ok(exit::FAILURE)
        }
        Err(e) => {
            eprintln!("ipphone: {e}");
            Ok(exit::FAILURE)
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
