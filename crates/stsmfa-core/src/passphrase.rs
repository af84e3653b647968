//! `STSMFA_FILE_PASSPHRASE`, the passphrase of the encrypted key file.
//!
//! Both binaries take it out of their own environment before anything else
//! runs, so that no child (`exec`'s command, `mfa_process`, a dialog) ever
//! inherits it; the small binary hands it on only to `stsmfa-sts`.

use crate::secret::Secret;
use std::sync::OnceLock;

pub const VAR: &str = "STSMFA_FILE_PASSPHRASE";

static TAKEN: OnceLock<Option<Secret<String>>> = OnceLock::new();

/// Moves the variable from the environment into this process's memory.
/// Call it first thing in `main`, while the process has one thread.
pub fn take_from_env() {
    let value = std::env::var(VAR).ok().filter(|v| !v.is_empty());
    if std::env::var_os(VAR).is_some() {
        // SAFETY: called at the start of main, before any other thread exists.
        unsafe { std::env::remove_var(VAR) };
    }
    let _ = TAKEN.set(value.map(Secret::new));
}

/// The passphrase the process was started with, if any.
pub fn get() -> Option<&'static Secret<String>> {
    TAKEN.get().and_then(Option::as_ref)
}
