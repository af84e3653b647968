use clap::{CommandFactory, Parser};
use std::process::ExitCode;
use stsmfa::cli::Cli;

#[allow(clippy::print_stderr)]
fn main() -> ExitCode {
    // Answers shell completion requests (COMPLETE=bash stsmfa …) and exits.
    clap_complete::CompleteEnv::with_factory(Cli::command).complete();
    let cli = Cli::parse();
    match stsmfa::commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(fail) => {
            eprintln!("stsmfa: error: {}", fail.message);
            for hint in &fail.hints {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(fail.code)
        }
    }
}
