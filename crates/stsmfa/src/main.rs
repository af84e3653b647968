//! The binary every AWS call starts: cache hits, and the hand-off to
//! `stsmfa-sts` for everything else.
//!
//! On Linux with glibc it has its own C `main` (`no_main`): Rust's start-up
//! reads `/proc/self/maps` with `sscanf` to place a stack guard, which was a
//! seventh of a cache hit's instructions. Arguments still reach
//! `std::env::args` (std takes them from glibc's `.init_array` hook), and
//! `harden::standard_start` does the part of std's start-up that matters
//! here. Elsewhere it is an ordinary `main`.
#![cfg_attr(all(target_os = "linux", target_env = "gnu", not(test)), no_main)]

use clap::CommandFactory;
use stsmfa_core::cli::Cli;

fn run() -> u8 {
    stsmfa_core::passphrase::take_from_env();
    stsmfa_core::harden::no_core_dumps();
    // Answers shell completion requests (STSMFA_COMPLETE=bash stsmfa …) and exits.
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(stsmfa_core::COMPLETE_VAR)
        .complete();
    let cli = Cli::parse_args();
    stsmfa_core::set_verbose(cli.globals.verbose);
    stsmfa_core::exit_code(stsmfa_core::commands::front(cli))
}

#[cfg(all(target_os = "linux", target_env = "gnu", not(test)))]
#[unsafe(no_mangle)]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    stsmfa_core::harden::standard_start();
    std::ffi::c_int::from(run())
}

#[cfg(any(not(all(target_os = "linux", target_env = "gnu")), test))]
fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(run())
}
