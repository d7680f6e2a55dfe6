//! Query latencies over an existing store, in-process: the figures `scripts/bench-store`
//! reports. Not a criterion bench: it runs against a store of millions of events that the
//! script builds first — an embedded one in `KUBETRAIL_BENCH_DATA_DIR`, or ClickHouse at
//! `KUBETRAIL_BENCH_CLICKHOUSE_URL` (database `KUBETRAIL_BENCH_CLICKHOUSE_DATABASE`) — and
//! prints one line per query: `name<TAB>median ms<TAB>min ms<TAB>rows`.

/// The allocator the `kubetrail` binary uses, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use kubetrail_store::{Filter, ResourceSelector, Store, TimeRange};
use kubetrail_store_clickhouse::{ClickHouseStore, Connection};
use kubetrail_store_duckdb::DuckDbStore;

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, Duration, T) {
    let mut last = f(); // warm-up
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        last = f();
        times.push(t.elapsed());
    }
    times.sort();
    (times[runs / 2], times[0], last)
}

fn main() {
    let store: Box<dyn Store> = match (
        std::env::var("KUBETRAIL_BENCH_CLICKHOUSE_URL"),
        std::env::var("KUBETRAIL_BENCH_DATA_DIR"),
    ) {
        (Ok(url), _) => Box::new(
            ClickHouseStore::open(Connection {
                url,
                database: std::env::var("KUBETRAIL_BENCH_CLICKHOUSE_DATABASE")
                    .unwrap_or_else(|_| "kubetrail".into()),
                user: None,
                password: None,
            })
            .expect("ClickHouse answers"),
        ),
        (_, Ok(dir)) => {
            Box::new(DuckDbStore::open(std::path::Path::new(&dir)).expect("the store opens"))
        }
        _ => {
            eprintln!(
                "set KUBETRAIL_BENCH_DATA_DIR or KUBETRAIL_BENCH_CLICKHOUSE_URL (scripts/bench-store does)"
            );
            return;
        }
    };
    let store = store.as_ref();
    let newest = store
        .query(&Filter::default(), None, 1)
        .expect("query")
        .records;
    let Some(newest) = newest.first() else {
        eprintln!("the store is empty");
        return;
    };
    let now = newest.ts_micros;
    let since = |hours: i64| Filter {
        time: TimeRange {
            from_micros: Some(now - hours * 3_600_000_000),
            to_micros: None,
        },
        ..Filter::default()
    };
    let runs = 5;
    let report = |name: &str, (median, min, rows): (Duration, Duration, usize)| {
        println!(
            "{name}\t{:.1}\t{:.1}\t{rows}",
            median.as_secs_f64() * 1e3,
            min.as_secs_f64() * 1e3
        );
    };

    report("overview 24h", {
        let f = since(24);
        let (m, n, o) = time(runs, || {
            kubetrail_report::overview(store, &f).expect("overview")
        });
        (m, n, o.requests as usize)
    });
    report("overview 7d", {
        let f = since(24 * 7);
        let (m, n, o) = time(runs, || {
            kubetrail_report::overview(store, &f).expect("overview")
        });
        (m, n, o.requests as usize)
    });
    report("search newest 100, 3 filters", {
        let f = Filter {
            verbs: vec!["get".into()],
            resources: vec![ResourceSelector::core("secrets", None)],
            namespaces: vec!["payments".into()],
            ..Filter::default()
        };
        let (m, n, p) = time(runs, || store.query(&f, None, 100).expect("search"));
        (m, n, p.records.len())
    });
    report("object history", {
        let f = Filter {
            verbs: kubetrail_report::WRITE_VERBS
                .iter()
                .map(|v| v.to_string())
                .collect(),
            resources: vec!["deployments.apps".parse().expect("valid")],
            names: vec!["checkout".into()],
            namespaces: vec!["payments".into()],
            ..Filter::default()
        };
        let (m, n, p) = time(runs, || store.query(&f, None, 1000).expect("history"));
        (m, n, p.records.len())
    });
    report("free-text search, newest 100", {
        let f = Filter {
            text: Some("oncall-admin".into()),
            ..Filter::default()
        };
        let (m, n, p) = time(runs, || store.query(&f, None, 100).expect("text"));
        (m, n, p.records.len())
    });
}
