//! A webhook body: an `EventList` decodes or is refused with an error, never a panic, and each
//! item's own text decodes on its own.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kubetrail_model::decode_event_list(data);
    if let Ok(items) = kubetrail_model::decode_event_list_items(data) {
        for item in items {
            kubetrail_model::decode_event(item.json.as_bytes())
                .unwrap_or_else(|e| panic!("an item's text does not decode: {e}: {}", item.json));
        }
    }
});
