//! The full command set: a session from STS on a cache miss, `enroll`, and
//! the man page; the rest as the small binary runs it.

use crate::aws::{AwsSts, ClientSettings};
use clap::CommandFactory;
use std::time::SystemTime;
use stsmfa_core::cli::{Cli, Command};
use stsmfa_core::commands;
use stsmfa_core::config::Settings;
use stsmfa_core::credentials::Session;
use stsmfa_core::error::Fail;
use stsmfa_core::fail;
use stsmfa_core::prompt;
use stsmfa_core::session::{self, Deps, ProviderFactory};
use stsmfa_core::store;
use stsmfa_core::sts::Sts;

pub fn run(cli: Cli) -> Result<u8, Fail> {
    if let Some(args) = commands::session_args(&cli.command) {
        let mut settings = commands::settings(args)?;
        settings.after_miss = cli.globals.after_miss;
        let code = settings.code.clone();
        let ykman = settings.ykman_account.clone();
        let session = obtain(&settings, &mut || prompt::provider(&code, ykman.as_deref()))?;
        return commands::deliver(&cli.command, &settings, &session);
    }
    match cli.command {
        Command::Exec(args) if args.server => crate::server::exec(&args),
        Command::Serve(args) => crate::server::serve(&args),
        Command::Enroll(args) => crate::enroll::enroll(&args),
        Command::Add(args) => crate::keycmds::add(&args),
        Command::Import(args) => crate::keycmds::import(&args),
        Command::Remove(args) => crate::keycmds::remove(&args),
        Command::List(args) => crate::keycmds::list(&args),
        Command::Rotate(args) => crate::rotate::rotate(&args),
        Command::Man => man(),
        Command::Doctor(args) => crate::doctor::doctor(&args),
        Command::Admin(args) => crate::admin::admin(args),
        other => commands::light(other),
    }
}

/// Gets the session for resolved settings through the session logic with
/// the real store and STS, so that it is cached as every session command
/// caches it. `provider` makes the code source: the profile's for session
/// commands, enroll's own terminal for its first session.
pub fn obtain(settings: &Settings, provider: ProviderFactory) -> Result<Session, Fail> {
    let store = store::Lazy::new(settings.store);
    // The key store is read only now, on a miss, when STS is needed, and
    // once however many clients the session logic makes.
    let keys = std::cell::OnceCell::new();
    let mut sts = || -> Result<Box<dyn Sts>, Fail> {
        let keys = match keys.get() {
            Some(k) => k,
            None => {
                let k = crate::keys::resolve(settings)?;
                keys.get_or_init(|| k)
            }
        };
        let client = ClientSettings::new(settings, keys.clone());
        Ok(Box::new(AwsSts::new(&client)?))
    };
    let mut deps = Deps {
        store: &store,
        sts: &mut sts,
        provider,
        now: SystemTime::now,
        sleep: std::thread::sleep,
    };
    session::get(settings, &mut deps)
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
