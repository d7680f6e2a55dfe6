//! The certificates agents use to reach the server over TLS: a CA made for one installation,
//! and a server certificate it signs for the Service's names. The CA's private key is not
//! kept (nothing else is ever signed with it); rendering the manifests again makes a new pair.

use chrono::Datelike;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// PEM texts of a CA certificate, and a server certificate and key it signed.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The CA certificate: what agents trust.
    pub ca_pem: String,
    /// The server's certificate.
    pub cert_pem: String,
    /// The server's private key.
    pub key_pem: String,
}

/// Why certificates could not be made.
#[derive(Debug, thiserror::Error)]
#[error("making the TLS certificates: {0}")]
pub struct TlsError(#[from] rcgen::Error);

/// Years a generated certificate is valid.
pub const VALID_YEARS: i32 = 10;

/// The DNS names a Service `service` in `namespace` answers to inside the cluster.
pub fn service_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// A new CA, and a server certificate for `names` signed by it.
pub fn generate(names: Vec<String>) -> Result<ServerTls, TlsError> {
    let now = chrono::Utc::now();
    let (from, until) = (
        rcgen::date_time_ymd(now.year(), now.month() as u8, now.day() as u8),
        rcgen::date_time_ymd(now.year() + VALID_YEARS, now.month() as u8, 1),
    );
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "kubetrail installation CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = from;
    ca.not_after = until;
    let ca_pem = ca.self_signed(&ca_key)?.pem();

    let key = KeyPair::generate()?;
    let cn = names.first().cloned().unwrap_or_else(|| "kubetrail".into());
    let mut server = CertificateParams::new(names)?;
    server.distinguished_name.push(DnType::CommonName, cn);
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    server.not_before = from;
    server.not_after = until;
    let cert = server.signed_by(&key, &Issuer::from_params(&ca, &ca_key))?;
    Ok(ServerTls {
        ca_pem,
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_certificate_names_the_service_and_is_not_the_ca() {
        let names = service_names("kubetrail", "audit");
        assert_eq!(names[2], "kubetrail.audit.svc");
        let tls = generate(names).unwrap();
        assert!(tls.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(tls.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(tls.key_pem.contains("PRIVATE KEY"));
        assert_ne!(tls.ca_pem, tls.cert_pem);
        // A second installation gets its own CA.
        assert_ne!(generate(vec!["x".into()]).unwrap().ca_pem, tls.ca_pem);
    }
}
