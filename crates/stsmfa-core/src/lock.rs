//! The per-profile cross-process lock, so twenty Terraform providers starting
//! at once cause one prompt and one STS call. The kernel drops the lock when
//! its holder dies, so a killed process never blocks the next one.

use crate::error::Fail;
use crate::fail;
use std::fs::{File, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

/// Held until dropped.
#[derive(Debug)]
pub struct ProfileLock {
    _file: File,
    /// Another process held it first (and so may have stored a session).
    pub waited: bool,
}

/// A file name for `name` that is safe on every platform and unique per name.
pub fn file_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    format!("{safe}-{:016x}", crate::fnv1a(name.as_bytes()))
}

/// True while some process holds the lock for `profile`, that is, while
/// its session is being renewed. Creates nothing; any doubt is `false`.
pub fn busy(dir: &Path, profile: &str) -> bool {
    let name = format!("{}.lock", file_name(profile));
    let Some(file) = crate::statedir::open_existing(dir, &name) else {
        return false;
    };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(TryLockError::WouldBlock) => true,
        Err(TryLockError::Error(_)) => false,
    }
}

/// Takes the lock for `profile`, waiting at most `timeout`. `on_wait` runs
/// once if another process holds it. The lock file is opened by `statedir`,
/// which refuses a symlink or FIFO planted in its place (so opening it never
/// blocks), and the lock is only ever tried, never waited for in the
/// kernel, so `timeout` holds whatever the file is.
pub fn acquire(
    dir: &Path,
    profile: &str,
    timeout: Duration,
    on_wait: impl FnOnce(),
) -> Result<ProfileLock, Fail> {
    let name = format!("{}.lock", file_name(profile));
    let path = dir.join(&name);
    let file = crate::statedir::open_lock(dir, &name)?;
    let start = Instant::now();
    let mut on_wait = Some(on_wait);
    loop {
        match file.try_lock() {
            Ok(()) => {
                return Ok(ProfileLock {
                    _file: file,
                    waited: on_wait.is_none(),
                });
            }
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => {
                return Err(fail!("cannot lock {}: {e}", path.display())
                    .hint("set STSMFA_STATE_DIR to a local directory (file locks may not work on network file systems)"));
            }
        }
        if let Some(f) = on_wait.take() {
            f();
        }
        if start.elapsed() >= timeout {
            return Err(fail!(
                "gave up after {} s waiting for another stsmfa process to get a session for profile '{profile}'",
                timeout.as_secs()
            )
            .hint("answer the MFA prompt of the other process (another terminal or window), or end it")
            .hint("STSMFA_LOCK_TIMEOUT sets how long to wait"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_waits_then_times_out_and_drop_releases() {
        let dir = std::env::temp_dir().join(format!("stsmfa-lock-test-{}", std::process::id()));
        let first = acquire(&dir, "work", Duration::from_secs(1), || {}).unwrap();
        let mut waited = false;
        let err = acquire(&dir, "work", Duration::from_millis(100), || waited = true).unwrap_err();
        assert!(waited);
        assert!(err.message.contains("gave up"), "{}", err.message);
        let other = acquire(&dir, "other profile/x", Duration::from_millis(100), || {});
        assert!(other.is_ok(), "profiles lock independently");
        drop(first);
        assert!(acquire(&dir, "work", Duration::from_millis(100), || {}).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn busy_only_while_held_and_the_probe_creates_nothing() {
        let dir = std::env::temp_dir().join(format!("stsmfa-lock-busy-{}", std::process::id()));
        assert!(!busy(&dir, "work"));
        assert!(!dir.exists(), "a probe must not create the state directory");
        let held = acquire(&dir, "work", Duration::from_secs(1), || {}).unwrap();
        assert!(busy(&dir, "work"));
        assert!(!busy(&dir, "other"), "other profiles are not busy");
        assert!(!dir.join(format!("{}.lock", file_name("other"))).exists());
        drop(held);
        assert!(!busy(&dir, "work"));
        // A probe in progress does not keep the lock from being taken.
        assert!(acquire(&dir, "work", Duration::from_millis(100), || {}).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn hostile_lock_files_fail_fast_and_the_wait_stays_bounded() {
        let dir = std::env::temp_dir().join(format!("stsmfa-lock-hostile-{}", std::process::id()));
        crate::statedir::ensure(&dir).unwrap();
        let lock_file = |p: &str| dir.join(format!("{}.lock", file_name(p)));
        rustix::fs::mknodat(
            rustix::fs::CWD,
            lock_file("fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, lock_file("link")).unwrap();
        let start = Instant::now();
        let e = acquire(&dir, "fifo", Duration::from_secs(30), || {}).unwrap_err();
        assert!(e.message.contains("FIFO"), "{}", e.message);
        let e = acquire(&dir, "link", Duration::from_secs(30), || {}).unwrap_err();
        assert!(e.message.contains("symbolic link"), "{}", e.message);
        assert!(start.elapsed() < Duration::from_secs(5), "failed at once");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        // Someone else holding the lock forever: the timeout still holds.
        drop(acquire(&dir, "held", Duration::from_secs(1), || {}).unwrap());
        let other = std::fs::File::options()
            .write(true)
            .open(lock_file("held"))
            .unwrap();
        other.lock().unwrap();
        let start = Instant::now();
        let e = acquire(&dir, "held", Duration::from_millis(300), || {}).unwrap_err();
        assert!(e.message.contains("gave up"), "{}", e.message);
        assert!(start.elapsed() < Duration::from_secs(3));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn file_names_are_safe_and_distinct() {
        assert!(file_name("a/b").starts_with("a_b-"));
        assert_ne!(file_name("a/b"), file_name("a_b"));
    }
}
