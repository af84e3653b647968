//! Helpers shared by the unit tests.

use std::path::{Path, PathBuf};

/// A fresh path under the temp dir for one test (state directories and the
/// like), removed with everything in it when the test ends, pass or fail.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Not created: the code under test creates it, as it would the real one.
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("stsmfa-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}
