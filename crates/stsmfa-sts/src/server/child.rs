//! `exec --server` runs CMD as a child (stsmfa must stay to serve it):
//! signals sent to stsmfa are passed on, and stsmfa leaves with CMD's exit
//! code, or 128+N when CMD died of signal N.

use stsmfa_core::error::Fail;
use stsmfa_core::fail;

/// The signals passed on to CMD.
#[cfg(unix)]
const FORWARDED: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Runs `argv` (or `$SHELL`) with `set` in its environment and `unset`
/// removed, and waits for it.
pub fn run(argv: &[String], set: &[(&'static str, String)], unset: &[&str]) -> Result<u8, Fail> {
    let (prog, mut cmd) = stsmfa_core::exec::prepare(argv, set, unset);
    #[cfg(unix)]
    let signals = Forwarder::install()?;
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: restore_child_limits is async-signal-safe (atomics and setrlimit).
        unsafe {
            cmd.pre_exec(|| {
                stsmfa_core::harden::restore_child_limits();
                Ok(())
            });
        }
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| stsmfa_core::exec::cannot_run(&prog, e))?;
    #[cfg(unix)]
    {
        let forwarding = signals.forward_to(child.id());
        // Wait without reaping, so that no signal can reach another process
        // that gets CMD's pid; reap only once forwarding stopped.
        exited_unreaped(child.id()).map_err(|e| fail!("lost track of '{prog}': {e}"))?;
        forwarding.stop();
    }
    let status = child
        .wait()
        .map_err(|e| fail!("lost track of '{prog}': {e}"))?;
    Ok(exit_code(status))
}

/// Returns once the child `pid` has ended, leaving it to be reaped.
#[cfg(unix)]
fn exited_unreaped(pid: u32) -> std::io::Result<()> {
    loop {
        // SAFETY: waitid(2) fills a zeroed siginfo_t that we own.
        let rc = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// CMD's exit code, or 128+N for signal N, as a shell reports it.
fn exit_code(status: std::process::ExitStatus) -> u8 {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return 128u8.saturating_add(sig as u8);
        }
    }
    status.code().map(|c| (c & 0xff) as u8).unwrap_or(1)
}

/// Catches SIGINT, SIGTERM and SIGHUP (from before CMD starts, so none is
/// lost or kills stsmfa first) and passes on those another process sent,
/// as sudo does. One the terminal sent (Ctrl-C, a hangup) already reached
/// CMD, which is in the terminal's foreground process group too, and so did
/// one CMD sent its own process group: passing those on would deliver them
/// twice.
#[cfg(unix)]
struct Forwarder {
    signals: signal_hook::iterator::SignalsInfo<signal_hook::iterator::exfiltrator::WithOrigin>,
}

#[cfg(unix)]
struct Forwarding {
    handle: signal_hook::iterator::Handle,
    thread: std::thread::JoinHandle<()>,
}

#[cfg(unix)]
impl Forwarder {
    fn install() -> Result<Forwarder, Fail> {
        let signals = signal_hook::iterator::SignalsInfo::new(FORWARDED)
            .map_err(|e| fail!("cannot catch signals to pass them on: {e}"))?;
        Ok(Forwarder { signals })
    }

    fn forward_to(mut self, pid: u32) -> Forwarding {
        use signal_hook::low_level::siginfo::Cause;
        let handle = self.signals.handle();
        let thread = std::thread::spawn(move || {
            for origin in self.signals.forever() {
                let from_cmd = origin.process.is_some_and(|p| p.pid as u32 == pid);
                if matches!(origin.cause, Cause::Kernel) || from_cmd {
                    continue;
                }
                // SAFETY: kill(2) of our own child, which is not reaped
                // before this thread has stopped (see `exited_unreaped`).
                unsafe { libc::kill(pid as libc::pid_t, origin.signal) };
            }
        });
        Forwarding { handle, thread }
    }
}

#[cfg(unix)]
impl Forwarding {
    fn stop(self) {
        self.handle.close();
        let _ = self.thread.join();
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn sh(script: &str, set: &[(&'static str, String)], unset: &[&str]) -> u8 {
        run(&["sh".into(), "-c".into(), script.into()], set, unset).unwrap()
    }

    #[test]
    fn the_exit_code_and_a_deadly_signal_come_back() {
        assert_eq!(sh("exit 0", &[], &[]), 0);
        assert_eq!(sh("exit 42", &[], &[]), 42);
        assert_eq!(sh("kill -TERM $$", &[], &[]), 128 + 15);
        assert_eq!(sh("kill -HUP $$", &[], &[]), 128 + 1);
    }

    #[test]
    fn cmd_gets_the_variables_and_loses_the_others() {
        // SAFETY: no other test of this binary reads or writes this variable.
        unsafe { std::env::set_var("STSMFA_TEST_CHILD_UNSET", "stale") };
        let code = sh(
            r#"[ "$STSMFA_TEST_CHILD_SET" = fresh ] && [ -z "${STSMFA_TEST_CHILD_UNSET+x}" ]"#,
            &[("STSMFA_TEST_CHILD_SET", "fresh".into())],
            &["STSMFA_TEST_CHILD_UNSET"],
        );
        assert_eq!(code, 0);
    }

    #[test]
    fn a_missing_command_is_a_clear_error() {
        let e = run(&["definitely-not-a-command-xyz".into()], &[], &[]).unwrap_err();
        assert!(e.message.contains("cannot run"), "{}", e.message);
        assert!(!e.hints.is_empty());
    }
}
