//! What a caller asks for: the cache key, its raw spelling, and the validated request.

use crate::base_url::BaseUrl;
use crate::error::Error;

/// What a caller asks for, as given (not yet validated beyond UTF-8).
pub struct Request<'a> {
    pub base_url: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub user_id: Option<&'a str>,
}

/// One cache entry per key: (normalised base URL, client id, user id or none).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub base: BaseUrl,
    pub client_id: String,
    pub user_id: Option<String>,
}

impl Key {
    pub fn parse(base_url: &str, client_id: &str, user_id: Option<&str>) -> Result<Key, Error> {
        Ok(Key {
            base: BaseUrl::parse(base_url)?,
            client_id: client_id.to_string(),
            user_id: user_id.map(str::to_string),
        })
    }

    /// The same key for the organization (whose token the user flow needs).
    pub fn organization(&self) -> Key {
        Key {
            user_id: None,
            ..self.clone()
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.user_id {
            Some(u) => write!(
                f,
                "user token for \"{u}\" (client \"{}\" at {})",
                self.client_id,
                self.base.as_str()
            ),
            None => write!(
                f,
                "organization token (client \"{}\" at {})",
                self.client_id,
                self.base.as_str()
            ),
        }
    }
}

/// A request's key as the caller's bytes, before any validation: the cache-hit paths compare
/// these with spellings that were validated when first seen.
pub struct RawKey<'a> {
    pub base_url: &'a [u8],
    pub client_id: &'a [u8],
    pub client_secret: &'a [u8],
    pub user_id: Option<&'a [u8]>,
}

impl RawKey<'_> {
    /// The spelling "base\0client\0" + "u" + user, or "o" for the organization.
    pub fn spell(&self, buf: &mut Vec<u8>) {
        let (tag, user): (&[u8], &[u8]) = match self.user_id {
            Some(u) => (b"u", u),
            None => (b"o", b""),
        };
        buf.clear();
        for p in [self.base_url, b"\0", self.client_id, b"\0", tag, user] {
            buf.extend_from_slice(p);
        }
    }
}

impl<'a> From<&Request<'a>> for RawKey<'a> {
    fn from(r: &Request<'a>) -> RawKey<'a> {
        RawKey {
            base_url: r.base_url.as_bytes(),
            client_id: r.client_id.as_bytes(),
            client_secret: r.client_secret.as_bytes(),
            user_id: r.user_id.map(str::as_bytes),
        }
    }
}
