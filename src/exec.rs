//! Runs a command with the session in its environment and passes its exit
//! status back: the child's code, or 128+N when it dies of signal N.

use crate::error::Fail;
use crate::fail;
use std::process::Command;

/// Runs `argv` (or `$SHELL`) and returns the exit code to leave with.
pub fn run(argv: &[String], set: &[(&'static str, String)], unset: &[&str]) -> Result<u8, Fail> {
    let (prog, args) = match argv.split_first() {
        Some((p, a)) => (p.clone(), a.to_vec()),
        None => (
            std::env::var("SHELL")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(default_shell),
            Vec::new(),
        ),
    };
    let mut cmd = Command::new(&prog);
    cmd.args(&args);
    for k in unset {
        cmd.env_remove(k);
    }
    cmd.envs(set.iter().map(|(k, v)| (*k, v.as_str())));
    let mut child = cmd.spawn().map_err(|e| {
        let f = fail!("cannot run '{prog}': {e}");
        if e.kind() == std::io::ErrorKind::NotFound {
            f.hint("check the command name and PATH")
        } else {
            f
        }
    })?;
    #[cfg(unix)]
    forward::start(child.id());
    let status = child
        .wait()
        .map_err(|e| fail!("lost track of '{prog}': {e}"))?;
    Ok(exit_code(status))
}

fn default_shell() -> String {
    if cfg!(windows) {
        "cmd.exe".into()
    } else {
        "/bin/sh".into()
    }
}

fn exit_code(status: std::process::ExitStatus) -> u8 {
    #[cfg(unix)]
    if let Some(sig) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return 128u8.saturating_add(u8::try_from(sig).unwrap_or(127));
    }
    status.code().map(|c| (c & 0xff) as u8).unwrap_or(1)
}

/// Signals sent to stsmfa by `kill` reach the child. Signals from the
/// terminal (Ctrl-C) already reach it as part of the foreground group, so
/// they are not sent twice (Terraform takes a second Ctrl-C as "abort now").
#[cfg(unix)]
mod forward {
    use std::sync::atomic::{AtomicI32, Ordering};

    static CHILD: AtomicI32 = AtomicI32::new(0);
    const SIGNALS: [libc::c_int; 6] = [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ];

    extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
        // SI_USER, SI_QUEUE, SI_TKILL … are <= 0; the kernel's (tty) are > 0.
        let from_user = info.is_null() || unsafe { (*info).si_code } <= 0;
        let pid = CHILD.load(Ordering::Relaxed);
        if from_user && pid > 0 {
            unsafe { libc::kill(pid, sig) };
        }
    }

    pub fn start(pid: u32) {
        CHILD.store(pid as i32, Ordering::Relaxed);
        for sig in SIGNALS {
            // SAFETY: the handler only reads an atomic and calls kill(2),
            // both async-signal-safe.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = handler as *const () as usize;
                sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn sh(script: &str) -> u8 {
        run(
            &["sh".into(), "-c".into(), script.into()],
            &[("STSMFA_PROFILE", "t".into())],
            &["AWS_PROFILE"],
        )
        .unwrap()
    }

    #[test]
    fn passes_exit_codes_and_signals() {
        assert_eq!(sh("exit 7"), 7);
        assert_eq!(
            sh("test \"$STSMFA_PROFILE\" = t && test -z \"${AWS_PROFILE+x}\""),
            0
        );
        assert_eq!(sh("kill -TERM $$"), 143);
    }

    #[test]
    fn missing_command_is_a_clear_error() {
        let e = run(&["definitely-not-a-command-xyz".into()], &[], &[]).unwrap_err();
        assert!(e.message.contains("cannot run"), "{}", e.message);
        assert!(!e.hints.is_empty());
    }
}
