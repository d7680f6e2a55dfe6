//! Evaluating the seed policy (the tiered policy our first users run) over a realistic mix of
//! 10,000 requests. Criterion reports the time for the whole mix; divide by 10,000 for the time
//! per evaluation (the throughput line gives evaluations per second). A second figure repeats a
//! 100-request mix 100 times, so that the requests stay in cache as in a running apiserver.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kubetrail_policy::requestinfo::resolve;
use kubetrail_policy::traffic::realistic_mix;
use kubetrail_policy::{Attributes, LoadOptions, load_str};

const SEED: &str = include_str!("../../../testdata/policy/seed-audit-policy.yaml");
const MIX: usize = 10_000;

fn evaluate(c: &mut Criterion) {
    let policy = load_str(SEED, LoadOptions::default())
        .policy
        .expect("the seed policy loads");
    let requests = realistic_mix(MIX);
    let attrs: Vec<Attributes<'_>> = requests.iter().map(|r| r.as_attributes()).collect();

    let mut group = c.benchmark_group("seed_policy");
    group.throughput(Throughput::Elements(MIX as u64));
    group.bench_function("evaluate_10k_mix", |b| {
        b.iter(|| {
            let mut logged = 0usize;
            for a in &attrs {
                logged += usize::from(policy.evaluate(std::hint::black_box(a)).level as u8 > 0);
            }
            logged
        })
    });
    let small = realistic_mix(100);
    let small_attrs: Vec<Attributes<'_>> = small.iter().map(|r| r.as_attributes()).collect();
    group.bench_function("evaluate_100_mix_x100_hot_cache", |b| {
        b.iter(|| {
            let mut logged = 0usize;
            for _ in 0..100 {
                for a in &small_attrs {
                    logged += usize::from(policy.evaluate(std::hint::black_box(a)).level as u8 > 0);
                }
            }
            logged
        })
    });
    group.finish();

    let urls = [
        ("GET", "/api/v1/namespaces/default/pods/web-1"),
        (
            "GET",
            "/api/v1/namespaces/default/pods?watch=true&resourceVersion=123",
        ),
        (
            "PUT",
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-1",
        ),
        ("GET", "/healthz"),
    ];
    c.bench_function("requestinfo_resolve", |b| {
        b.iter(|| {
            for (m, u) in &urls {
                std::hint::black_box(resolve(m, u).expect("valid URL"));
            }
        })
    });
}

criterion_group!(benches, evaluate);
criterion_main!(benches);
