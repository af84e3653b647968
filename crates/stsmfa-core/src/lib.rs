//! stsmfa: MFA-authenticated AWS session credentials, cached in the OS keyring.
//!
//! The binary is a thin shell over these modules; see README.md for the
//! user-facing contract.

pub mod admin_cli;
pub mod cache;
pub mod cli;
pub mod codes;
pub mod commands;
pub mod config;
pub mod credentials;
pub mod doctor_report;
pub mod error;
pub mod exec;
pub mod failure;
pub mod harden;
pub mod lock;
pub mod output;
pub mod passphrase;
pub mod profiles;
pub mod prompt;
pub mod roles;
pub mod secret;
pub mod session;
pub mod statedir;
pub mod store;
pub mod sts;
#[cfg(test)]
mod testkit;

use std::borrow::Cow;
use std::io::Write;

/// Reads a variable; a seam so tests need not touch the process environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub fn real_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The variable that asks stsmfa for shell completions. Not clap's default
/// `COMPLETE`: a `COMPLETE=1` left in the environment must not hijack calls.
pub const COMPLETE_VAR: &str = "STSMFA_COMPLETE";

/// Makes text from servers and files harmless on a terminal: a newline in an
/// AWS error message must not start a forged `hint:` line, nor an escape
/// sequence move the cursor or retitle the window. Line breaks, C0 and C1
/// controls, DEL and the bidirectional overrides become visible escapes.
pub fn escape(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// One line on stderr, escaped. Every `stsmfa:` and `hint:` line goes
/// through here.
#[allow(clippy::print_stderr)]
fn say(prefix: &str, text: &str) {
    eprintln!("{prefix}{}", escape(text));
}

/// Prints a failure as `stsmfa: error: …` plus `hint:` lines and maps the
/// exit code.
pub fn exit(result: Result<u8, error::Fail>) -> std::process::ExitCode {
    std::process::ExitCode::from(exit_code(result))
}

/// [`exit`] as a number, for a `main` that returns one.
pub fn exit_code(result: Result<u8, error::Fail>) -> u8 {
    match result {
        Ok(code) => code,
        Err(fail) => {
            say("stsmfa: error: ", &fail.message);
            for hint in &fail.hints {
                say("hint: ", hint);
            }
            fail.code
        }
    }
}

/// Writes what a command produces to stdout. A closed pipe (`| head`) is
/// not an error.
#[allow(clippy::print_stdout)]
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Turns `-v` diagnostics on for the whole process: set once at start-up
/// (ripgrep's `messages` style), so no function needs a `verbose` argument.
pub fn set_verbose(on: bool) {
    VERBOSE.store(on, std::sync::atomic::Ordering::Relaxed);
}

pub fn verbose() -> bool {
    VERBOSE.load(std::sync::atomic::Ordering::Relaxed)
}

/// A `-v` diagnostic line on stderr, shown only with `-v`. Callers never
/// pass secrets.
pub fn diag(msg: &str) {
    if verbose() {
        note(msg);
    }
}

/// A line for the user on stderr (what `clear` removed, for instance).
pub fn note(msg: &str) {
    say("stsmfa: ", msg);
}

/// A warning on stderr.
pub fn warn(msg: &str) {
    say("stsmfa: warning: ", msg);
}

/// A failure that does not stop the command, with its hints.
pub fn warn_fail(prefix: &str, fail: &error::Fail) {
    say("stsmfa: warning: ", &format!("{prefix}{}", fail.message));
    for h in &fail.hints {
        say("hint: ", h);
    }
}

/// FNV-1a: a stable, dependency-free hash for file names.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Drives a future that never really waits (such as the SDK's profile
/// loader, which reads files with std::fs) without starting a runtime.
pub fn block_on_ready<F: std::future::Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escape_makes_controls_visible() {
        assert_eq!(escape("plain text: a/b, ü €"), "plain text: a/b, ü €");
        assert_eq!(
            escape("denied\nhint: run: curl x | sh\r"),
            "denied\\nhint: run: curl x | sh\\r"
        );
        assert_eq!(escape("\x1b[31mred\x07\x7f\t"), "\\x1b[31mred\\x07\\x7f\\t");
        assert_eq!(escape("a\u{9b}31mb"), "a\\u{9b}31mb");
        assert_eq!(escape("x\u{202e}y\u{2028}"), "x\\u{202e}y\\u{2028}");
        assert_eq!(escape("\0"), "\\x00");
        for c in (0u32..0x20).chain(0x7f..0xa0) {
            let s = char::from_u32(c).unwrap().to_string();
            let e = escape(&s);
            assert!(
                e.chars().all(|c| (' '..='~').contains(&c)),
                "{c:#x} -> {e:?}"
            );
        }
    }
}
