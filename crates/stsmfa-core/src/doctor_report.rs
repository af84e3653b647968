//! What `stsmfa doctor` prints: one line per check, `ok`, `warn` or `fail`,
//! with the fix. Here, not in `stsmfa-sts` (which runs the checks), so that
//! the small binary can report a missing `stsmfa-sts` in the same format.

use serde::Serialize;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One line of the report. Never holds a secret: callers pass masked key IDs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `config`, `store`, `code`, `clock`, `identity`, `policy`, `sessions`, `install`.
    pub group: &'static str,
    pub status: Status,
    pub message: String,
    /// What to do about a `warn` or `fail`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fix: Vec<String>,
}

impl Check {
    pub fn ok(group: &'static str, message: impl Into<String>) -> Check {
        Check {
            group,
            status: Status::Ok,
            message: message.into(),
            fix: Vec::new(),
        }
    }

    pub fn warn(group: &'static str, message: impl Into<String>) -> Check {
        Check {
            status: Status::Warn,
            ..Check::ok(group, message)
        }
    }

    pub fn fail(group: &'static str, message: impl Into<String>) -> Check {
        Check {
            status: Status::Fail,
            ..Check::ok(group, message)
        }
    }

    /// A `Fail` of the rest of stsmfa as a failed check: its hints are the fix.
    pub fn from_fail(group: &'static str, fail: &crate::error::Fail) -> Check {
        Check {
            fix: fail.hints.clone(),
            ..Check::fail(group, fail.message.clone())
        }
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix.push(fix.into());
        self
    }
}

/// The whole report: the profile checked and its lines, in order.
#[derive(Debug, Serialize)]
pub struct Report {
    pub profile: String,
    pub checks: Vec<Check>,
}

#[derive(Serialize)]
struct Summary {
    ok: usize,
    warn: usize,
    fail: usize,
}

impl Report {
    fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// 0 when nothing failed, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.count(Status::Fail) > 0)
    }

    /// `ok    config    …` lines, `fix:` lines under them, and a summary.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            out += &format!(
                "{:<5} {:<9} {}\n",
                c.status.word(),
                c.group,
                crate::escape(&c.message)
            );
            for f in &c.fix {
                out += &format!("{:16}fix: {}\n", "", crate::escape(f));
            }
        }
        out += &format!(
            "doctor: {} ok, {} warn, {} fail\n",
            self.count(Status::Ok),
            self.count(Status::Warn),
            self.count(Status::Fail)
        );
        out
    }

    /// One JSON object: `profile`, `checks` and a `summary` of the counts.
    pub fn json(&self) -> String {
        #[derive(Serialize)]
        struct Out<'a> {
            profile: &'a str,
            ok: bool,
            checks: &'a [Check],
            summary: Summary,
        }
        let out = Out {
            profile: &self.profile,
            ok: self.exit_code() == 0,
            checks: &self.checks,
            summary: Summary {
                ok: self.count(Status::Ok),
                warn: self.count(Status::Warn),
                fail: self.count(Status::Fail),
            },
        };
        serde_json::to_string_pretty(&out).expect("plain strings serialise") + "\n"
    }

    /// Prints it as asked and gives the exit code.
    pub fn print(&self, json: bool) -> u8 {
        crate::emit(&if json { self.json() } else { self.text() });
        self.exit_code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            profile: "work".into(),
            checks: vec![
                Check::ok("config", "files found"),
                Check::warn("clock", "12 s ahead").fix("sync the clock"),
            ],
        }
    }

    #[test]
    fn text_has_one_line_per_check_with_fixes_under_it() {
        let text = report().text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "ok    config    files found");
        assert_eq!(lines[1], "warn  clock     12 s ahead");
        assert_eq!(lines[2], "                fix: sync the clock");
        assert_eq!(lines[3], "doctor: 1 ok, 1 warn, 0 fail");
    }

    #[test]
    fn warnings_exit_0_and_a_failure_exits_1() {
        let mut r = report();
        assert_eq!(r.exit_code(), 0);
        r.checks.push(Check::fail("store", "locked"));
        assert_eq!(r.exit_code(), 1);
    }

    #[test]
    fn json_parses_and_keeps_the_order() {
        let v: serde_json::Value = serde_json::from_str(&report().json()).unwrap();
        assert_eq!(v["profile"], "work");
        assert_eq!(v["ok"], true);
        assert_eq!(v["checks"][1]["status"], "warn");
        assert_eq!(v["checks"][1]["fix"][0], "sync the clock");
        assert!(v["checks"][0].get("fix").is_none());
        assert_eq!(v["summary"]["warn"], 1);
    }

    #[test]
    fn control_characters_in_messages_are_escaped() {
        let r = Report {
            profile: "p".into(),
            checks: vec![Check::fail("config", "bad\x1b[2Jname")],
        };
        assert!(!r.text().contains('\x1b'));
    }
}
