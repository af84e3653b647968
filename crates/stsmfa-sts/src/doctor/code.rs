//! Terminal and code source: can stsmfa ask here, does `mfa_process` print a
//! code, are dialog programs there, and the warning for tools that give a
//! `credential_process` only a few seconds (a person cannot type in time).

use std::time::{Duration, Instant};
use stsmfa_core::config::{CodeSource, Settings};
use stsmfa_core::doctor_report::Check;
use stsmfa_core::error::Fail;
use stsmfa_core::prompt::{Ask, CodeProvider, MfaProcess, PromptMethod};

/// What the checks look at: a seam for unit tests.
pub trait Terminal {
    /// Opens /dev/tty for reading and writing; the error says why not.
    fn tty(&self) -> Result<(), String>;
    fn on_path(&self, program: &str) -> bool;
    /// A desktop a dialog can show on (DISPLAY, WAYLAND_DISPLAY, macOS).
    fn desktop(&self) -> bool;
    /// Runs the code command once; the code itself is dropped here.
    fn code_from(&self, source: &mut dyn CodeProvider, ask: &Ask) -> Result<Duration, Fail>;
}

pub struct RealTerminal;

impl Terminal for RealTerminal {
    fn tty(&self) -> Result<(), String> {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .map(drop)
            .map_err(|e| e.to_string())
    }
    fn on_path(&self, program: &str) -> bool {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
    }
    fn desktop(&self) -> bool {
        cfg!(target_os = "macos")
            || std::env::var_os("DISPLAY").is_some()
            || std::env::var_os("WAYLAND_DISPLAY").is_some()
    }
    fn code_from(&self, source: &mut dyn CodeProvider, ask: &Ask) -> Result<Duration, Fail> {
        let t0 = Instant::now();
        source.code(ask, None).map(|_code| t0.elapsed())
    }
}

/// The credential provider limit of the AWS SDK for Rust in older releases
/// (current ones derive about 20 s from their retry settings; tools may set
/// their own).
const RUST_SDK_LIMIT: Duration = Duration::from_secs(5);
const DIALOGS: [&str; 3] = ["zenity", "kdialog", "osascript"];

pub fn checks(s: &Settings, t: &dyn Terminal) -> Vec<Check> {
    let mut out = Vec::new();
    let needs_person = matches!(s.code, CodeSource::Prompt(_));
    let tty = t.tty();
    out.push(match (&tty, needs_person) {
        (Ok(()), _) => Check::ok("code", "/dev/tty is usable: stsmfa can ask for a code there"),
        (Err(e), false) => Check::ok(
            "code",
            format!("no terminal (/dev/tty: {e}); not needed, the code does not come from a prompt"),
        ),
        (Err(e), true) => Check::warn(
            "code",
            format!("no terminal (/dev/tty: {e}): stsmfa cannot ask for a code on a terminal from here"),
        )
        .fix("run it from a terminal, or set mfa_process in the profile (e.g. `ykman oath accounts code -s NAME`)"),
    });
    let ask = Ask {
        profile: &s.profile,
        serial: s.mfa_serial.as_deref().unwrap_or("(discovered)"),
    };
    match &s.code {
        CodeSource::Given { from, .. } => {
            out.push(Check::ok("code", format!("the code comes from {from}")))
        }
        CodeSource::Process(script) => {
            let mut p = MfaProcess::new(script.clone());
            out.push(timed("mfa_process", t.code_from(&mut p, &ask)));
        }
        CodeSource::Prompt(Some(PromptMethod::Ykman)) => {
            let mut p = MfaProcess::ykman(s.ykman_account.as_deref());
            out.push(timed("ykman", t.code_from(&mut p, &ask)));
        }
        CodeSource::Prompt(Some(PromptMethod::Tty)) => {}
        CodeSource::Prompt(Some(m)) => {
            let prog = DIALOGS
                .into_iter()
                .find(|d| format!("{m:?}").eq_ignore_ascii_case(d))
                .unwrap_or("zenity");
            out.push(if t.on_path(prog) {
                Check::ok("code", format!("the chosen dialog {prog} is installed"))
            } else {
                Check::fail("code", format!("the chosen dialog {prog} is not installed")).fix(
                    format!("install {prog}, or choose another --prompt / stsmfa_prompt"),
                )
            });
        }
        CodeSource::Prompt(None) => {
            let found: Vec<&str> = DIALOGS.into_iter().filter(|d| t.on_path(d)).collect();
            out.push(match (found.first(), t.desktop(), tty.is_ok()) {
                (Some(d), true, _) => Check::ok(
                    "code",
                    format!(
                        "dialog programs found: {}; without a terminal stsmfa asks with {d}",
                        found.join(", ")
                    ),
                ),
                (_, _, true) => Check::ok(
                    "code",
                    "no dialog program with a desktop: stsmfa asks on the terminal",
                ),
                _ => Check::fail(
                    "code",
                    "no terminal and no dialog program with a desktop: a prompt would fail here",
                )
                .fix("set mfa_process in the profile, or pass --mfa-code / STSMFA_MFA_CODE"),
            });
        }
    }
    if needs_person && !matches!(s.code, CodeSource::Prompt(Some(PromptMethod::Ykman))) {
        out.push(
            Check::warn(
                "code",
                "a prompt needs a person: tools with short credential_process timeouts give up first on a miss (AWS SDK for Rust: 5 s in older releases or where a tool sets it; Go SDK: 1 min)",
            )
            .fix(format!("get the session before such a tool runs: `stsmfa credential-process {} > /dev/null`, or `stsmfa exec {} -- TOOL`", s.served_profile(), s.served_profile()))
            .fix("or set mfa_process, which needs no person"),
        );
    }
    out
}

/// The line for a code command that ran: fast enough for every SDK, or not.
fn timed(what: &str, result: Result<Duration, Fail>) -> Check {
    match result {
        Ok(took) if took < RUST_SDK_LIMIT - Duration::from_secs(1) => Check::ok(
            "code",
            format!("{what} printed a 6-digit code in {:.1} s (within a 5 s provider limit)", took.as_secs_f64()),
        ),
        Ok(took) => Check::warn(
            "code",
            format!("{what} printed a 6-digit code but took {:.1} s: tools with a 5 s provider limit (AWS SDK for Rust, older releases or where a tool sets it) give up first", took.as_secs_f64()),
        )
        .fix("get the session before such a tool runs (`stsmfa credential-process PROFILE > /dev/null`)"),
        Err(f) => Check::from_fail("code", &f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use stsmfa_core::doctor_report::Status;

    #[derive(Default)]
    struct FakeTerminal {
        tty: bool,
        dialogs: Vec<&'static str>,
        desktop: bool,
        took: Option<Duration>,
        ran: Cell<u32>,
    }

    impl Terminal for FakeTerminal {
        fn tty(&self) -> Result<(), String> {
            if self.tty {
                Ok(())
            } else {
                Err("No such device or address".into())
            }
        }
        fn on_path(&self, program: &str) -> bool {
            self.dialogs.contains(&program)
        }
        fn desktop(&self) -> bool {
            self.desktop
        }
        fn code_from(&self, _: &mut dyn CodeProvider, _: &Ask) -> Result<Duration, Fail> {
            self.ran.set(self.ran.get() + 1);
            self.took.ok_or_else(|| {
                stsmfa_core::fail!("mfa_process `x` exited with status 1").hint("check the command")
            })
        }
    }

    fn settings(code: CodeSource) -> Settings {
        let profiles = stsmfa_core::profiles::ProfileSet::parse(&[(
            stsmfa_core::profiles::FileKind::Credentials,
            "[work]\naws_access_key_id = AKIAABCDEFGHIJKLMNOP\naws_secret_access_key = s\n",
        )])
        .unwrap();
        let env = |k: &str| (k == "STSMFA_STATE_DIR").then(|| "/tmp/x".to_owned());
        let mut s =
            stsmfa_core::config::resolve(Some("work"), &Default::default(), &env, &profiles)
                .unwrap();
        s.code = code;
        s
    }

    #[test]
    fn mfa_process_runs_once_and_is_timed() {
        let t = FakeTerminal {
            took: Some(Duration::from_millis(200)),
            ..Default::default()
        };
        let out = checks(&settings(CodeSource::Process("x".into())), &t);
        assert_eq!(t.ran.get(), 1);
        assert!(out.iter().all(|c| c.status == Status::Ok), "{out:?}");
        assert!(out[1].message.contains("0.2 s"));
    }

    #[test]
    fn a_slow_or_failing_mfa_process_is_reported() {
        let slow = FakeTerminal {
            took: Some(Duration::from_secs(6)),
            ..Default::default()
        };
        assert_eq!(
            checks(&settings(CodeSource::Process("x".into())), &slow)[1].status,
            Status::Warn
        );
        let broken = FakeTerminal::default();
        let c = &checks(&settings(CodeSource::Process("x".into())), &broken)[1];
        assert_eq!(c.status, Status::Fail);
        assert_eq!(c.fix, ["check the command"]);
    }

    #[test]
    fn a_prompt_warns_about_short_provider_timeouts() {
        let t = FakeTerminal {
            tty: true,
            ..Default::default()
        };
        let out = checks(&settings(CodeSource::Prompt(None)), &t);
        let last = out.last().unwrap();
        assert_eq!(last.status, Status::Warn);
        assert!(
            last.message.contains("AWS SDK for Rust: 5 s"),
            "{}",
            last.message
        );
    }

    #[test]
    fn no_terminal_and_no_dialog_fails_a_prompt() {
        let out = checks(
            &settings(CodeSource::Prompt(None)),
            &FakeTerminal::default(),
        );
        assert_eq!(out[0].status, Status::Warn);
        assert_eq!(out[1].status, Status::Fail);
        let t = FakeTerminal {
            dialogs: vec!["zenity"],
            desktop: true,
            ..Default::default()
        };
        let out = checks(&settings(CodeSource::Prompt(None)), &t);
        assert_eq!(out[1].status, Status::Ok);
        assert!(out[1].message.contains("zenity"));
    }

    #[test]
    fn a_chosen_dialog_that_is_missing_fails() {
        let out = checks(
            &settings(CodeSource::Prompt(Some(PromptMethod::Kdialog))),
            &FakeTerminal::default(),
        );
        assert_eq!(out[1].status, Status::Fail);
        assert!(out[1].message.contains("kdialog"));
    }
}
