//! Where MFA codes come from: a given code, `mfa_process`, the terminal, or
//! a dialog / YubiKey program when there is no terminal. The terminal also
//! asks enroll's yes/no questions.

pub mod interrupt;
mod program;
mod tty;

use crate::config::CodeSource;
use crate::error::Fail;
use crate::fail;

pub use program::{Dialog, MfaProcess};
pub use tty::{Input, Tty, notify};

/// How to ask for a code when none is given (`--prompt`, `STSMFA_PROMPT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PromptMethod {
    Tty,
    Zenity,
    Kdialog,
    Osascript,
    Ykman,
}

/// What the prompt shows.
pub struct Ask<'a> {
    pub profile: &'a str,
    pub serial: &'a str,
}

/// One way of getting a code.
pub trait CodeProvider {
    /// A 6-digit code. `retry` says why the previous one was not taken.
    fn code(&mut self, ask: &Ask, retry: Option<&str>) -> Result<String, Fail>;
    /// A person answers (so a rejected code can be asked again).
    fn interactive(&self) -> bool;
    /// The code is fixed (asking again gives the same one).
    fn fixed(&self) -> bool {
        false
    }
}

/// Exactly 6 digits after trimming.
pub fn parse_code(s: &str) -> Option<String> {
    let s = s.trim();
    (s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.to_owned())
}

/// A code given with `--mfa-code` or `STSMFA_MFA_CODE`.
pub struct Given {
    code: String,
    from: &'static str,
}

impl CodeProvider for Given {
    fn code(&mut self, _: &Ask, retry: Option<&str>) -> Result<String, Fail> {
        if let Some(why) = retry {
            return Err(fail!("{why}").hint("pass a new code with --mfa-code"));
        }
        parse_code(&self.code).ok_or_else(|| {
            fail!("the MFA code from {} is not 6 digits", self.from)
                .hint("pass the 6-digit code your authenticator shows")
        })
    }
    fn interactive(&self) -> bool {
        false
    }
    fn fixed(&self) -> bool {
        true
    }
}

/// Picks the provider for a resolved code source.
pub fn provider(
    source: &CodeSource,
    ykman_account: Option<&str>,
) -> Result<Box<dyn CodeProvider>, Fail> {
    Ok(match source {
        CodeSource::Given { code, from } => Box::new(Given {
            code: code.clone(),
            from,
        }),
        CodeSource::Process(cmd) => Box::new(MfaProcess::new(cmd.clone())),
        CodeSource::Prompt(Some(PromptMethod::Tty)) => Box::new(Tty::open()?.ok_or_else(no_way)?),
        CodeSource::Prompt(Some(PromptMethod::Ykman)) => Box::new(MfaProcess::ykman(ykman_account)),
        CodeSource::Prompt(Some(dialog)) => Box::new(Dialog::new(*dialog)?),
        CodeSource::Prompt(None) => match Tty::open()? {
            Some(tty) => Box::new(tty),
            None => Box::new(Dialog::first_available().ok_or_else(no_way)?),
        },
    })
}

/// No terminal and nothing else to ask with: say every way out.
fn no_way() -> Fail {
    fail!("an MFA code is needed but there is no terminal to ask on")
        .hint("pass it: --mfa-code 123456, or STSMFA_MFA_CODE=123456")
        .hint("or set mfa_process in the profile: a command that prints the code (e.g. `ykman oath accounts code -s NAME`)")
        .hint("or choose a dialog: --prompt zenity|kdialog|osascript (or stsmfa_prompt in the profile)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits() {
        assert_eq!(parse_code(" 123456\n").as_deref(), Some("123456"));
        for bad in ["12345", "1234567", "12345a", "", "１２３４５６", "123 456"] {
            assert_eq!(parse_code(bad), None, "{bad}");
        }
    }

    #[test]
    fn given_code_is_checked_and_never_retried() {
        let ask = Ask {
            profile: "p",
            serial: "s",
        };
        let mut g = Given {
            code: "12x456".into(),
            from: "--mfa-code",
        };
        assert!(
            g.code(&ask, None)
                .unwrap_err()
                .message
                .contains("--mfa-code")
        );
        let mut g = Given {
            code: "123456".into(),
            from: "--mfa-code",
        };
        assert_eq!(g.code(&ask, None).unwrap(), "123456");
        assert!(g.code(&ask, Some("rejected")).is_err());
    }
}
