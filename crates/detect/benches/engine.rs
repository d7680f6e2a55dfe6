//! The engine alone over generated-looking traffic: events per second with the whole
//! default pack.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kubetrail_detect::{Engine, Runtime, load};
use kubetrail_model::decode_event;

fn traffic() -> Vec<kubetrail_model::Event> {
    let lines = include_str!("../tests/data/benign.jsonl");
    lines
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| decode_event(l.as_bytes()).expect("benign.jsonl decodes"))
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
