//! The Redis store, for several hosts. Per key a record `findity:rec:<id>` with a TTL of the
//! token's remaining life, and a lock `findity:lock:<id>`: `SET NX PX lease` with a random
//! value, released by a compare-and-delete script, so a holder whose lease ran out never
//! deletes another's lock. The lease is longer than the caller's timeout_ms, so it outlives
//! any request made under it; a holder that dies leaves a lock that expires on its own.
//! Blocking connections with short connect and response timeouts, pooled.

use super::{Guard, Store, StoreError};
use redis::{Client, Connection, ConnectionLike};
use ring::rand::{SecureRandom, SystemRandom};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Connect and response timeouts: a store that does not answer within this is down.
const IO_TIMEOUT: Duration = Duration::from_millis(1000);
/// The lock lease beyond the longest hold the caller announces (its timeout_ms).
const LEASE_EXTRA: Duration = Duration::from_secs(5);
const POOL: usize = 8;

const UNLOCK: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

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

    fn connection(&self) -> Result<Connection, StoreError> {
        if let Some(c) = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
        {
            return Ok(c);
        }
        let c = self
            .client
            .get_connection_with_timeout(IO_TIMEOUT)
            .map_err(|e| self.err("cannot connect to", &e))?;
        c.set_read_timeout(Some(IO_TIMEOUT))
            .and_then(|()| c.set_write_timeout(Some(IO_TIMEOUT)))
            .map_err(|e| self.err("cannot set timeouts on", &e))?;
        Ok(c)
    }

    fn put_back(&self, c: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < POOL && c.is_open() {
            idle.push(c);
        }
    }

    fn err(&self, what: &str, e: &redis::RedisError) -> StoreError {
        // One connection failed: the idle ones (same server) most likely did too, and each
        // would cost a failure and a longer back-off after Redis is back.
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
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

impl Store for RedisStore {
    fn lock(
        &self,
        id: &str,
        deadline: Instant,
        hold: Duration,
    ) -> Result<(Box<dyn Guard + '_>, bool), StoreError> {
        let mut con = self.connection()?;
        let mut value = [0u8; 16];
        SystemRandom::new()
            .fill(&mut value)
            .map_err(|_| StoreError::down("no random numbers for the lock value"))?;
        let value: String = value.iter().map(|b| format!("{b:02x}")).collect();
        let key = format!("findity:lock:{id}");
        let lease = (hold + LEASE_EXTRA).as_millis() as u64;
        let mut waited = false;
        let mut pause = Duration::from_millis(1);
        let record = format!("findity:rec:{id}");
        // The lock and the read in one round trip: once SET NX succeeded on this connection,
        // the GET that follows it sees what only the lock holder (us) may change.
        let prefetched = loop {
            let (got, rec): (Option<String>, Option<Vec<u8>>) = redis::pipe()
                .cmd("SET")
                .arg(&key)
                .arg(&value)
                .arg("NX")
                .arg("PX")
                .arg(lease)
                .cmd("GET")
                .arg(&record)
                .query(&mut con)
                .map_err(|e| self.err("cannot lock in", &e))?;
            if got.is_some() {
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
            }),
            waited,
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
        match cmd.query(con) {
            Ok(v) => Ok(v),
            Err(e) => {
                self.con = None;
                Err(self.store.err(what, &e))
            }
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
        if ms == 0 {
            return self.remove();
        }
        let cmd = redis::cmd("SET")
            .arg(&self.record)
            .arg(bytes)
            .arg("PX")
            .arg(ms)
            .clone();
        self.run::<()>("cannot write to", &cmd)
    }

    fn remove(&mut self) -> Result<(), StoreError> {
        let cmd = redis::cmd("DEL").arg(&self.record).clone();
        self.run::<()>("cannot write to", &cmd)
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
