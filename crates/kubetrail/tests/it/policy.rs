//! `kubetrail policy lint|explain|eval|convert`.

use serde_json::{Value, json};

use super::*;

fn seed() -> String {
    testdata("policy/seed-audit-policy.yaml")
        .display()
        .to_string()
}

#[test]
fn lint_exit_codes_are_0_1_2() {
    let ok = kubetrail(&["policy", "lint", &seed()], "");
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    assert!(stdout(&ok).contains("would load: 12 rules, audit.k8s.io/v1beta1"));

    let rejected = kubetrail(&["policy", "lint", &seed(), "--kube-version", "1.24"], "");
    assert_eq!(rejected.status.code(), Some(1));

    let usage = kubetrail(&["policy", "lint", &seed(), "--no-such-flag"], "");
    assert_eq!(usage.status.code(), Some(2));
    let usage = kubetrail(&["policy", "lint"], "");
    assert_eq!(usage.status.code(), Some(2));
    let usage = kubetrail(&["policy", "lint", &seed(), "--kube-version", "two"], "");
    assert_eq!(usage.status.code(), Some(2));
    let usage = kubetrail(&["policy", "lint", &seed(), "--output", "yaml"], "");
    assert_eq!(usage.status.code(), Some(2));

    let missing = kubetrail(&["policy", "lint", "/no/such/policy.yaml"], "");
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/no/such/policy.yaml"));
}

#[test]
fn lint_json_has_the_contract_shape() {
    let (_dir, path) = file(
        "bad.yaml",
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n  - level: None\n    nonResourceURLs: [healthz]\n  - level: Metadata\n    verbs: [get]\n",
    );
    let out = kubetrail(
        &["policy", "lint", path.to_str().unwrap(), "--output", "json"],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        v,
        json!({
            "valid": false,
            "errors": [{"field": "rules[0].nonResourceURLs[0]", "type": "Invalid", "detail": "non-resource URL rules must begin with a '/' character"}],
            "warnings": []
        })
    );

    let out = kubetrail(
        &[
            "policy",
            "lint",
            &seed(),
            "-o",
            "json",
            "--kube-version",
            "1.24",
        ],
        "",
    );
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["valid"], json!(false));
    assert_eq!(v["errors"][0]["field"], json!("apiVersion"));
    assert_eq!(v["errors"][0]["type"], json!("NotSupported"));
}

#[test]
fn lint_text_names_file_and_line() {
    let (_dir, path) = file(
        "p.yaml",
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n  - level: Metadata\n  - level: None\n    users: [alice]\n",
    );
    let p = path.to_str().unwrap();
    let out = kubetrail(&["policy", "lint", p], "");
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("{p}:6: warning: rules[1]: rule can never match: every request it selects is matched first by rules[0] (line 5)")),
        "{text}"
    );
    let (_dir, path) = file(
        "q.yaml",
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Loud\n",
    );
    let q = path.to_str().unwrap();
    let out = kubetrail(&["policy", "lint", q], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains(&format!(
            "{q}:4: error: rules[0].level: Unsupported value: \"Loud\""
        )),
        "{}",
        stdout(&out)
    );
}

#[test]
fn eval_answers_one_line_per_line() {
    let input = [
        r#"{"user":"alice","groups":["dev"],"verb":"get","resourceRequest":true,"apiGroup":"","apiVersion":"v1","namespace":"default","resource":"pods","subresource":"","name":"x","path":"/api/v1/namespaces/default/pods/x"}"#,
        r#"{"method":"GET","url":"/api/v1/namespaces/default/pods?watch=1","user":"alice","groups":["dev"]}"#,
        r#"{"method":"GET","url":"/api/v1/endpoints?watch=true","user":"system:kube-proxy"}"#,
        "not json",
        r#"{"method":"GET","url":"/api/v1/watch"}"#,
        r#"{"verb":"get","resourceRequest":false,"path":"/healthz"}"#,
        r#"{"verb":"get","resource":"secrets","resourceRequest":true,"namespace":"default","name":"db"}"#,
        r#"{"verb":"get","colour":"blue"}"#,
        r#"{"verb":"get","resource":"secrets","namespace":"default","name":"db"}"#,
        r#"{"verb":"get","resource":"pods","resourceRequest":false}"#,
    ]
    .join("\n");
    let out = kubetrail(
        &["policy", "eval", "--policy", &seed()],
        &format!("{input}\n"),
    );
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 10);

    assert_eq!(
        lines[0],
        json!({"level": "Request", "omitStages": ["RequestReceived"], "omitManagedFields": false, "rule": 9,
               "attributes": {"user": "alice", "groups": ["dev"], "verb": "get", "resourceRequest": true, "apiGroup": "", "apiVersion": "v1", "namespace": "default", "resource": "pods", "subresource": "", "name": "x", "path": "/api/v1/namespaces/default/pods/x"}})
    );
    assert_eq!(lines[1]["level"], json!("Request"));
    assert_eq!(lines[1]["rule"], json!(9));
    assert_eq!(lines[1]["attributes"]["verb"], json!("watch"));
    // A request as it arrives: authentication adds system:authenticated, as kube-apiserver's.
    assert_eq!(
        lines[1]["attributes"]["groups"],
        json!(["dev", "system:authenticated"])
    );
    assert_eq!(
        lines[1]["attributes"]["path"],
        json!("/api/v1/namespaces/default/pods")
    );
    assert_eq!(lines[2]["level"], json!("None"));
    assert_eq!(lines[2]["rule"], json!(0));
    assert!(
        lines[3]["error"]
            .as_str()
            .unwrap()
            .starts_with("line 4: malformed JSON")
    );
    assert_eq!(
        lines[4]["error"],
        json!("line 5: unable to determine kind and namespace from url, /api/v1/watch")
    );
    assert_eq!(lines[5]["level"], json!("None"));
    assert_eq!(lines[5]["attributes"]["user"], json!(null));
    assert_eq!(lines[6]["level"], json!("Metadata"));
    assert_eq!(lines[6]["rule"], json!(8));
    assert!(
        lines[7]["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `colour`")
    );
    // Attributes that name a resource are a resource request without saying so...
    assert_eq!(lines[8]["rule"], lines[6]["rule"]);
    assert_eq!(lines[8]["attributes"]["resourceRequest"], json!(true));
    // ...and saying otherwise is refused, not evaluated as a non-resource request.
    let e = lines[9]["error"].as_str().unwrap();
    assert!(
        e.starts_with("line 10: invalid attributes: \"resourceRequest\": false"),
        "{e}"
    );
}

#[test]
fn explain_names_the_rule_and_its_line() {
    let out = kubetrail(
        &[
            "policy",
            "explain",
            &seed(),
            "--request",
            "get /api/v1/namespaces/kube-system/configmaps/x",
            "--user",
            "system:unsecured",
            "-o",
            "json",
        ],
        "",
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["level"], json!("None"));
    assert_eq!(v["rule"], json!(1));
    assert_eq!(v["line"], json!(15));
    assert_eq!(v["rules"][0]["matched"], json!(false));
    assert_eq!(
        v["rules"][0]["reason"],
        json!("user \"system:unsecured\" is not in users [\"system:kube-proxy\"]")
    );
    assert_eq!(v["rules"][1]["matched"], json!(true));

    let out = kubetrail(
        &[
            "policy",
            "explain",
            &seed(),
            "--verb",
            "create",
            "--resource",
            "deployments",
            "--api-group",
            "apps",
            "-n",
            "prod",
            "--user",
            "bob",
        ],
        "",
    );
    let text = stdout(&out);
    assert!(
        text.contains("level:             RequestResponse"),
        "{text}"
    );
    assert!(text.contains("decided by:        rules[10]"), "{text}");
    assert!(
        text.contains(
            "rules[9] line 70: no: verb \"create\" is not in verbs [\"get\", \"list\", \"watch\"]"
        ),
        "{text}"
    );

    let bad = kubetrail(&["policy", "explain", &seed(), "--user", "bob"], "");
    assert_eq!(bad.status.code(), Some(1));
}

#[test]
fn convert_writes_a_policy_that_lints_clean_for_1_24() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("v1.yaml");
    let out = kubetrail(
        &[
            "policy",
            "convert",
            &seed(),
            "--to",
            "audit.k8s.io/v1",
            "-w",
            out_path.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lint = kubetrail(
        &[
            "policy",
            "lint",
            out_path.to_str().unwrap(),
            "--kube-version",
            "1.24",
            "-o",
            "json",
        ],
        "",
    );
    assert_eq!(lint.status.code(), Some(0));
    let v: Value = serde_json::from_str(&stdout(&lint)).unwrap();
    assert_eq!(v, json!({"valid": true, "errors": [], "warnings": []}));
    let converted = std::fs::read_to_string(&out_path).unwrap();
    assert!(
        converted.contains(
            "# Secrets, ConfigMaps, and TokenReviews can contain sensitive & binary data,"
        )
    );

    let bad = kubetrail(
        &["policy", "convert", &seed(), "--to", "audit.k8s.io/v2"],
        "",
    );
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn simulate_replays_the_real_samples() {
    let files: Vec<String> = [
        "audit2rbac-v1beta1.jsonl",
        "audit2rbac-v1.jsonl",
        "falco-k8saudit.jsonl",
        "falco-k8saudit-variants.jsonl",
        "panther.jsonl",
    ]
    .iter()
    .map(|f| testdata(&format!("real-audit/{f}")).display().to_string())
    .collect();
    let mut args = vec!["policy", "simulate", "--policy"];
    let seed = seed();
    args.push(&seed);
    args.extend(files.iter().map(String::as_str));
    args.extend(["-o", "json"]);
    let out = kubetrail(&args, "");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["eventsIn"], json!(1065));
    // Distinct auditIDs, plus each event without one.
    assert_eq!(v["requests"], json!(686));
    // /healthz*, /version and /swagger* requests fall to rule 6 (level None).
    assert_eq!(v["requestsByRule"]["6"], json!(7));
    // Dropped: the 320 RequestReceived events (omitStages) and the 7 None-level requests' events.
    assert_eq!(v["eventsOut"], json!(1065 - 320 - 7));
    assert_eq!(v["malformedLines"], json!(0));
    let by_level = &v["requestsByLevel"];
    let total: u64 = ["None", "Metadata", "Request", "RequestResponse"]
        .iter()
        .map(|l| by_level[l].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(total, 686);
}

#[test]
fn simulate_skips_malformed_lines_and_reads_gzip() {
    use flate2::Compression;
    use flate2::write::GzEncoder;
    let good = std::fs::read_to_string(testdata("real-audit/audit2rbac-v1.jsonl")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gz_path = dir.path().join("audit-2017-09-11T19-55-05.000.log.gz");
    let mut enc = GzEncoder::new(
        std::fs::File::create(&gz_path).unwrap(),
        Compression::default(),
    );
    enc.write_all(good.as_bytes()).unwrap();
    enc.finish().unwrap();
    let plain = dir.path().join("audit.log");
    let truncated = &good.lines().next().unwrap()[..100];
    std::fs::write(&plain, format!("{{\"kind\": 0}}\nnot json\n{truncated}")).unwrap();

    let seed = seed();
    let out = kubetrail(
        &[
            "policy",
            "simulate",
            "--policy",
            &seed,
            gz_path.to_str().unwrap(),
            plain.to_str().unwrap(),
            "-o",
            "json",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["eventsIn"], json!(37));
    assert_eq!(v["malformedLines"], json!(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("audit.log:1: skipped: field `kind`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("audit.log:3: skipped: malformed JSON: EOF"),
        "{stderr}"
    );
}

/// `explain` sees the groups the apiserver gives a request: every authenticated user is in
/// system:authenticated, the anonymous user in system:unauthenticated.
#[test]
fn explain_adds_the_groups_authentication_adds() {
    let (_d, policy) = file(
        "policy.yaml",
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: None\n    userGroups: [system:unauthenticated]\n  - level: Request\n    userGroups: [system:authenticated]\n  - level: Metadata\n",
    );
    let policy = policy.to_str().unwrap();
    let explain = |user: &str| {
        let out = kubetrail(
            &[
                "policy", "explain", policy, "--verb", "get", "--path", "/version", "--user", user,
                "--group", "dev", "-o", "json",
            ],
            "",
        );
        assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
        let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
        (v["level"].as_str().unwrap().to_string(), v["rule"].clone())
    };
    assert_eq!(explain("alice"), ("Request".to_string(), json!(1)));
    let out = kubetrail(
        &[
            "policy",
            "explain",
            policy,
            "--verb",
            "get",
            "--path",
            "/version",
            "--user",
            "system:anonymous",
            "-o",
            "json",
        ],
        "",
    );
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (v["level"].clone(), v["rule"].clone()),
        (json!("None"), json!(0))
    );
}
