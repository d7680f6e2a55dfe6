//! `kubetrail import`, `search`, `who`, `history`, `report` and `gen` over a real store, on the
//! real samples in testdata/real-audit and on generated traffic.

use std::collections::BTreeMap;

use serde_json::Value;

use super::*;

const SAMPLES: [&str; 5] = [
    "audit2rbac-v1beta1.jsonl",
    "audit2rbac-v1.jsonl",
    "falco-k8saudit.jsonl",
    "falco-k8saudit-variants.jsonl",
    "panther.jsonl",
];

pub(crate) fn sample_paths() -> Vec<String> {
    SAMPLES
        .iter()
        .map(|f| testdata(&format!("real-audit/{f}")).display().to_string())
        .collect()
}

pub(crate) fn import(data_dir: &str, paths: &[String]) -> Value {
    import_as(data_dir, "default", paths)
}

fn import_as(data_dir: &str, cluster: &str, paths: &[String]) -> Value {
    let mut args = vec![
        "import",
        "--data-dir",
        data_dir,
        "--cluster",
        cluster,
        "--json",
    ];
    args.extend(paths.iter().map(String::as_str));
    let out = kubetrail(&args, "");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn json_lines(args: &[&str]) -> Vec<Value> {
    let out = kubetrail(args, "");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn real_samples_import_once_and_answer_questions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let first = import(d, &sample_paths());
    assert_eq!(first["events"], 1065);
    // audit2rbac's v1 file (37) is its v1beta1 capture mechanically renamed: as the apiserver
    // converts versions (dropping v1beta1's own `timestamp` and `metadata`) they are the same
    // events again. The Falco variants (2, hand-edited copies under the same auditIDs) and
    // Panther's fixtures that reuse `abc-123` and `abcde12345` for different events (16) claim
    // identities already taken with other content: stored, and counted as conflicts.
    assert_eq!(first["stored"], 1028);
    assert_eq!(first["duplicates"], 37);
    assert_eq!(first["conflicts"], 18);
    assert_eq!(first["malformed"], 0);
    let again = import(d, &sample_paths());
    assert_eq!(again["stored"], 0);
    assert_eq!(again["duplicates"], 1065);
    assert_eq!(again["conflicts"], 0);
    // Panther's twelve `abc-123` fixtures are twelve events (identities aside, their texts
    // differ), each one found.
    let abc = json_lines(&[
        "search",
        "--data-dir",
        d,
        "--audit-id",
        "abc-123",
        "-o",
        "json",
        "--limit",
        "1000",
    ]);
    assert_eq!(abc.len(), 12);

    // audit2rbac: system:admin impersonated bob, alice and a service account; 11 were forbidden.
    let forbidden = json_lines(&[
        "search",
        "--data-dir",
        d,
        "--user",
        "system:admin",
        "--code",
        "403",
        "-o",
        "json",
        "--limit",
        "1000",
    ]);
    assert_eq!(forbidden.len(), 11);
    let mut by_impersonated: BTreeMap<String, usize> = BTreeMap::new();
    for e in &forbidden {
        *by_impersonated
            .entry(
                e["impersonatedUser"]["username"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
            .or_default() += 1;
    }
    assert_eq!(
        by_impersonated,
        BTreeMap::from([
            ("alice".to_string(), 3),
            ("bob".to_string(), 4),
            ("system:serviceaccount:ns1:sa1".to_string(), 4)
        ])
    );

    // Who created a cluster-admin binding: Falco's minikube user, and an attacker in Panther's
    // fixtures.
    let crb = json_lines(&[
        "search",
        "--data-dir",
        d,
        "--resource",
        "clusterrolebindings.rbac.authorization.k8s.io",
        "--verb",
        "create",
        "--text",
        "\"name\":\"cluster-admin\"",
        "-o",
        "json",
    ]);
    let who: Vec<(&str, &str)> = crb
        .iter()
        .map(|e| {
            (
                e["user"]["username"].as_str().unwrap(),
                e["objectRef"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    // Newest first: Panther's event carries no timestamps, so it stands at its file's time,
    // after the minikube capture of 2019 (it stood at 1970 before, last).
    assert_eq!(
        who,
        [
            ("attacker@example.com", "backdoor-admin"),
            ("minikube-user", "some-reader-binding")
        ]
    );
    assert_eq!(crb[1]["auditID"], "c97244c7-4aec-4714-946a-8204d00ecdca");

    // Imported as its own cluster, the Falco capture answers on its own: who exec'd into a pod.
    let falco = dir.path().join("falco");
    let f = falco.to_str().unwrap();
    let s = import_as(f, "minikube", &sample_paths()[2..4]);
    assert_eq!(
        (
            s["stored"].as_u64(),
            s["duplicates"].as_u64(),
            s["conflicts"].as_u64()
        ),
        (Some(51), Some(0), Some(2)),
        "the two hand-edited variants are kept, as conflicts"
    );
    let exec = json_lines(&[
        "search",
        "--data-dir",
        f,
        "--cluster",
        "minikube",
        "--resource",
        "pods/exec",
        "-o",
        "json",
    ]);
    assert_eq!(exec.len(), 1);
    assert_eq!(exec[0]["user"]["username"], "minikube-user");
    assert_eq!(
        exec[0]["objectRef"]["name"],
        "nginx-deployment-7998647bdf-phvq7"
    );

    // The original JSON comes back byte for byte.
    let original = std::fs::read_to_string(testdata("real-audit/falco-k8saudit.jsonl")).unwrap();
    let out = kubetrail(
        &[
            "search",
            "--data-dir",
            f,
            "--resource",
            "pods/exec",
            "-o",
            "json",
        ],
        "",
    );
    let line = stdout(&out);
    assert!(original.lines().any(|l| l == line.trim_end()));

    // who / history.
    let out = kubetrail(
        &["who", "--data-dir", f, "delete", "clusterroles/some-reader"],
        "",
    );
    let text = stdout(&out);
    assert!(text.starts_with("TIME"), "{text}");
    assert!(text.contains("minikube-user"), "{text}");
    assert!(text.ends_with("1 request(s) by 1 user(s)\n"), "{text}");
    let out = kubetrail(
        &[
            "history",
            "--data-dir",
            f,
            "clusterroles/some-reader",
            "-o",
            "json",
        ],
        "",
    );
    let verbs: Vec<String> = stdout(&out)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["verb"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    // Five creates and one delete, oldest first: the delete came 12 s after the first create.
    assert_eq!(verbs.len(), 6, "{verbs:?}");
    assert_eq!(verbs[0], "create");
    assert_eq!(verbs[1], "delete");

    // The table output is kubectl's shape.
    let out = kubetrail(
        &[
            "search",
            "--data-dir",
            d,
            "--user",
            "system:admin",
            "--code",
            "4xx",
            "--limit",
            "2",
        ],
        "",
    );
    let text = stdout(&out);
    let header = text.lines().next().unwrap();
    assert!(header.starts_with("TIME"));
    for col in ["USER", "VERB", "RESOURCE", "NAMESPACE", "NAME", "CODE"] {
        assert!(header.contains(col), "{header}");
    }
    assert_eq!(text.lines().count(), 3);
    assert!(String::from_utf8_lossy(&out.stderr).contains("more events: continue with --after"));
}

#[test]
fn bad_input_lines_are_skipped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kubernetes.audit");
    let good: Vec<String> = std::fs::read_to_string(testdata("real-audit/falco-k8saudit.jsonl"))
        .unwrap()
        .lines()
        .take(5)
        .map(str::to_string)
        .collect();
    let truncated = &good[4][..good[4].len() / 2];
    let content = format!(
        "{}\n{{\"kind\": 0}}\n[1,2]\ngarbage\n\n{}\n{truncated}",
        good[..2].join("\n"),
        good[2..4].join("\n")
    );
    std::fs::write(&log, content).unwrap();
    let data = dir.path().join("data");
    let s = import(data.to_str().unwrap(), &[log.display().to_string()]);
    assert_eq!(s["stored"], 4);
    assert_eq!(s["malformed"], 4);
    let reasons: Vec<&str> = s["malformedReasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        reasons[0].ends_with(
            "kubernetes.audit:3: field `kind`: expected the string \"Event\", found a number"
        ),
        "{reasons:?}"
    );
    assert!(
        reasons[1].ends_with(":4: expected a JSON object, found an array"),
        "{reasons:?}"
    );
    assert!(reasons[2].contains(":5: malformed JSON"), "{reasons:?}");
    assert!(
        reasons[3].contains(":9: truncated last line: malformed JSON: EOF"),
        "{reasons:?}"
    );
}

#[test]
fn kubectl_names_for_resources_answer_and_unknown_ones_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    import(d, &sample_paths());
    let range = [
        "--from",
        "2018-01-01T00:00:00Z",
        "--to",
        "2025-01-01T00:00:00Z",
    ];
    let who = |object: &str| {
        let mut a = vec![
            "who",
            "delete",
            object,
            "-n",
            "default",
            "-o",
            "json",
            "--data-dir",
            d,
        ];
        a.extend(range);
        json_lines(&a)
            .iter()
            .map(|e| e["auditID"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    // The Falco capture's one deployment deletion, however kubectl would name it.
    let plural = who("deployments/nginx-deployment");
    assert_eq!(plural.len(), 1);
    for name in [
        "deploy/nginx-deployment",
        "deployment/nginx-deployment",
        "Deployment/nginx-deployment",
    ] {
        assert_eq!(who(name), plural, "{name}");
    }
    // That cluster served it from `extensions`: naming the group `apps` asks for another one.
    assert_eq!(who("deploy.apps/nginx-deployment"), Vec::<String>::new());
    let search = |resource: &str| {
        let mut a = vec![
            "search",
            "--resource",
            resource,
            "-o",
            "json",
            "--limit",
            "100000",
            "--data-dir",
            d,
        ];
        a.extend(range);
        kubetrail(&a, "")
    };
    let pods = stdout(&search("pods")).lines().count();
    assert!(pods > 0);
    assert_eq!(stdout(&search("po")).lines().count(), pods);
    assert_eq!(stdout(&search("Pod")).lines().count(), pods);
    // A typo is an error naming the closest, not "no events match".
    for (typo, closest) in [("podz", "pods"), ("deploymnt", "deployments")] {
        let out = search(typo);
        assert_eq!(out.status.code(), Some(1), "{typo}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("unknown resource {typo:?}"))
                && err.contains(&format!("did you mean {closest:?}?")),
            "{typo}: {err}"
        );
    }
    let mut a = vec!["who", "delete", "podz/x", "--data-dir", d];
    a.extend(range);
    let out = kubetrail(&a, "");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean \"pods\"?"));
}

#[test]
fn an_empty_answer_names_the_user_namespace_or_cluster_nobody_has() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    import(d, &sample_paths());
    let run = |args: &[&str]| {
        let mut a = args.to_vec();
        a.extend(["--data-dir", d]);
        let out = kubetrail(&a, "");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let err = run(&["search", "--user", "minikube-usr"]);
    assert!(
        err.contains(
            r#"no events from user "minikube-usr" in the store — did you mean "minikube-user"?"#
        ),
        "{err}"
    );
    let err = run(&["who", "delete", "deploy/nginx-deployment", "-n", "defualt"]);
    assert!(
        err.contains("nobody did that")
            && err.contains(
                r#"no events from namespace "defualt" in the store — did you mean "default"?"#
            ),
        "{err}"
    );
    let err = run(&["history", "configmaps/x", "--cluster", "nosuch"]);
    assert!(
        err.contains(r#"no events from cluster "nosuch" in the store"#),
        "{err}"
    );
    // A user the store has, in a range without events, gets no hint.
    let err = run(&[
        "search",
        "--user",
        "minikube-user",
        "--from",
        "2001-01-01T00:00:00Z",
        "--to",
        "2001-01-02T00:00:00Z",
    ]);
    assert!(
        err.contains("no events match") && !err.contains("no events from"),
        "{err}"
    );
}

#[test]
fn tables_show_the_cluster_when_the_answer_spans_several_and_both_identities() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let file = vec![
        testdata("real-audit/audit2rbac-v1.jsonl")
            .display()
            .to_string(),
    ];
    import_as(d, "kind", &file);
    let range = [
        "--from",
        "2000-01-01T00:00:00Z",
        "--to",
        "2100-01-01T00:00:00Z",
    ];
    let table = |args: &[&str]| {
        let mut a = args.to_vec();
        a.extend(["--data-dir", d]);
        a.extend(range);
        let out = kubetrail(&a, "");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        stdout(&out)
    };
    let one = table(&["search", "--limit", "1000"]);
    let header = one.lines().next().unwrap();
    assert!(!header.contains("CLUSTER"), "{header}");
    // The impersonator and whom it acted as, in the user column.
    assert!(one.contains("system:admin → bob"), "{one}");
    // Requests made as bob: 29 in the capture, each by system:admin.
    let as_bob = table(&["search", "--as", "bob", "-o", "json", "--limit", "1000"]);
    let as_bob: Vec<Value> = as_bob
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(as_bob.len(), 29);
    assert!(
        as_bob
            .iter()
            .all(|e| e["impersonatedUser"]["username"] == "bob"
                && e["user"]["username"] == "system:admin")
    );
    let report = table(&["report", "users", "--as", "bob", "-o", "json"]);
    assert!(report.contains("system:admin"), "{report}");
    import_as(d, "kind-copy", &file);
    for args in [
        &["search", "--limit", "1000"][..],
        &["who", "list", "pods", "-n", "default"],
    ] {
        let two = table(args);
        let mut lines = two.lines();
        let header = lines.next().unwrap();
        assert!(
            header.starts_with("TIME") && header.contains("CLUSTER"),
            "{args:?}: {two}"
        );
        let rows: Vec<&str> = lines.filter(|l| l.contains(" kind")).collect();
        assert!(
            rows.iter().any(|l| l.contains(" kind-copy ")),
            "{args:?}: {two}"
        );
        assert!(rows.iter().any(|l| l.contains(" kind ")), "{args:?}: {two}");
    }
}

#[test]
fn a_source_network_matches_the_addresses_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    import(d, &sample_paths());
    let search = |ips: &[&str]| {
        let mut a = vec!["search", "-o", "json", "--limit", "100000", "--data-dir", d];
        a.extend([
            "--from",
            "2000-01-01T00:00:00Z",
            "--to",
            "2100-01-01T00:00:00Z",
        ]);
        for ip in ips {
            a.extend(["--source-ip", ip]);
        }
        json_lines(&a)
    };
    let first_ip = |e: &Value| e["sourceIPs"][0].as_str().unwrap_or("").to_string();
    let everything = search(&[]);
    let in_ten: Vec<String> = everything
        .iter()
        .map(first_ip)
        .filter(|ip| ip.starts_with("10."))
        .collect();
    assert!(in_ten.len() >= 3, "the samples have requests from 10/8");
    let found = search(&["10.0.0.0/8"]);
    assert_eq!(found.len(), in_ten.len());
    assert!(found.iter().all(|e| first_ip(e).starts_with("10.")));
    // A network and an address, ORed as two addresses are.
    let with_one = search(&["10.0.0.0/8", "8.8.8.8"]);
    let eights = everything
        .iter()
        .filter(|e| first_ip(e) == "8.8.8.8")
        .count();
    assert_eq!(with_one.len(), in_ten.len() + eights);
    assert!(search(&["100.64.0.0/10"]).is_empty());
    let mut a = vec!["search", "--source-ip", "10.0.0.0/40", "--data-dir", d];
    a.extend([
        "--from",
        "2000-01-01T00:00:00Z",
        "--to",
        "2100-01-01T00:00:00Z",
    ]);
    let out = kubetrail(&a, "");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid network \"10.0.0.0/40\""));
}

#[test]
fn bad_filters_name_their_flag() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    import(d, &sample_paths()[..1]);
    for (args, flag) in [
        (vec!["search", "--verb", "GET"], "--verb"),
        (vec!["search", "--code", "6xx"], "--code"),
        (vec!["search", "--from", "yesterday"], "--from"),
        (vec!["search", "--since", "7y"], "--since"),
        (vec!["search", "--decision", "maybe"], "--decision"),
        (vec!["search", "--resource", "pods!"], "--resource"),
    ] {
        let mut a = args.clone();
        a.extend(["--data-dir", d]);
        let out = kubetrail(&a, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag), "{args:?}: {err}");
    }
    // A verb no stored event has and Kubernetes does not know is refused with the closest, not
    // answered with nothing; one the store holds is taken.
    let out = kubetrail(&["search", "--verb", "lsit", "--data-dir", d], "");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"unknown verb "lsit""#) && err.contains(r#"did you mean "list"?"#),
        "{err}"
    );
    let out = kubetrail(
        &[
            "search",
            "--data-dir",
            d,
            "--from",
            "2024-05-02T00:00:00Z",
            "--to",
            "2024-05-01T00:00:00Z",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--from"));
    let out = kubetrail(
        &[
            "search",
            "--data-dir",
            dir.path().join("none").to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no store in"));
}

#[test]
fn generated_rotated_sets_import_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let out = kubetrail(
        &[
            "gen",
            "--events",
            "20000",
            "--seed",
            "3",
            "--start",
            "2024-05-01T00:00:00Z",
            "--out",
            logs.to_str().unwrap(),
            "--maxsize",
            "4",
            "--compress",
        ],
        "",
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert!(names.len() >= 3, "{names:?}");
    assert!(names.iter().any(|n| n == "kubernetes.audit"));
    assert!(
        names
            .iter()
            .filter(|n| n.starts_with("kubernetes-2024-05-01T") && n.ends_with(".audit.gz"))
            .count()
            >= 2,
        "{names:?}"
    );
    let data = dir.path().join("data");
    let s = import(data.to_str().unwrap(), &[logs.display().to_string()]);
    assert_eq!(s["events"], 20000);
    assert_eq!(s["stored"], 20000);
    // Stdout generation with the same seed gives the same events.
    let a = kubetrail(
        &[
            "gen",
            "--events",
            "50",
            "--seed",
            "9",
            "--start",
            "2024-05-01T00:00:00Z",
        ],
        "",
    );
    let b = kubetrail(
        &[
            "gen",
            "--events",
            "50",
            "--seed",
            "9",
            "--start",
            "2024-05-01T00:00:00Z",
        ],
        "",
    );
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(stdout(&a).lines().count(), 50);
}

#[test]
fn csv_holds_every_wide_column_and_no_formula_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let event = |id: &str, user: &str, agent: &str| {
        serde_json::json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
            "auditID": id, "stage": "ResponseComplete", "requestURI": "/api/v1/namespaces/prod/secrets/db",
            "verb": "get", "user": {"username": user}, "sourceIPs": ["10.0.0.7"], "userAgent": agent,
            "objectRef": {"resource": "secrets", "namespace": "prod", "name": "db", "apiVersion": "v1"},
            "responseStatus": {"code": 200},
            "requestReceivedTimestamp": "2024-05-01T10:00:00.000000Z",
            "stageTimestamp": "2024-05-01T10:00:00.100000Z"})
        .to_string()
    };
    let log = [
        event(
            "c5v-1",
            "=HYPERLINK(\"http://evil.example\",\"x\")",
            "curl/8, \"quoted\"\nsecond line",
        ),
        event("c5v-2", "alice", "-2+3"),
    ]
    .join("\n");
    let file = dir.path().join("audit.log");
    std::fs::write(&file, log).unwrap();
    import(d, &[file.display().to_string()]);
    let out = kubetrail(
        &[
            "search",
            "-o",
            "csv",
            "--data-dir",
            d,
            "--from",
            "2024-05-01",
            "--to",
            "2024-05-02",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0));
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(header.len(), 16);
    assert_eq!(
        (header[0].as_str(), header[13].as_str(), header[15].as_str()),
        ("TIME", "AUDIT-ID", "COMMAND")
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    let by_id = |id: &str| rows.iter().find(|r| &r[13] == id).unwrap().clone();
    let hostile = by_id("c5v-1");
    assert_eq!(&hostile[2], "'=HYPERLINK(\"http://evil.example\",\"x\")");
    assert_eq!(&hostile[12], "curl/8, \"quoted\"\nsecond line");
    assert_eq!(&hostile[5], "secrets");
    assert_eq!(&by_id("c5v-2")[12], "'-2+3");
    assert_eq!(&by_id("c5v-2")[0], "2024-05-01T10:00:00Z");
    // What writes changed has no columns.
    let out = kubetrail(
        &[
            "history",
            "secrets/db",
            "-n",
            "prod",
            "--diff",
            "-o",
            "csv",
            "--data-dir",
            d,
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-o csv lists events"));
}
