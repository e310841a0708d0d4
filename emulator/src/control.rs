//! The `/_emulator/*` control API used by test suites of every language.
//!
//! Parameters come from the query string and/or a form body, so a bare
//! `POST /_emulator/fault?kind=status:503` with an empty body works.

use crate::faults::Fault;
use crate::http::{parse_form, Request, Response};
use crate::oauth;
use crate::state::Shared;
use crate::Revoke;

fn error(msg: &str) -> Response {
    let body = serde_json::json!({"error": "invalid_request", "error_description": msg});
    Response::json_value(400, &body)
}

fn params(req: &Request) -> Result<Vec<(String, String)>, String> {
    let mut p = parse_form(req.query.as_bytes())?;
    p.extend(parse_form(&req.body)?);
    Ok(p)
}

fn parse_bool(name: &str, v: &str) -> Result<bool, String> {
    match v {
        "1" | "true" | "on" | "yes" => Ok(true),
        "0" | "false" | "off" | "no" => Ok(false),
        _ => Err(format!("{name} must be 0 or 1")),
    }
}

/// `a,b,c` (empty: none).
pub(crate) fn split_ids(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn ok() -> Response {
    Response::json(200, r#"{"ok":true}"#)
}

/// Handles a request whose path starts with `/_emulator`.
pub(crate) fn handle(shared: &Shared, req: &Request) -> Response {
    let sub = req.path.strip_prefix("/_emulator").unwrap_or("");
    let sub = match sub.strip_suffix('/') {
        Some(s) if !s.is_empty() => s,
        _ => sub,
    };
    if sub == "/redirect-target" {
        return oauth::redirect_target(shared);
    }
    let get = matches!(req.method.as_str(), "GET" | "HEAD");
    let post = req.method == "POST";
    let params = match params(req) {
        Ok(p) => p,
        Err(e) => return error(&e),
    };
    let pairs = || params.iter().map(|(n, v)| (n.as_str(), v.as_str()));
    match sub {
        "/stats" if get => Response::json_value(200, &shared.lock().stats.to_json()),
        "/reset" if post => {
            shared.reset();
            ok()
        }
        "/config" if get => Response::json_value(200, &shared.lock().runtime.to_json()),
        "/config" if post => set_config(shared, pairs()),
        "/fault" if post => match Fault::from_params(pairs()) {
            Ok(f) => {
                let mut st = shared.lock();
                let json = f.to_json();
                st.faults.push(f);
                Response::json_value(
                    200,
                    &serde_json::json!({"ok": true, "fault": json, "queued": st.faults.len()}),
                )
            }
            Err(e) => error(&e),
        },
        "/fault/clear" if post => {
            shared.lock().faults.clear();
            ok()
        }
        "/faults" if get => {
            let list: Vec<_> = shared
                .lock()
                .faults
                .list()
                .iter()
                .map(Fault::to_json)
                .collect();
            Response::json_value(200, &serde_json::Value::from(list))
        }
        "/revoke" if post => {
            let what = pairs()
                .find(|(n, _)| *n == "what")
                .map(|(_, v)| v)
                .unwrap_or("all");
            match what.parse::<Revoke>() {
                Ok(w) => {
                    let mut st = shared.lock();
                    if matches!(w, Revoke::Refresh | Revoke::All) {
                        st.store.revoke_refresh();
                    }
                    if matches!(w, Revoke::Access | Revoke::All) {
                        st.store.revoke_access();
                    }
                    ok()
                }
                Err(e) => error(&e),
            }
        }
        "/ca.pem" if get => match &shared.ca_pem {
            Some(pem) => Response::new(200, "application/x-pem-file", pem.clone()),
            None => Response::json(
                404,
                r#"{"error":"not_found","error_description":"TLS is off (start with --tls)"}"#,
            ),
        },
        "/health" if get => ok(),
        "/stats" | "/config" | "/faults" | "/ca.pem" | "/health" => {
            Response::method_not_allowed(if sub == "/config" { "GET, POST" } else { "GET" })
        }
        "/reset" | "/fault" | "/fault/clear" | "/revoke" => Response::method_not_allowed("POST"),
        _ => Response::not_found(),
    }
}

fn set_config<'a>(shared: &Shared, pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Response {
    // Validate everything before changing anything.
    let mut rt = shared.lock().runtime.clone();
    for (name, value) in pairs {
        let r: Result<(), String> = match name {
            "lifetime" | "lifetime_secs" => value
                .parse()
                .map(|v| rt.lifetime_secs = v)
                .map_err(|_| format!("bad lifetime {value:?}")),
            "latency_ms" | "latency" => value
                .parse()
                .map(|v| rt.latency_ms = v)
                .map_err(|_| format!("bad latency_ms {value:?}")),
            "refresh_tokens" => parse_bool(name, value).map(|v| rt.refresh_tokens = v),
            "omit_expires_in" => parse_bool(name, value).map(|v| rt.omit_expires_in = v),
            "echo" => parse_bool(name, value).map(|v| rt.echo = v),
            "throttle" => crate::throttle::parse(value).map(|v| rt.throttle = v),
            "unknown_users" => {
                rt.unknown_users = split_ids(value);
                Ok(())
            }
            _ => Err(format!("unknown parameter {name:?}")),
        };
        if let Err(e) = r {
            return error(&e);
        }
    }
    let json = rt.to_json();
    let mut st = shared.lock();
    if st.runtime.throttle != rt.throttle {
        st.throttle.clear();
    }
    st.runtime = rt;
    Response::json_value(200, &json)
}
