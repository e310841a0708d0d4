//! A stored record: what it says (an access token, maybe a refresh token, when it was issued
//! and for how long, in wall-clock time since `Instant`s do not cross processes), and how it is
//! sealed: ChaCha20-Poly1305 under a key derived from the client secret with HKDF-SHA256, the
//! key's identity as associated data. Only a process that knows the secret can read, forge or
//! use a record, and a record cannot be moved to another key's name.
//!
//! Sealed form: `FDY2` (the format, record::FORMAT) ‖ 12-byte random nonce ‖ ciphertext ‖ 16-byte tag.

use crate::cache::Key;
use crate::refresh::RefreshToken;
use crate::secret::Secret;
use crate::token::Token;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::digest::{digest, SHA256};
use ring::hkdf::{Salt, HKDF_SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use zeroize::Zeroize;

/// The store's format: in record and key names (`<id>.2.rec`, `findity:2:{<id>}:rec`) and in
/// the sealed record's magic. Bump it whenever names, locking or the record change meaning;
/// processes of different formats then share nothing (see CHANGELOG's upgrade rule).
pub const FORMAT: u8 = 2;
const MAGIC: &[u8; 4] = b"FDY2";
/// How long a record outlives its access token when it holds a refresh token (Findity does not
/// document a refresh token's life): the one lifetime rule of both stores.
pub const REFRESH_KEEP: Duration = Duration::from_secs(24 * 3600);
/// The longest any record can be worth keeping after it was written: files older than this
/// are swept without being read (the sweeper has no secret to read them with).
pub const MAX_KEEP: Duration =
    Duration::from_secs(crate::token::MAX_LIFETIME.as_secs() + REFRESH_KEEP.as_secs());
const SALT: &[u8] = b"libfindity shared_cache v1";
/// Records larger than this are not records (a token answer is capped far below it).
pub const MAX_RECORD: usize = 64 * 1024;

/// A key's identity in the store: the canonical string (associated data of its record) and
/// the record id, its hex SHA-256 (file names and Redis keys: no client id, user or URL).
pub struct Identity {
    canonical: Vec<u8>,
    pub id: String,
}

impl Identity {
    pub fn of(key: &Key) -> Identity {
        let mut canonical = b"libfindity/shared_cache/v1\n".to_vec();
        canonical.extend_from_slice(key.base.as_str().as_bytes());
        canonical.push(b'\n');
        canonical.extend_from_slice(key.client_id.as_bytes());
        canonical.push(b'\n');
        match &key.user_id {
            Some(u) => {
                canonical.push(b'u');
                canonical.extend_from_slice(u.as_bytes());
            }
            None => canonical.push(b'o'),
        }
        let id = hex(digest(&SHA256, &canonical).as_ref());
        Identity { canonical, id }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// What a record holds, decrypted.
pub struct Record {
    pub access: Option<Secret>,
    pub refresh: Option<RefreshToken>,
    /// Wall-clock issue time (ms since the epoch) and lifetime of `access`.
    pub issued_ms: u64,
    pub lifetime_ms: u64,
}

#[derive(serde::Serialize)]
struct Out<'a> {
    v: u32,
    access: Option<&'a str>,
    refresh: Option<&'a str>,
    issued_ms: u64,
    lifetime_ms: u64,
}

#[derive(serde::Deserialize)]
struct In {
    v: u32,
    access: Option<String>,
    refresh: Option<String>,
    issued_ms: u64,
    lifetime_ms: u64,
}

fn wall_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Record {
    /// The record of a token just obtained; its refresh token moves into the record (stored).
    pub fn of(token: &mut Token) -> Record {
        let age = crate::token::now().saturating_duration_since(token.issued_at);
        let issued = SystemTime::now()
            .checked_sub(age)
            .unwrap_or_else(SystemTime::now);
        Record {
            access: Some(token.access.clone()),
            refresh: token.refresh.take(),
            issued_ms: wall_ms(issued),
            lifetime_ms: token.lifetime.as_millis() as u64,
        }
    }

    /// The access token as this process's `Token` (no refresh token), or None if it has none
    /// or it was issued too long ago to place on this process's clock.
    pub fn token(&self) -> Option<Token> {
        let access = self.access.as_ref()?;
        let now_ms = wall_ms(SystemTime::now());
        // A record from a host whose clock is ahead counts as issued now, never later.
        let age = Duration::from_millis(now_ms.saturating_sub(self.issued_ms));
        Some(Token::new(
            access.clone(),
            None,
            crate::token::now().checked_sub(age)?,
            Duration::from_millis(self.lifetime_ms),
        ))
    }

    /// Time the access token has left (wall clock).
    pub fn remaining(&self) -> Duration {
        let end = self.issued_ms.saturating_add(self.lifetime_ms);
        Duration::from_millis(end.saturating_sub(wall_ms(SystemTime::now())))
    }

    /// How long the record is worth keeping: while its access token lives, and REFRESH_KEEP
    /// longer if it holds a refresh token. Zero: nothing worth keeping.
    pub fn keep_for(&self) -> Duration {
        match (&self.access, &self.refresh) {
            (_, Some(_)) => self.remaining() + REFRESH_KEEP,
            (Some(_), None) => self.remaining(),
            (None, None) => Duration::ZERO,
        }
    }
}

/// Seals and opens the records of one key with one client secret.
pub struct Crypt {
    key: LessSafeKey,
}

impl Crypt {
    pub fn new(secret: &Secret, who: &Identity) -> Crypt {
        let prk = Salt::new(HKDF_SHA256, SALT).extract(secret.expose().as_bytes());
        let info = [b"record key\n".as_slice(), who.id.as_bytes()];
        let okm = prk
            .expand(&info, &CHACHA20_POLY1305)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Crypt {
            key: LessSafeKey::new(UnboundKey::from(okm)),
        }
    }

    pub fn seal(&self, who: &Identity, r: &Record) -> Option<Vec<u8>> {
        let out = Out {
            v: FORMAT as u32,
            access: r.access.as_ref().map(Secret::expose),
            refresh: r.refresh.as_ref().map(RefreshToken::expose),
            issued_ms: r.issued_ms,
            lifetime_ms: r.lifetime_ms,
        };
        let cap = 128
            + r.access.as_ref().map_or(0, Secret::len)
            + r.refresh.as_ref().map_or(0, RefreshToken::len);
        // Large enough up front, so no plaintext copy is left behind by a reallocation.
        let mut buf = Vec::with_capacity(MAGIC.len() + NONCE_LEN + cap + 32);
        buf.extend_from_slice(MAGIC);
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).ok()?;
        buf.extend_from_slice(&nonce);
        let mut body = Vec::with_capacity(cap + CHACHA20_POLY1305.tag_len());
        if serde_json::to_writer(&mut body, &out).is_err() {
            body.zeroize();
            return None;
        }
        let sealed = self.key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&who.canonical),
            &mut body,
        );
        if sealed.is_err() {
            body.zeroize();
            return None;
        }
        buf.extend_from_slice(&body);
        Some(buf)
    }

    /// The record, if it is one of this key sealed with this secret in this format.
    pub fn open(&self, who: &Identity, mut bytes: Vec<u8>) -> Opened {
        let head = MAGIC.len() + NONCE_LEN;
        if let Some(v) = newer_format(&bytes) {
            bytes.zeroize();
            return Opened::NewerFormat(v);
        }
        if bytes.len() < head + CHACHA20_POLY1305.tag_len() || &bytes[..MAGIC.len()] != MAGIC {
            return Opened::Unreadable;
        }
        let Ok(nonce) = Nonce::try_assume_unique_for_key(&bytes[MAGIC.len()..head]) else {
            return Opened::Unreadable;
        };
        let parsed =
            match self
                .key
                .open_in_place(nonce, Aad::from(&who.canonical), &mut bytes[head..])
            {
                Ok(plain) => serde_json::from_slice::<In>(plain).ok(),
                Err(_) => None,
            };
        bytes.zeroize();
        match parsed.filter(|r| r.v == FORMAT as u32) {
            Some(r) => Opened::Record(Record {
                access: r.access.map(Secret::new),
                refresh: r.refresh.map(|t| RefreshToken::new(Secret::new(t))),
                issued_ms: r.issued_ms,
                lifetime_ms: r.lifetime_ms,
            }),
            None => Opened::Unreadable,
        }
    }
}

/// What a stored record turned out to be.
pub enum Opened {
    Record(Record),
    /// Not a record of this key sealed with this secret (wrong or rotated secret, another
    /// key's record, tampered, truncated, an older format, or not a record at all): replaced
    /// by the next renewal.
    Unreadable,
    /// Written by a newer release in a format this one does not know: left alone.
    NewerFormat(u8),
}

impl Opened {
    pub fn record(self) -> Option<Record> {
        match self {
            Opened::Record(r) => Some(r),
            _ => None,
        }
    }
}

/// `FDY<digit>` with a digit above ours.
fn newer_format(bytes: &[u8]) -> Option<u8> {
    match bytes {
        [b'F', b'D', b'Y', d, ..] if d.is_ascii_digit() && d - b'0' > FORMAT => Some(d - b'0'),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(user: Option<&str>) -> Key {
        Key::parse("http://127.0.0.1:1", "client", user).unwrap()
    }

    #[test]
    fn seal_open_and_refusals() {
        let who = Identity::of(&key(Some("E1")));
        assert_eq!(who.id.len(), 64);
        assert!(!who.id.contains("client"));
        let secret = Secret::new("s3cret-value");
        let c = Crypt::new(&secret, &who);
        let r = Record {
            access: Some(Secret::new("ACCESS-TOKEN-123")),
            refresh: Some(RefreshToken::new(Secret::new("REFRESH-TOKEN-456"))),
            issued_ms: wall_ms(SystemTime::now()),
            lifetime_ms: 3_600_000,
        };
        let sealed = c.seal(&who, &r).unwrap();
        let text = String::from_utf8_lossy(&sealed);
        for plain in ["ACCESS-TOKEN", "REFRESH-TOKEN", "s3cret"] {
            assert!(!text.contains(plain));
        }
        let back = c.open(&who, sealed.clone()).record().unwrap();
        assert_eq!(back.access.unwrap().expose(), "ACCESS-TOKEN-123");
        assert!(back.refresh.unwrap().ct_eq("REFRESH-TOKEN-456"));
        // Wrong secret, another key's identity, a flipped bit: nothing.
        assert!(Crypt::new(&Secret::new("other"), &who)
            .open(&who, sealed.clone())
            .record()
            .is_none());
        let other = Identity::of(&key(Some("E2")));
        assert!(Crypt::new(&secret, &other)
            .open(&other, sealed.clone())
            .record()
            .is_none());
        let mut bad = sealed.clone();
        let n = bad.len();
        bad[n - 20] ^= 1;
        assert!(c.open(&who, bad).record().is_none());
        assert!(matches!(c.open(&who, b"FDY1".to_vec()), Opened::Unreadable));
        let mut v1 = sealed.clone();
        v1[3] = b'1';
        assert!(matches!(c.open(&who, v1), Opened::Unreadable));
        let mut v3 = sealed;
        v3[3] = b'3';
        assert!(matches!(c.open(&who, v3), Opened::NewerFormat(3)));
    }

    #[test]
    fn wall_clock_round_trip() {
        let mut t = Token::new(
            Secret::new("a"),
            None,
            crate::token::now() - Duration::from_secs(10),
            Duration::from_secs(100),
        );
        let r = Record::of(&mut t);
        let back = r.token().unwrap();
        let left = back.remaining(crate::token::now()).as_secs_f64();
        assert!((88.0..=90.5).contains(&left), "{left}");
        assert!((88.0..=90.5).contains(&r.remaining().as_secs_f64()));
    }
}
