//! `--key-store file`: every profile's keys in one file in the data
//! directory, encrypted with age under a scrypt passphrase. For machines
//! with no durable keyring: WSL, SSH sessions, containers.
//!
//! The passphrase comes from `STSMFA_FILE_PASSPHRASE` or the terminal (not
//! echoed), and is asked only when keys are needed. Every change is a
//! read-decrypt-modify-encrypt-write under the key store's lock, written to
//! a temp file, synced and renamed, so two processes writing at once lose
//! nothing, and a crash leaves the old file or the new. A file that does not
//! decrypt is never overwritten.

use super::{Dirs, Entry, KeyStore, StoredKeys, index};
use age::secrecy::SecretString;
use std::cell::OnceCell;
use std::collections::BTreeMap;
use stsmfa_core::error::Fail;
use stsmfa_core::fail;
use stsmfa_core::secret::Secret;

pub const FILE: &str = "keys.age";

/// scrypt's cost, 2^17: about half a second, paid once per miss that needs
/// the keys (age's own default aims at one second on the machine at hand).
const WORK_FACTOR: u8 = 17;

/// The passphrase typed on the terminal, for the rest of the process.
static TYPED: std::sync::OnceLock<Secret<String>> = std::sync::OnceLock::new();

pub struct FileStore {
    dirs: Dirs,
    passphrase: OnceCell<Secret<String>>,
}

type Profiles = BTreeMap<String, Entry>;

impl FileStore {
    pub fn new(dirs: Dirs) -> FileStore {
        FileStore {
            dirs,
            passphrase: OnceCell::new(),
        }
    }

    fn path(&self) -> std::path::PathBuf {
        self.dirs.data.join(FILE)
    }

    /// The passphrase: `STSMFA_FILE_PASSPHRASE`, else asked on the terminal
    /// (twice when the file is new).
    fn passphrase(&self, new: bool) -> Result<&Secret<String>, Fail> {
        if let Some(p) = self.passphrase.get() {
            return Ok(p);
        }
        let p = match stsmfa_core::passphrase::get().or_else(|| TYPED.get()) {
            Some(p) => p.clone(),
            None => {
                let typed = ask(&self.path(), new)?;
                // Asked once per process, however many times the file is opened.
                TYPED.get_or_init(|| typed.clone());
                typed
            }
        };
        Ok(self.passphrase.get_or_init(|| p))
    }

    fn read(&self) -> Result<Option<Vec<u8>>, Fail> {
        let path = self.path();
        if !path.exists() {
            return Ok(None);
        }
        stsmfa_core::statedir::read(&self.dirs.data, FILE)
            .map(Some)
            .ok_or_else(|| {
                fail!("cannot read the key file {}", path.display()).hint(
                    "it must be a regular file of yours, at most 64 KiB, in a directory others cannot write",
                )
            })
    }

    fn load(&self) -> Result<Option<Profiles>, Fail> {
        let Some(bytes) = self.read()? else {
            return Ok(None);
        };
        let pass = self.passphrase(false)?;
        let plain = decrypt(&bytes, pass).map_err(|why| self.unreadable(why))?;
        let profiles: Profiles =
            serde_json::from_slice(&plain).map_err(|_| self.unreadable(Unreadable::Damaged))?;
        Ok(Some(profiles))
    }

    fn unreadable(&self, why: Unreadable) -> Fail {
        let path = self.path();
        match why {
            Unreadable::WrongPassphrase => fail!(
                "cannot decrypt the key file {}: wrong passphrase (or the file is damaged)",
                path.display()
            )
            .hint("check STSMFA_FILE_PASSPHRASE, or unset it to be asked; the file was not changed"),
            Unreadable::Damaged => fail!("the key file {} is damaged", path.display())
                .hint("the file was not changed; restore it from a backup, or move it away and add the keys again (stsmfa add)"),
        }
    }

    fn save(&self, profiles: &Profiles, new: bool) -> Result<(), Fail> {
        let pass = self.passphrase(new)?;
        let plain = Secret::new(serde_json::to_vec(profiles).expect("plain data serialises"));
        let mut recipient = age::scrypt::Recipient::new(SecretString::from(pass.expose().clone()));
        recipient.set_work_factor(WORK_FACTOR);
        let bytes = age::encrypt(&recipient, plain.expose())
            .map_err(|e| fail!("cannot encrypt the key file: {e}"))?;
        stsmfa_core::statedir::write_atomic(&self.dirs.data, FILE, &bytes)
    }

    /// Changes the file under the lock; a file that does not decrypt stops
    /// it before anything is written.
    fn change<T>(&self, f: impl FnOnce(&mut Profiles) -> T) -> Result<T, Fail> {
        let _lock = index::lock(&self.dirs)?;
        let (mut profiles, new) = match self.load()? {
            Some(p) => (p, false),
            None => (Profiles::new(), true),
        };
        let out = f(&mut profiles);
        self.save(&profiles, new)?;
        Ok(out)
    }
}

impl KeyStore for FileStore {
    fn name(&self) -> &'static str {
        "file"
    }

    fn get(&self, profile: &str) -> Result<Option<StoredKeys>, Fail> {
        Ok(self
            .load()?
            .and_then(|mut p| p.remove(profile))
            .and_then(Entry::into_keys))
    }

    fn put(&self, profile: &str, keys: &StoredKeys) -> Result<(), Fail> {
        self.change(|p| {
            p.insert(profile.to_owned(), Entry::from(keys));
        })
    }

    fn delete(&self, profile: &str) -> Result<bool, Fail> {
        if self.read()?.is_none() {
            return Ok(false);
        }
        self.change(|p| p.remove(profile).is_some())
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Unreadable {
    WrongPassphrase,
    Damaged,
}

fn decrypt(bytes: &[u8], pass: &Secret<String>) -> Result<Vec<u8>, Unreadable> {
    use age::DecryptError as E;
    let identity = age::scrypt::Identity::new(SecretString::from(pass.expose().clone()));
    age::decrypt(&identity, bytes).map_err(|e| match e {
        E::DecryptionFailed | E::NoMatchingKeys | E::KeyDecryptionFailed => {
            Unreadable::WrongPassphrase
        }
        _ => Unreadable::Damaged,
    })
}

/// Asks for the passphrase on the terminal, without echo.
fn ask(path: &std::path::Path, new: bool) -> Result<Secret<String>, Fail> {
    let no_tty = || {
        fail!("the key file needs its passphrase, and there is no terminal to ask on")
            .hint("set STSMFA_FILE_PASSPHRASE (e.g. from your login session's secret), or run the command in a terminal once")
    };
    let mut term = stsmfa_core::prompt::Tty::open()?.ok_or_else(no_tty)?;
    let prompt = if new {
        format!("New passphrase for the key file {}: ", path.display())
    } else {
        format!("Passphrase for the key file {}: ", path.display())
    };
    let first = term.hidden(&prompt)?.unwrap_or_default();
    if first.is_empty() {
        return Err(fail!("no passphrase entered").hint("the key file needs a passphrase"));
    }
    if new {
        let again = term.hidden("Same passphrase again: ")?.unwrap_or_default();
        if again != first {
            return Err(fail!("the two passphrases differ").hint("nothing was stored; try again"));
        }
    }
    Ok(Secret::new(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(t: &std::path::Path) -> Dirs {
        Dirs {
            data: t.join("data"),
            state: t.join("state"),
        }
    }

    fn store(t: &std::path::Path, pass: &str) -> FileStore {
        let s = FileStore::new(dirs(t));
        let _ = s.passphrase.set(Secret::new(pass.into()));
        s
    }

    fn keys(id: &str, secret: &str) -> StoredKeys {
        StoredKeys::new(stsmfa_core::credentials::LongTermKeys {
            access_key_id: id.into(),
            secret_access_key: Secret::new(secret.into()),
        })
    }

    fn tmp() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "stsmfa-keys-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn round_trip_encrypted_and_private() {
        let t = tmp();
        let s = store(&t, "correct horse");
        assert!(s.get("work").unwrap().is_none(), "no file: no keys");
        s.put("work", &keys("AKIAWORK", "the-secret-value"))
            .unwrap();
        s.put("play", &keys("AKIAPLAY", "other-secret")).unwrap();
        let got = s.get("work").unwrap().unwrap();
        assert_eq!(got.current.secret_access_key.expose(), "the-secret-value");
        let bytes = std::fs::read(t.join("data").join(FILE)).unwrap();
        assert!(bytes.starts_with(b"age-encryption.org/v1"));
        assert!(!bytes.windows(16).any(|w| w == b"the-secret-value"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode =
                |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&t.join("data").join(FILE)), 0o600);
            assert_eq!(mode(&t.join("data")), 0o700);
        }
        assert!(s.delete("work").unwrap());
        assert!(!s.delete("work").unwrap());
        assert!(store(&t, "correct horse").get("work").unwrap().is_none());
        assert!(store(&t, "correct horse").get("play").unwrap().is_some());
        let _ = std::fs::remove_dir_all(&t);
    }

    #[test]
    fn a_wrong_passphrase_is_an_error_and_changes_nothing() {
        let t = tmp();
        store(&t, "right")
            .put("work", &keys("AKIAWORK", "s"))
            .unwrap();
        let path = t.join("data").join(FILE);
        let before = std::fs::read(&path).unwrap();
        let wrong = store(&t, "wrong");
        let e = wrong.get("work").unwrap_err();
        assert!(e.message.contains("wrong passphrase"), "{}", e.message);
        let e = wrong.put("play", &keys("AKIAPLAY", "p")).unwrap_err();
        assert!(e.message.contains("wrong passphrase"), "{}", e.message);
        assert_eq!(std::fs::read(&path).unwrap(), before, "not overwritten");
        let _ = std::fs::remove_dir_all(&t);
    }

    #[test]
    fn a_damaged_file_is_an_error_and_is_not_overwritten() {
        let t = tmp();
        store(&t, "pw").put("work", &keys("AKIAWORK", "s")).unwrap();
        let path = t.join("data").join(FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len() - 5;
        bytes[n] ^= 0x55;
        std::fs::write(&path, &bytes).unwrap();
        let s = store(&t, "pw");
        let e = s.get("work").unwrap_err();
        assert!(e.message.contains("damaged"), "{}", e.message);
        assert!(s.put("work", &keys("AKIAWORK", "s")).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        std::fs::write(&path, b"not an age file").unwrap();
        assert!(s.get("work").unwrap_err().message.contains("damaged"));
        let _ = std::fs::remove_dir_all(&t);
    }
}
