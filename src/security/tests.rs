use std::path::Path;

use clap::Parser;

use super::*;

#[path = "../../tests/it/security/pki.rs"]
pub(crate) mod pki;

use pki::{Pki, TempDir};

/// A command line with only the security flags.
#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    security: SecurityArgs,
}

fn parse(args: &[&str]) -> SecurityArgs {
    Cli::try_parse_from(std::iter::once("ecr-facade").chain(args.iter().copied()))
        .unwrap()
        .security
}

#[test]
fn flags_parse_and_default_to_plaintext_without_policy() {
    assert_eq!(parse(&[]), SecurityArgs::default());
    let args = parse(&[
        "--tls-cert=c.pem",
        "--tls-key",
        "k.pem",
        "--client-ca=ca.pem",
        "--auth-policy=p.toml",
        "--read-only",
    ]);
    assert_eq!(args.tls_cert.as_deref(), Some(Path::new("c.pem")));
    assert_eq!(args.tls_key.as_deref(), Some(Path::new("k.pem")));
    assert_eq!(args.client_ca.as_deref(), Some(Path::new("ca.pem")));
    assert_eq!(args.auth_policy.as_deref(), Some(Path::new("p.toml")));
    assert!(args.read_only);

    let security = SecurityArgs::default().security().unwrap();
    assert!(security.tls.is_none());
    assert_eq!(
        security.startup_message(),
        Security::default().startup_message()
    );
    assert_eq!(
        security.startup_message(),
        "transport: plaintext; no authorization policy configured: \
         every caller may call every action; read-write"
    );
}

fn error(files: TlsFiles) -> String {
    files.server_tls_config().unwrap_err().to_string()
}

#[test]
fn tls_flags_must_come_in_pairs() {
    let some = |p: &str| Some(PathBuf::from(p));
    let key_only = TlsFiles {
        key: some("k.pem"),
        ..TlsFiles::default()
    };
    assert_eq!(error(key_only), "--tls-key is set without --tls-cert");
    let cert_only = TlsFiles {
        cert: some("c.pem"),
        ..TlsFiles::default()
    };
    assert_eq!(error(cert_only), "--tls-cert is set without --tls-key");
    let ca_only = TlsFiles {
        client_ca: some("ca.pem"),
        ..TlsFiles::default()
    };
    assert_eq!(
        error(ca_only),
        "--client-ca needs tls: set --tls-cert and --tls-key too"
    );
    assert!(TlsFiles::default().server_tls_config().unwrap().is_none());
}

#[test]
fn valid_tls_and_mtls_files_are_accepted() {
    let pki = Pki::new("unit ca");
    let server = pki.server();
    let dir = TempDir::new("tls-ok");
    let args = SecurityArgs {
        tls_cert: Some(dir.write("server.pem", &server.cert)),
        tls_key: Some(dir.write("server.key", &server.key)),
        ..SecurityArgs::default()
    };
    let security = args.security().unwrap();
    assert!(security.tls.is_some());
    assert!(security.startup_message().starts_with("transport: tls; "));

    let mtls = SecurityArgs {
        client_ca: Some(dir.write("ca.pem", pki.ca_pem())),
        ..args
    };
    let security = mtls.security().unwrap();
    assert!(security.tls.is_some());
    assert!(security.startup_message().starts_with("transport: mtls"));
}

#[test]
fn bad_tls_files_are_named() {
    let pki = Pki::new("unit ca");
    let server = pki.server();
    let other = pki.server();
    let dir = TempDir::new("tls-bad");
    let cert = dir.write("server.pem", &server.cert);
    let key = dir.write("server.key", &server.key);
    let files = |cert: &Path, key: &Path, ca: Option<&Path>| TlsFiles {
        cert: Some(cert.to_owned()),
        key: Some(key.to_owned()),
        client_ca: ca.map(Path::to_owned),
    };
    let missing = dir.path().join("missing.pem");
    let garbage = dir.write("garbage.pem", "not pem at all");
    let broken = dir.write("broken.pem", "-----BEGIN CERTIFICATE-----\nAAAA");
    let other_key = dir.write("other.key", &other.key);
    let key_as_cert = dir.write("key-as-cert.pem", &server.key);

    let cases = [
        (
            files(&missing, &key, None),
            "cannot read tls certificate",
            "missing.pem",
        ),
        (
            files(&cert, &missing, None),
            "cannot read tls key",
            "missing.pem",
        ),
        (
            files(&garbage, &key, None),
            "invalid tls certificate",
            "no pem certificate found",
        ),
        (
            files(&broken, &key, None),
            "invalid tls certificate",
            "broken.pem: invalid pem",
        ),
        (
            files(&cert, &garbage, None),
            "invalid tls key",
            "no usable pem private key",
        ),
        (files(&cert, &cert, None), "invalid tls key", "server.pem"),
        (
            files(&cert, &other_key, None),
            "invalid tls key",
            "does not fit the certificate",
        ),
        (
            files(&cert, &key, Some(&missing)),
            "cannot read client ca",
            "missing.pem",
        ),
        (
            files(&cert, &key, Some(&key_as_cert)),
            "invalid client ca",
            "no pem certificate",
        ),
    ];
    for (files, prefix, detail) in cases {
        let message = error(files.clone());
        assert!(message.starts_with(prefix), "{files:?}: {message}");
        assert!(message.contains(detail), "{files:?}: {message}");
        assert!(!message.contains("PRIVATE KEY"), "{message}");
    }
}

#[test]
fn an_invalid_policy_file_fails_the_start() {
    let dir = TempDir::new("policy-bad");
    let args = SecurityArgs {
        auth_policy: Some(dir.write("policy.toml", "[[caller]]\nactions = 1\n")),
        ..SecurityArgs::default()
    };
    let message = args.security().unwrap_err().to_string();
    assert!(message.starts_with("invalid policy file "), "{message}");
    assert!(message.contains("policy.toml"), "{message}");
}

#[test]
fn a_certificate_names_its_first_uri_san_before_any_dns_san() {
    use rcgen::SanType;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let pki = Pki::new("unit ca");
    let der = |pem: &pki::Pem| CertificateDer::from_pem_slice(pem.cert.as_bytes()).unwrap();
    let both = pki.client(vec![
        SanType::DnsName("b.example".try_into().unwrap()),
        SanType::URI("spiffe://td/ns/a/sa/b".try_into().unwrap()),
        SanType::URI("spiffe://td/ns/a/sa/c".try_into().unwrap()),
    ]);
    assert_eq!(
        Identity::from_certificate(&der(&both)),
        Some(Identity::Certificate("spiffe://td/ns/a/sa/b".into()))
    );
    let dns = pki.client_with_dns("b.example");
    assert_eq!(
        Identity::from_certificate(&der(&dns)),
        Some(Identity::Certificate("b.example".into()))
    );
    assert_eq!(
        Identity::from_certificate(&der(&pki.client(Vec::new()))),
        None
    );
}
