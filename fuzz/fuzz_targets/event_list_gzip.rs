//! A gzip-compressed body, as agents and some webhook proxies send it: decompression stops at
//! the server's limit and what comes out goes through the EventList decoder.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;

/// As the server: no body grows past this once decompressed.
const LIMIT: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    let decoder = flate2::read::MultiGzDecoder::new(data);
    if decoder.take(LIMIT + 1).read_to_end(&mut out).is_err() || out.len() as u64 > LIMIT {
        return;
    }
    if let Ok(items) = kubetrail_model::decode_event_list_items(&out) {
        for item in items {
            kubetrail_model::decode_event(item.json.as_bytes())
                .unwrap_or_else(|e| panic!("an item's text does not decode: {e}"));
        }
    }
});
