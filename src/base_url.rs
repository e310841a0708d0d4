//! Accepted base URLs and their normal form (the cache key and the root of every endpoint).

use crate::error::Error;
use std::net::IpAddr;
use url::{Host, Url};

pub const PRODUCTION: &str = "https://expense.findity.com";
pub const STAGE: &str = "https://stage-expense.findity.com";

/// A checked base URL: `https://host[:port][/prefix]` (or `http://` to a loopback host),
/// without credentials, query, fragment or trailing slash.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BaseUrl(String);

impl BaseUrl {
    pub fn parse(input: &str) -> Result<BaseUrl, Error> {
        let bad = |why: &str| Error::invalid_argument(format!("base_url {why}"));
        let input = match input.trim() {
            s if s.eq_ignore_ascii_case("production") => PRODUCTION,
            s if s.eq_ignore_ascii_case("stage") => STAGE,
            "" => {
                return Err(bad(
                    "is empty; use \"production\", \"stage\" or https://host",
                ))
            }
            s => s,
        };
        // A name that is not a URL: say which name was probably meant (a short plain word
        // carries no credentials, so it may be echoed).
        if !input.contains("://")
            && input.len() <= 16
            && input.bytes().all(|b| b.is_ascii_alphabetic())
        {
            let word = input.to_ascii_lowercase();
            let guess = if "production".starts_with(&word) || word.starts_with("prod") {
                "; did you mean \"production\"?"
            } else if "stage".starts_with(&word) || word.starts_with("stag") {
                "; did you mean \"stage\"?"
            } else {
                ""
            };
            return Err(bad(&format!(
                "\"{input}\" is neither \"production\", \"stage\" nor a URL like https://host[:port][/prefix]{guess}"
            )));
        }
        // The input is not echoed: a mistyped URL may carry credentials.
        let url = Url::parse(input).map_err(|e| {
            bad(&format!(
                "is not a valid URL ({e}); use \"production\", \"stage\" or https://host[:port][/prefix]"
            ))
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not contain a user name or password"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("must not have a query or fragment"));
        }
        let host = url.host().ok_or_else(|| bad("has no host"))?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&host) => {}
            "http" => {
                return Err(bad(
                    "uses http:// for a host that is not loopback; tokens and secrets must travel over https://",
                ))
            }
            _ => return Err(bad("must start with https:// (http:// only for loopback hosts)")),
        }
        let mut s = url.to_string();
        while s.ends_with('/') {
            s.pop();
        }
        Ok(BaseUrl(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Findity's pages spell the token endpoint with a trailing slash for client credentials
    /// and refresh, and without it for the code exchange; each request uses its documented form.
    pub fn token_url(&self, trailing_slash: bool) -> String {
        let slash = if trailing_slash { "/" } else { "" };
        format!("{}/api/oauth/token{slash}", self.0)
    }

    pub fn authorization_grant_url(&self) -> String {
        format!("{}/api/oauth/authorization-grant", self.0)
    }
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_near_name_gets_a_suggestion() {
        let e = super::BaseUrl::parse("prod").unwrap_err();
        assert!(
            e.message.contains("did you mean \"production\"?"),
            "{}",
            e.message
        );
        let e = super::BaseUrl::parse("Staging").unwrap_err();
        assert!(
            e.message.contains("did you mean \"stage\"?"),
            "{}",
            e.message
        );
        let e = super::BaseUrl::parse("qa").unwrap_err();
        assert!(!e.message.contains("did you mean"), "{}", e.message);
    }

    use super::*;
    use crate::error::Status;

    fn ok(s: &str) -> String {
        BaseUrl::parse(s).unwrap().as_str().to_string()
    }

    fn err(s: &str) -> String {
        let e = BaseUrl::parse(s).unwrap_err();
        assert_eq!(e.status, Status::InvalidArgument);
        e.message
    }

    #[test]
    fn names_and_normal_forms() {
        assert_eq!(ok("production"), "https://expense.findity.com");
        assert_eq!(ok("stage"), "https://stage-expense.findity.com");
        assert_eq!(
            ok("HTTPS://Expense.Findity.com:443/"),
            "https://expense.findity.com"
        );
        assert_eq!(ok("https://h.example/prefix/"), "https://h.example/prefix");
        assert_eq!(ok("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(ok("http://127.5.6.7:1"), "http://127.5.6.7:1");
        assert_eq!(ok("http://[::1]:9/"), "http://[::1]:9");
        assert_eq!(ok("http://localhost:9"), "http://localhost:9");
    }

    #[test]
    fn rejects_unsafe_or_malformed() {
        assert!(err("http://expense.findity.com").contains("not loopback"));
        assert!(err("http://10.0.0.1").contains("not loopback"));
        assert!(err("ftp://127.0.0.1").contains("https://"));
        assert!(err("https://user:pw@host").contains("user name"));
        assert!(!err("https://user:pw@host").contains("pw"));
        assert!(err("https://host/?a=b").contains("query"));
        assert!(err("https://host/#x").contains("fragment"));
        assert!(err("not a url").contains("not a valid URL"));
        assert!(err("").contains("empty"));
    }

    #[test]
    fn endpoints() {
        let b = BaseUrl::parse("https://h/p").unwrap();
        assert_eq!(b.token_url(true), "https://h/p/api/oauth/token/");
        assert_eq!(b.token_url(false), "https://h/p/api/oauth/token");
        assert_eq!(
            b.authorization_grant_url(),
            "https://h/p/api/oauth/authorization-grant"
        );
    }
}
