//! Evaluation allocates nothing: an allocation-counting global allocator watches the whole
//! realistic mix being evaluated against the seed policy. The same counter checks that hostile
//! YAML is refused in little memory. (Its own test binary, so no other test's allocations are
//! counted.)

#![allow(clippy::unwrap_used)]

use kubetrail_policy::traffic::realistic_mix;
use kubetrail_policy::{Attributes, LoadOptions, load_str};

#[test]
fn evaluating_the_seed_policy_allocates_nothing() {
    let seed = include_str!("../../../testdata/policy/seed-audit-policy.yaml");
    let policy = load_str(seed, LoadOptions::default()).policy.unwrap();
    let requests = realistic_mix(10_000);
    let attrs: Vec<Attributes<'_>> = requests.iter().map(|r| r.as_attributes()).collect();
    let mut logged = 0;
    let counts = allocation_counter::measure(|| {
        for a in &attrs {
            logged += usize::from(policy.evaluate(a).rule.is_some());
        }
    });
    assert_eq!(counts.count_total, 0, "allocations during 10k evaluations");
    assert_eq!(logged, attrs.len(), "the seed policy ends with a catch-all");

    // The counter does see allocations: loading a policy allocates.
    let counts = allocation_counter::measure(|| {
        std::hint::black_box(load_str(seed, LoadOptions::default()));
    });
    assert!(counts.count_total > 0);
}

#[test]
fn refusing_an_alias_bomb_or_deep_nesting_stays_small() {
    for (name, text) in [
        (
            "alias-bomb",
            include_str!("../../../testdata/policy/alias-bomb.yaml"),
        ),
        (
            "deep-nesting",
            include_str!("../../../testdata/policy/deep-nesting.yaml"),
        ),
    ] {
        let mut valid = true;
        let counts = allocation_counter::measure(|| {
            valid = load_str(text, LoadOptions::default()).is_valid();
        });
        assert!(!valid, "{name} loaded");
        assert!(
            counts.bytes_max < 64 << 20,
            "{name}: {} bytes at the peak",
            counts.bytes_max
        );
    }
}
