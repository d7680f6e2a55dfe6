//! One line of a log backend file: decoding never panics, and what decodes re-encodes as v1
//! JSON that decodes to the same event.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = kubetrail_model::decode_event(data) else {
        return;
    };
    let v1 = event.to_v1_json();
    let again = kubetrail_model::decode_event(v1.as_bytes())
        .unwrap_or_else(|e| panic!("re-encoded event does not decode: {e}: {v1}"));
    assert_eq!(again.to_v1_json(), v1, "encoding is stable");
});
