//! `--store auto`: the platform's stores in order of preference, and no
//! cache at all (with one warning) when none of them works.
//!
//! On Linux a session bus whose Secret Service is locked or has no collection
//! (a headless box where D-Bus starts gnome-keyring on demand) must not mean
//! "ask every time": writes then go to the kernel keyring, and reads look
//! there after a miss.

use super::{CredentialStore, StoreError};
use std::cell::Cell;

pub struct Auto {
    stores: Vec<Box<dyn CredentialStore>>,
    /// The store that last answered or took a write.
    current: Cell<usize>,
}

impl Auto {
    pub fn new(stores: Vec<Box<dyn CredentialStore>>) -> Auto {
        assert!(!stores.is_empty(), "auto needs at least one store");
        Auto {
            stores,
            current: Cell::new(0),
        }
    }
}

impl CredentialStore for Auto {
    fn name(&self) -> &'static str {
        self.stores[self.current.get()].name()
    }

    /// The first hit wins. A store that fails is skipped: a miss everywhere
    /// (or failure everywhere) is a miss, and the write that follows says
    /// what did not work.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        for (i, store) in self.stores.iter().enumerate() {
            if let Ok(Some(v)) = store.get(key) {
                self.current.set(i);
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let start = self.current.get();
        let mut last = None;
        for (i, store) in self.stores.iter().enumerate().skip(start) {
            match store.set(key, value) {
                Ok(()) => {
                    if i != start {
                        crate::warn(&format!(
                            "{}; caching in the {} keyring instead",
                            last.as_ref()
                                .map_or_else(String::new, |e: &StoreError| e.to_string()),
                            store.name()
                        ));
                    }
                    self.current.set(i);
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one store"))
    }

    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let mut any = false;
        for store in &self.stores {
            any |= store.delete(key).unwrap_or(false);
        }
        Ok(any)
    }
}

#[cfg(test)]
mod tests {
    use super::super::memory::MemoryStore;
    use super::*;

    #[test]
    fn takes_writes_the_first_refuses_and_serves_them_back() {
        let primary = MemoryStore::default();
        primary.locked.set(true);
        let store = Auto::new(vec![Box::new(primary), Box::new(MemoryStore::default())]);
        assert_eq!(store.get("k").unwrap(), None, "a locked store is a miss");
        store.set("k", b"v").unwrap();
        assert_eq!(store.get("k").unwrap().as_deref(), Some(&b"v"[..]));
        assert!(store.delete("k").unwrap());
        assert_eq!(store.get("k").unwrap(), None);
    }

    #[test]
    fn prefers_the_first() {
        let primary = MemoryStore::default();
        primary.set("k", b"p").unwrap();
        let fallback = MemoryStore::default();
        fallback.set("k", b"f").unwrap();
        let store = Auto::new(vec![Box::new(primary), Box::new(fallback)]);
        assert_eq!(store.get("k").unwrap().as_deref(), Some(&b"p"[..]));
    }

    #[test]
    fn all_broken_is_a_miss_and_a_failed_write() {
        let a = MemoryStore::default();
        a.locked.set(true);
        let store = Auto::new(vec![Box::new(a)]);
        assert_eq!(store.get("k").unwrap(), None);
        assert!(store.set("k", b"v").is_err());
    }
}
