//! HTTPS with rustls, and client certificates (mTLS) for the webhook, as the apiserver's
//! webhook kubeconfig can present them: a certificate signed by the configured CA
//! authenticates as ingest; no certificate falls back to the bearer token; a certificate of
//! another CA does not get through the handshake.

use std::path::PathBuf;

use kubetrail_api::{Client, ClientError, ClientOptions};
use kubetrail_server::{TlsFiles, router, serve};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::{Harness, INGEST, event_list};

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let pem = params.self_signed(&key).unwrap().pem();
    Ca { params, key, pem }
}

/// A leaf certificate and its key, as PEM files in `dir`.
fn leaf(dir: &std::path::Path, ca: &Ca, name: &str, cn: &str, client: bool) -> (PathBuf, PathBuf) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    let issuer = Issuer::from_params(&ca.params, &ca.key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    let (c, k) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

#[test]
fn client_certificates_authenticate_the_webhook_and_tokens_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let ours = ca("kubetrail test CA");
    let theirs = ca("someone else's CA");
    let ca_file = dir.path().join("ca.crt");
    std::fs::write(&ca_file, &ours.pem).unwrap();
    let (server_cert, server_key) = leaf(dir.path(), &ours, "server", "kubetrail", false);
    let (client_cert, client_key) = leaf(dir.path(), &ours, "client", "kube-apiserver-prod", true);
    let (rogue_cert, rogue_key) = leaf(dir.path(), &theirs, "rogue", "kube-apiserver-prod", true);

    let h = Harness::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let tls = TlsFiles {
        cert: server_cert,
        key: server_key,
        client_ca: Some(ca_file.clone()),
    };
    runtime.spawn(serve(
        listener,
        router(h.state.clone()),
        Some(tls),
        std::future::pending(),
    ));

    let base = format!("https://localhost:{port}");
    let (body, n) = event_list("real-audit/audit2rbac-v1.jsonl", "audit.k8s.io/v1");
    let client = |options: ClientOptions| Client::new(&base, &options).unwrap();

    // A client certificate of our CA, no token.
    let with_cert = client(ClientOptions {
        ca_file: Some(ca_file.clone()),
        client_cert: Some((client_cert, client_key)),
        ..ClientOptions::default()
    });
    let reply = with_cert.post_webhook(&body, Some("prod")).unwrap();
    assert_eq!(reply.stored, n as u64);
    // Certificates authenticate ingest only: reading needs a token.
    match with_cert.events(&kubetrail_store::Filter::default(), None, 1) {
        Err(ClientError::Status { status, .. }) => assert_eq!(status, 403),
        other => panic!("expected 403, got {other:?}"),
    }

    // Neither certificate nor token: 401.
    let anonymous = client(ClientOptions {
        ca_file: Some(ca_file.clone()),
        ..ClientOptions::default()
    });
    match anonymous.post_webhook(&body, None) {
        Err(ClientError::Status { status, .. }) => assert_eq!(status, 401),
        other => panic!("expected 401, got {other:?}"),
    }
    // A token without a certificate.
    let with_token = client(ClientOptions {
        ca_file: Some(ca_file.clone()),
        token: Some(INGEST.into()),
        ..ClientOptions::default()
    });
    assert_eq!(
        with_token
            .post_webhook(&body, Some("prod"))
            .unwrap()
            .duplicates,
        n as u64
    );

    // A certificate of another CA: refused in the handshake, so not even a status.
    let rogue = client(ClientOptions {
        ca_file: Some(ca_file.clone()),
        client_cert: Some((rogue_cert, rogue_key)),
        ..ClientOptions::default()
    });
    assert!(matches!(
        rogue.post_webhook(&body, None),
        Err(ClientError::Transport { .. })
    ));
    // A client that does not trust the server's CA does not talk to it.
    let untrusting = client(ClientOptions {
        token: Some(INGEST.into()),
        ..ClientOptions::default()
    });
    assert!(matches!(
        untrusting.post_webhook(&body, None),
        Err(ClientError::Transport { .. })
    ));
    assert_eq!(h.store.count().unwrap(), n as u64);
}
