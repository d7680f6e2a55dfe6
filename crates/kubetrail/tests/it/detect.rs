//! `kubetrail detect` and `kubetrail rules`: the JSON alert contract, event-time order, exit
//! statuses, parameter overrides, rule files with errors, and policy coverage.

use serde_json::Value;

use super::{file, kubetrail, stdout};

fn event(id: &str, time: &str, user: &str, uri_ns: &str, code: u16) -> String {
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"{id}","stage":"ResponseStarted","requestURI":"/api/v1/namespaces/{uri_ns}/pods/web/exec?command=sh&command=-c&command=id&container=web&stdin=true","verb":"create","user":{{"username":"{user}","groups":["system:authenticated"]}},"sourceIPs":["10.0.0.7"],"userAgent":"kubectl/v1.31.0","objectRef":{{"resource":"pods","namespace":"{uri_ns}","name":"web","apiVersion":"v1","subresource":"exec"}},"responseStatus":{{"metadata":{{}},"code":{code}}},"requestReceivedTimestamp":"{time}","stageTimestamp":"{time}"}}"#
    )
}

/// Runs `kubetrail ARGS`, which must exit 0.
fn ok(args: &[&str]) -> std::process::Output {
    let o = kubetrail(args, "");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn alerts(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).expect("one JSON alert a line"))
        .collect()
}

#[test]
fn json_alerts_carry_the_contract_fields_in_event_time_order() {
    // The later exec is written first: alerts come in requestReceivedTimestamp order.
    let log = [
        event("b2", "2026-11-01T10:00:05.000000Z", "bob", "prod", 101),
        event("a1", "2026-11-01T10:00:01.000000Z", "alice", "default", 101),
        event("c3", "2026-11-01T10:00:09.000000Z", "carol", "default", 403),
        "{not json".to_string(),
    ]
    .join("\n");
    let (_d, path) = file("audit.log", &log);
    let o = ok(&[
        "detect",
        "-o",
        "json",
        "--cluster",
        "east",
        path.to_str().unwrap(),
    ]);
    let got = alerts(&stdout(&o));
    let execs: Vec<&Value> = got.iter().filter(|a| a["rule"] == "pod-exec").collect();
    assert_eq!(
        execs.len(),
        2,
        "the denied exec does not fire pod-exec: {got:?}"
    );
    assert_eq!(execs[0]["auditID"], "a1");
    assert_eq!(execs[1]["auditID"], "b2");
    let a = execs[0];
    for key in [
        "rule",
        "severity",
        "time",
        "auditID",
        "relatedAuditIDs",
        "cluster",
        "user",
        "impersonatedUser",
        "sourceIP",
        "verb",
        "objectRef",
        "requestURI",
        "evidence",
    ] {
        assert!(a.get(key).is_some(), "{key} missing from {a}");
    }
    assert_eq!(a["severity"], "medium");
    assert_eq!(a["cluster"], "east");
    assert_eq!(a["user"], "alice");
    assert_eq!(a["sourceIP"], "10.0.0.7");
    assert_eq!(a["verb"], "create");
    assert_eq!(a["objectRef"]["namespace"], "default");
    assert_eq!(a["objectRef"]["subresource"], "exec");
    assert_eq!(a["evidence"]["command"], "sh -c id");
    assert!(
        a["time"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-01T10:00:01"),
        "{a}"
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains(":4: skipped"),
        "the malformed line is named: {stderr}"
    );
    assert!(stderr.contains("3 events"), "{stderr}");
}

#[test]
fn fail_on_exits_3_only_when_an_alert_reaches_the_severity() {
    let (_d, path) = file(
        "audit.log",
        &event("a1", "2026-11-01T10:00:01Z", "alice", "default", 101),
    );
    let p = path.to_str().unwrap();
    assert_eq!(
        kubetrail(&["detect", "--fail-on", "high", p], "")
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        kubetrail(&["detect", "--fail-on", "medium", p], "")
            .status
            .code(),
        Some(3)
    );
    let table = kubetrail(&["detect", p], "");
    assert_eq!(table.status.code(), Some(0));
    assert!(stdout(&table).contains("pod-exec"), "{}", stdout(&table));
}

#[test]
fn set_overrides_a_parameter_and_a_typo_is_an_error_with_a_hint() {
    let (_d, path) = file(
        "audit.log",
        &event("a1", "2026-11-01T10:00:01Z", "alice", "default", 101),
    );
    let p = path.to_str().unwrap();
    let allowed = ok(&[
        "detect",
        "-o",
        "json",
        "--set",
        "pod-exec.allowed_users=[alice]",
        p,
    ]);
    assert!(
        alerts(&stdout(&allowed))
            .iter()
            .all(|a| a["rule"] != "pod-exec")
    );
    let typo = kubetrail(&["detect", "--set", "pod-exec.allowed_user=[alice]", p], "");
    assert_ne!(typo.status.code(), Some(0));
    let err = String::from_utf8_lossy(&typo.stderr);
    assert!(
        err.contains("allowed_user") && err.contains("allowed_users"),
        "did-you-mean: {err}"
    );
    let rule_typo = kubetrail(&["detect", "--set", "pod-exek.allowed_users=[]", p], "");
    assert!(String::from_utf8_lossy(&rule_typo.stderr).contains("pod-exec"));
}

const BAD_RULES: &str = "rules:
  - id: reads-nothing
    title: A condition that reads a field no event has
    severity: low
    level: Metadata
    match: {verbs: [delete], resources: [pods]}
    condition: objectRef.nosuch == \"x\"
";

#[test]
fn rules_lint_names_file_line_and_rule_and_exits_1() {
    let (_d, path) = file("bad.yaml", BAD_RULES);
    let o = kubetrail(&["rules", "lint", path.to_str().unwrap()], "");
    assert_eq!(o.status.code(), Some(1));
    let text = format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
    assert!(
        text.contains("bad.yaml:2") && text.contains("reads-nothing"),
        "{text}"
    );
    let clean = kubetrail(&["rules", "lint"], "");
    assert_eq!(clean.status.code(), Some(0));
    assert!(
        stdout(&clean).contains("35 rules, no problems"),
        "{}",
        stdout(&clean)
    );
}

#[test]
fn rules_test_runs_every_example_of_the_pack() {
    let o = kubetrail(&["rules", "test"], "");
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("of 35 rules") && stdout(&o).contains(" 0 failed"),
        "{}",
        stdout(&o)
    );
    let wrong = "rules:
  - id: delete-pods
    title: Pods deleted
    severity: low
    level: Metadata
    match: {verbs: [delete], resources: [pods]}
    examples:
      - name: a get is not a delete
        fires: true
        event: {auditID: g1, stage: ResponseComplete, verb: get, user: {username: a}, objectRef: {resource: pods, namespace: n, name: p}, responseStatus: {code: 200}}
";
    let (_d, path) = file("wrong.yaml", wrong);
    let o = kubetrail(&["rules", "test", path.to_str().unwrap()], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("FAIL delete-pods: a get is not a delete"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn rules_list_says_which_rules_a_policy_leaves_blind() {
    let policy = "apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    resources: [{group: \"\", resources: [pods/exec, pods/attach]}]
  - level: Metadata
";
    let (_d, path) = file("policy.yaml", policy);
    let o = ok(&[
        "rules",
        "list",
        "-o",
        "json",
        "--policy",
        path.to_str().unwrap(),
    ]);
    let rules = alerts(&stdout(&o));
    assert_eq!(rules.len(), 35);
    let by_id = |id: &str| {
        rules
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("{id} listed"))
    };
    assert_eq!(by_id("pod-exec")["policyLogs"], "no");
    assert_eq!(by_id("pod-portforward")["policyLogs"], "yes");
    let exec = by_id("pod-exec");
    assert_eq!(exec["level"], "Metadata");
    assert!(
        exec["references"]["falco"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "Attach/Exec Pod")
    );
    let table = kubetrail(&["rules", "list", "--policy", path.to_str().unwrap()], "");
    assert!(
        stdout(&table).contains("no (logged at None)"),
        "{}",
        stdout(&table)
    );
}

#[test]
fn import_detect_stores_each_alert_once_however_often_it_runs() {
    let log = [
        event("b2", "2026-11-01T10:00:05.000000Z", "bob", "prod", 101),
        event("a1", "2026-11-01T10:00:01.000000Z", "alice", "default", 101),
        event("c3", "2026-11-01T10:00:09.000000Z", "carol", "default", 403),
    ]
    .join("\n");
    let (dir, path) = file("audit.log", &log);
    let data = dir.path().join("data");
    let import = |extra: &[&str]| -> Value {
        let mut args = vec![
            "import",
            "--json",
            "--detect",
            "--cluster",
            "east",
            "--data-dir",
            data.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args.push(path.to_str().unwrap());
        serde_json::from_str(stdout(&ok(&args)).trim()).unwrap()
    };
    let first = import(&[]);
    assert_eq!(first["stored"], 3);
    let raised = first["alertsRaised"].as_u64().unwrap();
    assert!(raised >= 2, "{first}");
    assert_eq!(first["alertsStored"].as_u64(), Some(raised));
    // Importing again stores no event and no alert anew.
    let again = import(&[]);
    assert_eq!(again["stored"], 0);
    assert_eq!(again["alertsRaised"].as_u64(), Some(raised));
    assert_eq!(again["alertsStored"], 0);

    // The store is closed again before the next import opens it.
    {
        use kubetrail_store::Store;
        let store = kubetrail_store_duckdb::DuckDbStore::open(&data).unwrap();
        let execs = store
            .query_alerts(
                &kubetrail_store::AlertFilter {
                    rules: vec!["pod-exec".into()],
                    ..Default::default()
                },
                10,
            )
            .unwrap();
        let ids: Vec<&str> = execs.iter().map(|a| a.audit_id.as_str()).collect();
        assert_eq!(
            ids,
            ["b2", "a1"],
            "newest first; the denied exec raised none"
        );
        assert_eq!(execs[0].cluster, "east");
        assert_eq!(execs[0].user, "bob");
        assert_eq!(execs[0].namespace, "prod");
        let json: Value = serde_json::from_str(&execs[0].json).unwrap();
        assert!(
            json["requestURI"].as_str().unwrap().contains("/exec"),
            "{json}"
        );
    }
    // An import without --detect says nothing about alerts.
    let plain: Value = serde_json::from_str(
        stdout(&ok(&[
            "import",
            "--json",
            "--data-dir",
            data.to_str().unwrap(),
            path.to_str().unwrap(),
        ]))
        .trim(),
    )
    .unwrap();
    assert!(plain.get("alertsRaised").is_none(), "{plain}");
}
