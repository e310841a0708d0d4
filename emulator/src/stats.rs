//! Counters that tests assert on (`GET /_emulator/stats`, `Emulator::stats`).

use std::collections::HashMap;

/// Snapshot of the emulator's counters since start or the last reset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Every request to the token endpoint (any grant, any outcome).
    pub token_requests: u64,
    /// Token requests with `grant_type=client_credentials`.
    pub client_credentials: u64,
    /// Token requests with `grant_type=refresh_token`.
    pub refresh_token: u64,
    /// Token requests with `grant_type=authorization_code`.
    pub authorization_code: u64,
    /// Every request to the authorization-grant endpoint.
    pub authorization_grant: u64,
    /// Requests to the resource API (other paths under `/api/`).
    pub api_requests: u64,
    /// Presentations of a refresh token that was already used, counted on
    /// arrival whatever then happens to the request (fault, throttle, refusal).
    pub refresh_reuse: u64,
    /// Presentations of an authorization code that was already used, counted
    /// the same way.
    pub code_reuse: u64,
    /// Requests that arrived at `/_emulator/redirect-target`.
    pub redirect_target_hits: u64,
    /// Requests a fault was applied to.
    pub faults_served: u64,
    /// Token/grant requests refused by the throttle (429, not processed).
    pub throttled: u64,
    /// Most token+grant requests processed at the same time.
    pub max_concurrent: u64,
    /// Token+grant requests being processed now.
    pub in_flight: u64,
    /// Successful tokens issued per subject: `org:<client_id>` / `user:<user_id>`.
    pub by_subject: HashMap<String, u64>,
    /// Token requests per grant type and request path (as sent, e.g.
    /// `/api/oauth/token/`): `{"client_credentials": {"/api/oauth/token/": 3}}`.
    pub token_paths: HashMap<String, HashMap<String, u64>>,
}

fn counts(m: &HashMap<String, u64>) -> serde_json::Value {
    m.iter()
        .map(|(k, v)| (k.clone(), (*v).into()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn counts_from(v: Option<&serde_json::Value>) -> HashMap<String, u64> {
    v.and_then(|m| m.as_object())
        .map(|m| {
            m.iter()
                .map(|(k, x)| (k.clone(), x.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

impl Stats {
    /// The JSON object served by `GET /_emulator/stats` (keys sorted).
    pub fn to_json(&self) -> serde_json::Value {
        let token_paths: serde_json::Map<String, serde_json::Value> = self
            .token_paths
            .iter()
            .map(|(g, paths)| (g.clone(), counts(paths)))
            .collect();
        serde_json::json!({
            "token_requests": self.token_requests,
            "client_credentials": self.client_credentials,
            "refresh_token": self.refresh_token,
            "authorization_code": self.authorization_code,
            "authorization_grant": self.authorization_grant,
            "api_requests": self.api_requests,
            "refresh_reuse": self.refresh_reuse,
            "code_reuse": self.code_reuse,
            "redirect_target_hits": self.redirect_target_hits,
            "faults_served": self.faults_served,
            "throttled": self.throttled,
            "max_concurrent": self.max_concurrent,
            "in_flight": self.in_flight,
            "by_subject": counts(&self.by_subject),
            "token_paths": token_paths,
        })
    }

    /// Parses the JSON of `GET /_emulator/stats` (missing fields are 0).
    pub fn from_json(text: &str) -> Result<Stats, String> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let n = |k: &str| v.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
        let token_paths = v
            .get("token_paths")
            .and_then(|m| m.as_object())
            .map(|m| {
                m.iter()
                    .map(|(g, paths)| (g.clone(), counts_from(Some(paths))))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Stats {
            token_requests: n("token_requests"),
            client_credentials: n("client_credentials"),
            refresh_token: n("refresh_token"),
            authorization_code: n("authorization_code"),
            authorization_grant: n("authorization_grant"),
            api_requests: n("api_requests"),
            refresh_reuse: n("refresh_reuse"),
            code_reuse: n("code_reuse"),
            redirect_target_hits: n("redirect_target_hits"),
            faults_served: n("faults_served"),
            throttled: n("throttled"),
            max_concurrent: n("max_concurrent"),
            in_flight: n("in_flight"),
            by_subject: counts_from(v.get("by_subject")),
            token_paths,
        })
    }

    /// Token requests with `grant` (e.g. `client_credentials`) sent to `path`.
    pub fn token_path_count(&self, grant: &str, path: &str) -> u64 {
        self.token_paths
            .get(grant)
            .and_then(|p| p.get(path))
            .copied()
            .unwrap_or(0)
    }

    /// Successful tokens issued for `subject` (`org:ID` / `user:ID`).
    pub fn issued_for(&self, subject: &str) -> u64 {
        self.by_subject.get(subject).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip() {
        let mut s = Stats {
            token_requests: 3,
            max_concurrent: 2,
            ..Stats::default()
        };
        s.by_subject.insert("org:demo-client".into(), 2);
        s.token_paths
            .entry("refresh_token".into())
            .or_default()
            .insert("/api/oauth/token/".into(), 4);
        let back = Stats::from_json(&s.to_json().to_string()).unwrap();
        assert_eq!(back, s);
    }
}
