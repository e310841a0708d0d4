//! Issue 22: a code exchange answered 429 was not processed, so its code is still unused: it is
//! sent again after the pause (while young), not thrown away for a new authorization grant.

mod common;

use findity_emulator::{Fault, FaultKind, Grant};

#[test]
fn a_throttled_code_exchange_resends_its_code_after_the_pause() {
    let emu = common::emulator("resend-client", "resend-secret", 3600);
    let url = emu.url();
    common::token(&url, "resend-client", "resend-secret", None).unwrap();
    let mut f = Fault::new(
        findity_emulator::Endpoint::Token,
        FaultKind::TooManyRequests,
    );
    f.grant = Some(Grant::AuthorizationCode);
    f.retry_after = Some(1);
    emu.add_fault(f);
    let t = common::token(&url, "resend-client", "resend-secret", Some("E42"));
    assert!(t.is_ok(), "{t:?}");
    let s = emu.stats();
    assert_eq!(
        s.authorization_grant, 1,
        "no new grant: the code was sent again {s:?}"
    );
    assert_eq!(s.authorization_code, 2, "{s:?}");
    assert_eq!(s.code_reuse, 0, "{s:?}");
}
