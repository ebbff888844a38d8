//! Real TLS handshakes, in memory, between a rustls server presenting `fixtures/leaf.pem`
//! (issued by `fixtures/ca.pem`) and a client configured by each `Trust`.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ext_tls::{
    CaCertificate, ClientTls, Fingerprint, PeerCertificate, Refusal, SystemStore, Trust,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivateKeyDer, ServerName};
use rustls::{ClientConnection, ServerConfig, ServerConnection};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn server_config() -> Arc<ServerConfig> {
    let chain = ext_tls::read_ca_file(&fixture("leaf.pem")).unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("leaf.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    )
}

fn leaf_fingerprint() -> Fingerprint {
    Fingerprint::of(&ext_tls::read_ca_file(&fixture("leaf.pem")).unwrap()[0])
}

/// Runs a handshake for `name`; returns whether it completed and what the client saw.
fn handshake(tls: &ClientTls, name: &str) -> (Result<(), rustls::Error>, Option<PeerCertificate>) {
    let mut client = ClientConnection::new(
        tls.config(),
        ServerName::try_from(name.to_string()).unwrap(),
    )
    .unwrap();
    let mut server = ServerConnection::new(server_config()).unwrap();
    let result = (|| {
        for _ in 0..20 {
            if !client.is_handshaking() && !server.is_handshaking() {
                return Ok(());
            }
            let mut buf = Vec::new();
            client.write_tls(&mut buf).unwrap();
            server.read_tls(&mut buf.as_slice()).unwrap();
            server.process_new_packets()?;
            let mut buf = Vec::new();
            server.write_tls(&mut buf).unwrap();
            client.read_tls(&mut buf.as_slice()).unwrap();
            client.process_new_packets()?;
        }
        panic!("handshake did not finish");
    })();
    (result, tls.peer())
}

fn accepted(trust: Trust) {
    let tls = ClientTls::new(&trust).unwrap();
    let (result, peer) = handshake(&tls, "localhost");
    assert!(result.is_ok(), "{trust:?}: {result:?}");
    assert_eq!(
        peer,
        Some(PeerCertificate {
            fingerprint: leaf_fingerprint(),
            refusal: None
        })
    );
}

fn refused(trust: Trust, name: &str) -> Refusal {
    let tls = ClientTls::new(&trust).unwrap();
    let (result, peer) = handshake(&tls, name);
    assert!(result.is_err(), "{trust:?} should refuse");
    let peer = peer.expect("the presented certificate is known");
    assert_eq!(peer.fingerprint, leaf_fingerprint());
    peer.refusal.expect("a reason")
}

/// A hashed directory holding `certs` under the names OpenSSL gives them.
fn hashed_dir(certs: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (file, hash) in certs {
        std::fs::copy(fixture(file), dir.path().join(format!("{hash}.0"))).unwrap();
    }
    // Not a certificate, and never read: only the issuer's hash is looked up.
    std::fs::write(dir.path().join("ffffffff.0"), "not a certificate").unwrap();
    dir
}

fn ca_hash() -> String {
    std::fs::read_to_string(fixture("ca.hash"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn our_subject_hash_is_openssls() {
    // The subject's runs of spaces and capitals are what OpenSSL's canonical form folds.
    let ca = ext_tls::read_ca_file(&fixture("ca.pem")).unwrap();
    let hash = ext_tls::subject_hash(&ca[0]).unwrap();
    assert_eq!(format!("{hash:08x}"), ca_hash());
}

#[test]
fn system_store_finds_the_issuer_by_subject_hash() {
    let dir = hashed_dir(&[("ca.pem", &ca_hash())]);
    accepted(Trust::System(SystemStore::new(
        vec![dir.path().to_path_buf()],
        vec![PathBuf::from("/nonexistent/bundle.crt")],
    )));
}

#[test]
fn system_store_falls_back_to_the_bundle_without_a_hashed_directory() {
    // EL: /etc/pki/tls/certs holds the bundle and no hashes.
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("ca-bundle.crt");
    let mut text = std::fs::read(fixture("other.pem")).unwrap();
    text.extend(std::fs::read(fixture("ca.pem")).unwrap());
    std::fs::write(&bundle, text).unwrap();
    accepted(Trust::System(SystemStore::new(
        vec![dir.path().to_path_buf()],
        vec![bundle],
    )));
}

#[test]
fn system_store_without_the_issuer_refuses() {
    let dir = hashed_dir(&[]);
    let bundle = fixture("other.pem");
    let refusal = refused(
        Trust::System(SystemStore::new(
            vec![dir.path().to_path_buf()],
            vec![bundle],
        )),
        "localhost",
    );
    assert!(
        refusal.to_string().contains("system trust store"),
        "{refusal}"
    );
}

#[test]
fn ca_file_trusts_its_certificates_only() {
    accepted(Trust::Ca(CaCertificate::File(fixture("ca.pem"))));
    let refusal = refused(
        Trust::Ca(CaCertificate::File(fixture("other.pem"))),
        "localhost",
    );
    assert_eq!(
        refusal.to_string(),
        "it is not issued by a certificate of the CA file"
    );
}

#[test]
fn inline_pem_trusts_its_certificates_only() {
    let pem = |name| std::fs::read_to_string(fixture(name)).unwrap();
    accepted(Trust::Ca(CaCertificate::from_setting(&pem("ca.pem"))));
    // As pasted into a one-line field.
    let one_line = pem("ca.pem").trim_end().replace('\n', "\\n");
    accepted(Trust::Ca(CaCertificate::from_setting(&one_line)));
    let refusal = refused(
        Trust::Ca(CaCertificate::from_setting(&pem("other.pem"))),
        "localhost",
    );
    assert_eq!(
        refusal.to_string(),
        "it is not issued by a certificate of the inline CA certificate"
    );
}

#[test]
fn the_usual_settings_choose_one_trust() {
    let pin = leaf_fingerprint();
    let ca = || Some(CaCertificate::File(fixture("ca.pem")));
    assert_eq!(
        Trust::from_settings(Some(pin), false, ca()),
        Trust::Pinned(pin)
    );
    assert_eq!(Trust::from_settings(None, false, ca()), Trust::Insecure);
    assert_eq!(
        Trust::from_settings(None, true, ca()),
        Trust::Ca(CaCertificate::File(fixture("ca.pem")))
    );
    assert!(matches!(
        Trust::from_settings(None, true, None),
        Trust::System(_)
    ));
}

#[test]
fn names_are_checked() {
    let refusal = refused(
        Trust::Ca(CaCertificate::File(fixture("ca.pem"))),
        "pve2.example.test",
    );
    assert_eq!(
        refusal.to_string(),
        "it is not valid for the name 'pve2.example.test'"
    );
}

#[test]
fn pinning_accepts_exactly_the_pinned_leaf() {
    accepted(Trust::Pinned(leaf_fingerprint()));
    // Pinned: whoever issued it, whatever name was asked for.
    let tls = ClientTls::new(&Trust::Pinned(leaf_fingerprint())).unwrap();
    assert!(handshake(&tls, "pve2.example.test").0.is_ok());
    let other = Fingerprint::of(b"another certificate");
    assert_eq!(
        refused(Trust::Pinned(other), "localhost"),
        Refusal::NotPinned { pinned: other }
    );
}

#[test]
fn insecure_accepts_anything_and_still_reports_the_fingerprint() {
    accepted(Trust::Insecure);
}

#[test]
fn ca_file_problems_are_setup_errors() {
    let err = ClientTls::new(&Trust::Ca(CaCertificate::File(PathBuf::from(
        "/nonexistent/ca.pem",
    ))))
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read CA file '/nonexistent/ca.pem'"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let key_only = dir.path().join("key.pem");
    std::fs::copy(fixture("leaf.key"), &key_only).unwrap();
    let err = ClientTls::new(&Trust::Ca(CaCertificate::File(key_only))).unwrap_err();
    assert!(
        matches!(err.problem, ext_tls::CaProblem::NoCertificate),
        "{err}"
    );
}
