//! The terminal prompt. It reads and writes the controlling terminal, never
//! stdout (which belongs to credential_process JSON) nor stderr (which the AWS
//! CLI throws away on success).

use super::{Ask, CodeProvider, parse_code};
use crate::error::Fail;
use crate::fail;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};

#[cfg(windows)]
const TTY_IN: &str = "CONIN$";
#[cfg(windows)]
const TTY_OUT: &str = "CONOUT$";
#[cfg(not(windows))]
const TTY_IN: &str = "/dev/tty";
#[cfg(not(windows))]
const TTY_OUT: &str = "/dev/tty";

/// How many malformed entries before giving up.
const MAX_MALFORMED: usize = 3;

pub struct Tty {
    input: BufReader<File>,
    output: File,
}

impl Tty {
    /// `Ok(None)` when the process has no controlling terminal.
    pub fn open() -> Result<Option<Tty>, Fail> {
        let input = match OpenOptions::new().read(true).open(TTY_IN) {
            Ok(f) => f,
            Err(_) => return Ok(None),
        };
        let output = match OpenOptions::new().write(true).open(TTY_OUT) {
            Ok(f) => f,
            Err(_) => return Ok(None),
        };
        Ok(Some(Tty {
            input: BufReader::new(input),
            output,
        }))
    }

    fn say(&mut self, text: &str) {
        let _ = self.output.write_all(text.as_bytes());
        let _ = self.output.flush();
    }
}

impl CodeProvider for Tty {
    fn code(&mut self, ask: &Ask, retry: Option<&str>) -> Result<String, Fail> {
        if let Some(why) = retry {
            self.say(&format!("stsmfa: {}\n", crate::escape(why)));
        }
        for _ in 0..MAX_MALFORMED {
            self.say(&prompt_line(ask));
            let mut line = String::new();
            let n = self
                .input
                .read_line(&mut line)
                .map_err(|e| fail!("cannot read from the terminal: {e}"))?;
            if n == 0 {
                self.say("\n");
                return Err(fail!("no MFA code entered")
                    .hint("run the command again and type the 6-digit code"));
            }
            if let Some(code) = parse_code(&line) {
                return Ok(code);
            }
            self.say("stsmfa: a code is exactly 6 digits; try again\n");
        }
        Err(fail!("no valid MFA code after {MAX_MALFORMED} tries")
            .hint("type the 6 digits your authenticator shows"))
    }

    fn interactive(&self) -> bool {
        true
    }
}

/// The question, with names from the config files made harmless.
fn prompt_line(ask: &Ask) -> String {
    format!(
        "MFA code for profile {} ({}): ",
        crate::escape(ask.profile),
        crate::escape(ask.serial)
    )
}

/// A status line for the person at the keyboard: on the terminal when there
/// is one (stderr is invisible under credential_process), else on stderr.
pub fn notify(text: &str) {
    if let Ok(mut f) = OpenOptions::new().write(true).open(TTY_OUT) {
        let _ = writeln!(f, "stsmfa: {}", crate::escape(text));
    } else {
        crate::warn(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_escapes_names_from_config_files() {
        let ask = Ask {
            profile: "work\x1b]0;owned\x07",
            serial: "arn:aws:iam::1:mfa/a\nMFA code for profile x",
        };
        assert_eq!(
            prompt_line(&ask),
            "MFA code for profile work\\x1b]0;owned\\x07 (arn:aws:iam::1:mfa/a\\nMFA code for profile x): "
        );
    }
}
