//! The state directory: lock files, the spent-code record and short-lived
//! failure records. Nothing secret lives here, but other local users must not
//! be able to plant files in it, so every access goes through this module.

use crate::error::Fail;
use crate::fail;
use std::fs::File;
use std::path::Path;

/// Creates the state directory (mode 0700), or checks an existing one.
pub fn ensure(dir: &Path) -> Result<(), Fail> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).map_err(|e| {
        fail!("cannot create the state directory {}: {e}", dir.display())
            .hint("set STSMFA_STATE_DIR to a writable directory")
    })
}

/// Opens (creating it) the lock file `name` in `dir`.
pub fn open_lock(dir: &Path, name: &str) -> Result<File, Fail> {
    ensure(dir)?;
    let path = dir.join(name);
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| {
            fail!("cannot open the lock file {}: {e}", path.display())
                .hint("set STSMFA_STATE_DIR to a writable directory")
        })
}

/// The contents of the small file `name`, if it is there and readable.
pub fn read(dir: &Path, name: &str) -> Option<Vec<u8>> {
    std::fs::read(dir.join(name)).ok()
}

/// Replaces the file `name` with `bytes` (temp file and rename).
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), Fail> {
    ensure(dir)?;
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| fail!("cannot write {}: {e}", path.display()))
}

/// Removes the file `name`; a missing file is fine.
pub fn remove(dir: &Path, name: &str) {
    let _ = std::fs::remove_file(dir.join(name));
}
