use clap::{CommandFactory, Parser};
use std::process::ExitCode;
use stsmfa_core::cli::Cli;

fn main() -> ExitCode {
    stsmfa_core::passphrase::take_from_env();
    stsmfa_core::harden::no_core_dumps();
    // Answers shell completion requests (STSMFA_COMPLETE=bash stsmfa …) and exits.
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(stsmfa_core::COMPLETE_VAR)
        .complete();
    let cli = Cli::parse();
    stsmfa_core::set_verbose(cli.verbose);
    stsmfa_core::exit(stsmfa_core::commands::front(cli))
}
