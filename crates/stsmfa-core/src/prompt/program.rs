//! Codes from other programs: `mfa_process`, GUI dialogs and ykman.

use super::PromptMethod;
use super::{Ask, CodeProvider, parse_code};
use crate::error::Fail;
use crate::fail;
use std::fs::OpenOptions;
use std::process::{Command, Stdio};

/// Runs a program and returns its trimmed stdout. Its stdin and stderr go to
/// the terminal when there is one, so a YubiKey "touch" message shows even
/// under credential_process.
fn run(mut cmd: Command, what: &str) -> Result<String, Fail> {
    cmd.stdout(Stdio::piped());
    #[cfg(unix)]
    // SAFETY: restore_child_limits is async-signal-safe (atomics and setrlimit).
    unsafe {
        // stsmfa runs without core dumps; the program gets the user's limit.
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            crate::harden::restore_child_limits();
            Ok(())
        });
    }
    match OpenOptions::new().read(true).write(true).open("/dev/tty") {
        Ok(tty) => {
            let err = tty
                .try_clone()
                .map_err(|e| fail!("cannot use the terminal: {e}"))?;
            cmd.stdin(tty).stderr(err);
        }
        Err(_) => {
            cmd.stdin(Stdio::null()).stderr(Stdio::inherit());
        }
    }
    let out = cmd.output().map_err(|e| {
        fail!("cannot run {what}: {e}").hint("check that it is installed and on PATH")
    })?;
    if !out.status.success() {
        return Err(fail!("{what} failed ({})", out.status)
            .hint("run it by hand to see why; it must print the 6-digit code"));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The code a program printed: its whole trimmed stdout, except that ykman
/// prints `NAME  123456`, so there the last word counts.
fn checked(output: &str, what: &str, last_word: bool) -> Result<String, Fail> {
    let text = if last_word {
        output.split_whitespace().last().unwrap_or("")
    } else {
        output
    };
    parse_code(text).ok_or_else(|| {
        fail!("{what} did not print a 6-digit code").hint("it must print only the code on stdout")
    })
}

/// `mfa_process` (run with `sh -c`, as aws-vault does) or ykman.
pub enum MfaProcess {
    Script(String),
    /// `ykman oath accounts code -s ACCOUNT`; the MFA serial when no account is set.
    Ykman(Option<String>),
}

impl MfaProcess {
    pub fn new(script: String) -> MfaProcess {
        MfaProcess::Script(script)
    }

    pub fn ykman(account: Option<&str>) -> MfaProcess {
        MfaProcess::Ykman(account.map(str::to_owned))
    }
}

impl CodeProvider for MfaProcess {
    fn code(&mut self, ask: &Ask, _retry: Option<&str>) -> Result<String, Fail> {
        let (cmd, what) = match self {
            MfaProcess::Script(script) => {
                let mut cmd = Command::new("sh");
                cmd.arg("-c").arg(&*script);
                (cmd, format!("mfa_process `{script}`"))
            }
            MfaProcess::Ykman(account) => {
                let account = account.as_deref().unwrap_or(ask.serial);
                let mut cmd = Command::new("ykman");
                cmd.args(["oath", "accounts", "code", "-s", account]);
                (cmd, format!("ykman (account {account})"))
            }
        };
        checked(
            &run(cmd, &what)?,
            &what,
            matches!(self, MfaProcess::Ykman(_)),
        )
    }
    fn interactive(&self) -> bool {
        false
    }
}

/// A GUI dialog: zenity, kdialog or osascript.
pub struct Dialog {
    method: PromptMethod,
}

const DIALOGS: [(PromptMethod, &str); 3] = [
    (PromptMethod::Zenity, "zenity"),
    (PromptMethod::Kdialog, "kdialog"),
    (PromptMethod::Osascript, "osascript"),
];

fn program(method: PromptMethod) -> &'static str {
    DIALOGS
        .iter()
        .find(|(m, _)| *m == method)
        .map(|(_, p)| *p)
        .unwrap_or("tty")
}

fn on_path(prog: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
}

impl Dialog {
    pub fn new(method: PromptMethod) -> Result<Dialog, Fail> {
        let prog = program(method);
        if !on_path(prog) {
            return Err(fail!(
                "{prog} is not installed (chosen with --prompt, STSMFA_PROMPT or stsmfa_prompt)"
            )
            .hint("install it, or choose another --prompt"));
        }
        Ok(Dialog { method })
    }

    /// The first dialog program installed, when a desktop is there to show it.
    pub fn first_available() -> Option<Dialog> {
        let desktop = cfg!(target_os = "macos")
            || std::env::var_os("DISPLAY").is_some()
            || std::env::var_os("WAYLAND_DISPLAY").is_some();
        if !desktop {
            return None;
        }
        DIALOGS
            .iter()
            .find(|(_, p)| on_path(p))
            .map(|(m, _)| Dialog { method: *m })
    }
}

impl CodeProvider for Dialog {
    fn code(&mut self, ask: &Ask, retry: Option<&str>) -> Result<String, Fail> {
        let mut text = format!("MFA code for profile {} ({})", ask.profile, ask.serial);
        if let Some(why) = retry {
            text = format!("{why}\n\n{text}");
        }
        let prog = program(self.method);
        let mut cmd = Command::new(prog);
        match self.method {
            PromptMethod::Zenity => cmd.args(["--entry", "--title", "stsmfa", "--text", &text]),
            PromptMethod::Kdialog => cmd.args(["--title", "stsmfa", "--inputbox", &text]),
            _ => {
                let quoted = text.replace('\\', "\\\\").replace('"', "\\\"");
                cmd.args(["-e", &format!("text returned of (display dialog \"{quoted}\" default answer \"\" with title \"stsmfa\")")])
            }
        };
        checked(&run(cmd, prog)?, prog, false)
    }
    fn interactive(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::checked;

    #[test]
    fn program_output_is_the_code_ykman_output_its_last_word() {
        assert_eq!(checked(" 123456\n", "p", false).unwrap(), "123456");
        assert!(checked("code: 123456", "p", false).is_err());
        assert_eq!(
            checked("AWS:alice@1  123456", "ykman", true).unwrap(),
            "123456"
        );
        assert!(checked("", "ykman", true).is_err());
    }
}
