//! The engine alone over generated traffic (the seed policy, `kubetrail gen`'s generator):
//! events per second with the whole default pack, decoding excluded.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kubetrail_detect::{Engine, Runtime, load};
use kubetrail_model::decode_event;

fn traffic() -> Vec<kubetrail_model::Event> {
    let text = include_str!("../../../testdata/policy/seed-audit-policy.yaml");
    let policy = kubetrail_policy::load_str(text, Default::default())
        .policy
        .expect("the seed policy loads");
    let config = kubetrail_traffic::Config {
        seed: 1,
        start: "2026-11-01T00:00:00Z".parse().expect("a time"),
        rate: 20.0,
        cluster: 0,
    };
    let mut generator = kubetrail_traffic::Generator::new(&policy, &config);
    let mut lines = Vec::new();
    while lines.len() < 50_000 {
        generator.next_request(&mut lines);
    }
    lines
        .iter()
        .map(|l| decode_event(l.json.as_bytes()).expect("generated events decode"))
        .collect()
}

fn engine(c: &mut Criterion) {
    let events = traffic();
    let rt = Runtime::new();
    let rules = load(&rt, true, &[], &Default::default()).expect("the default pack loads");
    let mut engine = Engine::new(rt, rules);
    let mut alerts = Vec::new();
    let mut g = c.benchmark_group("detect");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("default_pack", |b| {
        b.iter(|| {
            alerts.clear();
            for e in &events {
                engine.observe(e, "bench", &mut alerts);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
