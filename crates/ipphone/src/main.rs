//! ipphone: an IP telephone for the terminal (see the library's [`ipphone::run`]).
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    ipphone::run()
}
