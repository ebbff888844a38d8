//! OpenSSH's known_hosts rules, through the release binary and the real sshd: `@revoked`
//! wins over every other line, `@cert-authority` is refused clearly, hashed names work, and
//! trust on first use appends to the operator's file without rewriting it.

use e2e::hyperv::{Cost, Hv, UUID, VM};
use serde_json::{Value, json};

/// `userauth-request` lines sshd logged: any authentication attempt.
fn auth_requests(log: &str) -> usize {
    log.matches("userauth-request for user").count()
}

/// The test host's key as `ssh-keyscan` prints it (`[127.0.0.1]:port ssh-ed25519 AAAA...`),
/// hashed with `-H`.
fn keyscan(hv: &Hv, hashed: bool) -> String {
    let mut command = std::process::Command::new("ssh-keyscan");
    if hashed {
        command.arg("-H");
    }
    let out = command
        .args([
            "-t",
            "ed25519",
            "-p",
            &hv.host.info.port.to_string(),
            &hv.host.info.host,
        ])
        .output()
        .expect("ssh-keyscan");
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| !l.starts_with('#') && l.contains("ssh-ed25519"))
        .unwrap_or_else(|| panic!("ssh-keyscan found no key: {text}"))
        .to_string();
    line + "\n"
}

/// A fresh ed25519 public key line's `keytype base64` part (another machine's key).
fn other_key(hv: &Hv, name: &str) -> String {
    let path = hv.scratch.path().join(name);
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&path)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The payload checking the host key against `known_hosts` (and `host_key_check`, if given).
fn by_known_hosts(hv: &Hv, known: &std::path::Path, check: Option<&str>) -> Value {
    hv.with_host(&hv.payload(VM, UUID), |h| {
        h.as_object_mut().unwrap().remove("host_key_fingerprint");
        h["known_hosts"] = json!(known);
        if let Some(check) = check {
            h["host_key_check"] = json!(check);
        }
    })
}

#[test]
fn a_revoked_key_is_refused_even_where_another_line_lists_it() {
    let hv = Hv::start();
    let listed = keyscan(&hv, false);
    let key = listed.split_once(' ').unwrap().1;
    for (name, file) in [
        ("listed-then-revoked", format!("{listed}@revoked * {key}")),
        ("revoked-then-listed", format!("@revoked {listed}{listed}")),
        (
            "revoked-then-hashed",
            format!("@revoked {listed}{}", keyscan(&hv, true)),
        ),
    ] {
        let known = hv.scratch.write(name, file.as_bytes());
        for check in [None, Some("accept-new")] {
            let before = hv.host.sshd_log();
            let (run, cost) = hv.run_counted("status", &by_known_hosts(&hv, &known, check));
            let err = run.failure(1);
            assert!(
                err.contains("host key revoked") && err.contains("@revoked"),
                "{name}: {err}"
            );
            assert_eq!(cost.launches, 0, "{name}");
            assert_eq!(
                auth_requests(&hv.host.sshd_log()[before.len()..]),
                0,
                "{name}"
            );
        }
        assert_eq!(
            std::fs::read_to_string(&known).unwrap(),
            file,
            "{name}: unchanged"
        );
    }
    // The same file without the revocation: accepted.
    let known = hv.scratch.write("listed", listed.as_bytes());
    let (run, cost) = hv.run_counted("status", &by_known_hosts(&hv, &known, None));
    assert_eq!(run.success()["power_state"], "poweroff");
    assert_eq!(cost, Cost::ONE);
}

#[test]
fn a_host_known_only_by_its_certificate_authority_is_refused_clearly() {
    let hv = Hv::start();
    let ca = format!(
        "@cert-authority [{}]:{} {}\n",
        hv.host.info.host,
        hv.host.info.port,
        other_key(&hv, "ca")
    );
    let known = hv.scratch.write("known_hosts", ca.as_bytes());
    for check in [None, Some("accept-new")] {
        let (run, cost) = hv.run_counted("status", &by_known_hosts(&hv, &known, check));
        let err = run.failure(1);
        assert!(
            err.contains("line 1 of")
                && err.contains("@cert-authority")
                && err.contains("cannot verify SSH host certificates")
                && err.contains(&hv.host.info.host_key_fingerprint),
            "{err}"
        );
        assert_eq!(cost.launches, 0);
    }
    assert_eq!(
        std::fs::read_to_string(&known).unwrap(),
        ca,
        "nothing trusted on first use"
    );
    // With the host's own key listed too, that line decides.
    let both = hv
        .scratch
        .write("both", format!("{ca}{}", keyscan(&hv, false)).as_bytes());
    assert_eq!(
        hv.run("status", &by_known_hosts(&hv, &both, None))
            .success()["power_state"],
        "poweroff"
    );
}

#[test]
fn hashed_host_names_work() {
    let hv = Hv::start();
    let hashed = keyscan(&hv, true);
    assert!(hashed.starts_with("|1|"), "{hashed}");
    let known = hv.scratch.write("known_hosts", hashed.as_bytes());
    let (run, cost) = hv.run_counted("status", &by_known_hosts(&hv, &known, None));
    assert_eq!(run.success()["power_state"], "poweroff");
    assert_eq!(cost, Cost::ONE);
    // A hashed line with another key for this host is a changed key, even with accept-new.
    let changed = format!(
        "{} {}\n",
        hashed.split_whitespace().next().unwrap(),
        other_key(&hv, "other")
    );
    let known = hv.scratch.write("changed", changed.as_bytes());
    let err = hv
        .run("status", &by_known_hosts(&hv, &known, Some("accept-new")))
        .failure(1);
    assert!(err.contains("host key mismatch"), "{err}");
}

#[test]
fn trust_on_first_use_appends_and_keeps_the_operators_lines() {
    let hv = Hv::start();
    let mine = format!(
        "# the operator's own notes\n|1|AAECAwQFBgcICQoLDA0ODxAREhM=|d0hCUhtedqDmZe+GOclev4GRnCg= {}\n\
         @revoked * {}\n@cert-authority *.corp.example {}",
        other_key(&hv, "a"),
        other_key(&hv, "b"),
        other_key(&hv, "c")
    );
    let known = hv.scratch.write("known_hosts", mine.as_bytes());
    let tofu = by_known_hosts(&hv, &known, Some("accept-new"));
    assert_eq!(hv.run("status", &tofu).success()["power_state"], "poweroff");
    let after = std::fs::read_to_string(&known).unwrap();
    assert!(
        after.starts_with(&format!("{mine}\n")),
        "kept byte for byte:\n{after}"
    );
    let added = &after[mine.len() + 1..];
    let scanned = keyscan(&hv, false);
    let key = scanned.split_whitespace().nth(2).unwrap();
    assert!(
        added.starts_with(&format!(
            "[127.0.0.1]:{} ssh-ed25519 {key} ",
            hv.host.info.port
        )) && added.ends_with('\n')
            && added.lines().count() == 1,
        "{added}"
    );
    // Now known: strict checking accepts it, and nothing more is added.
    let strict = by_known_hosts(&hv, &known, None);
    assert_eq!(
        hv.run("status", &strict).success()["power_state"],
        "poweroff"
    );
    assert_eq!(std::fs::read_to_string(&known).unwrap(), after);
}
