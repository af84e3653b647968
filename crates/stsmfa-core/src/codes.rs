//! Remembers, per MFA device, the last code sent and its 30-second step, so
//! a code STS already consumed is never sent again (STS rejects it, and a
//! second process would waste the user's next code too).
//!
//! Only a hash of the spent code is kept, in the state directory.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

pub const STEP: u64 = 30;

pub struct UsedCodes {
    dir: PathBuf,
    name: String,
    serial: String,
}

#[derive(Debug, PartialEq, Eq)]
struct Record {
    step: u64,
    hash: u64,
}

impl UsedCodes {
    pub fn new(state_dir: &std::path::Path, serial: &str) -> UsedCodes {
        UsedCodes {
            dir: state_dir.to_owned(),
            name: format!("{}.used", crate::lock::file_name(serial)),
            serial: serial.to_owned(),
        }
    }

    fn hash(&self, code: &str) -> u64 {
        crate::fnv1a(format!("{}\n{}", self.serial, code.trim()).as_bytes())
    }

    fn read(&self) -> Option<Record> {
        let bytes = crate::statedir::read(&self.dir, &self.name)?;
        let text = String::from_utf8(bytes).ok()?;
        let (step, hash) = text.trim().split_once(' ')?;
        Some(Record {
            step: step.parse().ok()?,
            hash: u64::from_str_radix(hash, 16).ok()?,
        })
    }

    /// How long to wait before the authenticator shows a code that was not
    /// sent yet: `Some` while the last code sent is from the current step.
    pub fn wait_for_next(&self, now: SystemTime) -> Option<Duration> {
        let now = crate::credentials::unix(now);
        let last = self.read()?;
        (last.step == now / STEP).then(|| Duration::from_secs(STEP - now % STEP))
    }

    /// True when `code` is the one last sent, and still within STS's window.
    /// The record is a file, so its step may be anything: no overflow.
    pub fn is_reused(&self, code: &str, now: SystemTime) -> bool {
        let step = crate::credentials::unix(now) / STEP;
        self.read()
            .is_some_and(|r| r.hash == self.hash(code) && r.step.saturating_add(2) >= step)
    }

    /// Notes `code` as sent. Failing to write only loses this protection.
    pub fn record(&self, code: &str, now: SystemTime) {
        let step = crate::credentials::unix(now) / STEP;
        let body = format!("{step} {:016x}\n", self.hash(code));
        let _ = crate::statedir::write_atomic(&self.dir, &self.name, body.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn detects_reuse_and_waits_for_next_step() {
        let dir = std::env::temp_dir().join(format!("stsmfa-codes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let used = UsedCodes::new(&dir, "arn:aws:iam::1:mfa/a");
        assert_eq!(used.wait_for_next(at(3000)), None);
        used.record("123456", at(3010)); // step 100, 20 s left in it
        assert_eq!(used.wait_for_next(at(3010)), Some(Duration::from_secs(20)));
        assert_eq!(used.wait_for_next(at(3030)), None);
        assert!(used.is_reused("123456", at(3015)));
        assert!(used.is_reused(" 123456\n", at(3065)));
        assert!(
            !used.is_reused("123456", at(3100)),
            "old enough that STS forgot it"
        );
        assert!(!used.is_reused("654321", at(3015)));
        let other = UsedCodes::new(&dir, "arn:aws:iam::1:mfa/b");
        assert!(!other.is_reused("123456", at(3015)), "per device");
        let text = std::fs::read_to_string(dir.join(format!(
            "{}.used",
            crate::lock::file_name("arn:aws:iam::1:mfa/a")
        )))
        .unwrap();
        assert!(!text.contains("123456"), "the code itself is not stored");
        let fresh = UsedCodes::new(&dir.join("not-yet-there"), "arn:aws:iam::1:mfa/a");
        fresh.record("111111", at(3010));
        assert!(fresh.is_reused("111111", at(3011)), "creates its directory");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn any_record_or_clock_is_handled_without_overflow() {
        let dir = std::env::temp_dir().join(format!("stsmfa-codes-odd-{}", std::process::id()));
        let used = UsedCodes::new(&dir, "arn:aws:iam::1:mfa/a");
        for body in [
            format!("{} {:016x}\n", u64::MAX, used.hash("123456")),
            "18446744073709551616 0\n".to_owned(),
            "garbage".to_owned(),
        ] {
            crate::statedir::write_atomic(&dir, &used.name, body.as_bytes()).unwrap();
            for t in [0, 3010, u64::MAX / 2, i64::MAX as u64] {
                let Some(now) = UNIX_EPOCH.checked_add(Duration::from_secs(t)) else {
                    continue;
                };
                let _ = used.is_reused("123456", now);
                let _ = used.wait_for_next(now);
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
