//! API query parameters → filter: accepted or refused with an error naming the parameter, and a
//! filter that is accepted survives its own round trip through the query string. The same text
//! read as an alert filter (`/api/v1/alerts`) is accepted or refused, never a panic, and an
//! accepted one names only known severities.
#![no_main]

use kubetrail_api::params::{
    SEVERITIES, alert_filter_from_pairs, encode_query, filter_from_pairs, filter_to_pairs,
    parse_query,
};
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_714_558_830_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let pairs = parse_query(text);
    if let Ok((alerts, _)) = alert_filter_from_pairs(&pairs, &["limit"], NOW) {
        assert!(
            alerts
                .severities
                .iter()
                .all(|s| SEVERITIES.contains(&s.as_str())),
            "{alerts:?}"
        );
    }
    let Ok((filter, _)) = filter_from_pairs(&pairs, &[], NOW) else {
        return;
    };
    let query = encode_query(filter_to_pairs(&filter));
    let (again, _) = filter_from_pairs(&parse_query(&query), &[], NOW)
        .unwrap_or_else(|e| panic!("a filter's own query is refused: {e}: {query}"));
    assert_eq!(again, filter, "{query}");
});
