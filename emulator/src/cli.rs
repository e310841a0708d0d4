//! Command-line parsing and help text of the `findity-emulator` binary.

use std::path::PathBuf;

use crate::Config;

/// Everything the binary needs to run.
#[derive(Clone, Debug)]
pub struct CliOptions {
    pub config: Config,
    /// Write the CA certificate (PEM) here (requires `--tls`).
    pub ca_out: Option<PathBuf>,
    /// Write the base URL (plus newline) here once listening.
    pub url_file: Option<PathBuf>,
    /// Exit when standard input reaches EOF.
    pub exit_on_stdin_close: bool,
}

/// What the command line asks for.
// Made once per run: the size of the Run variant costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum CliCommand {
    Run(CliOptions),
    Help,
    Version,
}

pub const HELP: &str = r#"findity-emulator - loopback emulator of Findity's OAuth server (Findity Expense API)

Serves Findity's token and authorization-grant endpoints on a loopback
address, with single-use refresh tokens and codes, a stand-in resource API,
counters and fault injection, for tests and for developing ERP connectors
offline. On start it prints the base URL (e.g. http://127.0.0.1:41234) as the
first line of stdout. Request log (method, path, grant_type, status,
duration; never tokens) goes to stderr.

USAGE:
    findity-emulator [OPTIONS]

OPTIONS:
    --host HOST              Address to bind [default: 127.0.0.1]
    --port PORT              Port to bind, 0 = ephemeral [default: 0]
    --allow-non-loopback     Allow binding a non-loopback address
    --tls                    Serve HTTPS with a CA and a localhost/127.0.0.1/::1
                             certificate generated at start
    --ca-out FILE            Write the CA certificate (PEM) to FILE (needs --tls)
    --lifetime SECS          Access token lifetime, sent as expires_in [default: 3600]
    --latency-ms MS          Delay before every token/grant answer [default: 0]
    --client ID:SECRET       Accepted client (repeatable)
                             [default: demo-client:demo-secret]
    --user ID                Known user id (repeatable) [default: every id]
    --unknown-users ID[,ID]  User ids refused with USER_NOT_FOUND (repeatable)
    --throttle N/MS          More than N token+grant requests of one client in any
                             MS window -> 429 too_many_requests with Retry-After,
                             not processed (e.g. 20/1000, like Findity); a code
                             exchange counts for the client its code was issued to
                             [default: off]
    --echo                   Token/grant error answers repeat the request (form body,
                             Authorization, query) in error_description/body text
                             and an X-Echo-Request header: secrets included
    --gzip                   Gzip every token/grant answer (Content-Encoding: gzip)
                             whatever Accept-Encoding says, like a gateway that
                             compresses regardless
    --no-refresh-token       Answer without refresh_token (as Findity's
                             getting-started page shows)
    --url-file FILE          Write the base URL to FILE once listening
    --exit-on-stdin-close    Exit when stdin reaches EOF (no orphans in harnesses)
    --quiet                  No request log
    -h, --help               Show this help
    -V, --version            Show the version

FINDITY ENDPOINTS (Content-Type: application/x-www-form-urlencoded is required):
    POST /api/oauth/token[/]  grant_type=client_credentials&client_id=ID&client_secret=SECRET
                              -> {"access_token","token_type":"Bearer","expires_in","refresh_token"}
    POST /api/oauth/token[/]  grant_type=refresh_token&client_id=ID&refresh_token=RT
                              (each refresh token works once; reuse -> 400 invalid_grant)
    POST /api/oauth/authorization-grant[/]  Authorization: Bearer <organization token>
                              user_id=ID -> {"code":"<32 hex>"} (single use, 60 s)
    POST /api/oauth/token[/]  grant_type=authorization_code&code=CODE -> user token
                              (client_id / client_secret optional; checked if sent)
    ANY  /api/<anything else> Authorization: Bearer <token>
                              -> 200 {"subject":"org:ID"|"user:ID","path":...} or 401

CONTROL API (parameters in the query string and/or a form body):
    GET  /_emulator/stats         counters as JSON (token_requests, refresh_reuse, code_reuse,
                                  throttled, token_paths {grant: {path: n}}, ...)
    POST /_emulator/reset         clear counters, faults, tokens; restore start-up config
    GET  /_emulator/config        runtime config as JSON
    POST /_emulator/config        lifetime=SECS latency_ms=MS refresh_tokens=0|1
                                  omit_expires_in=0|1 echo=0|1 throttle=N/MS|off
                                  unknown_users=ID,ID (empty: none)
    POST /_emulator/fault         endpoint=token|grant|api|any [token]
                                  grant=client_credentials|refresh_token|authorization_code
                                  count=N [1; 0 = until cleared] retry_after=SECS
                                  every=N [1]: only each Nth matching request
                                  (faults are per request, never per unit of time)
                                  kind=status:CODE|429|hang|reset|close|malformed|
                                       no_access_token|expires_in:RAW|huge|redirect|
                                       html|text|invalid_grant|delay:MS|
                                       consume:reset|consume:close|consume:hang|
                                       consume:status:CODE
                                  (consume:* process the grant -- refresh token or
                                  code used, tokens/code issued -- then lose the
                                  answer; every other kind acts before processing)
    POST /_emulator/fault/clear   remove all faults
    GET  /_emulator/faults        queued faults as JSON
    POST /_emulator/revoke        what=refresh|access|all
    GET  /_emulator/ca.pem        the CA certificate (with --tls)
    GET  /_emulator/health        {"ok":true}
    ANY  /_emulator/redirect-target  counted in redirect_target_hits (target of the
                                  redirect fault)

EXAMPLES:
    findity-emulator --port 8080 --client my-id:my-secret --user alice
    findity-emulator --unknown-users bob,carol --throttle 20/1000 --echo
    curl -s -d grant_type=client_credentials -d client_id=demo-client \
         -d client_secret=demo-secret http://127.0.0.1:8080/api/oauth/token
    curl -s -X POST 'http://127.0.0.1:8080/_emulator/fault?endpoint=token&kind=status:503&count=2'
    curl -s -X POST 'http://127.0.0.1:8080/_emulator/fault?kind=429&retry_after=2'
    curl -s -X POST -d lifetime=5 -d latency_ms=200 http://127.0.0.1:8080/_emulator/config
    curl -s -X POST -d what=refresh http://127.0.0.1:8080/_emulator/revoke
    curl -s http://127.0.0.1:8080/_emulator/stats
    curl -s -X POST http://127.0.0.1:8080/_emulator/reset
"#;

fn number<T: std::str::FromStr>(opt: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{opt}: invalid number {v:?}"))
}

/// Parses arguments (without the program name). `--opt VALUE` and `--opt=VALUE` both work.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<CliCommand, String> {
    let mut cfg = Config::default();
    let mut clients: Vec<(String, String)> = Vec::new();
    let mut ca_out = None;
    let mut url_file = None;
    let mut exit_on_stdin_close = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (opt, inline) = match arg.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let takes_value = matches!(
            opt.as_str(),
            "--host"
                | "--port"
                | "--ca-out"
                | "--lifetime"
                | "--latency-ms"
                | "--client"
                | "--user"
                | "--unknown-users"
                | "--throttle"
                | "--url-file"
        );
        let value = if takes_value {
            match inline {
                Some(v) => v,
                None => args.next().ok_or_else(|| format!("{opt} needs a value"))?,
            }
        } else {
            if inline.is_some() {
                return Err(format!("{opt} takes no value"));
            }
            String::new()
        };
        match opt.as_str() {
            "-h" | "--help" => return Ok(CliCommand::Help),
            "-V" | "--version" => return Ok(CliCommand::Version),
            "--host" => cfg.host = value,
            "--port" => cfg.port = number(&opt, &value)?,
            "--allow-non-loopback" => cfg.allow_non_loopback = true,
            "--tls" => cfg.tls = true,
            "--ca-out" => ca_out = Some(PathBuf::from(value)),
            "--lifetime" => cfg.lifetime_secs = number(&opt, &value)?,
            "--latency-ms" => cfg.latency_ms = number(&opt, &value)?,
            "--client" => {
                let (id, secret) = value
                    .split_once(':')
                    .filter(|(id, _)| !id.is_empty())
                    .ok_or_else(|| format!("--client: expected ID:SECRET, got {value:?}"))?;
                clients.push((id.to_string(), secret.to_string()));
            }
            "--user" => {
                if value.is_empty() {
                    return Err("--user: empty id".into());
                }
                cfg.users.push(value)
            }
            "--unknown-users" => {
                let ids = crate::control::split_ids(&value);
                if ids.is_empty() {
                    return Err("--unknown-users: no id".into());
                }
                cfg.unknown_users.extend(ids)
            }
            "--throttle" => {
                cfg.throttle =
                    crate::throttle::parse(&value).map_err(|e| format!("--throttle: {e}"))?
            }
            "--echo" => cfg.echo = true,
            "--gzip" => cfg.gzip = true,
            "--no-refresh-token" | "--no-refresh-tokens" => cfg.refresh_tokens = false,
            "--url-file" => url_file = Some(PathBuf::from(value)),
            "--exit-on-stdin-close" => exit_on_stdin_close = true,
            "--quiet" | "-q" => cfg.quiet = true,
            _ => return Err(format!("unknown option {arg:?}")),
        }
    }
    if !clients.is_empty() {
        cfg.clients = clients;
    }
    if ca_out.is_some() && !cfg.tls {
        return Err("--ca-out needs --tls".into());
    }
    Ok(CliCommand::Run(CliOptions {
        config: cfg,
        ca_out,
        url_file,
        exit_on_stdin_close,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<CliOptions, String> {
        match parse_args(args.iter().map(|s| s.to_string()))? {
            CliCommand::Run(o) => Ok(o),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn options() {
        let o = run(&[
            "--port=8080",
            "--client",
            "a:b:c",
            "--client",
            "x:y",
            "--user",
            "u1",
            "--unknown-users",
            "x1,x2",
            "--unknown-users=x3",
            "--lifetime",
            "-5",
            "--tls",
            "--ca-out",
            "ca.pem",
            "--no-refresh-token",
            "--quiet",
            "--echo",
            "--gzip",
            "--throttle",
            "20/1000",
        ])
        .unwrap();
        assert_eq!(o.config.port, 8080);
        assert_eq!(
            o.config.clients,
            vec![("a".into(), "b:c".into()), ("x".into(), "y".into())]
        );
        assert_eq!(o.config.users, vec!["u1".to_string()]);
        assert_eq!(o.config.unknown_users, ["x1", "x2", "x3"]);
        assert_eq!(o.config.lifetime_secs, -5);
        assert!(o.config.tls && o.config.quiet && !o.config.refresh_tokens);
        assert!(o.config.echo && o.config.gzip);
        assert!(!run(&[]).unwrap().config.gzip);
        assert_eq!(
            o.config.throttle,
            Some((20, std::time::Duration::from_millis(1000)))
        );
        assert!(run(&["--throttle", "0/1000"]).is_err());
        let d = run(&[]).unwrap();
        assert_eq!(
            d.config.clients,
            vec![("demo-client".into(), "demo-secret".into())]
        );
        assert!(run(&["--ca-out", "x"]).is_err());
        assert!(run(&["--bogus"]).is_err());
        assert!(run(&["--port"]).is_err());
        assert!(run(&["--client", ":x"]).is_err());
        assert!(matches!(
            parse_args(["--help".to_string()]),
            Ok(CliCommand::Help)
        ));
    }
}
