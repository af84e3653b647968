//! Ctrl-C, SIGTERM and SIGHUP as an error instead of death, for the stretch
//! of a command that must clean up after itself (enroll deletes the device it
//! created but could not enable). The terminal's reads notice the flag and
//! return, because the handlers are installed without SA_RESTART.
//!
//! signal-hook is not used: its handlers restart interrupted calls and stay
//! installed after unregistering, and here a blocked read must end and the
//! old dispositions must come back.

use crate::error::Fail;
use crate::fail;

/// The signal that came while a [`Catch`] was alive (until the next one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal {
    pub number: u8,
    pub name: &'static str,
}

impl Signal {
    /// The failure it ends `what` with: exit 128 + the signal, as if it had
    /// ended the process.
    pub fn fail(self, what: &str) -> Fail {
        Fail {
            code: 128u8.saturating_add(self.number),
            ..fail!("{what} was interrupted ({})", self.name)
        }
    }
}

/// `Err` once a caught signal came: what [`catch`] was told is being done
/// was interrupted.
pub fn check() -> Result<(), Fail> {
    match caught() {
        None => Ok(()),
        Some(sig) => Err(sig.fail(imp::what())),
    }
}

pub use imp::{Catch, catch, caught};

#[cfg(unix)]
mod imp {
    use super::Signal;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicI32, Ordering};

    static CAUGHT: AtomicI32 = AtomicI32::new(0);
    /// What the current guard protects, for the message.
    static WHAT: Mutex<&'static str> = Mutex::new("stsmfa");

    const SIGNALS: [(libc::c_int, &str); 3] = [
        (libc::SIGINT, "Ctrl-C"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGHUP, "SIGHUP"),
    ];

    extern "C" fn note(sig: libc::c_int) {
        CAUGHT.store(sig, Ordering::SeqCst);
    }

    /// Holds the handlers; dropping it puts the old ones back.
    #[must_use = "the signals are caught only while the guard lives"]
    pub struct Catch(Vec<(libc::c_int, libc::sigaction)>);

    /// Notes the signals instead of dying of them while the guard lives.
    /// Without SA_RESTART, so that a blocked read returns EINTR. A signal
    /// ignored on entry (nohup) stays ignored. `what` names the interrupted
    /// work in the error (`enroll was interrupted (Ctrl-C)`).
    pub fn catch(what: &'static str) -> Catch {
        *WHAT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = what;
        CAUGHT.store(0, Ordering::SeqCst);
        let mut old = Vec::new();
        for (sig, _) in SIGNALS {
            // SAFETY: the handler only stores to an atomic (async-signal-safe);
            // the structs are plain C data, zeroed as sigaction(2) allows.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = note as extern "C" fn(libc::c_int) as libc::sighandler_t;
                sa.sa_flags = 0;
                libc::sigemptyset(&mut sa.sa_mask);
                let mut prev: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &sa, &mut prev) != 0 {
                    continue;
                }
                if prev.sa_sigaction == libc::SIG_IGN {
                    libc::sigaction(sig, &prev, std::ptr::null_mut());
                    continue;
                }
                old.push((sig, prev));
            }
        }
        Catch(old)
    }

    impl Drop for Catch {
        fn drop(&mut self) {
            for (sig, prev) in &self.0 {
                // SAFETY: puts back what sigaction(2) returned for this signal.
                unsafe { libc::sigaction(*sig, prev, std::ptr::null_mut()) };
            }
        }
    }

    /// The signal caught since the last [`catch`], if any.
    pub fn caught() -> Option<Signal> {
        let sig = CAUGHT.load(Ordering::SeqCst);
        SIGNALS
            .iter()
            .find(|(s, _)| *s == sig)
            .map(|(s, name)| Signal {
                number: u8::try_from(*s).unwrap_or(127),
                name,
            })
    }

    pub(super) fn what() -> &'static str {
        *WHAT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Elsewhere the console's Ctrl-C ends the process as before.
#[cfg(not(unix))]
mod imp {
    use super::Signal;

    #[must_use = "the signals are caught only while the guard lives"]
    pub struct Catch;

    pub fn catch(_what: &'static str) -> Catch {
        Catch
    }

    pub fn caught() -> Option<Signal> {
        None
    }

    pub(super) fn what() -> &'static str {
        "stsmfa"
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// The disposition of `sig` now: (handler, flags).
    fn disposition(sig: libc::c_int) -> (libc::sighandler_t, libc::c_int) {
        // SAFETY: queries only (a null new action), into a zeroed C struct.
        unsafe {
            let mut now: libc::sigaction = std::mem::zeroed();
            assert_eq!(libc::sigaction(sig, std::ptr::null(), &mut now), 0);
            (now.sa_sigaction, now.sa_flags)
        }
    }

    fn set(sig: libc::c_int, handler: libc::sighandler_t) {
        // SAFETY: installs a default or ignore disposition, no handler code.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler;
            libc::sigemptyset(&mut sa.sa_mask);
            assert_eq!(libc::sigaction(sig, &sa, std::ptr::null_mut()), 0);
        }
    }

    /// One test for the whole life of a guard: signal dispositions are
    /// process-wide, so its steps must not run in parallel with each other.
    #[test]
    fn guard_catches_without_restart_keeps_ignored_ones_and_restores_on_drop() {
        set(libc::SIGINT, libc::SIG_DFL);
        set(libc::SIGTERM, libc::SIG_DFL);
        set(libc::SIGHUP, libc::SIG_IGN); // as under nohup
        assert_eq!(check().map_err(|e| e.message), Ok(()));

        let guard = catch("enroll");
        let (int_handler, int_flags) = disposition(libc::SIGINT);
        assert_ne!(int_handler, libc::SIG_DFL);
        assert_eq!(
            int_flags & libc::SA_RESTART,
            0,
            "reads must end on a signal"
        );
        assert_eq!(
            disposition(libc::SIGHUP).0,
            libc::SIG_IGN,
            "nohup's choice was overridden"
        );
        // SAFETY: raise(3) runs the handler (a store to an atomic) in this thread.
        assert_eq!(unsafe { libc::raise(libc::SIGHUP) }, 0);
        assert_eq!(caught(), None, "an ignored signal was noted");

        // SAFETY: as above; SIGTERM is caught, so the process lives on.
        assert_eq!(unsafe { libc::raise(libc::SIGTERM) }, 0);
        let sig = caught().expect("SIGTERM was not noted");
        assert_eq!((sig.number, sig.name), (15, "SIGTERM"));
        let fail = check().unwrap_err();
        assert_eq!(fail.message, "enroll was interrupted (SIGTERM)");
        assert_eq!(fail.code, 143);

        drop(guard);
        assert_eq!(disposition(libc::SIGINT).0, libc::SIG_DFL);
        assert_eq!(disposition(libc::SIGTERM).0, libc::SIG_DFL);
        assert_eq!(disposition(libc::SIGHUP).0, libc::SIG_IGN);
        // What came is still known after the guard is gone (enroll checks
        // once more after its scope ends) ...
        assert_eq!(caught().map(|s| s.number), Some(15));
        // ... until a new guard starts afresh.
        let guard = catch("enroll");
        assert_eq!(caught(), None);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::raise(libc::SIGINT) }, 0);
        assert_eq!(check().unwrap_err().code, 130);
        drop(guard);
        set(libc::SIGHUP, libc::SIG_DFL);
    }

    #[test]
    fn signal_names_and_exit_codes() {
        let hup = Signal {
            number: 1,
            name: "SIGHUP",
        };
        let f = hup.fail("enroll");
        assert_eq!(
            (f.message.as_str(), f.code),
            ("enroll was interrupted (SIGHUP)", 129)
        );
    }
}
