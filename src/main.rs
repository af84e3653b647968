use clap::{CommandFactory, Parser};
use std::process::ExitCode;
use stsmfa::cli::Cli;

fn main() -> ExitCode {
    stsmfa::harden::no_core_dumps();
    // Answers shell completion requests (STSMFA_COMPLETE=bash stsmfa …) and exits.
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(stsmfa::COMPLETE_VAR)
        .complete();
    stsmfa::exit(stsmfa::commands::front(Cli::parse()))
}
