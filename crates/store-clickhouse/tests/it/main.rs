//! The ClickHouse backend against a real server (started by the test; see
//! [`kubetrail_store_clickhouse::testing`]): the shared conformance suite.

#![allow(clippy::unwrap_used)]

use kubetrail_store::conformance::run_all;
use kubetrail_store_clickhouse::testing::TestServer;
use kubetrail_store_clickhouse::{ClickHouseStore, Connection};

#[test]
fn clickhouse_passes_the_conformance_suite() {
    let Some(server) = TestServer::start() else {
        return;
    };
    let n = std::cell::Cell::new(0);
    run_all(&|| {
        n.set(n.get() + 1);
        Box::new(
            ClickHouseStore::open(Connection {
                url: server.url.clone(),
                database: format!("conformance_{}", n.get()),
                user: None,
                password: None,
            })
            .unwrap(),
        )
    });
}
