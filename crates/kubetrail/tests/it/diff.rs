//! `history --diff`: what each write changed, on real captures (expectations written by hand
//! from the raw events of `testdata/real-audit/falco-k8saudit.jsonl`) and on a scenario with
//! no-op, dry-run and redacted writes.

use serde_json::{Value, json};

use crate::{kubetrail, stdout, testdata};

const RANGE: [&str; 4] = [
    "--from",
    "2018-01-01T00:00:00Z",
    "--to",
    "2025-01-01T00:00:00Z",
];

fn import(data: &str, file: &str) {
    let out = kubetrail(&["import", "--data-dir", data, file], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn history(data: &str, args: &[&str]) -> String {
    let mut all = vec!["history"];
    all.extend(args);
    all.extend(["--data-dir", data]);
    all.extend(RANGE);
    let out = kubetrail(&all, "");
    assert!(
        out.status.success(),
        "{all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The (path, new) pairs of a line's changes.
fn added(line: &Value) -> Vec<(String, Value)> {
    line["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert!(c.get("old").is_none(), "a create adds: {c}");
            (c["path"].as_str().unwrap().to_string(), c["new"].clone())
        })
        .collect()
}

#[test]
fn real_writes_show_the_changes_read_off_the_raw_events() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    import(
        data,
        testdata("real-audit/falco-k8saudit.jsonl")
            .to_str()
            .unwrap(),
    );

    // my-config: created eight times with different data (the capture's deletes between them
    // are not in it), then deleted.
    let out = lines(&history(
        data,
        &[
            "configmaps/my-config",
            "-n",
            "default",
            "--diff",
            "-o",
            "json",
        ],
    ));
    let ids: Vec<&str> = out
        .iter()
        .map(|l| &l["event"]["auditID"].as_str().unwrap()[..8])
        .collect();
    assert_eq!(
        ids,
        [
            "9a2bb12c", "7139c58a", "d222e22f", "7e93bc59", "6beb5311", "efafb264", "87bac0ec",
            "155b887c", "179a9171"
        ],
        "oldest first"
    );
    let ui = "color.good=purple\ncolor.bad=yellow\nallow.textmode=true\n";
    let access = [
        "aws_access_key_id = MY-ID\naws_secret_access_key = MY-KEY\n",
        "aws-access-key-id = MY-ID\naws_secret_access_key = MY-KEY\n",
        "aws_s3_access_key_id = MY-ID\naws_secret_access_key = MY-KEY\n",
        "aws-s3-access-key-id = MY-ID\naws_secret_access_key = MY-KEY\n",
        "password = MY-ID\naws_secret_access_key = MY-KEY\n",
        "passphrase = MY-ID\naws_secret_access_key = MY-KEY\n",
    ];
    let uids = [
        "b0fb2adf-d904-11e8-a2e6-080027728ac4",
        "b9d485f5-d904-11e8-a2e6-080027728ac4",
        "c46e4724-d904-11e8-a2e6-080027728ac4",
        "ccee22d8-d904-11e8-a2e6-080027728ac4",
        "d4b5acb5-d904-11e8-a2e6-080027728ac4",
        "dc0edea8-d904-11e8-a2e6-080027728ac4",
    ];
    for (i, line) in out[..6].iter().enumerate() {
        assert_eq!(line["basis"], "created", "{line}");
        assert_eq!(
            (line["noop"].clone(), line["dryRun"].clone()),
            (json!(false), json!(false))
        );
        // Bookkeeping (creationTimestamp, resourceVersion, selfLink) is not a change.
        assert_eq!(
            added(line),
            [
                ("/apiVersion".into(), json!("v1")),
                (
                    "/data".into(),
                    json!({"access.properties": access[i], "ui.properties": ui})
                ),
                ("/kind".into(), json!("ConfigMap")),
                (
                    "/metadata".into(),
                    json!({"name": "my-config", "namespace": "default", "uid": uids[i]})
                ),
            ],
            "write {i}"
        );
    }
    // 87bac0ec: kubectl create from a file without access.properties, keys in its own order.
    assert_eq!(
        added(&out[6]),
        [
            ("/kind".into(), json!("ConfigMap")),
            ("/apiVersion".into(), json!("v1")),
            (
                "/metadata".into(),
                json!({"name": "my-config", "namespace": "default", "uid": "34ffc893-d905-11e8-a2e6-080027728ac4"})
            ),
            ("/data".into(), json!({"ui.properties": ui})),
        ]
    );
    assert_eq!(out[7]["basis"], "created");
    assert_eq!(out[8]["basis"], "deleted");
    assert_eq!(out[8]["changes"], json!([]));

    // A Request-level create: the request object is the state, its null creationTimestamp and
    // empty status are not changes.
    let deployment = lines(&history(
        data,
        &[
            "deployments.extensions/nginx-deployment",
            "-n",
            "default",
            "--diff",
            "-o",
            "json",
        ],
    ));
    assert_eq!(deployment.len(), 2);
    let created = added(&deployment[0]);
    let paths: Vec<&str> = created.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["/apiVersion", "/kind", "/metadata", "/spec"]);
    assert_eq!(
        created[2].1,
        json!({"labels": {"app": "demo", "name": "nginx-deployment"}, "name": "nginx-deployment", "namespace": "default"})
    );
    assert_eq!(created[3].1["replicas"], 1);
    assert_eq!(
        created[3].1["template"]["spec"]["containers"][0]["image"],
        "nginx"
    );
    assert_eq!(deployment[1]["basis"], "deleted");

    // Namespace foo: created, deleted, created again.
    let ns = lines(&history(data, &["namespaces/foo", "--diff", "-o", "json"]));
    let basis: Vec<&str> = ns.iter().map(|l| l["basis"].as_str().unwrap()).collect();
    assert_eq!(basis, ["created", "deleted", "created"]);
    for l in [&ns[0], &ns[2]] {
        assert_eq!(
            added(l),
            [
                ("/kind".into(), json!("Namespace")),
                ("/apiVersion".into(), json!("v1")),
                ("/metadata".into(), json!({"name": "foo"})),
                ("/spec".into(), json!({})),
            ]
        );
    }

    // For people: like git log -p, every write, its paths under it.
    let table = history(data, &["configmaps/my-config", "-n", "default", "--diff"]);
    assert!(
        table.contains(" default minikube-user create configmaps/my-config -n default 201"),
        "{table}"
    );
    assert!(table.contains("    + /kind: ConfigMap"), "{table}");
    assert!(table.contains(r#"    + /data: {"access.properties":"password = MY-ID\naws_secret_access_key = MY-KEY\n""#), "{table}");
    assert!(table.contains("(deleted)"), "{table}");
    assert!(!table.contains('\x1b'), "no colour when not on a terminal");
}

fn deployment_write(n: u32, verb: &str, uri: &str, replicas: i64, rv: &str, code: i32) -> String {
    let object = json!({"kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": "web", "namespace": "shop", "uid": "u-web", "resourceVersion": rv,
            "generation": n, "managedFields": [{"manager": "kube-controller-manager", "time": format!("2024-05-01T10:0{n}:00Z")}]},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}},
        "status": {"observedGeneration": n, "replicas": replicas}});
    json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": format!("d1ff0000-0000-4000-8000-{n:012}"), "stage": "ResponseComplete",
        "requestURI": uri, "verb": verb, "user": {"username": "system:serviceaccount:kube-system:deployment-controller"},
        "objectRef": {"resource": "deployments", "apiGroup": "apps", "apiVersion": "v1", "namespace": "shop", "name": "web"},
        "responseStatus": {"metadata": {}, "code": code},
        "requestObject": object, "responseObject": object,
        "requestReceivedTimestamp": format!("2024-05-01T10:0{n}:00.000000Z"),
        "stageTimestamp": format!("2024-05-01T10:0{n}:00.010000Z")})
    .to_string()
}

#[test]
fn no_op_and_dry_run_writes_are_marked_and_hidden_from_people_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let uri = "/apis/apps/v1/namespaces/shop/deployments/web";
    let log = [
        deployment_write(1, "update", uri, 2, "10", 200),
        deployment_write(2, "update", uri, 5, "11", 200),
        // The controller writes the same object again: only bookkeeping differs.
        deployment_write(3, "update", uri, 5, "12", 200),
        deployment_write(4, "update", &format!("{uri}?dryRun=All"), 9, "12", 200),
        deployment_write(5, "update", uri, 7, "13", 409),
    ]
    .join("\n");
    let file = dir.path().join("audit.log");
    std::fs::write(&file, log).unwrap();
    import(data, file.to_str().unwrap());
    let object = ["deployments.apps/web", "-n", "shop", "--diff"];
    let mut json_args = object.to_vec();
    json_args.extend(["-o", "json"]);
    let out = lines(&history(data, &json_args));
    let marks: Vec<(String, bool, bool)> = out
        .iter()
        .map(|l| {
            (
                l["basis"].as_str().unwrap().to_string(),
                l["noop"] == true,
                l["dryRun"] == true,
            )
        })
        .collect();
    assert_eq!(
        marks,
        [
            ("baseline".into(), false, false),
            ("diff".into(), false, false),
            ("diff".into(), true, false),
            ("diff".into(), false, true),
            ("failed".into(), false, false),
        ]
    );
    assert_eq!(
        out[1]["changes"],
        json!([{"path": "/spec/replicas", "old": 2, "new": 5}])
    );
    assert_eq!(
        out[3]["changes"],
        json!([{"path": "/spec/replicas", "old": 5, "new": 9}]),
        "what the dry run would have changed"
    );
    assert_eq!(out[4]["changes"], json!([]));

    let table = history(data, &object);
    assert!(table.contains("    ~ /spec/replicas: 2 → 5"), "{table}");
    assert!(!table.contains("→ 9"), "the dry run is hidden: {table}");
    assert!(
        table.contains("(1 no-op and 1 dry-run write(s) not shown"),
        "{table}"
    );
    let mut all = object.to_vec();
    all.push("--include-noop");
    let table = history(data, &all);
    assert!(
        table.contains("(no-op)") && table.contains("(dry run)"),
        "{table}"
    );
    assert!(table.contains("    ~ /spec/replicas: 5 → 9"), "{table}");
    // The feed of what changed in the namespace: the same steps, newest first.
    let mut feed = vec!["changes", "-n", "shop", "--data-dir", data, "-o", "json"];
    feed.extend(RANGE);
    let newest_first = lines(&stdout(&kubetrail(&feed, "")));
    let reversed: Vec<Value> = out.iter().rev().cloned().collect();
    assert_eq!(newest_first, reversed);
    let mut feed = vec!["changes", "-n", "shop", "--data-dir", data, "--limit", "2"];
    feed.extend(RANGE);
    let table = stdout(&kubetrail(&feed, ""));
    // The newest two: the refused update (shown) and the dry run (hidden); its diff is still
    // against the state the older writes left.
    assert!(table.contains(" 409  (failed: nothing changed)"), "{table}");
    assert!(
        table.contains("(0 no-op and 1 dry-run write(s) not shown"),
        "{table}"
    );
    let mut feed = vec![
        "changes",
        "-n",
        "shop",
        "--data-dir",
        data,
        "--limit",
        "2",
        "--include-noop",
    ];
    feed.extend(RANGE);
    assert!(stdout(&kubetrail(&feed, "")).contains("    ~ /spec/replicas: 5 → 9"));
    let mut typo = vec![
        "changes",
        "--resource",
        "deployments.apps/",
        "--user",
        "nobody",
        "--data-dir",
        data,
    ];
    typo.extend(RANGE);
    let none = kubetrail(&typo, "");
    assert!(String::from_utf8_lossy(&none.stderr).contains("no writes match"));

    // Without --diff, the history is as it was: one line per write.
    let plain = history(data, &object[..3]);
    assert_eq!(plain.lines().count(), 6, "{plain}");

    // "Who updated it" leaves out the write that changed nothing and the dry run.
    let who = |extra: &[&str]| {
        let mut all = vec!["who", "update", "deployments.apps/web", "-n", "shop"];
        all.extend(["--data-dir", data]);
        all.extend(RANGE);
        all.extend(extra);
        kubetrail(&all, "")
    };
    let out = who(&["-o", "json"]);
    let ids: Vec<String> = lines(&stdout(&out))
        .iter()
        .map(|e| e["auditID"].as_str().unwrap().to_string())
        .collect();
    let id = |n: u32| format!("d1ff0000-0000-4000-8000-{n:012}");
    assert_eq!(ids, [id(1), id(2), id(5)]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("(2 no-op or dry-run write(s) not shown: --include-noop shows them)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = lines(&stdout(&who(&["-o", "json", "--include-noop"])));
    assert_eq!(all.len(), 5);
    let table = stdout(&who(&[]));
    assert!(table.contains("3 request(s) by 1 user(s)"), "{table}");
    let diffs = stdout(&who(&["--diff"]));
    assert!(diffs.contains("    ~ /spec/replicas: 2 → 5"), "{diffs}");
    let refused = kubetrail(
        &[
            "who",
            "get",
            "deployments.apps/web",
            "--diff",
            "--data-dir",
            data,
        ],
        "",
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("get is not one of create"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn a_generate_name_create_belongs_to_the_objects_history() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let pod = |name: Option<&str>, image: &str| {
        let mut meta = json!({"generateName": "job-", "namespace": "batch", "uid": "u-job"});
        if let Some(n) = name {
            meta["name"] = json!(n);
            meta["resourceVersion"] = json!("7");
        }
        json!({"kind": "Pod", "apiVersion": "v1", "metadata": meta,
            "spec": {"containers": [{"name": "run", "image": image}]}})
    };
    let event = |n: u32, verb: &str, name: &str, request: Value, response: Value| {
        json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
            "auditID": format!("9e000000-0000-4000-8000-{n:012}"), "stage": "ResponseComplete",
            "requestURI": "/api/v1/namespaces/batch/pods", "verb": verb,
            "user": {"username": "system:serviceaccount:kube-system:job-controller"},
            "objectRef": {"resource": "pods", "apiVersion": "v1", "namespace": "batch", "name": name},
            "responseStatus": {"metadata": {}, "code": 200},
            "requestObject": request, "responseObject": response,
            "requestReceivedTimestamp": format!("2024-05-01T10:0{n}:00.000000Z"),
            "stageTimestamp": format!("2024-05-01T10:0{n}:00.010000Z")})
        .to_string()
    };
    let log = [
        // The objectRef of a generateName create names nothing; the response has the name.
        event(
            1,
            "create",
            "",
            pod(None, "busybox:1"),
            pod(Some("job-x7k2p"), "busybox:1"),
        ),
        event(
            2,
            "update",
            "job-x7k2p",
            pod(Some("job-x7k2p"), "busybox:2"),
            pod(Some("job-x7k2p"), "busybox:2"),
        ),
    ]
    .join("\n");
    let file = dir.path().join("audit.log");
    std::fs::write(&file, log).unwrap();
    import(data, file.to_str().unwrap());
    let out = lines(&history(
        data,
        &["pods/job-x7k2p", "-n", "batch", "--diff", "-o", "json"],
    ));
    let bases: Vec<&str> = out.iter().map(|l| l["basis"].as_str().unwrap()).collect();
    assert_eq!(bases, ["created", "diff"], "{out:?}");
    assert_eq!(
        out[1]["changes"],
        json!([{"path": "/spec/containers/0/image", "old": "busybox:1", "new": "busybox:2"}])
    );
    let who = stdout(&kubetrail(
        &[
            "who",
            "create",
            "pods/job-x7k2p",
            "-n",
            "batch",
            "--data-dir",
            data,
            RANGE[0],
            RANGE[1],
            RANGE[2],
            RANGE[3],
        ],
        "",
    ));
    assert!(who.contains("1 request(s) by 1 user(s)"), "{who}");
}

#[test]
fn a_secrets_changes_show_as_markers_that_differ() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    import(data, testdata("redaction/secrets.jsonl").to_str().unwrap());
    let out = lines(&history(
        data,
        &["secrets/db", "-n", "shop", "--diff", "-o", "json"],
    ));
    // The create (its objectRef names no object: the name is the body's), two patches, a
    // dry-run delete.
    assert_eq!(out.len(), 4, "{out:?}");
    assert_eq!(out[0]["basis"], "created");
    // stringData sent, data stored: the same value, so the same marker.
    let created = out[0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == "/data")
        .unwrap();
    let first = created["new"]["password"].as_str().unwrap().to_string();
    let sent = out[0]["event"]["requestObject"]["stringData"]["password"].clone();
    assert_eq!(sent, first.as_str());
    let mut markers = vec![first];
    for (i, basis) in [(1, "diff"), (2, "patch")] {
        assert_eq!(out[i]["basis"], basis, "{i}");
        let change = &out[i]["changes"][0];
        assert_eq!(change["path"], "/data/password");
        let (old, new) = (
            change["old"].as_str().unwrap(),
            change["new"].as_str().unwrap(),
        );
        // Each is applied to the state the write before it left.
        assert_eq!(old, markers.last().unwrap(), "{i}");
        assert!(new.starts_with("redacted:hmac-sha256:"));
        assert_ne!(old, new, "the value changed, and neither is shown");
        markers.push(new.to_string());
    }
    assert_eq!(out[2]["patch"], "json");
    assert_eq!(out[3]["dryRun"], true);
    let text: String = out.iter().map(Value::to_string).collect();
    assert!(!text.contains("S3CRET") && !text.contains("UzNDUkVU"));
}
