//! The state directory: lock files, the spent-code record and short-lived
//! failure records. Nothing secret lives here, but another local user who
//! could plant files or symlinks in it could make stsmfa overwrite the
//! user's files, hang, or block, so every access goes through this module:
//!
//! - the directory must belong to the user and not be writable by group or
//!   others (one stsmfa creates is 0700);
//! - files are opened relative to the checked directory, never through a
//!   symlink, non-blocking (a FIFO cannot hang us), and must be regular files
//!   of the user's;
//! - a replacement goes to an exclusively created temp file with an
//!   unpredictable name (mode 0600), which is then renamed over the old one;
//! - reads are bounded.
//!
//! On Windows the directory is under the user's own profile (see
//! `config::state_dir`), protected by its ACL; only the plain checks apply.

use crate::error::Fail;
use crate::fail;
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// More than any record stsmfa writes (a line, or a short JSON error).
pub const MAX_READ: u64 = 64 * 1024;

const HINT: &str =
    "set STSMFA_STATE_DIR to a directory of your own (stsmfa creates it with mode 0700)";

/// Creates the state directory (mode 0700), or checks that an existing one
/// is the user's and not writable by others.
pub fn ensure(dir: &Path) -> Result<(), Fail> {
    sys::Dir::at(dir, true).map(drop)
}

/// True when `dir` exists, is the user's and others cannot write to it.
pub fn is_private(dir: &Path) -> bool {
    sys::Dir::at(dir, false).is_ok()
}

/// Opens (creating it, mode 0600) the lock file `name` in `dir`.
pub fn open_lock(dir: &Path, name: &str) -> Result<File, Fail> {
    sys::Dir::at(dir, true)?.open_file(name, sys::Access::Lock)
}

/// Opens the existing file `name` read-only (for a lock probe); `None` when
/// it or the directory is missing or fails the checks. Creates nothing.
pub fn open_existing(dir: &Path, name: &str) -> Option<File> {
    sys::Dir::at(dir, false)
        .ok()?
        .open_file(name, sys::Access::Read)
        .ok()
}

/// The contents of the small file `name`, if it is there, a regular file and
/// at most `MAX_READ` bytes, in a state directory that passes the checks.
pub fn read(dir: &Path, name: &str) -> Option<Vec<u8>> {
    let file = sys::Dir::at(dir, false)
        .ok()?
        .open_file(name, sys::Access::Read)
        .ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_READ + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= MAX_READ).then_some(bytes)
}

/// Replaces the file `name` with `bytes` (temp file and rename). Something
/// other than a regular file in its place is an error naming it.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), Fail> {
    sys::Dir::at(dir, true)?.replace(name, bytes)
}

/// Removes the file `name`; a missing file or directory is fine.
pub fn remove(dir: &Path, name: &str) {
    if let Ok(d) = sys::Dir::at(dir, false) {
        d.remove(name);
    }
}

/// Only plain names: a name with a separator would leave the checked directory.
fn check_name(dir: &Path, name: &str) -> Result<(), Fail> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(fail!(
            "invalid file name {name:?} in the state directory {}",
            dir.display()
        ));
    }
    Ok(())
}

/// A temp file name nobody can guess in advance (std's hasher keys are
/// random per process).
fn temp_name(name: &str) -> String {
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = std::hash::RandomState::new().hash_one((
        std::process::id(),
        std::time::SystemTime::now(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
    ));
    format!(".{name}.{n:016x}.tmp")
}

#[cfg(unix)]
mod sys {
    use super::{HINT, check_name, temp_name};
    use crate::error::Fail;
    use crate::fail;
    use rustix::fs::{self as rfs, AtFlags, CWD, FileType, Mode, OFlags};
    use rustix::io::Errno;
    use std::fs::File;
    use std::io::Write;
    use std::os::fd::OwnedFd;
    use std::path::{Path, PathBuf};

    pub enum Access {
        Read,
        Lock,
    }

    /// The checked directory, held open so that later opens are relative to
    /// the directory that was checked, whatever happens to its path.
    pub struct Dir {
        fd: OwnedFd,
        path: PathBuf,
    }

    fn euid() -> u32 {
        rustix::process::geteuid().as_raw()
    }

    fn kind(mode: rfs::RawMode) -> &'static str {
        match FileType::from_raw_mode(mode) {
            FileType::RegularFile => "a regular file",
            FileType::Directory => "a directory",
            FileType::Symlink => "a symbolic link",
            FileType::Fifo => "a FIFO",
            FileType::Socket => "a socket",
            FileType::CharacterDevice | FileType::BlockDevice => "a device",
            FileType::Unknown => "of an unknown kind",
        }
    }

    fn not_regular(path: &Path, what: &str) -> Fail {
        fail!(
            "{} in the state directory is {what}, not a regular file",
            path.display()
        )
        .hint(format!(
            "remove it (stsmfa never follows links or opens special files there): rm {}",
            path.display()
        ))
    }

    fn foreign(path: &Path, uid: u32) -> Fail {
        fail!(
            "{} in the state directory belongs to another user (uid {uid})",
            path.display()
        )
        .hint(format!("remove it: rm {}", path.display()))
    }

    fn cannot(what: &str, path: &Path, e: impl std::fmt::Display) -> Fail {
        fail!("cannot {what} {}: {e}", path.display()).hint(HINT)
    }

    impl Dir {
        /// Opens and checks `dir`, creating it (0700) when `create` says so.
        pub fn at(dir: &Path, create: bool) -> Result<Dir, Fail> {
            let fd = match Dir::open_existing(dir)? {
                Some(fd) => fd,
                None if create => {
                    let mut b = std::fs::DirBuilder::new();
                    std::os::unix::fs::DirBuilderExt::mode(b.recursive(true), 0o700);
                    b.create(dir)
                        .map_err(|e| cannot("create the state directory", dir, e))?;
                    Dir::open_existing(dir)?
                        .ok_or_else(|| cannot("open the state directory", dir, "it vanished"))?
                }
                None => {
                    return Err(cannot("open the state directory", dir, "it does not exist"));
                }
            };
            let st = rfs::fstat(&fd).map_err(|e| cannot("check the state directory", dir, e))?;
            if st.st_uid != euid() {
                return Err(fail!(
                    "the state directory {} belongs to another user (uid {}), who could plant files in it",
                    dir.display(),
                    st.st_uid
                )
                .hint(format!(
                    "remove {} so that stsmfa creates its own, or {HINT}",
                    dir.display()
                )));
            }
            let mode = st.st_mode & 0o7777;
            if mode & 0o022 != 0 {
                return Err(fail!(
                    "the state directory {} is writable by other users (mode {mode:04o})",
                    dir.display()
                )
                .hint(format!("run `chmod go-w {}`, or {HINT}", dir.display())));
            }
            Ok(Dir {
                fd,
                path: dir.to_owned(),
            })
        }

        /// `None` when there is nothing at `dir`. A symlink is followed only
        /// when it is the user's (or root's): one planted by someone else
        /// could point anywhere.
        fn open_existing(dir: &Path) -> Result<Option<OwnedFd>, Fail> {
            let mut flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
            match rfs::lstat(dir) {
                Err(Errno::NOENT) => return Ok(None),
                Err(e) => return Err(cannot("open the state directory", dir, e)),
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                    if st.st_uid != euid() && st.st_uid != 0 {
                        return Err(fail!(
                            "the state directory {} is a symbolic link of another user (uid {})",
                            dir.display(),
                            st.st_uid
                        )
                        .hint(HINT));
                    }
                }
                Ok(_) => flags |= OFlags::NOFOLLOW,
            }
            match rfs::openat(CWD, dir, flags, Mode::empty()) {
                Ok(fd) => Ok(Some(fd)),
                Err(Errno::NOENT) => Ok(None),
                Err(e) => Err(cannot("open the state directory", dir, e)),
            }
        }

        /// Opens `name` without following a symlink or blocking on a FIFO,
        /// and makes sure it is a regular file of the user's.
        pub fn open_file(&self, name: &str, how: Access) -> Result<File, Fail> {
            check_name(&self.path, name)?;
            let path = self.path.join(name);
            let flags = match how {
                Access::Read => OFlags::RDONLY,
                Access::Lock => OFlags::RDWR | OFlags::CREATE,
            };
            let fd = rfs::openat(
                &self.fd,
                name,
                flags | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|e| match e {
                // What O_NOFOLLOW answers for a symlink (EMLINK on FreeBSD).
                Errno::LOOP | Errno::MLINK => not_regular(&path, "a symbolic link"),
                Errno::NXIO => not_regular(&path, "a FIFO"),
                e => cannot("open", &path, e),
            })?;
            let st = rfs::fstat(&fd).map_err(|e| cannot("check", &path, e))?;
            if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                return Err(not_regular(&path, kind(st.st_mode)));
            }
            if st.st_uid != euid() {
                return Err(foreign(&path, st.st_uid));
            }
            let fl = rfs::fcntl_getfl(&fd).map_err(|e| cannot("open", &path, e))?;
            rfs::fcntl_setfl(&fd, fl - OFlags::NONBLOCK).map_err(|e| cannot("open", &path, e))?;
            Ok(File::from(fd))
        }

        /// Creates `name` (0600), failing if anything, even a dangling
        /// symlink, is already there.
        pub fn create_exclusive(&self, name: &str) -> Result<OwnedFd, Errno> {
            rfs::openat(
                &self.fd,
                name,
                OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::NOFOLLOW
                    | OFlags::NOCTTY
                    | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
        }

        pub fn replace(&self, name: &str, bytes: &[u8]) -> Result<(), Fail> {
            check_name(&self.path, name)?;
            let path = self.path.join(name);
            match rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile => {
                    return Err(not_regular(&path, kind(st.st_mode)));
                }
                Ok(_) | Err(Errno::NOENT) => {}
                Err(e) => return Err(cannot("write", &path, e)),
            }
            let (tmp, fd) = (0..8)
                .find_map(|_| {
                    let tmp = temp_name(name);
                    match self.create_exclusive(&tmp) {
                        Err(Errno::EXIST) => None,
                        r => Some(r.map(|fd| (tmp, fd))),
                    }
                })
                .unwrap_or(Err(Errno::EXIST))
                .map_err(|e| cannot("write", &path, e))?;
            // Synced before the rename: a crash leaves the old file or the new.
            let mut file = File::from(fd);
            let done = file
                .write_all(bytes)
                .and_then(|()| file.sync_all())
                .and_then(|()| {
                    rfs::renameat(&self.fd, &tmp, &self.fd, name).map_err(std::io::Error::from)
                });
            if let Err(e) = done {
                let _ = rfs::unlinkat(&self.fd, &tmp, AtFlags::empty());
                return Err(cannot("write", &path, e));
            }
            Ok(())
        }

        pub fn remove(&self, name: &str) {
            if check_name(&self.path, name).is_ok() {
                let _ = rfs::unlinkat(&self.fd, name, AtFlags::empty());
            }
        }
    }
}

#[cfg(not(unix))]
mod sys {
    use super::{HINT, check_name, temp_name};
    use crate::error::Fail;
    use crate::fail;
    use std::fs::File;
    use std::io::Write;
    use std::path::{Path, PathBuf};

    pub enum Access {
        Read,
        Lock,
    }

    pub struct Dir {
        path: PathBuf,
    }

    fn cannot(what: &str, path: &Path, e: impl std::fmt::Display) -> Fail {
        fail!("cannot {what} {}: {e}", path.display()).hint(HINT)
    }

    fn regular(path: &Path) -> Result<(), Fail> {
        match std::fs::symlink_metadata(path) {
            Ok(m) if !m.file_type().is_file() => Err(fail!(
                "{} in the state directory is not a regular file",
                path.display()
            )
            .hint("remove it")),
            _ => Ok(()),
        }
    }

    impl Dir {
        pub fn at(dir: &Path, create: bool) -> Result<Dir, Fail> {
            if create {
                std::fs::create_dir_all(dir)
                    .map_err(|e| cannot("create the state directory", dir, e))?;
            }
            match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() => Ok(Dir {
                    path: dir.to_owned(),
                }),
                Ok(_) => Err(cannot("open the state directory", dir, "not a directory")),
                Err(e) => Err(cannot("open the state directory", dir, e)),
            }
        }

        pub fn open_file(&self, name: &str, how: Access) -> Result<File, Fail> {
            check_name(&self.path, name)?;
            let path = self.path.join(name);
            regular(&path)?;
            let mut o = std::fs::OpenOptions::new();
            match how {
                Access::Read => o.read(true),
                Access::Lock => o.read(true).write(true).create(true).truncate(false),
            };
            o.open(&path).map_err(|e| cannot("open", &path, e))
        }

        pub fn replace(&self, name: &str, bytes: &[u8]) -> Result<(), Fail> {
            check_name(&self.path, name)?;
            let path = self.path.join(name);
            regular(&path)?;
            let tmp = self.path.join(temp_name(name));
            let done = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .and_then(|mut f| f.write_all(bytes))
                .and_then(|()| std::fs::rename(&tmp, &path));
            if let Err(e) = done {
                let _ = std::fs::remove_file(&tmp);
                return Err(cannot("write", &path, e));
            }
            Ok(())
        }

        pub fn remove(&self, name: &str) {
            if check_name(&self.path, name).is_ok() {
                let _ = std::fs::remove_file(self.path.join(name));
            }
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    /// A fresh directory under the temp dir, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let p = std::env::temp_dir().join(format!(
                "stsmfa-statedir-{tag}-{}-{}",
                std::process::id(),
                temp_name("x")
            ));
            let mut b = std::fs::DirBuilder::new();
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(&p).unwrap();
            Scratch(p)
        }
        /// A private state dir inside, and a victim file outside it.
        fn state_and_victim(&self) -> (PathBuf, PathBuf) {
            let state = self.0.join("state");
            ensure(&state).unwrap();
            let victim = self.0.join("important.txt");
            std::fs::write(&victim, "precious\n").unwrap();
            (state, victim)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o700));
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    fn mkfifo(p: &Path) {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            p,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
    }

    /// Runs `f` on a thread and fails the test if it takes more than 5 s.
    fn at_once<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(f()));
        rx.recv_timeout(Duration::from_secs(5))
            .expect("hung on a special file")
    }

    #[test]
    fn created_dir_is_0700_and_files_are_0600() {
        let s = Scratch::new("modes");
        let dir = s.0.join("a/b");
        write_atomic(&dir, "x.used", b"1 2\n").unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("x.used")), 0o600);
        drop(open_lock(&dir, "p.lock").unwrap());
        assert_eq!(mode(&dir.join("p.lock")), 0o600);
        assert_eq!(read(&dir, "x.used").unwrap(), b"1 2\n");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temp file left behind: {names:?}");
        remove(&dir, "x.used");
        assert!(read(&dir, "x.used").is_none());
    }

    #[test]
    fn symlink_planted_as_lock_file_is_refused_and_target_untouched() {
        let s = Scratch::new("locklink");
        let (state, victim) = s.state_and_victim();
        symlink(&victim, state.join("p.lock")).unwrap();
        let e = open_lock(&state, "p.lock").unwrap_err();
        assert!(e.message.contains("symbolic link"), "{}", e.message);
        assert!(
            e.message
                .contains(&state.join("p.lock").display().to_string())
        );
        // A dangling link must not create its target either.
        let made = s.0.join("chosen-by-attacker");
        symlink(&made, state.join("q.lock")).unwrap();
        assert!(open_lock(&state, "q.lock").is_err());
        assert!(!made.exists());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    }

    #[test]
    fn symlink_planted_as_used_code_file_is_refused_and_target_untouched() {
        let s = Scratch::new("usedlink");
        let (state, victim) = s.state_and_victim();
        symlink(&victim, state.join("d.used")).unwrap();
        assert_eq!(read(&state, "d.used"), None, "not read through the link");
        let e = write_atomic(&state, "d.used", b"100 abc\n").unwrap_err();
        assert!(e.message.contains("symbolic link"), "{}", e.message);
        assert!(
            e.message
                .contains(&state.join("d.used").display().to_string())
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    }

    #[test]
    fn symlink_planted_at_the_old_temp_name_is_left_alone() {
        let s = Scratch::new("tmplink");
        let (state, victim) = s.state_and_victim();
        symlink(&victim, state.join("d.used.tmp")).unwrap();
        write_atomic(&state, "d.used", b"100 abc\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        assert_eq!(read(&state, "d.used").unwrap(), b"100 abc\n");
        assert!(
            std::fs::symlink_metadata(state.join("d.used"))
                .unwrap()
                .is_file()
        );
    }

    #[test]
    fn temp_files_are_created_exclusively_with_unpredictable_names() {
        let s = Scratch::new("excl");
        let (state, victim) = s.state_and_victim();
        let dir = sys::Dir::at(&state, false).unwrap();
        std::fs::write(state.join("taken"), "old").unwrap();
        assert_eq!(
            dir.create_exclusive("taken").unwrap_err(),
            rustix::io::Errno::EXIST
        );
        assert_eq!(std::fs::read_to_string(state.join("taken")).unwrap(), "old");
        symlink(&victim, state.join("link")).unwrap();
        assert!(dir.create_exclusive("link").is_err());
        let dangling = s.0.join("new-file");
        symlink(&dangling, state.join("dangling")).unwrap();
        assert!(dir.create_exclusive("dangling").is_err());
        assert!(!dangling.exists());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        drop(dir.create_exclusive("fresh").unwrap());
        assert_eq!(mode(&state.join("fresh")), 0o600);
        assert_ne!(temp_name("d.used"), temp_name("d.used"));
    }

    #[test]
    fn fifo_planted_as_lock_file_errors_at_once() {
        let s = Scratch::new("fifo");
        let (state, _) = s.state_and_victim();
        mkfifo(&state.join("p.lock"));
        mkfifo(&state.join("d.used"));
        let start = Instant::now();
        let st = state.clone();
        let e = at_once(move || open_lock(&st, "p.lock").map(drop)).unwrap_err();
        assert!(e.message.contains("a FIFO"), "{}", e.message);
        assert!(
            e.message
                .contains(&state.join("p.lock").display().to_string())
        );
        let st = state.clone();
        assert_eq!(at_once(move || read(&st, "d.used")), None);
        let st = state.clone();
        assert!(at_once(move || write_atomic(&st, "d.used", b"x")).is_err());
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn directory_in_place_of_a_file_is_an_error() {
        let s = Scratch::new("isdir");
        let (state, _) = s.state_and_victim();
        std::fs::create_dir(state.join("p.lock")).unwrap();
        let e = open_lock(&state, "p.lock").unwrap_err();
        assert!(e.message.contains("a directory"), "{}", e.message);
        let e = write_atomic(&state, "p.lock", b"x").unwrap_err();
        assert!(e.message.contains("a directory"), "{}", e.message);
    }

    #[test]
    fn group_or_other_writable_dir_is_refused_with_the_dir_named() {
        let s = Scratch::new("mode");
        for m in [0o777, 0o1777, 0o770, 0o702] {
            let state = s.0.join(format!("state-{m:o}"));
            std::fs::create_dir(&state).unwrap();
            std::fs::set_permissions(&state, std::fs::Permissions::from_mode(m)).unwrap();
            for e in [
                ensure(&state).unwrap_err(),
                open_lock(&state, "p.lock").unwrap_err(),
                write_atomic(&state, "d.used", b"1").unwrap_err(),
            ] {
                assert!(
                    e.message.contains(&state.display().to_string()),
                    "{}",
                    e.message
                );
                assert!(
                    e.message.contains("writable by other users"),
                    "{}",
                    e.message
                );
                assert!(
                    e.hints.iter().any(|h| h.contains("chmod go-w")),
                    "{:?}",
                    e.hints
                );
            }
            std::fs::write(state.join("d.used"), "1 2\n").unwrap();
            assert_eq!(read(&state, "d.used"), None, "nothing trusted from it");
            remove(&state, "d.used");
            assert!(state.join("d.used").exists(), "nothing removed in it");
            std::fs::remove_file(state.join("d.used")).unwrap();
            assert_eq!(
                std::fs::read_dir(&state).unwrap().count(),
                0,
                "nothing written"
            );
            assert!(!is_private(&state));
        }
        // The harness's per-test dir: made by Python with the default umask.
        let ok = s.0.join("state-755");
        std::fs::create_dir(&ok).unwrap();
        std::fs::set_permissions(&ok, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(ensure(&ok).is_ok() && is_private(&ok));
    }

    #[test]
    fn foreign_owned_dir_or_symlink_is_refused_with_the_dir_named() {
        let s = Scratch::new("owner");
        let foreign = if rustix::process::geteuid().is_root() {
            // Someone else's directory (and link), with safe modes otherwise.
            let d = s.0.join("theirs");
            std::fs::create_dir(&d).unwrap();
            std::fs::set_permissions(&s.0, std::fs::Permissions::from_mode(0o755)).unwrap();
            let nobody = Some(rustix::fs::Uid::from_raw(65534));
            rustix::fs::chown(&d, nobody, None).unwrap();
            let link = s.0.join("their-link");
            let mine = s.0.join("mine");
            ensure(&mine).unwrap();
            symlink(&mine, &link).unwrap();
            rustix::fs::chownat(
                rustix::fs::CWD,
                &link,
                nobody,
                None,
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .unwrap();
            let e = ensure(&link).unwrap_err();
            assert!(
                e.message.contains(&link.display().to_string()),
                "{}",
                e.message
            );
            assert!(
                e.message.contains("symbolic link of another user"),
                "{}",
                e.message
            );
            d
        } else {
            PathBuf::from("/")
        };
        let e = ensure(&foreign).unwrap_err();
        assert!(
            e.message.contains(&foreign.display().to_string()),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("belongs to another user"),
            "{}",
            e.message
        );
        assert!(
            e.hints.iter().any(|h| h.contains("STSMFA_STATE_DIR")),
            "{:?}",
            e.hints
        );
        assert!(open_lock(&foreign, "p.lock").is_err());
        assert!(!foreign.join("p.lock").exists());
        assert!(!is_private(&foreign));
    }

    #[test]
    fn own_symlink_to_a_private_dir_is_followed() {
        let s = Scratch::new("ownlink");
        let real = s.0.join("real");
        ensure(&real).unwrap();
        let link = s.0.join("link");
        symlink(&real, &link).unwrap();
        write_atomic(&link, "d.used", b"ok").unwrap();
        assert_eq!(std::fs::read(real.join("d.used")).unwrap(), b"ok");
    }

    #[test]
    fn reads_are_bounded() {
        let s = Scratch::new("big");
        let (state, _) = s.state_and_victim();
        let max = usize::try_from(MAX_READ).unwrap();
        std::fs::write(state.join("ok"), vec![b'a'; max]).unwrap();
        std::fs::write(state.join("big"), vec![b'a'; max + 1]).unwrap();
        assert_eq!(read(&state, "ok").map(|b| b.len()), Some(max));
        assert_eq!(read(&state, "big"), None);
    }

    #[test]
    fn names_must_stay_in_the_dir() {
        let s = Scratch::new("names");
        let (state, _) = s.state_and_victim();
        for bad in ["", ".", "..", "../x", "a/b"] {
            assert!(open_lock(&state, bad).is_err(), "{bad:?}");
            assert!(write_atomic(&state, bad, b"x").is_err(), "{bad:?}");
        }
        assert!(!s.0.join("x").exists());
    }
}
