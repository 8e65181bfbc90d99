//! A private certificate authority and a server certificate it signed, for `localhost` and
//! `127.0.0.1`, written as PEM files: what a TLS test configures the server with and gives the
//! client to trust.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, IsCa, Issuer, KeyPair};

/// PEM files of a test CA and a server certificate.
#[derive(Debug, Clone)]
pub struct TestCerts {
    /// The CA's certificate, PEM (what clients trust).
    pub ca_pem: Vec<u8>,
    /// The server's certificate chain file.
    pub cert: PathBuf,
    /// The server's key file.
    pub key: PathBuf,
}

/// Makes a CA and a server certificate signed by it, in `dir`.
///
/// # Panics
/// When the certificates cannot be made or written: this is test set-up.
pub fn private_ca(dir: &Path) -> TestCerts {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let mut name = DistinguishedName::new();
    name.push(rcgen::DnType::CommonName, "murr test CA");
    ca_params.distinguished_name = name;
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let server_key = KeyPair::generate().expect("server key");
    let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("server params");
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let server = params
        .signed_by(&server_key, &issuer)
        .expect("server certificate");
    let cert = dir.join("server.pem");
    let key = dir.join("server.key");
    std::fs::write(&cert, server.pem()).expect("writes the certificate");
    std::fs::write(&key, server_key.serialize_pem()).expect("writes the key");
    TestCerts {
        ca_pem: ca.pem().into_bytes(),
        cert,
        key,
    }
}
