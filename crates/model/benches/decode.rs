//! Decoding audit event lines: the first step of every import and ingest. Inputs are real
//! lines from testdata (a Metadata-level v1beta1 event and a RequestResponse event with bodies),
//! and that RequestResponse event with a body of eight copies of its response: enough brackets
//! (as objects with `managedFields` have) that the nesting check scans the body's text.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kubetrail_model::decode_event;

const AUDIT2RBAC: &str = include_str!("../../../testdata/real-audit/audit2rbac-v1beta1.jsonl");
const FALCO: &str = include_str!("../../../testdata/real-audit/falco-k8saudit.jsonl");

fn decode(c: &mut Criterion) {
    let metadata = AUDIT2RBAC.lines().next().expect("a line");
    let bodies = FALCO.lines().max_by_key(|l| l.len()).expect("a line");
    let mut big: serde_json::Value = serde_json::from_str(bodies).expect("JSON");
    big["responseObject"] = serde_json::Value::Array(vec![big["responseObject"].clone(); 8]);
    let big = big.to_string();
    let mut group = c.benchmark_group("decode_event");
    for (name, line) in [
        ("metadata", metadata),
        ("request_response", bodies),
        ("request_response_bracket_heavy", big.as_str()),
    ] {
        group.throughput(Throughput::Bytes(line.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| decode_event(std::hint::black_box(line.as_bytes())).expect("decodes"))
        });
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
