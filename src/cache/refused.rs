//! Refusals of keys this process holds no entry for: `findity_invalidate_token` in a process
//! that never served the key (every `findity-token` run, a worker that never asked for it). The
//! refused token cannot be removed from the shared store there and then (records are sealed
//! with the client secret, which invalidation does not take), so it is remembered until the
//! key's next flight, which has the secret: that flight neither adopts it nor leaves it standing.

use super::Key;
use crate::secret::Secret;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Most refusals remembered; the oldest goes first. A process that invalidates more keys than
/// this without asking for any of them again gains nothing from remembering them.
const MAX: usize = 256;

#[derive(Default)]
pub struct Refused {
    list: Mutex<Vec<(Key, Secret)>>,
    /// list.len(), readable without the lock: flights check it, and it is almost always 0.
    len: AtomicUsize,
}

impl Refused {
    pub fn remember(&self, key: &Key, token: &str) {
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|(k, _)| k != key);
        if list.len() >= MAX {
            list.remove(0);
        }
        list.push((key.clone(), Secret::new(token)));
        self.len.store(list.len(), Ordering::Release);
    }

    pub fn take(&self, key: &Key) -> Option<Secret> {
        if self.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        let i = list.iter().position(|(k, _)| k == key)?;
        let (_, token) = list.remove(i);
        self.len.store(list.len(), Ordering::Release);
        Some(token)
    }
}
