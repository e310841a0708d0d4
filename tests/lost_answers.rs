//! Single-use grants whose answer was lost. The emulator's `consume:*` faults process the grant
//! (the refresh token or code is used up, a new token issued and forgotten) and then lose the
//! answer: a reset, a close, a hang or a 5xx. Whatever the library does next, the emulator must
//! never see that refresh token or code again (its reuse counters count every presentation).

mod common;

use findity::ffi::*;
use findity_emulator::{Emulator, Fault, Grant};
use std::sync::Once;

const ID: &str = "client-lost";
const SECRET: &str = "secret-lost-5b2e";
const LOST: [&str; 4] = [
    "consume:reset",
    "consume:close",
    "consume:status:502",
    "consume:hang",
];

fn setup() {
    static ONCE: Once = Once::new();
    // consume:hang holds the answer forever: the call must give up within timeout_ms.
    ONCE.call_once(|| assert_eq!(common::set_option("timeout_ms", "1500"), FINDITY_OK));
}

fn emulator() -> Emulator {
    setup();
    common::emulator(ID, SECRET, 3600)
}

fn token(url: &str, user: Option<&str>) -> Result<String, (u32, u16, String)> {
    common::token(url, ID, SECRET, user)
}

/// The refresh grant is processed and its answer lost; the fallback grant is refused, so the
/// call fails. The next call must not present the (used) refresh token again: it goes back to
/// the primary grant.
fn refresh_answer_lost(user: Option<&str>, lost: &str) {
    let emu = emulator();
    let url = emu.url();
    token(&url, user).unwrap();
    common::invalidate(&url, ID, user);
    emu.add_fault(
        Fault::parse("token", lost, 1)
            .unwrap()
            .grant(Grant::RefreshToken),
    );
    let fallback = match user {
        None => Fault::parse("token", "status:400", 1)
            .unwrap()
            .grant(Grant::ClientCredentials),
        Some(_) => Fault::parse("grant", "status:400", 1).unwrap(),
    };
    emu.add_fault(fallback);
    assert!(
        token(&url, user).is_err(),
        "{lost}: the fallback was refused"
    );
    // A hang uses up timeout_ms before the fallback is tried: its fault may still be queued.
    emu.clear_faults();
    let got = token(&url, user);
    assert!(got.is_ok(), "{lost}: healthy again: {got:?}");
    let st = emu.stats();
    assert_eq!(
        st.refresh_token, 1,
        "{lost}: the refresh token was sent once"
    );
    assert_eq!(
        st.refresh_reuse, 0,
        "{lost}: a used refresh token was sent again"
    );
    assert_eq!(st.code_reuse, 0, "{lost}");
}

#[test]
fn organization_refresh_answer_lost() {
    for lost in LOST {
        refresh_answer_lost(None, lost);
    }
}

#[test]
fn user_refresh_answer_lost() {
    for lost in LOST {
        refresh_answer_lost(Some("employee-lost"), lost);
    }
}

/// The code exchange is processed and its answer lost: the library gets a new code (a new
/// authorization grant), never replays the used one.
#[test]
fn code_exchange_answer_lost() {
    for lost in LOST {
        let emu = emulator();
        let url = emu.url();
        emu.add_fault(
            Fault::parse("token", lost, 1)
                .unwrap()
                .grant(Grant::AuthorizationCode),
        );
        let got = token(&url, Some("employee-code"));
        let st = emu.stats();
        assert_eq!(st.code_reuse, 0, "{lost}: a used code was sent again");
        // A 5xx, reset or close is retried with a new code inside timeout_ms; a hang may use
        // it all up. Either way the next call works.
        if got.is_err() {
            assert!(lost == "consume:hang", "{lost}: {got:?}");
            token(&url, Some("employee-code")).unwrap();
        }
        let st = emu.stats();
        assert!(
            st.authorization_grant >= 2,
            "{lost}: a new code was asked for"
        );
        assert_eq!(st.code_reuse, 0, "{lost}: a used code was sent again");
    }
}

/// Which token path the library uses for each grant (Findity's pages spell it with a trailing
/// slash for client credentials and refresh, without for the code exchange).
#[test]
fn token_path_per_grant() {
    let emu = emulator();
    let url = emu.url();
    token(&url, Some("employee-path")).unwrap();
    common::invalidate(&url, ID, None);
    token(&url, None).unwrap();
    let st = emu.stats();
    assert_eq!(
        st.token_path_count("client_credentials", "/api/oauth/token/"),
        1
    );
    assert_eq!(st.token_path_count("refresh_token", "/api/oauth/token/"), 1);
    assert_eq!(
        st.token_path_count("authorization_code", "/api/oauth/token"),
        1
    );
    assert_eq!(
        st.token_path_count("client_credentials", "/api/oauth/token"),
        0
    );
}
