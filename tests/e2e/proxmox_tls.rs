//! The node's TLS certificate: pinned by fingerprint (`tls_fingerprint`), a CA file
//! (`ca_certificate`), the system trust store (found by subject hash in a hashed directory,
//! or in a bundle), and no verification; a refused certificate stops the run before any
//! request reaches the node, and the error names what the node presented.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use e2e::proxmox::{Payload, World};
use ext_tls::Fingerprint;
use serde_json::json;

fn fingerprint_of(pem: &Path) -> Fingerprint {
    Fingerprint::of(&ext_tls::read_ca_file(pem).expect("a PEM certificate")[0])
}

/// The payload of a marked, running VM 100, trusting only what `tls` details say.
fn vm_payload(w: &World) -> Payload {
    w.marked_vm("running", json!({"memory": "512"}))
        .1
        .host_detail("ca_certificate", None)
}

/// `openssl x509 -hash`: the name OpenSSL's hashed directory gives a certificate (asked of
/// OpenSSL itself, so the test does not take our own hashing for granted).
fn openssl_hash(pem: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-hash", "-noout", "-in"])
        .arg(pem)
        .output()
        .expect("the openssl command (scripts/setup.sh installs it)");
    assert!(out.status.success(), "openssl x509 -hash failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn a_pinned_fingerprint_is_trusted_whoever_issued_the_certificate() {
    let w = World::new();
    let fingerprint = fingerprint_of(&w.pve.ca);
    // As the PVE GUI shows it; no CA anywhere.
    let payload = vm_payload(&w).host_detail("tls_fingerprint", Some(&fingerprint.to_string()));
    assert_eq!(w.run("status", &payload).json["power_state"], "poweron");
    // Lower case, colons and all, is the same fingerprint.
    let lower = fingerprint.to_string().to_lowercase();
    let payload = payload.host_detail("tls_fingerprint", Some(&lower));
    assert_eq!(w.run("status", &payload).json["power_state"], "poweron");
    assert_eq!(
        w.pve.request_lines(),
        [
            "GET /nodes/pve1/qemu/100/status/current",
            "GET /nodes/pve1/qemu/100/status/current"
        ]
    );
}

#[test]
fn a_pinned_fingerprint_mismatch_is_refused_before_any_request() {
    let w = World::new();
    let presented = fingerprint_of(&w.pve.ca);
    let pinned = Fingerprint::of(b"the certificate the node had before");
    let payload = vm_payload(&w)
        .host_detail("tls_fingerprint", Some(&pinned.to_string()))
        // A pin is the whole check, even with a CA file that would accept the node.
        .host_detail("ca_certificate", Some(&w.pve.ca.display().to_string()));
    for action in ["status", "stop", "delete"] {
        let err = w.run(action, &payload).assert_error();
        assert!(
            err.starts_with(&format!(
                "TLS handshake with the Proxmox API at {} (host detail 'url') failed",
                w.pve.url()
            )),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "presented a certificate with SHA-256 fingerprint {presented}, not the pinned 'tls_fingerprint' {pinned}"
            )),
            "{err}"
        );
        assert!(
            err.contains("nothing was sent") && err.contains("pvenode cert info"),
            "{err}"
        );
    }
    assert!(
        w.pve.requests().is_empty(),
        "no request reached the node: {:?}",
        w.pve.request_lines()
    );
    assert_eq!(w.pve.vm(100).unwrap().status, "running");
}

#[test]
fn a_malformed_fingerprint_is_a_settings_error() {
    let w = World::new();
    let payload = vm_payload(&w).host_detail("tls_fingerprint", Some("12:34:56"));
    let err = w.run("status", &payload).assert_error();
    assert!(
        err.contains("'tls_fingerprint' = '12:34:56'") && err.contains("32 hex bytes"),
        "{err}"
    );
    assert!(w.pve.requests().is_empty());
}

#[test]
fn ca_certificate_trusts_that_file_only_and_names_what_the_node_presented() {
    let w = World::new();
    let payload = vm_payload(&w);
    let ok = payload
        .clone()
        .host_detail("ca_certificate", Some(&w.pve.ca.display().to_string()));
    assert_eq!(w.run("status", &ok).json["power_state"], "poweron");
    w.pve.reset_requests();

    // Another certificate (the bench's and tests' own CA fixture) does not vouch for the node.
    let other = e2e::repo_root().join("ext-tls/tests/fixtures/other.pem");
    let wrong = payload.host_detail("ca_certificate", Some(&other.display().to_string()));
    let err = w.run("status", &wrong).assert_error();
    assert!(
        err.contains(
            "the node's certificate was refused: it is not issued by a certificate of the CA file"
        ),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "presented SHA-256 fingerprint {}",
            fingerprint_of(&w.pve.ca)
        )) && err.contains("tls_fingerprint"),
        "{err}"
    );
    assert!(w.pve.requests().is_empty());
}

#[test]
fn ca_certificate_may_be_the_pem_itself() {
    let w = World::new();
    let payload = vm_payload(&w);
    let pem = std::fs::read_to_string(&w.pve.ca).unwrap();
    // As written, and as pasted into a one-line field (literal \n).
    for value in [pem.clone(), pem.trim_end().replace('\n', "\\n")] {
        let inline = payload.clone().host_detail("ca_certificate", Some(&value));
        assert_eq!(w.run("status", &inline).json["power_state"], "poweron");
    }
    // Another CA's PEM does not vouch for the node; PEM that is not a certificate is a
    // settings error, before any connection.
    let other =
        std::fs::read_to_string(e2e::repo_root().join("ext-tls/tests/fixtures/other.pem")).unwrap();
    let wrong = payload.clone().host_detail("ca_certificate", Some(&other));
    let err = w.run("status", &wrong).assert_error();
    assert!(
        err.contains("it is not issued by a certificate of the inline CA certificate"),
        "{err}"
    );
    w.pve.reset_requests();
    let garbled = "-----BEGIN CERTIFICATE-----\\nnot base64!\\n-----END CERTIFICATE-----";
    let err = w
        .run(
            "status",
            &payload.host_detail("ca_certificate", Some(garbled)),
        )
        .assert_error();
    assert!(
        err.contains("'ca_certificate' = '-----BEGIN CERTIFICATE-----")
            && err.contains("it is not valid PEM"),
        "{err}"
    );
    assert!(w.pve.requests().is_empty());
}

#[test]
fn the_system_store_finds_the_issuer_in_a_hashed_directory_and_reads_nothing_else() {
    let w = World::new();
    let store = tempfile::tempdir().unwrap();
    let hash = openssl_hash(&w.pve.ca);
    std::fs::copy(&w.pve.ca, store.path().join(format!("{hash}.0"))).unwrap();
    // Files of other hashes are never opened: an unreadable one does no harm.
    std::fs::write(store.path().join("00000000.0"), "not a certificate").unwrap();
    let env: [(&str, &OsStr); 2] = [
        ("SSL_CERT_DIR", store.path().as_os_str()),
        (
            "SSL_CERT_FILE",
            OsStr::new("/nonexistent/ca-certificates.crt"),
        ),
    ];
    let payload = vm_payload(&w);
    assert_eq!(
        w.run_env("status", &payload, &env).json["power_state"],
        "poweron"
    );
    let log = w.log();
    assert!(
        log.contains(&format!(
            "trust store: reading {}",
            store.path().join(format!("{hash}.0")).display()
        )),
        "{log}"
    );
    assert!(!log.contains("trust store: scanning"), "{log}");
    assert!(!log.contains("00000000.0"), "{log}");
}

#[test]
fn the_system_store_falls_back_to_the_bundle_without_hashes() {
    // EL: /etc/pki/tls/certs/ca-bundle.crt and no hashed names.
    let w = World::new();
    let store = tempfile::tempdir().unwrap();
    let bundle = store.path().join("ca-bundle.crt");
    let mut text =
        std::fs::read(e2e::repo_root().join("ext-tls/tests/fixtures/other.pem")).unwrap();
    text.extend(std::fs::read(&w.pve.ca).unwrap());
    std::fs::write(&bundle, text).unwrap();
    let env: [(&str, &OsStr); 2] = [
        ("SSL_CERT_DIR", store.path().as_os_str()),
        ("SSL_CERT_FILE", bundle.as_os_str()),
    ];
    let payload = vm_payload(&w);
    assert_eq!(
        w.run_env("status", &payload, &env).json["power_state"],
        "poweron"
    );
    assert!(
        w.log()
            .contains(&format!("trust store: scanning {}", bundle.display())),
        "{}",
        w.log()
    );

    // Without the node's issuer anywhere: refused, before any request.
    w.pve.reset_requests();
    std::fs::remove_file(&bundle).unwrap();
    let err = w.run_env("status", &payload, &env).assert_error();
    assert!(
        err.contains("it is not issued by a certificate authority of the system trust store"),
        "{err}"
    );
    assert!(w.pve.requests().is_empty());
}

#[test]
fn no_verification_works_and_warns_on_every_action() {
    let w = World::new();
    let payload = vm_payload(&w).host_detail("verify_tls_certificate", Some("false"));
    assert_eq!(w.run("status", &payload).json["power_state"], "poweron");
    w.run("stop", &payload).assert_success();
    let warnings = w
        .log()
        .lines()
        .filter(|l| {
            l.contains("WARN")
                && l.contains(
                    "verify_tls_certificate=false: the Proxmox API's certificate is not checked",
                )
        })
        .count();
    assert_eq!(warnings, 2, "{}", w.log());
    assert_eq!(w.pve.vm(100).unwrap().status, "stopped");
}
