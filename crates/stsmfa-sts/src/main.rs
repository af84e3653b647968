//! The part of stsmfa that talks to AWS. `stsmfa` runs it on a cache miss
//! (and for `enroll`), so that the binary every AWS CLI call starts stays
//! small; it takes the same command line.

mod admin;
mod aws;
mod doctor;
mod enroll;
mod keycmds;
mod keys;
mod rotate;
mod run;
mod server;

use clap::Parser;
use std::process::ExitCode;
use stsmfa_core::cli::Cli;

fn main() -> ExitCode {
    stsmfa_core::passphrase::take_from_env();
    stsmfa_core::harden::no_core_dumps();
    let cli = Cli::parse();
    stsmfa_core::set_verbose(cli.globals.verbose);
    stsmfa_core::exit(run::run(cli))
}
