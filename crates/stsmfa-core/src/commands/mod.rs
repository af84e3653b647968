//! The commands of the small `stsmfa` binary: cache hits, status, clear,
//! init and completions; everything else is handed to `stsmfa-sts`, whose
//! own dispatch reuses these pieces.

pub mod setup;
mod status;

use crate::cli::{Cli, Command, ProfileArgs};
use crate::config::{self, Settings};
use crate::credentials::Session;
use crate::error::Fail;
use crate::fail;
use crate::output;
use crate::session;
use crate::store;
use std::time::SystemTime;

/// What the `stsmfa` binary runs. It links no AWS SDK, so it starts fast:
/// every AWS CLI call pays for starting it. It serves cache hits and the
/// commands that need no AWS call, and hands everything else to `stsmfa-sts`.
pub fn front(cli: Cli) -> Result<u8, Fail> {
    if let Some(args) = session_args(&cli.command) {
        let settings = settings(args)?;
        // While another process renews this session, reading the store can
        // only miss; with the Secret Service that read is a D-Bus session of
        // its own, and 256 of them at once queue up in the keyring daemon.
        if renewal_in_progress(&settings) {
            crate::diag("another stsmfa process is renewing this session; waiting for it");
            return handoff(true);
        }
        // Quietly: if the store has a problem, stsmfa-sts says so once.
        let store = store::open_quiet(settings.store);
        if let Ok(Some(session)) =
            store.and_then(|st| session::cached(&settings, st.as_ref(), SystemTime::now))
        {
            return deliver(&cli.command, &settings, &session);
        }
        return handoff(true);
    }
    match cli.command {
        Command::Enroll(_) | Command::Man => handoff(false),
        // The key store's commands (its crypto lives in stsmfa-sts).
        Command::Add(_)
        | Command::Import(_)
        | Command::Rotate(_)
        | Command::Remove(_)
        | Command::List(_) => handoff(false),
        Command::Doctor(args) => handoff(false).or_else(|e| no_full_binary(&args, &e)),
        // The credential endpoint runs in stsmfa-sts, never through execve here.
        Command::Exec(_) | Command::Serve(_) => handoff(false),
        Command::Admin(_) => handoff(false),
        other => light(other),
    }
}

/// True when the served profile's lock is held, checked only where a store
/// read costs more than the check (keyutils reads cost less than the probe).
fn renewal_in_progress(settings: &Settings) -> bool {
    if settings.refresh || settings.store == store::StoreChoice::Keyutils {
        return false;
    }
    let name = match settings.roles.last() {
        Some(role) => crate::roles::lock_name(role),
        None => settings.profile.clone(),
    };
    crate::lock::busy(&settings.state_dir, &name)
}

/// The commands both binaries run the same way.
pub fn light(command: Command) -> Result<u8, Fail> {
    match command {
        Command::Status(args) => status::status(&args),
        Command::Clear(args) => status::clear(&args),
        Command::Init(args) => setup::init(args.shell),
        Command::Completions(args) => setup::completions(args.shell),
        _ => unreachable!(
            "session, key store and endpoint commands, enroll and man are dispatched before"
        ),
    }
}

/// The profile arguments of the commands that hand out a session once
/// (`exec --server` and `serve` hand it out for as long as they run).
pub fn session_args(command: &Command) -> Option<&ProfileArgs> {
    match command {
        Command::CredentialProcess(args) => Some(args),
        Command::Env(args) => Some(&args.base),
        Command::Exec(args) if !args.server => Some(&args.base),
        _ => None,
    }
}

/// Hands the session out the way the command says.
pub fn deliver(command: &Command, settings: &Settings, session: &Session) -> Result<u8, Fail> {
    let vars = || {
        output::variables(
            session,
            settings.served_profile(),
            settings.region.as_deref(),
        )
    };
    match command {
        Command::CredentialProcess(_) => {
            crate::emit(&(output::credential_process(session) + "\n"));
            Ok(0)
        }
        Command::Env(args) => {
            crate::emit(&output::env_lines(&vars(), args.format)?);
            Ok(0)
        }
        Command::Exec(args) => crate::exec::run(&args.command, &vars(), &output::UNSET),
        _ => unreachable!("only session commands deliver a session"),
    }
}

/// The binary with the AWS SDK, installed next to `stsmfa`.
pub const FULL_BINARY: &str = "stsmfa-sts";

/// Runs the same command line in `stsmfa-sts` (on Unix in this very process).
/// `after_miss` tells it the cache was just read and missed.
fn handoff(after_miss: bool) -> Result<u8, Fail> {
    let exe = std::env::current_exe()
        .map_err(|e| fail!("cannot find the stsmfa binary's own path: {e}"))?;
    let full = exe.with_file_name(format!("{FULL_BINARY}{}", std::env::consts::EXE_SUFFIX));
    crate::diag(&format!("handing over to {}", full.display()));
    let mut cmd = std::process::Command::new(&full);
    if after_miss {
        cmd.arg("--after-miss");
    }
    cmd.args(std::env::args_os().skip(1));
    // Taken out of this process's environment at start (see `passphrase`).
    if let Some(p) = crate::passphrase::get() {
        cmd.env(crate::passphrase::VAR, p.expose());
    }
    let missing = |e: std::io::Error| {
        fail!("cannot run {}: {e}", full.display()).hint(format!(
            "{FULL_BINARY} must be installed next to stsmfa (./install.sh installs both)"
        ))
    };
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // stsmfa-sts saves the limit it starts with for its own children,
        // so it must start with the user's, not the one stsmfa set.
        // SAFETY: restore_child_limits is async-signal-safe (atomics and setrlimit).
        unsafe {
            cmd.pre_exec(|| {
                crate::harden::restore_child_limits();
                Ok(())
            });
        }
        Err(missing(cmd.exec()))
    }
    #[cfg(not(unix))]
    {
        let status = cmd.status().map_err(missing)?;
        Ok(status.code().map(|c| (c & 0xff) as u8).unwrap_or(1))
    }
}

/// `doctor` without `stsmfa-sts`, which runs the checks: that is the
/// finding, reported as doctor reports it.
fn no_full_binary(args: &crate::cli::DoctorArgs, fail: &Fail) -> Result<u8, Fail> {
    use crate::doctor_report::{Check, Report};
    let report = Report {
        profile: config::profile_name(args.profile.as_deref(), &crate::real_env),
        checks: vec![Check::from_fail("install", fail)],
    };
    Ok(report.print(args.json))
}

/// The settings of a session command, from its options, the environment and
/// the AWS config files.
pub fn settings(args: &ProfileArgs) -> Result<Settings, Fail> {
    let profiles = crate::profiles::load_real()?;
    config::resolve(
        args.profile.as_deref(),
        &args.opts,
        &crate::real_env,
        &profiles,
    )
}
