//! The full command set: a session from STS on a cache miss, `enroll`, and
//! the man page; the rest as the small binary runs it.

use crate::aws::{AwsSts, ClientSettings};
use clap::CommandFactory;
use std::time::SystemTime;
use stsmfa_core::cli::{Cli, Command, ProfileArgs};
use stsmfa_core::commands;
use stsmfa_core::config::Settings;
use stsmfa_core::credentials::Session;
use stsmfa_core::error::Fail;
use stsmfa_core::fail;
use stsmfa_core::prompt;
use stsmfa_core::session::{self, Deps};
use stsmfa_core::store;
use stsmfa_core::sts::Sts;

pub fn run(cli: Cli) -> Result<u8, Fail> {
    if let Some(args) = commands::session_args(&cli.command) {
        let (settings, session) = obtain(args, cli.after_miss)?;
        return commands::deliver(&cli.command, &settings, &session);
    }
    match cli.command {
        Command::Enroll(args) => crate::enroll::enroll(&args),
        Command::Man => man(),
        other => commands::light(other),
    }
}

/// Resolves settings for a session command and gets the session.
fn obtain(args: &ProfileArgs, after_miss: bool) -> Result<(Settings, Session), Fail> {
    let mut settings = commands::settings(args)?;
    settings.after_miss = after_miss;
    let store = store::Lazy::new(settings.store);
    let client = ClientSettings::from(&settings);
    let mut sts = || -> Result<Box<dyn Sts>, Fail> { Ok(Box::new(AwsSts::new(&client)?)) };
    let code = settings.code.clone();
    let ykman = settings.ykman_account.clone();
    let mut provider = || prompt::provider(&code, ykman.as_deref());
    let mut deps = Deps {
        store: &store,
        sts: &mut sts,
        provider: &mut provider,
        now: SystemTime::now,
        sleep: std::thread::sleep,
    };
    let session = session::get(&settings, &mut deps)?;
    Ok((settings, session))
}

/// The man page, from the same definitions as `--help`.
fn man() -> Result<u8, Fail> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut buf)
        .map_err(|e| fail!("cannot render the man page: {e}"))?;
    stsmfa_core::emit(&String::from_utf8_lossy(&buf));
    Ok(0)
}
