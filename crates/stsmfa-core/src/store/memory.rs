//! An in-memory store for unit tests, with switchable faults.

use super::{CredentialStore, StoreError};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

#[derive(Default)]
pub struct MemoryStore {
    pub entries: RefCell<HashMap<String, Vec<u8>>>,
    pub locked: Cell<bool>,
    pub writes: Cell<usize>,
}

impl CredentialStore for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if self.locked.get() {
            return Err(StoreError::Locked {
                store: super::StoreChoice::Memory,
            });
        }
        Ok(self.entries.borrow().get(key).cloned())
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        if self.locked.get() {
            return Err(StoreError::Locked {
                store: super::StoreChoice::Memory,
            });
        }
        self.writes.set(self.writes.get() + 1);
        self.entries
            .borrow_mut()
            .insert(key.to_owned(), value.to_vec());
        Ok(())
    }
    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.entries.borrow_mut().remove(key).is_some())
    }
}
