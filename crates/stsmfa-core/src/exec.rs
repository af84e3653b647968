//! Runs a command with the session in its environment.
//!
//! On Unix stsmfa has nothing left to do once the command starts, so it
//! becomes the command (`execve`): signals from a terminal, `timeout` or
//! `kill` reach it exactly once, and its exit status is its own. Elsewhere it
//! waits for the child and passes its exit code back.

use crate::error::Fail;
use crate::fail;
use std::process::Command;

/// Runs `argv` (or `$SHELL`). On Unix it returns only when the command could
/// not be started; elsewhere with the exit code to leave with.
pub fn run(argv: &[String], set: &[(&'static str, String)], unset: &[&str]) -> Result<u8, Fail> {
    let (prog, mut cmd) = prepare(argv, set, unset);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        crate::harden::restore_child_limits();
        Err(cannot_run(&prog, cmd.exec()))
    }
    #[cfg(not(unix))]
    {
        let status = cmd
            .spawn()
            .map_err(|e| cannot_run(&prog, e))?
            .wait()
            .map_err(|e| fail!("lost track of '{prog}': {e}"))?;
        Ok(status.code().map(|c| (c & 0xff) as u8).unwrap_or(1))
    }
}

/// The program to run (`argv[0]`, else `$SHELL`, else the platform's shell)
/// and its command with the session's variables set and the conflicting
/// ones removed. Shared with `exec --server`, which waits for it instead.
pub fn prepare(
    argv: &[String],
    set: &[(&'static str, String)],
    unset: &[&str],
) -> (String, Command) {
    let (prog, args) = match argv.split_first() {
        Some((p, a)) => (p.clone(), a),
        None => (
            std::env::var("SHELL")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(default_shell),
            &[][..],
        ),
    };
    let cmd = command(&prog, args, set, unset);
    (prog, cmd)
}

/// The command with the session's variables set and the conflicting ones removed.
fn command(prog: &str, args: &[String], set: &[(&'static str, String)], unset: &[&str]) -> Command {
    let mut cmd = Command::new(prog);
    cmd.args(args);
    for k in unset {
        cmd.env_remove(k);
    }
    cmd.envs(set.iter().map(|(k, v)| (*k, v.as_str())));
    cmd
}

/// The error for a command that could not be started, with a hint for a wrong name.
pub fn cannot_run(prog: &str, e: std::io::Error) -> Fail {
    let f = fail!("cannot run '{prog}': {e}");
    if e.kind() == std::io::ErrorKind::NotFound {
        f.hint("check the command name and PATH")
    } else {
        f
    }
}

fn default_shell() -> String {
    if cfg!(windows) {
        "cmd.exe".into()
    } else {
        "/bin/sh".into()
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn the_command_gets_the_session_and_loses_the_profile() {
        use std::ffi::OsStr;
        let cmd = command(
            "terraform",
            &["plan".into()],
            &[("STSMFA_PROFILE", "t".into())],
            &["AWS_PROFILE"],
        );
        let envs: Vec<(&OsStr, Option<&OsStr>)> = cmd.get_envs().collect();
        assert_eq!(
            envs,
            [
                (OsStr::new("AWS_PROFILE"), None),
                (OsStr::new("STSMFA_PROFILE"), Some(OsStr::new("t")))
            ]
        );
        assert_eq!(cmd.get_args().collect::<Vec<_>>(), ["plan"]);
    }

    #[test]
    fn missing_command_is_a_clear_error() {
        let e = run(&["definitely-not-a-command-xyz".into()], &[], &[]).unwrap_err();
        assert!(e.message.contains("cannot run"), "{}", e.message);
        assert!(!e.hints.is_empty());
    }
}
