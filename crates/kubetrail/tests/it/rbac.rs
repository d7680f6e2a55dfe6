//! `kubetrail rbac suggest` and `rbac unused` through the binary: audit2rbac's demo capture read
//! from files and from the store (the same bytes), the JSON List, the delta against a cluster's
//! RBAC, granted-versus-used over a snapshot and over RBAC rebuilt from the trail.

use serde_json::Value;

use crate::{kubetrail, stdout, testdata};

fn run(args: &[&str]) -> (bool, String, String) {
    let out = kubetrail(args, "");
    (
        out.status.success(),
        stdout(&out),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(args: &[&str]) -> String {
    let (success, out, err) = run(args);
    assert!(success, "{args:?}: {err}");
    out
}

fn demo() -> String {
    testdata("real-audit/audit2rbac-v1.jsonl")
        .display()
        .to_string()
}

/// audit2rbac's README output for alice (`testdata/rbac/`), with its names as `audit2rbac`
/// writes them (`readme`) or as kubetrail does by default.
fn alice(readme: bool) -> String {
    let text = std::fs::read_to_string(testdata("rbac/audit2rbac-readme-alice.yaml")).unwrap();
    if readme {
        return text;
    }
    text.replace("audit2rbac.liggitt.net/generated", "kubetrail.io/generated")
        .replace("audit2rbac.liggitt.net/user", "kubetrail.io/subject")
        .replace("audit2rbac:alice", "kubetrail:alice")
}

#[test]
fn suggest_reads_files_and_the_store_alike() {
    assert_eq!(
        ok(&["rbac", "suggest", "--user", "alice", &demo()]),
        alice(false)
    );
    // audit2rbac's own names and labels give its README's bytes.
    let readme = ok(&[
        "rbac",
        "suggest",
        "--user",
        "alice",
        "--generate-name",
        "audit2rbac:${user}",
        "--generate-labels",
        "audit2rbac.liggitt.net/user=${user},audit2rbac.liggitt.net/generated=true",
        &demo(),
    ]);
    assert_eq!(readme, alice(true));

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    ok(&["import", "--data-dir", data, &demo()]);
    assert_eq!(
        ok(&["rbac", "suggest", "--user", "alice", "--data-dir", data]),
        alice(false)
    );
    let sa = ok(&[
        "rbac",
        "suggest",
        "--serviceaccount",
        "ns1:sa1",
        "--data-dir",
        data,
    ]);
    assert!(
        sa.contains("kind: ServiceAccount\n  name: sa1\n  namespace: ns1\n"),
        "{sa}"
    );
    assert_eq!(
        sa,
        ok(&["rbac", "suggest", "--serviceaccount", "ns1:sa1", &demo()])
    );
    // A group's members are found by the groups their requests were authorized with: every
    // request of the capture is impersonated, and the store keeps the impersonator's groups.
    let group = ok(&[
        "rbac",
        "suggest",
        "--group",
        "system:serviceaccounts",
        "--data-dir",
        data,
    ]);
    assert!(
        group.contains("kind: Group\n  name: system:serviceaccounts\n"),
        "{group}"
    );
    assert_eq!(
        group,
        ok(&[
            "rbac",
            "suggest",
            "--group",
            "system:serviceaccounts",
            &demo()
        ])
    );
}

#[test]
fn json_is_one_v1_list_of_the_objects() {
    let out = ok(&["rbac", "suggest", "--user", "bob", "-o", "json", &demo()]);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["apiVersion"], "v1");
    let kinds: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["ClusterRole", "ClusterRoleBinding"]);
    assert_eq!(
        list["items"][0]["rules"],
        serde_json::json!([{"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["nodes", "pods"]}])
    );
}

#[test]
fn no_request_of_the_subject_is_exit_1_naming_it() {
    let (success, out, err) = run(&["rbac", "suggest", "--user", "system:admin", &demo()]);
    assert!(!success);
    assert_eq!(out, "");
    assert!(
        err.contains("no audit events matched user system:admin"),
        "{err}"
    );
    let (success, _, err) = run(&["rbac", "suggest", "--serviceaccount", "nocolon", &demo()]);
    assert!(!success);
    assert!(err.contains("NAMESPACE:NAME"), "{err}");
}

#[test]
fn delta_prints_only_what_the_cluster_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("rbac.yaml");
    std::fs::write(
        &snapshot,
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: pods, namespace: ns1}\nsubjects: [{kind: User, name: alice, apiGroup: rbac.authorization.k8s.io}]\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: pod-reader}\nrules: [{apiGroups: [''], resources: [pods], verbs: [get, list, watch]}]\n",
    )
    .unwrap();
    let snap = snapshot.to_str().unwrap();
    let out = ok(&[
        "rbac",
        "suggest",
        "--user",
        "alice",
        "--rbac",
        snap,
        "--delta",
        "-o",
        "json",
        &demo(),
    ]);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        list["items"][0]["rules"][0]["resources"],
        serde_json::json!(["configmaps", "secrets"])
    );
    // Without --delta, the whole set, and a note of what the snapshot already allows.
    let (success, full, err) = run(&[
        "rbac",
        "suggest",
        "--user",
        "alice",
        "--rbac",
        snap,
        &demo(),
    ]);
    assert!(success);
    assert_eq!(full, alice(false));
    assert!(
        err.contains("already allows 1 of the 3 events read"),
        "{err}"
    );
    let (success, _, err) = run(&["rbac", "suggest", "--user", "alice", "--delta", &demo()]);
    assert!(!success);
    assert!(err.contains("--rbac"), "{err}");
}

#[test]
fn unused_marks_each_granted_permission_and_lists_refusals() {
    let snapshot = testdata("rbac/snapshot.yaml").display().to_string();
    let requests = testdata("rbac/snapshot-requests.jsonl")
        .display()
        .to_string();
    let range = [
        "--from",
        "2026-10-01T00:00:00Z",
        "--to",
        "2026-12-01T00:00:00Z",
    ];
    let mut args = vec![
        "rbac", "unused", "--rbac", &snapshot, "--user", "alice", "-o", "json",
    ];
    args.extend(range);
    args.push(&requests);
    let out: Value = serde_json::from_str(&ok(&args)).unwrap();
    let perms = out[0]["permissions"].as_array().unwrap();
    let summary: Vec<(String, bool)> = perms
        .iter()
        .map(|p| {
            (
                format!(
                    "{} {} {}",
                    p["verb"].as_str().unwrap(),
                    p["resource"].as_str().unwrap(),
                    p["namespace"].as_str().unwrap()
                ),
                p["used"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("get configmaps dev".to_string(), false),
            ("get pods dev".to_string(), true),
            ("list pods dev".to_string(), false),
        ]
    );
    assert_eq!(perms[1]["last"]["auditID"], "a2");
    assert_eq!(out[0]["denied"][0]["request"], "list configmaps -n dev");

    // --all ranks the cluster-admin group first.
    let mut all = vec!["rbac", "unused", "--rbac", &snapshot, "--all"];
    all.extend(range);
    all.push(&requests);
    let table = ok(&all);
    let first = table.lines().nth(1).unwrap();
    assert!(
        first.starts_with("Group/system:masters") && first.contains("yes"),
        "{table}"
    );
    // Outside the window nothing is used.
    let mut late = vec![
        "rbac", "unused", "--rbac", &snapshot, "--user", "carol", "--since", "1h",
    ];
    late.push(&requests);
    let text = ok(&late);
    assert!(text.contains("2 granted, 2 unused"), "{text}");
}

#[test]
fn unused_over_rbac_rebuilt_from_the_trail() {
    let trail = testdata("rbac/trail.jsonl").display().to_string();
    let base = [
        "rbac",
        "unused",
        "--rbac-from-trail",
        "--user",
        "dave",
        "--from",
        "2026-11-01T00:00:00Z",
        "-o",
        "json",
    ];
    let mut args = base.to_vec();
    args.push(&trail);
    let out: Value = serde_json::from_str(&ok(&args)).unwrap();
    let verbs: Vec<(&str, bool)> = out[0]["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["verb"].as_str().unwrap(), p["used"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        verbs,
        vec![("get", true), ("list", false), ("watch", false)]
    );
    assert_eq!(
        out[0]["denied"][0]["request"],
        "delete pods name=web-1 -n dev"
    );
    // As of before the update, the role had no watch.
    let mut at = base.to_vec();
    at.extend(["--at", "2026-11-02T12:00:00Z"]);
    at.push(&trail);
    let out: Value = serde_json::from_str(&ok(&at)).unwrap();
    assert_eq!(out[0]["granted"], 2);
    // The same from the store.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    ok(&["import", "--data-dir", data, &trail]);
    let mut stored = base.to_vec();
    stored.extend(["--data-dir", data]);
    let out: Value = serde_json::from_str(&ok(&stored)).unwrap();
    assert_eq!(out[0]["granted"], 3);
    assert_eq!(out[0]["unused"], 2);
}

/// `--server`: the requests come from a running server's API, and the answer is the store's.
#[test]
fn suggest_and_unused_ask_a_running_server_alike() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    ok(&["import", "--data-dir", data_s, &demo()]);
    let requests = testdata("rbac/snapshot-requests.jsonl")
        .display()
        .to_string();
    ok(&[
        "import",
        "--data-dir",
        data_s,
        "--cluster",
        "rbac",
        &requests,
    ]);
    let port = crate::free_port();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_kubetrail"))
        .args(["serve", "--insecure-no-auth", "--no-detection", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--data-dir", data_s])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    crate::wait_port(port);
    let url = format!("http://127.0.0.1:{port}");
    let suggested = run(&["rbac", "suggest", "--server", &url, "--user", "bob"]);
    let snapshot = testdata("rbac/snapshot.yaml").display().to_string();
    let unused = run(&[
        "rbac",
        "unused",
        "--server",
        &url,
        "--rbac",
        &snapshot,
        "--user",
        "alice",
        "--cluster",
        "rbac",
        "--from",
        "2026-10-01T00:00:00Z",
        "-o",
        "json",
    ]);
    // alice's requests are in two clusters: without --cluster the question is refused.
    let mixed = run(&["rbac", "suggest", "--server", &url, "--user", "alice"]);
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(suggested.0, "{}", suggested.2);
    assert_eq!(
        suggested.1,
        ok(&["rbac", "suggest", "--user", "bob", &demo()])
    );
    assert!(unused.0, "{}", unused.2);
    let reply: Value = serde_json::from_str(&unused.1).unwrap();
    assert_eq!(reply[0]["granted"], 3);
    assert_eq!(reply[0]["requests"], 2);
    assert!(!mixed.0);
    assert!(mixed.2.contains("give --cluster"), "{}", mixed.2);
}
