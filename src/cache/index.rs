//! The key index: key → entry, and each key's raw spellings → entry, so a lookup needs no URL
//! parsing. Sharded, so threads adding different keys rarely meet on a lock.
//!
//! Entries live while they are used: an entry is dropped only when it has been idle for the
//! `idle_ms` option (whatever it holds) and nobody outside the index holds it (no caller, no
//! queued renewal, no organization flow; a thread's snapshot is not a use and does not count:
//! retiring the entry outdates it). Each shard is swept when a new key is added to it,
//! at most four times per idle period, so no lock ever scans the whole index for a new key.
//! A caller that still finds a retired entry (the sweep won a race) looks the key up again.

use super::entry::Entry;
use super::key::Key;
use crate::secret::Secret;
use crate::token::coarse_now_ns;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

const SHARDS: usize = 16;
/// Spellings remembered per key ("HTTP://Host/" and "http://host" are one key).
const MAX_SPELLINGS: usize = 4;

#[derive(Default)]
pub struct Index {
    keys: [RwLock<KeyShard>; SHARDS],
    spellings: [RwLock<HashMap<Vec<u8>, Arc<Entry>>>; SHARDS],
}

#[derive(Default)]
struct KeyShard {
    map: HashMap<Key, Indexed>,
    /// Coarse time of the last sweep.
    swept_at: u64,
}

struct Indexed {
    entry: Arc<Entry>,
    spellings: Vec<Vec<u8>>,
}

fn shard_of<T: Hash + ?Sized>(x: &T) -> usize {
    let mut h = DefaultHasher::new();
    x.hash(&mut h);
    (h.finish() as usize) % SHARDS
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

impl Index {
    pub fn by_spelling(&self, spelling: &[u8]) -> Option<Arc<Entry>> {
        read(&self.spellings[shard_of(spelling)])
            .get(spelling)
            .cloned()
    }

    pub fn get(&self, key: &Key) -> Option<Arc<Entry>> {
        read(&self.keys[shard_of(key)])
            .map
            .get(key)
            .map(|i| Arc::clone(&i.entry))
    }

    /// The entry for `key`, created with `secret` if there is none; `spelling` is remembered
    /// for it. Sweeps the key's shard first when that is due. Returns the entry and how many
    /// idle entries were dropped.
    pub fn get_or_insert(
        &self,
        key: &Key,
        secret: &str,
        spelling: Option<&[u8]>,
        idle: Duration,
    ) -> (Arc<Entry>, usize) {
        let mut shard = write(&self.keys[shard_of(key)]);
        let mut evicted = 0;
        if !shard.map.contains_key(key) {
            evicted = self.sweep(&mut shard, idle);
        }
        let indexed = shard.map.entry(key.clone()).or_insert_with(|| Indexed {
            entry: Entry::new(key.clone(), Secret::new(secret)),
            spellings: Vec::new(),
        });
        let entry = Arc::clone(&indexed.entry);
        if let Some(sp) = spelling {
            if indexed.spellings.len() < MAX_SPELLINGS && !indexed.spellings.iter().any(|s| s == sp)
            {
                // Lock order: key shard, then spelling shard (lookups take one lock at a time).
                write(&self.spellings[shard_of(sp)]).insert(sp.to_vec(), Arc::clone(&entry));
                indexed.spellings.push(sp.to_vec());
            }
        }
        (entry, evicted)
    }

    /// Drop the shard's entries idle for `idle` that nobody else holds. At most four times
    /// per idle period.
    fn sweep(&self, shard: &mut KeyShard, idle: Duration) -> usize {
        let now = coarse_now_ns();
        let idle_ns = idle.as_nanos() as u64;
        if now.saturating_sub(shard.swept_at) < idle_ns / 4 {
            return 0;
        }
        shard.swept_at = now;
        let gone: Vec<Key> = shard
            .map
            .iter()
            .filter(|(_, i)| {
                // Past idle_ms by more than last_used's granularity: really unused that long.
                i.entry.idle_ns(now) >= idle_ns + super::entry::TOUCH_NS
                    // Only the index's own references and threads' snapshots: no caller, job
                    // or flow holds it.
                    && i.entry.held_only_by(1 + i.spellings.len())
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in &gone {
            if let Some(i) = shard.map.remove(key) {
                self.forget_spellings(&i);
                i.entry.retire();
            }
        }
        gone.len()
    }

    fn forget_spellings(&self, i: &Indexed) {
        for sp in &i.spellings {
            write(&self.spellings[shard_of(sp.as_slice())]).remove(sp);
        }
    }

    /// Take every entry out (clear_cache); they are retired by the caller.
    pub fn take_all(&self) -> Vec<Arc<Entry>> {
        // Each shard's spellings go with it, under its lock: an entry inserted meanwhile into
        // a shard already emptied keeps both its key and its spellings.
        let mut out = Vec::new();
        for shard in &self.keys {
            let mut shard = write(shard);
            for (_, i) in shard.map.drain() {
                self.forget_spellings(&i);
                out.push(i.entry);
            }
        }
        out
    }

    /// Every entry, taking each shard's lock only if it is free (for a child after fork).
    pub fn try_each(&self, mut f: impl FnMut(&Key, &Arc<Entry>)) {
        for shard in &self.keys {
            if let Ok(shard) = shard.try_read() {
                for (k, i) in &shard.map {
                    f(k, &i.entry);
                }
            }
        }
    }

    /// Insert an entry built elsewhere (a child's inherited one).
    pub fn put(&self, key: Key, entry: Arc<Entry>) {
        write(&self.keys[shard_of(&key)]).map.insert(
            key,
            Indexed {
                entry,
                spellings: Vec::new(),
            },
        );
    }

    pub fn len(&self) -> usize {
        self.keys.iter().map(|s| read(s).map.len()).sum()
    }
}
