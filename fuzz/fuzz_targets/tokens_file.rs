//! The server's tokens file: parsed or refused with a reason that never quotes a token.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = kubetrail_server::auth::parse_tokens(text);
});
