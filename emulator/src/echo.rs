//! Echo mode: error answers of the token and authorization-grant endpoints
//! repeat what the request sent (raw form body, Authorization header, query
//! string), secrets included. It models a hostile or careless server, so
//! tests can check that the library redacts what it reports. Only the answer
//! carries the echo; the emulator's own log never does.

use crate::faults::Action;
use crate::http::Request;

/// What the request sent, as one line of text.
fn text(req: &Request) -> String {
    format!(
        "request body={} authorization={} query={}",
        String::from_utf8_lossy(&req.body),
        req.header("authorization").unwrap_or(""),
        req.query
    )
}

/// Percent-encodes what a header value cannot carry: CR, LF, other control
/// characters and non-ASCII bytes.
fn header_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b == b'\t' || (0x20..0x7f).contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Adds the echo to an error answer (status >= 400) with a body: into
/// `error_description` of JSON (`description` of Findity's own shape),
/// appended to any other body, and as `X-Echo-Request` header.
pub(crate) fn apply(req: &Request, action: Action) -> Action {
    let Action::Respond(mut resp) = action else {
        return action;
    };
    if resp.status < 400 {
        return Action::Respond(resp);
    }
    let echo = text(req);
    let json = serde_json::from_slice::<serde_json::Value>(&resp.body).ok();
    match json {
        Some(serde_json::Value::Object(mut m)) => {
            let key = if m.contains_key("description") && !m.contains_key("error_description") {
                "description"
            } else {
                "error_description"
            };
            let before = m.get(key).and_then(|v| v.as_str()).unwrap_or("");
            let joined = if before.is_empty() {
                echo.clone()
            } else {
                format!("{before} ({echo})")
            };
            m.insert(key.into(), joined.into());
            resp.body = serde_json::Value::Object(m).to_string().into_bytes();
        }
        _ => {
            resp.body.extend_from_slice(echo.as_bytes());
            resp.body.push(b'\n');
        }
    }
    Action::Respond(resp.header("X-Echo-Request", header_safe(&echo)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Response;

    #[test]
    fn header_safe_encodes_controls() {
        assert_eq!(header_safe("a b\r\nc\u{e9}%"), "a b%0D%0Ac%C3%A9%");
    }

    #[test]
    fn shapes() {
        let req = Request {
            method: "POST".into(),
            path: "/api/oauth/token".into(),
            query: "q=1".into(),
            http11: true,
            headers: vec![("Authorization".into(), "Bearer T".into())],
            body: b"client_secret=s%26".to_vec(),
        };
        let expected = "request body=client_secret=s%26 authorization=Bearer T query=q=1";
        let body = |a: Action| match a {
            Action::Respond(r) => {
                let h = r.headers.iter().find(|(n, _)| n == "X-Echo-Request");
                assert_eq!(h.map(|(_, v)| v.as_str()), Some(expected));
                String::from_utf8(r.body).unwrap()
            }
            _ => panic!(),
        };
        let j = body(apply(
            &req,
            Action::Respond(Response::json(
                400,
                r#"{"error":"x","error_description":"d"}"#,
            )),
        ));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&j).unwrap()["error_description"],
            format!("d ({expected})")
        );
        let j = body(apply(
            &req,
            Action::Respond(Response::json(400, r#"{"code":"C","description":"d"}"#)),
        ));
        assert!(j.contains(&format!("d ({expected})")), "{j}");
        let t = body(apply(
            &req,
            Action::Respond(Response::new(500, "text/plain", "oops\n")),
        ));
        assert_eq!(t, format!("oops\n{expected}\n"));
        match apply(&req, Action::Respond(Response::json(200, "{}"))) {
            Action::Respond(r) => assert!(r.headers.iter().all(|(n, _)| n != "X-Echo-Request")),
            _ => panic!(),
        }
    }
}
