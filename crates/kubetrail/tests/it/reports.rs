//! `kubetrail report` on the real samples: requests counted once, by the identity that acted,
//! the reports agreeing with each other, and their JSON keys.

use serde_json::Value;

use super::*;
use crate::store::{import, sample_paths};

#[test]
fn reports_count_requests_on_the_samples() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    import(d, &sample_paths());
    let out = kubetrail(&["report", "overview", "--data-dir", d, "-o", "json"], "");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let o: Value = serde_json::from_str(&stdout(&out)).unwrap();
    // audit2rbac's 320 RequestReceived events are not requests of their own, and one Panther
    // watch was recorded at ResponseStarted and ResponseComplete.
    assert_eq!(o["requests"], 1028 - 320 - 1);
    let out = kubetrail(
        &[
            "report",
            "overview",
            "--data-dir",
            d,
            "-o",
            "json",
            "--user",
            "minikube-user",
        ],
        "",
    );
    let falco: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(falco["execAttach"]["total"], 2, "Falco's exec and attach");
    assert_eq!(falco["execAttach"]["top"][0]["keys"][0], "minikube-user");
    // The commands, decoded from the request URIs (the exec repeats container=nginx1).
    let commands = falco["executedCommands"].as_array().unwrap();
    let kinds: Vec<(&str, &str, &str, bool)> = commands
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap(),
                c["commandLine"].as_str().unwrap(),
                c["container"].as_str().unwrap_or(""),
                c["tty"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("exec", "bash", "nginx1", true)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("attach", "", "nginx1", false)),
        "{kinds:?}"
    );
    assert!(o["forbidden"]["total"].as_u64().unwrap() >= 11);
    let rbac = o["rbacChanges"]["total"].as_u64().unwrap();
    assert!(rbac >= 11, "the Falco RBAC writes at least: {rbac}");
    // The keys of earlier releases, one release behind a flag.
    let out = kubetrail(
        &[
            "report",
            "overview",
            "--data-dir",
            d,
            "-o",
            "json",
            "--snake-case-keys",
        ],
        "",
    );
    let old: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(old["rbac_changes"]["total"], rbac);
    assert!(old.get("rbacChanges").is_none() && old["by_verb"].is_array());
    let out = kubetrail(
        &["report", "overview", "--data-dir", d, "--snake-case-keys"],
        "",
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--snake-case-keys is for -o json"));
    let out = kubetrail(&["report", "resources", "--data-dir", d, "-o", "json"], "");
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let crb = r
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["resource"] == "clusterrolebindings.rbac.authorization.k8s.io")
        .unwrap();
    assert!(crb["create"].as_u64().unwrap() >= 2);
    // audit2rbac: system:admin made 437 requests (757 events less 320 RequestReceived), 222 of
    // them writes; 37 of them as other users, 11 of those forbidden. Counted by the identity
    // that acted, 400 are its own and none forbidden (a system:masters member is never
    // forbidden), and the impersonated users' rows name it.
    let out = kubetrail(&["report", "users", "--data-dir", d, "-o", "json"], "");
    let users: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let admin = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == "system:admin")
        .unwrap();
    assert_eq!(
        (
            admin["requests"].as_u64(),
            admin["writes"].as_u64(),
            admin["forbidden"].as_u64()
        ),
        (Some(400), Some(222), Some(0))
    );
    let as_others: Vec<&Value> = users
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["impersonatedBy"] == serde_json::json!(["system:admin"]))
        .collect();
    let sum = |k: &str| {
        as_others
            .iter()
            .map(|u| u[k].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(
        (sum("requests"), sum("forbidden")),
        (37, 11),
        "{as_others:?}"
    );
    assert!(admin.get("impersonatedBy").is_none());
    let table = stdout(&kubetrail(&["report", "users", "--data-dir", d], ""));
    assert!(table.contains("IMPERSONATED BY"), "{table}");
    // System identities left out: the people remain.
    let out = kubetrail(
        &[
            "report",
            "users",
            "--data-dir",
            d,
            "-o",
            "json",
            "--user",
            "!system:*",
        ],
        "",
    );
    let people: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let people = people.as_array().unwrap();
    assert!(!people.is_empty());
    assert!(
        people
            .iter()
            .all(|u| !u["user"].as_str().unwrap().starts_with("system:")),
        "{people:?}"
    );
    let out = kubetrail(&["search", "--data-dir", d, "--user", "!a*b"], "");
    assert!(String::from_utf8_lossy(&out.stderr).contains("only a trailing * is a wildcard"));
    // changes reads --user the same way: a left-out user is no literal name.
    let all = stdout(&kubetrail(
        &[
            "changes",
            "--data-dir",
            d,
            "--from",
            "2000-01-01",
            "-o",
            "json",
        ],
        "",
    ));
    let without = stdout(&kubetrail(
        &[
            "changes",
            "--data-dir",
            d,
            "--from",
            "2000-01-01",
            "-o",
            "json",
            "--user",
            "!nobody",
        ],
        "",
    ));
    assert!(!all.is_empty(), "the samples hold writes with bodies");
    assert_eq!(all, without);
    let out = kubetrail(&["changes", "--data-dir", d, "--user", "!a*b"], "");
    assert!(String::from_utf8_lossy(&out.stderr).contains("only a trailing * is a wildcard"));
    let out = kubetrail(&["report", "failures", "--data-dir", d, "-o", "json"], "");
    let failures: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let forbidden_total: u64 = failures["byCode"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["keys"][0] == "403")
        .map(|g| g["count"].as_u64().unwrap())
        .sum();
    assert_eq!(
        forbidden_total,
        o["forbidden"]["total"].as_u64().unwrap(),
        "the two reports agree on 403s"
    );
    let text = kubetrail(&["report", "failures", "--data-dir", d], "");
    assert!(stdout(&text).starts_with("failed requests by code\nCODE"));
}
