//! The terminal: every code prompt and yes/no question. It reads and writes
//! the controlling terminal, never stdout (which belongs to credential_process
//! JSON) nor stderr (which the AWS CLI throws away on success).
//!
//! It reads byte by byte after polling rather than with `read_line`: std
//! retries a read that a signal interrupts, and a caught signal
//! ([`super::interrupt`]) must end the prompt so the caller can clean up.

use super::{Ask, CodeProvider, interrupt, parse_code};
use crate::error::Fail;
use crate::fail;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};

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

/// The longest line kept; the rest of a longer one is read and dropped, so
/// that a paste of garbage cannot grow memory without end.
const MAX_LINE: usize = 256;

/// Terminal input that can be waited on.
pub trait Input: Read {
    /// Waits a short while for input; `false` when none came, so that the
    /// caller looks at the interrupt flag again before reading.
    fn ready(&mut self) -> bool;
}

impl Input for File {
    #[cfg(unix)]
    fn ready(&mut self) -> bool {
        use std::os::fd::AsRawFd;
        let mut p = libc::pollfd {
            fd: self.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // The timeout covers a signal that lands between the check of the
        // flag and this call.
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut p, 1, 250) };
        // On an error other than EINTR the read says what is wrong.
        n > 0 || (n < 0 && std::io::Error::last_os_error().kind() != ErrorKind::Interrupted)
    }

    #[cfg(not(unix))]
    fn ready(&mut self) -> bool {
        true
    }
}

/// The controlling terminal (or, in tests, any input and output).
pub struct Tty<R = File, W = File> {
    input: R,
    output: W,
    /// Whether a caught signal should end the read: [`interrupt::check`],
    /// replaced in tests.
    interrupted: fn() -> Result<(), Fail>,
}

impl Tty {
    /// `Ok(None)` when the process has no controlling terminal.
    pub fn open() -> Result<Option<Tty>, Fail> {
        let opened = OpenOptions::new()
            .read(true)
            .open(TTY_IN)
            .and_then(|input| Ok((input, OpenOptions::new().write(true).open(TTY_OUT)?)));
        Ok(opened.ok().map(|(input, output)| Tty::over(input, output)))
    }
}

impl<R: Input, W: Write> Tty<R, W> {
    /// A terminal reading `input` and writing `output`.
    pub fn over(input: R, output: W) -> Tty<R, W> {
        Tty {
            input,
            output,
            interrupted: interrupt::check,
        }
    }

    pub fn say(&mut self, text: &str) {
        let _ = self.output.write_all(text.as_bytes());
        let _ = self.output.flush();
    }

    /// One line without its ending, cut at [`MAX_LINE`] bytes; `None` at the
    /// end of input. A caught signal ends it with the interrupt's `Fail`.
    pub fn line(&mut self) -> Result<Option<String>, Fail> {
        let mut bytes = Vec::new();
        let mut any = false;
        loop {
            if let Err(e) = (self.interrupted)() {
                self.say("\n");
                return Err(e);
            }
            if !self.input.ready() {
                continue;
            }
            let mut b = [0u8; 1];
            match self.input.read(&mut b) {
                Ok(0) if !any => return Ok(None),
                Ok(0) => break,
                Ok(_) if b[0] == b'\n' => break,
                Ok(_) => {
                    any = true;
                    if bytes.len() < MAX_LINE {
                        bytes.push(b[0]);
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(fail!("cannot read from the terminal: {e}")),
            }
        }
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Asks `question` (already escaped by the caller); Enter is yes.
    pub fn yes(&mut self, question: &str) -> Result<bool, Fail> {
        self.say(question);
        Ok(is_yes(self.line()?.as_deref()))
    }
}

impl Tty {
    /// Asks for a secret (a key, a passphrase) without echo: echo is off
    /// before the question shows, so nothing typed early is echoed either.
    /// `None` at the end of input.
    #[cfg(unix)]
    pub fn hidden(&mut self, question: &str) -> Result<Option<String>, Fail> {
        use std::os::fd::AsRawFd;
        let fd = self.input.as_raw_fd();
        // SAFETY: termios is plain data, filled by tcgetattr on a valid fd.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: valid fd and pointer for the duration of the call.
        let have = unsafe { libc::tcgetattr(fd, &mut saved) } == 0;
        if have {
            let mut quiet = saved;
            quiet.c_lflag &= !(libc::ECHO | libc::ECHONL);
            quiet.c_lflag |= libc::ICANON;
            // SAFETY: as above.
            unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
        }
        self.say(question);
        let line = self.line();
        if have {
            // SAFETY: as above; restores what was there.
            unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
        }
        self.say("\n");
        line
    }

    /// Without termios the secret would be echoed: refuse rather than show it.
    #[cfg(not(unix))]
    pub fn hidden(&mut self, _question: &str) -> Result<Option<String>, Fail> {
        Err(fail!("cannot hide input on this terminal")
            .hint("pass the secret through its environment variable instead"))
    }
}

/// Enter, `y` or `yes` (any case) is yes; any other answer is no. The end
/// of input counts as Enter.
fn is_yes(answer: Option<&str>) -> bool {
    let a = answer.unwrap_or_default().trim().to_ascii_lowercase();
    a.is_empty() || a == "y" || a == "yes"
}

impl<R: Input, W: Write> CodeProvider for Tty<R, W> {
    fn code(&mut self, ask: &Ask, retry: Option<&str>) -> Result<String, Fail> {
        if let Some(why) = retry {
            self.say(&format!("stsmfa: {}\n", crate::escape(why)));
        }
        for _ in 0..MAX_MALFORMED {
            self.say(&prompt_line(ask));
            let Some(line) = self.line()? else {
                self.say("\n");
                return Err(fail!("no MFA code entered")
                    .hint("run the command again and type the 6-digit code"));
            };
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
    use std::cell::Cell;
    use std::io::Cursor;

    /// Typed input: always ready, like a terminal with a line waiting.
    struct Typed(Cursor<Vec<u8>>);

    impl Read for Typed {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.0.read(buf)
        }
    }

    impl Input for Typed {
        fn ready(&mut self) -> bool {
            true
        }
    }

    /// No signal is ever flagged here: the real flag is process-wide, and
    /// the interrupt module's own test raises signals.
    fn never() -> Result<(), Fail> {
        Ok(())
    }

    fn typed(text: &str) -> Tty<Typed, Vec<u8>> {
        Tty {
            interrupted: never,
            ..Tty::over(Typed(Cursor::new(text.as_bytes().to_vec())), Vec::new())
        }
    }

    fn shown(t: &Tty<Typed, Vec<u8>>) -> String {
        String::from_utf8(t.output.clone()).unwrap()
    }

    const ASK: Ask = Ask {
        profile: "work",
        serial: "arn:aws:iam::1:mfa/a",
    };

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
        let mut t = typed("123456\n");
        t.code(&ask, Some("rejected\x1b[2J")).unwrap();
        let out = shown(&t);
        assert!(out.starts_with("stsmfa: rejected\\x1b[2J\n"), "{out:?}");
        assert!(!out.contains('\x1b'), "{out:?}");
    }

    #[test]
    fn a_code_is_asked_until_it_is_six_digits() {
        let mut t = typed("12345\n 654321 \r\n");
        assert_eq!(t.code(&ASK, None).unwrap(), "654321");
        let prompt = "MFA code for profile work (arn:aws:iam::1:mfa/a): ";
        assert_eq!(
            shown(&t),
            format!("{prompt}stsmfa: a code is exactly 6 digits; try again\n{prompt}")
        );
    }

    #[test]
    fn three_malformed_codes_or_the_end_of_input_give_up() {
        let mut t = typed("abc\n1234567\n12 3456\n123456\n");
        let e = t.code(&ASK, None).unwrap_err();
        assert_eq!(e.message, "no valid MFA code after 3 tries");
        assert_eq!(shown(&t).matches("try again").count(), 3);

        let mut t = typed("");
        assert_eq!(
            t.code(&ASK, None).unwrap_err().message,
            "no MFA code entered"
        );
        assert!(shown(&t).ends_with(": \n"), "{:?}", shown(&t));
    }

    #[test]
    fn yes_no_answers() {
        for (typed_in, yes) in [
            ("\n", true),
            ("y\n", true),
            ("Y\n", true),
            (" yes \r\n", true),
            ("YES\n", true),
            ("", true), // the end of input is Enter
            ("n\n", false),
            ("no\n", false),
            ("N\n", false),
            ("yep\n", false),
            ("ja\n", false),
            ("y es\n", false),
        ] {
            let mut t = typed(typed_in);
            assert_eq!(t.yes("Go? [Y/n] ").unwrap(), yes, "{typed_in:?}");
            assert_eq!(shown(&t), "Go? [Y/n] ");
        }
    }

    #[test]
    fn lines_end_at_newline_or_the_end_and_are_cut_when_long() {
        let mut t = typed("first\r\nsecond\nlast");
        assert_eq!(t.line().unwrap().as_deref(), Some("first"));
        assert_eq!(t.line().unwrap().as_deref(), Some("second"));
        assert_eq!(t.line().unwrap().as_deref(), Some("last"));
        assert_eq!(t.line().unwrap(), None);

        let long = format!("{}\n123456\n", "9".repeat(10_000));
        let mut t = typed(&long);
        assert_eq!(t.line().unwrap().map(|l| l.len()), Some(MAX_LINE));
        // the rest of the long line is dropped, not taken as the next answer
        assert_eq!(t.line().unwrap().as_deref(), Some("123456"));

        let mut t = typed("\u{fc}\u{ff}\n");
        assert_eq!(t.line().unwrap().as_deref(), Some("\u{fc}\u{ff}"));
    }

    thread_local! {
        static CHECKS_LEFT: Cell<u32> = const { Cell::new(0) };
    }

    /// Interrupted after a few looks at the flag.
    fn interrupted_soon() -> Result<(), Fail> {
        CHECKS_LEFT.with(|n| match n.get() {
            0 => Err(interrupt::Signal {
                number: 2,
                name: "Ctrl-C",
            }
            .fail("enroll")),
            left => {
                n.set(left - 1);
                Ok(())
            }
        })
    }

    /// Nothing is ever typed (a read would block).
    struct Silent;

    impl Read for Silent {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            panic!("read without input ready")
        }
    }

    impl Input for Silent {
        fn ready(&mut self) -> bool {
            false
        }
    }

    #[test]
    fn a_caught_signal_ends_a_prompt_waiting_for_input() {
        CHECKS_LEFT.with(|n| n.set(3));
        let mut t = Tty {
            interrupted: interrupted_soon,
            ..Tty::over(Silent, Vec::new())
        };
        let e = t.code(&ASK, None).unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.code),
            ("enroll was interrupted (Ctrl-C)", 130)
        );
        assert!(String::from_utf8(t.output).unwrap().ends_with(": \n"));

        CHECKS_LEFT.with(|n| n.set(0));
        let mut t = Tty {
            interrupted: interrupted_soon,
            ..Tty::over(Silent, Vec::new())
        };
        assert_eq!(t.yes("Go? [Y/n] ").unwrap_err().code, 130);
    }

    /// Reads interrupted by a signal (EINTR) are retried only while no
    /// caught signal is flagged.
    struct Eintr(u32, Cursor<Vec<u8>>);

    impl Read for Eintr {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 > 0 {
                self.0 -= 1;
                return Err(ErrorKind::Interrupted.into());
            }
            self.1.read(buf)
        }
    }

    impl Input for Eintr {
        fn ready(&mut self) -> bool {
            true
        }
    }

    #[test]
    fn an_interrupted_read_without_a_caught_signal_goes_on() {
        let mut t = Tty {
            interrupted: never,
            ..Tty::over(Eintr(2, Cursor::new(b"123456\n".to_vec())), Vec::new())
        };
        assert_eq!(t.code(&ASK, None).unwrap(), "123456");
    }
}
