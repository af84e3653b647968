//! Keeps secrets out of core dumps.
//!
//! The long-term secret key and the session are in memory while stsmfa
//! runs; a core file (a crash, the release profile's abort on panic, or a
//! SIGABRT/SIGQUIT from outside) would write them to disk. So both binaries
//! turn core dumps off before anything else, and on Linux also mark the
//! process non-dumpable, which keeps other processes of the same user from
//! reading its memory through ptrace or /proc.
//!
//! The core limit is inherited by children, so programs stsmfa runs (the
//! user's command under `exec`, `mfa_process`, dialogs) get the limit back
//! with `restore_child_limits` just before exec. The non-dumpable flag is
//! reset by exec on its own.
//!
//! Windows writes no core files of a process unless Windows Error Reporting
//! is set up for local dumps machine-wide; nothing is done there.

#[cfg(unix)]
mod imp {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    /// The limit the process started with; `u64::MAX` for "unlimited".
    static CURRENT: AtomicU64 = AtomicU64::new(0);
    static MAXIMUM: AtomicU64 = AtomicU64::new(0);
    static SAVED: AtomicBool = AtomicBool::new(false);

    fn to_raw(v: Option<u64>) -> u64 {
        v.unwrap_or(u64::MAX)
    }

    fn from_raw(v: u64) -> Option<u64> {
        (v != u64::MAX).then_some(v)
    }

    pub fn no_core_dumps() {
        let start = getrlimit(Resource::Core);
        if !SAVED.swap(true, Ordering::SeqCst) {
            CURRENT.store(to_raw(start.current), Ordering::SeqCst);
            MAXIMUM.store(to_raw(start.maximum), Ordering::SeqCst);
        }
        // Only the soft limit: the hard one stays, so children can get
        // theirs back without privileges.
        let _ = setrlimit(
            Resource::Core,
            Rlimit {
                current: Some(0),
                maximum: start.maximum,
            },
        );
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let _ =
            rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    }

    pub fn restore_child_limits() {
        // Async-signal-safe: atomics and one system call, nothing allocates.
        if SAVED.load(Ordering::SeqCst) {
            let _ = setrlimit(
                Resource::Core,
                Rlimit {
                    current: from_raw(CURRENT.load(Ordering::SeqCst)),
                    maximum: from_raw(MAXIMUM.load(Ordering::SeqCst)),
                },
            );
        }
    }
}

#[cfg(not(unix))]
mod imp {
    pub fn no_core_dumps() {}
    pub fn restore_child_limits() {}
}

/// Turns core dumps off for this process (and, on Linux, makes it
/// non-dumpable). The first call remembers the core limit the process
/// started with, for `restore_child_limits`. Call it first thing in `main`.
pub fn no_core_dumps() {
    imp::no_core_dumps();
}

/// Gives a child the core limit stsmfa started with. Call it in the child
/// between fork and exec (`CommandExt::pre_exec`) or right before `execve`;
/// it is async-signal-safe. Does nothing before `no_core_dumps`.
pub fn restore_child_limits() {
    imp::restore_child_limits();
}

/// What Rust's own start-up does before `main` that a binary without it
/// (`#![no_main]`, see the `stsmfa` crate) still needs: standard descriptors
/// 0–2 that are closed get `/dev/null`, so a file opened later never becomes
/// stdout and receives the credentials; and SIGPIPE is ignored, so a closed
/// pipe is an error to handle rather than a silent death (std's `Command`
/// gives children the default back).
#[cfg(unix)]
pub fn standard_start() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: poll on a stack array of three pollfds; open/signal with valid
    // arguments. Nothing here touches Rust-owned state.
    unsafe {
        if libc::poll(fds.as_mut_ptr(), 3, 0) >= 0 {
            for p in fds {
                if p.revents & libc::POLLNVAL != 0 {
                    let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                    if fd != p.fd {
                        // Not even /dev/null: stop rather than write secrets elsewhere.
                        libc::abort();
                    }
                }
            }
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    use std::os::unix::process::CommandExt;

    fn child_core_limit() -> String {
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", "ulimit -c"]);
        // SAFETY: restore_child_limits only uses atomics and setrlimit(2).
        unsafe {
            cmd.pre_exec(|| {
                restore_child_limits();
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// One test, as the calls change the whole (test) process.
    #[test]
    fn core_dumps_are_off_and_children_get_the_limit_back() {
        // Start as a user with `ulimit -c unlimited` would (up to the hard limit).
        let hard = getrlimit(Resource::Core).maximum;
        setrlimit(
            Resource::Core,
            Rlimit {
                current: hard,
                maximum: hard,
            },
        )
        .unwrap();
        let before = getrlimit(Resource::Core);
        let shown = match before.current {
            None => "unlimited".to_owned(),
            Some(n) => (n / 512).to_string(), // `ulimit -c` counts 512-byte blocks
        };
        no_core_dumps();
        let after = getrlimit(Resource::Core);
        assert_eq!(after.current, Some(0));
        assert_eq!(after.maximum, before.maximum, "the hard limit stays");
        #[cfg(target_os = "linux")]
        assert_eq!(
            rustix::process::dumpable_behavior().unwrap(),
            rustix::process::DumpableBehavior::NotDumpable
        );
        no_core_dumps(); // a second call keeps the first saved limit
        assert_eq!(child_core_limit(), shown);
        assert_eq!(getrlimit(Resource::Core).current, Some(0), "only the child");
    }

    /// In a forked child, as it changes descriptors and signal dispositions.
    #[test]
    fn standard_start_fills_closed_standard_fds_and_ignores_sigpipe() {
        // SAFETY: the child only makes system calls and leaves with _exit.
        let status = unsafe {
            let pid = libc::fork();
            assert!(pid >= 0);
            if pid == 0 {
                libc::close(1);
                libc::close(2);
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                standard_start();
                let mut old: libc::sigaction = std::mem::zeroed();
                libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old);
                let mut buf = [0u8; 64];
                let n = libc::readlink(c"/proc/self/fd/1".as_ptr(), buf.as_mut_ptr().cast(), 64);
                let devnull = n == 9 && &buf[..9] == b"/dev/null";
                let stderr_open = libc::fcntl(2, libc::F_GETFD) != -1;
                let ignored = old.sa_sigaction == libc::SIG_IGN;
                libc::_exit(
                    i32::from(!devnull) | i32::from(!stderr_open) << 1 | i32::from(!ignored) << 2,
                );
            }
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
            status
        };
        assert!(libc::WIFEXITED(status), "child died: {status}");
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "bit 0: fd 1 not /dev/null, 1: fd 2 closed, 2: SIGPIPE not ignored"
        );
    }
}
