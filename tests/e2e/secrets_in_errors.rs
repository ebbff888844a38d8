//! A secret's value never appears in an error (issue 9 item 8), through both release binaries
//! and their peers: every secret detail of both extensions, given wrong or in a form that
//! cannot be used, and a `private_key` pasted in every form that does not start with
//! `-----BEGIN`, and the WinRM password (wrong, or quoted back by the host in a fault, by NTLM
//! and by Basic). Neither the answer nor the log may contain the value or any line of it.

use e2e::hyperv::{Cost, Hv, UUID, VM};
use e2e::proxmox::{Payload, TestVm, World};
use hyperv_testhost::WinrmKnobs;
use serde_json::{Value, json};

/// What of `secret` must never be printed: the value, and each line of key material.
fn pieces(secret: &str) -> Vec<String> {
    ext_sdk::redact::secret_pieces(secret)
        .into_iter()
        .filter(|p| p.len() >= 8)
        .map(str::to_owned)
        .collect()
}

fn assert_hidden(secret: &str, texts: &[&str], what: &str) {
    for piece in pieces(secret) {
        for text in texts {
            assert!(!text.contains(&piece), "{what}: {piece:?} in {text}");
        }
    }
}

fn with_key(hv: &Hv, p: &Value, key: &str) -> Value {
    hv.with_host(p, |h| {
        h.as_object_mut().unwrap().remove("password");
        h["private_key"] = json!(key);
    })
}

#[test]
fn hyperv_private_key_material_in_any_form_is_recognised_and_never_printed() {
    let hv = Hv::start();
    let p = hv.payload(VM, UUID);
    let pem = std::fs::read_to_string(&hv.host.info.private_key).unwrap();
    let body: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let begin = pem.lines().next().unwrap();

    // A whole key, however it was pasted, is used.
    for usable in [
        format!("\"{}\"", pem.trim_end()),
        format!("\u{feff}{pem}"),
        format!("'{}'", pem.trim_end().replace('\n', "\\n")),
        pem.trim_end().replace('\n', " "),
    ] {
        let (run, cost) = hv.run_counted("status", &with_key(&hv, &p, &usable));
        assert_eq!(run.success()["power_state"], "poweroff", "{usable:?}");
        assert_eq!(cost, Cost::ONE);
    }
    assert_eq!(
        hv.host
            .sshd_log()
            .matches("Accepted publickey for hvtest")
            .count(),
        4
    );

    // Key material that is no whole private key: named, refused before connecting, never
    // shown.
    let ppk = format!(
        "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: hv\nPublic-Lines: 2\n{}\nPrivate-Lines: 1\n{}\nPrivate-MAC: 5d2b\n",
        body[0], body[1]
    );
    let cases: [(String, &str); 6] = [
        (body.join("\n"), "without its -----BEGIN and -----END lines"),
        (
            body.join("\\n"),
            "without its -----BEGIN and -----END lines",
        ),
        (body.concat(), "without its -----BEGIN and -----END lines"),
        (
            format!("{begin}\n{}\n", body.join("\n")),
            "holds part of a PEM private key",
        ),
        (ppk, "PuTTY .ppk key"),
        (
            std::fs::read_to_string(format!("{}.pub", hv.host.info.private_key)).unwrap(),
            "this is a public key",
        ),
    ];
    for (value, why) in cases {
        let (run, cost) = hv.run_counted("status", &with_key(&hv, &p, &value));
        let err = run.failure(1);
        assert!(
            err.contains("'private_key' (host detail): ") && err.contains(why),
            "{why}: {err}"
        );
        assert_eq!(cost, Cost::NONE, "{why}");
        let secret = if why == "this is a public key" {
            // Not a secret, but withheld all the same.
            value.split_whitespace().nth(1).unwrap().to_owned()
        } else {
            value.clone()
        };
        assert_hidden(&secret, &[&run.stdout, &hv.scratch.log()], why);
    }
    // The real key's lines never reached the log either.
    assert_hidden(&pem, &[&hv.scratch.log()], "the usable key");
}

#[test]
fn hyperv_a_wrong_password_or_passphrase_is_never_printed() {
    let hv = Hv::start();
    let p = hv.payload(VM, UUID);
    let password = "Wr0ng-Passw0rd-9d1f";
    let run = hv.run(
        "status",
        &hv.with_host(&p, |h| h["password"] = json!(password)),
    );
    let err = run.failure(1);
    assert!(
        err.contains("authentication as 'hvtest' by password failed"),
        "{err}"
    );
    assert_hidden(password, &[&run.stdout, &hv.scratch.log()], "password");

    // The key, encrypted with a passphrase; then the wrong passphrase.
    let encrypted = hv.scratch.path().join("encrypted_ed25519");
    std::fs::copy(&hv.host.info.private_key, &encrypted).unwrap();
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-p", "-N", "Right-Passphrase-42", "-P", "", "-f"])
        .arg(&encrypted)
        .status()
        .unwrap();
    assert!(status.success());
    let pem = std::fs::read_to_string(&encrypted).unwrap();
    for (passphrase, works) in [
        ("Right-Passphrase-42", true),
        ("Wrong-Passphrase-17", false),
    ] {
        let keyed = hv.with_host(&with_key(&hv, &p, &pem), |h| {
            h["private_key_passphrase"] = json!(passphrase);
        });
        let run = hv.run("status", &keyed);
        if works {
            assert_eq!(run.success()["power_state"], "poweroff");
        } else {
            let err = run.failure(1);
            assert!(
                err.contains("SSH authentication as 'hvtest' by public key (inline) failed"),
                "{err}"
            );
        }
        assert_hidden(passphrase, &[&run.stdout, &hv.scratch.log()], "passphrase");
        assert_hidden(&pem, &[&run.stdout, &hv.scratch.log()], "encrypted key");
    }
}

#[test]
fn hyperv_winrm_password_is_never_printed_not_even_when_the_host_echoes_it() {
    use base64::Engine as _;
    let hv = Hv::start_winrm();
    let w = hv.host.info.winrm.clone();
    let p = hv.with_host(&hv.payload(VM, UUID), |h| h["log_level"] = json!("trace"));
    let basic_header = |password: &str| {
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", w.winrm_username))
    };

    // A wrong password, by NTLM and by Basic: one clear refusal without it.
    hv.host.winrm_knobs(&WinrmKnobs {
        basic: true,
        ..Default::default()
    });
    let wrong = "Wr0ng-WinRM-Passw0rd-5e";
    for auth in ["ntlm", "basic"] {
        let run = hv.run(
            "status",
            &hv.with_host(&p, |h| {
                h["password"] = json!(wrong);
                h["winrm_auth"] = json!(auth);
            }),
        );
        let err = run.failure(1);
        assert!(
            err.contains("rejected the credentials")
                && err.contains("check the username and password"),
            "{auth}: {err}"
        );
        let log = hv.scratch.log();
        assert_hidden(wrong, &[&run.stdout, &log], auth);
        assert!(
            !log.contains(&basic_header(wrong)),
            "{auth}: Basic credentials in the log"
        );
    }

    // A host whose fault quotes the (right) password back: the answer and the log carry the
    // fault's text with the password masked.
    hv.host.winrm_knobs(&WinrmKnobs {
        basic: true,
        fault_at: Some("command".into()),
        fault_message: Some(format!("Access denied for password {}.", w.winrm_password)),
        ..Default::default()
    });
    for auth in ["ntlm", "basic"] {
        let run = hv.run(
            "status",
            &hv.with_host(&p, |h| h["winrm_auth"] = json!(auth)),
        );
        let err = run.failure(1);
        assert!(
            err.contains(&format!(
                "answered with a fault: Access denied for password {}",
                ext_sdk::redact::MASK
            )),
            "{auth}: {err}"
        );
        let log = hv.scratch.log();
        assert_hidden(&w.winrm_password, &[&run.stdout, &log], auth);
        assert!(
            !log.contains(&basic_header(&w.winrm_password)),
            "{auth}: Basic credentials in the log"
        );
    }
    assert_eq!(hv.state().invocations, 0, "nothing ran on the host");
}

#[test]
fn proxmox_a_wrong_secret_is_never_printed() {
    let w = World::new();
    let vm = TestVm::new();
    for secret in [
        "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6",
        "root@pam!cs=0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6",
        "bad secret with spaces 1234",
    ] {
        let payload: Payload = Payload::vm(&w.pve, &vm)
            .vmid(100)
            .host_detail("secret", Some(secret));
        let out = w.run("status", &payload);
        let err = out.assert_error();
        if secret.contains('!') {
            // A whole token is explained before any request, without its secret part.
            assert!(
                err.contains("'secret' (host detail): it holds a whole API token")
                    && err.contains("=<secret>"),
                "refused before the API: {err}"
            );
        } else {
            assert!(
                err.contains("Proxmox refused the API token"),
                "reached the API and was refused: {err}"
            );
        }
        assert_hidden(secret, &[&out.stdout, &w.log()], secret);
    }
}
