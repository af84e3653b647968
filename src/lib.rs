//! stsmfa: MFA-authenticated AWS session credentials, cached in the OS keyring.
//!
//! The binary is a thin shell over these modules; see README.md for the
//! user-facing contract.

pub mod cache;
pub mod cli;
pub mod codes;
pub mod commands;
pub mod config;
pub mod credentials;
pub mod error;
pub mod exec;
pub mod failure;
pub mod lock;
pub mod output;
pub mod prompt;
pub mod secret;
pub mod session;
pub mod statedir;
pub mod store;
pub mod sts;

use std::io::Write;

/// Prints a failure as `stsmfa: error: …` plus `hint:` lines and maps the
/// exit code.
#[allow(clippy::print_stderr)]
pub fn exit(result: Result<u8, error::Fail>) -> std::process::ExitCode {
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(fail) => {
            eprintln!("stsmfa: error: {}", fail.message);
            for hint in &fail.hints {
                eprintln!("hint: {hint}");
            }
            std::process::ExitCode::from(fail.code)
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

/// A `-v` diagnostic line on stderr. Callers never pass secrets.
#[allow(clippy::print_stderr)]
pub fn diag(msg: &str) {
    eprintln!("stsmfa: {msg}");
}

/// A warning on stderr.
#[allow(clippy::print_stderr)]
pub fn warn(msg: &str) {
    eprintln!("stsmfa: warning: {msg}");
}

/// A failure that does not stop the command, with its hints.
#[allow(clippy::print_stderr)]
pub fn warn_fail(prefix: &str, fail: &error::Fail) {
    eprintln!("stsmfa: warning: {prefix}{}", fail.message);
    for h in &fail.hints {
        eprintln!("hint: {h}");
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
