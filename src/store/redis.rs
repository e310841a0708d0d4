//! The Redis store, for several hosts. Per key, in format 2 (see record::FORMAT), a record
//! `findity:2:{<id>}:rec` and a lock `findity:2:{<id>}:lock`: the `{<id>}` hash tag puts both
//! in one hash slot, so the scripts below work on Redis Cluster too.
//!
//! The lock is `SET NX PX lease` with a random value. The lease is the caller's remaining time
//! plus a little, so it outlives any request made under it. Every write is fenced: one script
//! checks that the lock still holds our value and only then writes (or deletes) the record, so
//! a holder paused past its lease (SIGSTOP, a VM freeze, a failover that lost the lock key)
//! writes nothing and sends no refresh token another host may have taken; the unlock is a
//! compare-and-delete. A holder that dies leaves a lock that expires on its own.
//!
//! Blocking connections, pooled; every command's timeout is at most IO_TIMEOUT and never past
//! the caller's deadline. A pooled connection the server closed meanwhile (its idle `timeout`,
//! a load balancer) is retried once on a fresh connection before the store counts as down.

use super::{Change, Guard, Store, StoreError};
use redis::{Client, Connection, ConnectionLike};
use ring::rand::{SecureRandom, SystemRandom};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Connect and response timeouts: a store that does not answer within this is down.
const IO_TIMEOUT: Duration = Duration::from_millis(1000);
/// Shortest timeout given to a command, even past the deadline (an unlock must get through).
const MIN_IO_TIMEOUT: Duration = Duration::from_millis(100);
/// The lock lease beyond the caller's remaining time.
const LEASE_EXTRA: Duration = Duration::from_secs(2);
const POOL: usize = 8;

/// KEYS: the lock. ARGV: our value, the lease in ms. 1: ours (taken now, or already ours: a
/// retry after a reply that timed out must not wait for its own lock); 0: another's.
const LOCK: &str = "local v = redis.call('get', KEYS[1]) \
if v == ARGV[1] then return 1 end \
if v then return 0 end \
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1";

const UNLOCK: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// KEYS: lock, record. ARGV: lock value, record bytes ("" deletes), TTL in ms. 1: done, 0: the
/// lock is no longer ours and nothing was written.
const FENCED_WRITE: &str = "if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end \
if ARGV[2] == '' then redis.call('del', KEYS[2]) else redis.call('set', KEYS[2], ARGV[2], 'PX', ARGV[3]) end \
return 1";

/// KEYS: the record. ARGV: the value read before ("" if none), the new value, TTL in ms. 1:
/// replaced; 0: it changed meanwhile (read again).
const COMPARE_AND_SET: &str = "local c = redis.call('get', KEYS[1]) \
if (c == false and ARGV[1] == '') or c == ARGV[1] then \
redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end return 0";

/// The names of one key's lock and record.
fn names(id: &str) -> (String, String) {
    let f = super::record::FORMAT;
    (
        format!("findity:{f}:{{{id}}}:lock"),
        format!("findity:{f}:{{{id}}}:rec"),
    )
}

fn io_timeout(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .clamp(MIN_IO_TIMEOUT, IO_TIMEOUT)
}

pub struct RedisStore {
    client: Client,
    /// host:port/db, for messages (never the password).
    shown: String,
    idle: Mutex<Vec<Connection>>,
}

/// Parses and checks a redis:// or rediss:// URL; no connection yet. Returns the store and
/// the URL as it may be shown (no user or password).
pub fn open(url: &str) -> Result<RedisStore, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    match parsed.scheme() {
        "redis" | "rediss" => {}
        s => return Err(format!("scheme {s}: must be redis:// or rediss://")),
    }
    if parsed.fragment().is_some() {
        // redis-rs reads "#insecure" as "skip certificate checks": never.
        return Err("a #fragment is not allowed in the Redis URL".into());
    }
    let host = parsed.host_str().unwrap_or("");
    if host.is_empty() {
        return Err("no host in the Redis URL".into());
    }
    let shown = format!(
        "{}://{}:{}{}",
        parsed.scheme(),
        host,
        parsed.port().unwrap_or(6379),
        parsed.path()
    );
    let client =
        Client::open(url).map_err(|e| format!("bad Redis URL {shown}: {}", e.kind_name()))?;
    Ok(RedisStore {
        client,
        shown,
        idle: Mutex::new(Vec::new()),
    })
}

trait KindName {
    fn kind_name(&self) -> String;
}

impl KindName for redis::RedisError {
    /// The error without its detail text, which may quote the URL (and its password).
    fn kind_name(&self) -> String {
        format!("{:?}", self.kind())
    }
}

impl RedisStore {
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// A pooled connection (true) or a new one (false), with timeouts for `deadline`.
    fn connection(&self, deadline: Instant) -> Result<(Connection, bool), StoreError> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let (c, was_pooled) = match pooled {
            Some(c) => (c, true),
            None => (
                self.client
                    .get_connection_with_timeout(io_timeout(deadline))
                    .map_err(|e| self.err("cannot connect to", &e))?,
                false,
            ),
        };
        set_timeouts(&c, deadline).map_err(|e| self.err("cannot set timeouts on", &e))?;
        Ok((c, was_pooled))
    }

    fn put_back(&self, c: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < POOL && c.is_open() {
            idle.push(c);
        }
    }

    fn drop_idle(&self) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn err(&self, what: &str, e: &redis::RedisError) -> StoreError {
        // One connection failed: the idle ones (same server) most likely did too, and each
        // would cost a failure and a longer back-off after Redis is back.
        self.drop_idle();
        let why = if e.is_timeout() {
            "timed out".to_string()
        } else if e.is_connection_refusal() {
            "connection refused".to_string()
        } else if e.is_io_error() || e.is_connection_dropped() {
            "connection failed".to_string()
        } else {
            e.kind_name()
        };
        StoreError::down(format!("{what} Redis at {}: {why}", self.shown))
    }
}

fn set_timeouts(c: &Connection, deadline: Instant) -> redis::RedisResult<()> {
    let t = io_timeout(deadline);
    c.set_read_timeout(Some(t))?;
    c.set_write_timeout(Some(t))
}

/// A failure that a pooled connection closed by the server (or a balancer) would give.
fn stale_connection(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_timeout()
}

impl Store for RedisStore {
    fn lock(
        &self,
        id: &str,
        deadline: Instant,
        hold: Duration,
    ) -> Result<(Box<dyn Guard + '_>, bool), StoreError> {
        // The caller's own deadline (`deadline` is only how long to wait for the lock): the
        // holder's reads, writes and unlock get its time, as its lease does.
        let callers = Instant::now() + hold;
        let (mut con, mut pooled) = self.connection(deadline)?;
        let mut value = [0u8; 16];
        SystemRandom::new()
            .fill(&mut value)
            .map_err(|_| StoreError::down("no random numbers for the lock value"))?;
        let value: String = value.iter().map(|b| format!("{b:02x}")).collect();
        let (key, record) = names(id);
        let lease = (hold + LEASE_EXTRA).as_millis() as u64;
        let mut waited = false;
        let mut pause = Duration::from_millis(1);
        // The lock and the read in one round trip: once SET NX succeeded on this connection,
        // the GET that follows it sees what only the lock holder (us) may change.
        let prefetched = loop {
            let answer: redis::RedisResult<(i64, Option<Vec<u8>>)> = redis::pipe()
                .cmd("EVAL")
                .arg(LOCK)
                .arg(1)
                .arg(&key)
                .arg(&value)
                .arg(lease)
                .cmd("GET")
                .arg(&record)
                .query(&mut con);
            let (got, rec) = match answer {
                Ok(a) => a,
                Err(e) if pooled && stale_connection(&e) => {
                    // Most likely closed while idle in the pool: once more, on a new one.
                    self.drop_idle();
                    con = self.connection(deadline)?.0;
                    pooled = false;
                    continue;
                }
                Err(e) => return Err(self.err("cannot lock in", &e)),
            };
            pooled = false;
            if got == 1 {
                break rec;
            }
            waited = true;
            let now = Instant::now();
            if now >= deadline {
                self.put_back(con);
                return Err(StoreError::busy(
                    "another process held the lock for this key too long",
                ));
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(10));
        };
        Ok((
            Box::new(RedisGuard {
                store: self,
                con: Some(con),
                prefetched: Some(prefetched),
                record,
                lock: key,
                value,
                deadline: callers,
            }),
            waited,
        ))
    }

    fn shares_throttle(&self) -> bool {
        true
    }

    /// Optimistic: read, compute, compare-and-set (one script, one key: one hash slot), again
    /// if another process changed it meanwhile.
    fn update(&self, name: &str, deadline: Instant, f: &mut Change) -> Result<(), StoreError> {
        let key = format!("findity:{}:{{{name}}}:fleet", super::record::FORMAT);
        let ttl = crate::fleet::FORGET_AFTER.as_millis() as u64;
        let (mut con, mut pooled) = self.connection(deadline)?;
        for _ in 0..32 {
            let current: Option<Vec<u8>> = match redis::cmd("GET").arg(&key).query(&mut con) {
                Ok(v) => v,
                Err(e) if pooled && stale_connection(&e) => {
                    self.drop_idle();
                    con = self.connection(deadline)?.0;
                    pooled = false;
                    continue;
                }
                Err(e) => return Err(self.err("cannot read from", &e)),
            };
            pooled = false;
            let Some(next) = f(current.as_deref()) else {
                self.put_back(con);
                return Ok(());
            };
            let swapped: i64 = redis::cmd("EVAL")
                .arg(COMPARE_AND_SET)
                .arg(1)
                .arg(&key)
                .arg(current.unwrap_or_default())
                .arg(next)
                .arg(ttl)
                .query(&mut con)
                .map_err(|e| self.err("cannot write to", &e))?;
            if swapped == 1 {
                self.put_back(con);
                return Ok(());
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        self.put_back(con);
        Err(StoreError::busy(
            "the fleet's throttle record kept changing",
        ))
    }
}

struct RedisGuard<'a> {
    store: &'a RedisStore,
    /// Taken out (and dropped) after a connection error.
    con: Option<Connection>,
    /// The record as read together with taking the lock (first read only).
    prefetched: Option<Option<Vec<u8>>>,
    record: String,
    lock: String,
    value: String,
    deadline: Instant,
}

impl RedisGuard<'_> {
    fn run<T: redis::FromRedisValue>(
        &mut self,
        what: &str,
        cmd: &redis::Cmd,
    ) -> Result<T, StoreError> {
        let Some(con) = self.con.as_mut() else {
            return Err(StoreError::down(format!(
                "no connection to Redis at {}",
                self.store.shown
            )));
        };
        let answer = set_timeouts(con, self.deadline).and_then(|()| cmd.query(con));
        match answer {
            Ok(v) => Ok(v),
            Err(e) => {
                self.con = None;
                Err(self.store.err(what, &e))
            }
        }
    }

    /// Write (or with empty `bytes`, delete) the record only while the lock is ours.
    fn fenced(&mut self, bytes: &[u8], ttl_ms: u64) -> Result<(), StoreError> {
        let cmd = redis::cmd("EVAL")
            .arg(FENCED_WRITE)
            .arg(2)
            .arg(&self.lock)
            .arg(&self.record)
            .arg(&self.value)
            .arg(bytes)
            .arg(ttl_ms.max(1))
            .clone();
        match self.run::<i64>("cannot write to", &cmd)? {
            1 => Ok(()),
            _ => Err(StoreError::lost(format!(
                "the lock's lease in Redis at {} ran out (or the lock was lost); nothing written",
                self.store.shown
            ))),
        }
    }
}

impl Guard for RedisGuard<'_> {
    fn read(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(r) = self.prefetched.take() {
            return Ok(r);
        }
        let cmd = redis::cmd("GET").arg(&self.record).clone();
        self.run("cannot read from", &cmd)
    }

    fn write(&mut self, bytes: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let ms = ttl.as_millis() as u64;
        if ms == 0 || bytes.is_empty() {
            return self.remove();
        }
        self.fenced(bytes, ms)
    }

    fn remove(&mut self) -> Result<(), StoreError> {
        self.fenced(&[], 0)
    }
}

impl Drop for RedisGuard<'_> {
    fn drop(&mut self) {
        let cmd = redis::cmd("EVAL")
            .arg(UNLOCK)
            .arg(1)
            .arg(&self.lock)
            .arg(&self.value)
            .clone();
        // A failed unlock leaves a lock that expires with its lease.
        if self.run::<i64>("cannot unlock in", &cmd).is_ok() {
            if let Some(c) = self.con.take() {
                self.store.put_back(c);
            }
        }
    }
}
