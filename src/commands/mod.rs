//! One function per subcommand; `run` dispatches.

pub mod enroll;
mod setup;
mod status;

use crate::cli::{Cli, Command, ProfileArgs};
use crate::config::{self, Settings};
use crate::credentials::Session;
use crate::error::Fail;
use crate::fail;
use crate::output;
use crate::prompt;
use crate::session::{self, Deps};
use crate::store;
use crate::sts::{AwsSts, ClientSettings, Sts};
use std::time::{Duration, SystemTime};

pub fn run(cli: Cli) -> Result<u8, Fail> {
    let verbose = cli.verbose;
    match cli.command {
        Command::CredentialProcess(args) => {
            let (_, session) = obtain(&args, verbose)?;
            crate::emit(&(output::credential_process(&session) + "\n"));
            Ok(0)
        }
        Command::Env(args) => {
            let (settings, session) = obtain(&args.base, verbose)?;
            let vars = output::variables(&session, &settings.profile, settings.region.as_deref());
            crate::emit(&output::env_lines(&vars, args.format));
            Ok(0)
        }
        Command::Exec(args) => {
            let (settings, session) = obtain(&args.base, verbose)?;
            let vars = output::variables(&session, &settings.profile, settings.region.as_deref());
            crate::exec::run(&args.command, &vars, &output::UNSET)
        }
        Command::Status(args) => status::status(&args, verbose),
        Command::Clear(args) => status::clear(&args, verbose),
        Command::Enroll(args) => enroll::enroll(&args, verbose),
        Command::Init(args) => setup::init(args.shell),
        Command::Completions(args) => setup::completions(args.shell),
        Command::Man => setup::man(),
    }
}

/// Total time allowed for one STS/IAM call, retries included.
fn network_timeout() -> Result<Duration, Fail> {
    match config::real_env("STSMFA_TIMEOUT") {
        Some(v) => {
            config::parse_duration(&v).map_err(|e| fail!("{} (from STSMFA_TIMEOUT)", e.message))
        }
        None => Ok(Duration::from_secs(30)),
    }
}

/// Resolves settings for a session command and gets the session.
fn obtain(args: &ProfileArgs, verbose: bool) -> Result<(Settings, Session), Fail> {
    let profiles = config::load_real()?;
    let settings = config::resolve(
        args.profile.as_deref(),
        &args.opts,
        verbose,
        &config::real_env,
        &profiles,
    )?;
    let store = store::open(settings.store, verbose)?;
    let client = ClientSettings {
        profile: settings.profile.clone(),
        region: settings.region.clone(),
        keys: settings.keys.clone(),
        timeout: network_timeout()?,
    };
    let mut sts = || -> Result<Box<dyn Sts>, Fail> { Ok(Box::new(AwsSts::new(&client)?)) };
    let code = settings.code.clone();
    let ykman = settings.ykman_account.clone();
    let mut provider = || prompt::provider(&code, ykman.as_deref());
    let mut deps = Deps {
        store: store.as_ref(),
        sts: &mut sts,
        provider: &mut provider,
        now: SystemTime::now,
        sleep: std::thread::sleep,
    };
    let session = session::get(&settings, &mut deps)?;
    Ok((settings, session))
}
