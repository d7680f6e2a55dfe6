//! RequestInfo: a method and a URL (first line: method, the rest: URL) resolve to request
//! attributes or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (method, url) = text.split_once('\n').unwrap_or(("GET", text));
    let _ = kubetrail_policy::requestinfo::resolve(method, url);
});
