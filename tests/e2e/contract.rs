//! The output contract, end to end: the real binaries, run as CloudStack runs them.
//!
//! `contract-probe` is an extension built on ext-sdk that reports what the SDK parsed and
//! misbehaves on request; the bad-input matrix runs against every shipped binary.

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e::{Invoke, Run, Scratch, binary, fixture, remove, repo_root, run_action, set};
use serde_json::{Value, json};

fn probe() -> PathBuf {
    binary("contract-probe")
}

fn shipped_binaries() -> Vec<PathBuf> {
    vec![binary("proxmox-ext"), binary("hyperv-ext"), probe()]
}

fn probe_run(scratch: &Scratch, action: &str, payload: &Value, timeout: &str) -> Run {
    let path = scratch.payload("payload.json", payload);
    run_action(&probe(), scratch, action, &path, timeout)
}

#[test]
fn create_with_two_nics_reaches_the_extension_parsed() {
    let s = Scratch::new();
    let doc = probe_run(&s, "echo", &fixture("create-two-nics"), "1800").success();
    let p = &doc["parsed"];
    assert_eq!(p["vm_name"], "i-2-45-VM");
    assert_eq!(p["vm_uuid"], "126f4562-1f0f-4313-875e-6150cabeb72f");
    assert_eq!(p["caller"], "admin");
    assert_eq!(
        (p["cpus"].as_u64(), p["memory_mib"].as_u64()),
        (Some(1), Some(512))
    );
    assert_eq!(p["nics"][0]["vlan"], 1577);
    assert_eq!(
        p["nics"][0]["nicUuid"],
        "388e2dad-d1f1-4381-8e32-4878f6d29c41"
    );
    assert_eq!(
        p["nics"][1]["vlan"],
        Value::Null,
        "vlan://untagged has no tag"
    );
    assert_eq!(p["nics"][1]["defaultNic"], false);
    // NetworkTO's own spelling: ip6address in lower case, ip6Dns1 in camel case.
    assert_eq!(
        (&p["nics"][0]["ip6"], &p["nics"][1]["ip6"]),
        (&Value::Null, &json!("fd00:1:2::17"))
    );
    assert_eq!(p["nics"][1]["ip6Dns1"], "fd00:1:2::53");
    // host beats extension for url; template details come from externaldetails.virtualmachine.
    assert_eq!(
        p["url"],
        json!({"value": "pve1.example.net", "level": "Host"})
    );
    assert_eq!(p["template_id"]["value"], "101");
    assert_eq!(p["proxmox_vmid"]["value"], "103");
    assert_eq!(p["timeout_s"], 1800);
}

#[test]
fn stop_and_statuses_payloads() {
    let s = Scratch::new();
    let doc = probe_run(&s, "stop", &fixture("stop"), "60").success();
    assert_eq!(doc["parsed"]["action"], "stop");
    assert_eq!(doc["parsed"]["nics"].as_array().map(Vec::len), Some(1));

    let doc = probe_run(&s, "statuses", &fixture("statuses"), "60").success();
    let p = &doc["parsed"];
    assert_eq!(
        (&p["vm_name"], &p["vm_uuid"], &p["nics"]),
        (&Value::Null, &Value::Null, &json!([]))
    );
    assert_eq!(p["node"]["value"], "pve1");
    assert_eq!(p["caller"], "system");
}

#[test]
fn custom_action_keeps_parameter_types() {
    let s = Scratch::new();
    let doc = probe_run(&s, "ECHO", &fixture("custom-createsnapshot"), "60").success();
    let p = &doc["parsed"];
    assert_eq!(p["custom"], true);
    assert_eq!(p["parameters"]["snap_save_memory"], true);
    assert_eq!(p["parameters"]["snap_name"], "before-upgrade");
    assert_eq!(
        p["snap_name"],
        json!({"value": "before-upgrade", "level": "Parameter"})
    );
}

#[test]
fn html_escaped_characters_are_decoded() {
    let s = Scratch::new();
    let raw = std::fs::read(repo_root().join("tests/fixtures/payloads/stop-html-escaped.json"))
        .expect("fixture");
    assert!(String::from_utf8_lossy(&raw).contains("\\u003d"));
    let path = s.write("escaped.json", &raw);
    let doc = run_action(&probe(), &s, "echo", &path, "60").success();
    assert_eq!(doc["parsed"]["secret_length"], "c2VjcmV0==".len());
    assert_eq!(doc["parsed"]["user"]["value"], "cloud'stack@pve");
}

#[test]
fn all_missing_details_are_named_at_once() {
    let s = Scratch::new();
    let mut payload = fixture("stop");
    remove(&mut payload, "/externaldetails/host/url");
    remove(&mut payload, "/externaldetails/extension/url");
    remove(&mut payload, "/externaldetails/host/secret");
    set(
        &mut payload,
        "/parameters",
        json!({"snap_save_memory": "perhaps"}),
    );
    let err = probe_run(&s, "details", &payload, "60").failure(1);
    for needle in [
        "'url' (host detail or extension detail; the API URL)",
        "'secret' (host detail or extension detail)",
        "missing required parameters: 'snap_name'",
        "'snap_save_memory' = 'perhaps' (action parameter): expected true or false",
    ] {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
}

#[test]
fn secrets_stay_out_of_errors_and_logs() {
    let s = Scratch::new();
    let payload = fixture("custom-createsnapshot");
    let secret = payload["externaldetails"]["host"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let vnc = payload["cloudstack.vm.details"]["vncPassword"]
        .as_str()
        .expect("vnc password")
        .to_owned();
    let err = probe_run(&s, "error", &payload, "60").failure(1);
    assert!(err.contains("401 for token ***"), "{err}");
    let ok = probe_run(&s, "details", &payload, "60").success();
    assert!(!ok.to_string().contains(&secret));
    let log = s.log();
    assert!(log.contains("secret *** raw ***"), "{log}");
    assert!(
        !log.contains(&secret) && !log.contains(&vnc),
        "secret leaked into the log:\n{log}"
    );
}

#[test]
fn a_panic_is_a_json_error() {
    let s = Scratch::new();
    let run = probe_run(&s, "panic", &fixture("stop"), "60");
    let err = run.failure(1);
    assert!(
        err.contains("internal error") && err.contains("deliberate panic holding ***"),
        "{err}"
    );
    assert!(
        s.log().contains("panic: panicked at"),
        "panic not logged: {}",
        s.log()
    );
}

#[test]
fn the_watchdog_answers_before_cloudstack_kills() {
    let s = Scratch::new();
    let run = probe_run(&s, "overrun", &fixture("stop"), "2");
    let err = run.failure_within(1, Duration::from_secs(2));
    assert!(err.contains("no result within 2 s"), "{err}");
    assert!(
        run.elapsed >= Duration::from_millis(1500),
        "answered too early: {:?}",
        run.elapsed
    );
}

#[test]
fn oversized_results_are_refused() {
    let s = Scratch::new();
    let err = probe_run(&s, "big", &fixture("stop"), "60").failure(1);
    assert!(err.contains("more than the 61440 bytes"), "{err}");
}

#[test]
fn stray_output_never_reaches_stdout_or_stderr() {
    let s = Scratch::new();
    let doc = probe_run(&s, "noise", &fixture("stop"), "60").success();
    assert_eq!(doc["message"], "quiet");
    let log = s.log();
    assert!(
        log.contains("stray stderr line") && log.contains("raw stderr bytes"),
        "{log}"
    );
}

/// With too few descriptors to point stdin, stdout and stderr at /dev/null (here: a limit of
/// four, so the real stdout can be saved as descriptor 3 but /dev/null cannot be opened), the
/// runner cannot keep a library's stray output out of the answer: it refuses to run the
/// action, and still answers with one error document on the real stdout.
#[test]
fn an_unprotectable_stdout_refuses_the_action_with_one_answer() {
    let s = Scratch::new();
    let payload = s.payload("payload.json", &fixture("stop"));
    let probe = probe();
    let log = s.log_path();
    let run = Invoke::new(
        "/bin/sh",
        &[
            "-c".as_ref(),
            r#"ulimit -n 4 && exec "$0" "$@""#.as_ref(),
            probe.as_os_str(),
            // noise would write to stdout and stderr behind the runner's back
            "noise".as_ref(),
            payload.as_os_str(),
            "60".as_ref(),
        ],
    )
    .env("CLOUDSTACK_EXT_LOG", log.as_os_str())
    .run();
    let err = run.failure(1);
    assert!(
        err.starts_with(
            "cannot keep stray output away from the answer: pointing descriptor 0 (stdin) at /dev/null failed"
        ),
        "{err}"
    );
    assert!(
        err.ends_with("refusing to run the action, nothing was changed"),
        "{err}"
    );
}

#[test]
fn non_ascii_is_escaped() {
    let s = Scratch::new();
    let run = probe_run(&s, "unicode", &fixture("stop"), "60");
    assert!(
        run.stdout.contains(r"h\u00e9llo \u2713 \ud83d\ude00"),
        "{}",
        run.stdout
    );
    assert_eq!(run.success()["message"], "h\u{e9}llo \u{2713} \u{1F600}");
}

#[test]
fn every_log_line_names_the_invocation_action_and_vm() {
    let s = Scratch::new();
    probe_run(&s, "echo", &fixture("stop"), "60").success();
    probe_run(&s, "echo", &fixture("statuses"), "60").success();
    let log = s.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.starts_with("    ")).collect();
    assert!(lines.len() >= 4, "{log}");
    let ids: std::collections::BTreeSet<&str> = lines
        .iter()
        .map(|l| l.split_whitespace().nth(2).unwrap_or_default())
        .collect();
    assert_eq!(ids.len(), 2, "one id per invocation: {log}");
    assert!(
        lines.iter().any(|l| l.contains("[echo i-2-45-VM]")),
        "{log}"
    );
    assert!(lines.iter().any(|l| l.contains("[echo -]")), "{log}");
}

#[test]
fn hyperv_prepare_is_an_empty_merge_patch_without_connecting() {
    // Nothing listens on 127.0.0.1:9 (discard): any connection attempt would fail the action.
    let s = Scratch::new();
    let mut payload = fixture("prepare");
    set(
        &mut payload,
        "/externaldetails/host/url",
        json!("127.0.0.1:9"),
    );
    let path = s.payload("prepare.json", &payload);
    let run = run_action(&binary("hyperv-ext"), &s, "prepare", &path, "60");
    assert_eq!(run.success(), json!({}));
}

#[test]
fn help_and_version_are_for_humans() {
    for bin in shipped_binaries() {
        let run = Invoke::new(&bin, &["--help".as_ref()]).run();
        assert_eq!(run.code, Some(0));
        assert!(
            run.stdout.contains("Usage:") && run.stderr.is_empty(),
            "{}",
            run.stdout
        );
        let run = Invoke::new(&bin, &["--version".as_ref()]).run();
        assert_eq!(run.code, Some(0));
        assert!(
            run.stdout.contains(env!("CARGO_PKG_VERSION")),
            "{}",
            run.stdout
        );
    }
}

/// One row of the bad-input matrix: what to run, the exit code, and a phrase of the error.
struct BadInput {
    name: &'static str,
    args: Vec<OsString>,
    code: i32,
    says: &'static str,
}

fn bad_inputs(s: &Scratch) -> Vec<BadInput> {
    let os = |p: &Path| p.as_os_str().to_owned();
    let valid = s.payload("valid.json", &fixture("stop"));
    let empty = s.write("empty.json", b"");
    let invalid = s.write("invalid.json", b"{\"externaldetails\": {");
    let array = s.write("array.json", b"[{\"virtualmachinename\": \"i-2-45-VM\"}]");
    let wrong = s.write(
        "wrong.json",
        br#"{"cloudstack.vm.details": {"cpus": "many"}}"#,
    );
    let wrong_map = s.write(
        "wrong-map.json",
        br#"{"externaldetails": {"host": ["url"]}}"#,
    );
    let huge = s.write("huge.json", &vec![b' '; 10 * 1024 * 1024]);
    let nested = s.write(
        "nested.json",
        format!("{}{}", "[".repeat(200_000), "]".repeat(200_000)).as_bytes(),
    );
    let nested_obj = s.write(
        "nested-obj.json",
        format!("{{\"a\":{}1{}}}", "{\"a\":".repeat(5000), "}".repeat(5000)).as_bytes(),
    );
    let dir = s.path().join("a-directory");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let fifo = s.path().join("a-fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let stop = || OsString::from("stop");
    let row = |name, args: Vec<OsString>, code, says| BadInput {
        name,
        args,
        code,
        says,
    };
    vec![
        row(
            "no arguments",
            vec![],
            2,
            "required arguments were not provided",
        ),
        row(
            "action only",
            vec![stop()],
            2,
            "required arguments were not provided",
        ),
        row(
            "too many arguments",
            vec![stop(), os(&valid), "60".into(), "x".into()],
            2,
            "unexpected argument",
        ),
        row(
            "missing file",
            vec![stop(), s.path().join("nope.json").into(), "60".into()],
            1,
            "cannot read payload file",
        ),
        row(
            "directory",
            vec![stop(), os(&dir), "60".into()],
            1,
            "not a regular file",
        ),
        row(
            "fifo (would block)",
            vec![stop(), os(&fifo), "60".into()],
            1,
            "not a regular file",
        ),
        row(
            "empty file",
            vec![stop(), os(&empty), "60".into()],
            1,
            "is empty",
        ),
        row(
            "invalid JSON",
            vec![stop(), os(&invalid), "60".into()],
            1,
            "not valid JSON",
        ),
        row(
            "JSON array",
            vec![stop(), os(&array), "60".into()],
            1,
            "must hold a JSON object, found an array",
        ),
        row(
            "wrong types",
            vec![stop(), os(&wrong), "60".into()],
            1,
            "cloudstack.vm.details.cpus",
        ),
        row(
            "wrong map type",
            vec![stop(), os(&wrong_map), "60".into()],
            1,
            "externaldetails.host",
        ),
        row(
            "10 MB file",
            vec![stop(), os(&huge), "60".into()],
            1,
            "more than the 4194304-byte limit",
        ),
        row(
            "deeply nested array",
            vec![stop(), os(&nested), "60".into()],
            1,
            "recursion limit",
        ),
        row(
            "deeply nested object",
            vec![stop(), os(&nested_obj), "60".into()],
            1,
            "recursion limit",
        ),
        row(
            "unknown action",
            vec!["FrobnicateVM".into(), os(&valid), "60".into()],
            1,
            "unknown action 'FrobnicateVM'",
        ),
        row(
            "non-numeric timeout",
            vec![stop(), os(&valid), "ten".into()],
            2,
            "positive whole number of seconds, got 'ten'",
        ),
        row(
            "zero timeout",
            vec![stop(), os(&valid), "0".into()],
            2,
            "positive whole number",
        ),
        row(
            "negative timeout",
            vec![stop(), os(&valid), "-5".into()],
            2,
            "positive whole number",
        ),
    ]
}

#[test]
fn bad_input_matrix_holds_for_every_binary() {
    let s = Scratch::new();
    let log = s.log_path();
    let cases = bad_inputs(&s);
    for bin in shipped_binaries() {
        for case in &cases {
            let args: Vec<&OsStr> = case.args.iter().map(OsString::as_os_str).collect();
            let run = Invoke::new(&bin, &args)
                .env("CLOUDSTACK_EXT_LOG", log.as_os_str())
                .limit(Duration::from_secs(20))
                .run();
            let what = format!(
                "{} / {}",
                bin.file_name().unwrap_or_default().to_string_lossy(),
                case.name
            );
            assert_eq!(run.code, Some(case.code), "{what}: {}", run.stdout);
            let err = run.failure(case.code);
            assert!(
                err.contains(case.says),
                "{what}: {:?} not in {err}",
                case.says
            );
            assert!(
                run.elapsed < Duration::from_secs(1),
                "{what}: took {:?}",
                run.elapsed
            );
        }
    }
}

#[test]
fn an_unreadable_payload_is_reported() {
    // Root reads any file, so run as `nobody` (CloudStack runs extensions as `cloud`).
    let s = Scratch::new();
    let path = s.payload("private.json", &fixture("stop"));
    std::fs::set_permissions(&path, PermissionsExt::from_mode(0o600)).expect("chmod");
    std::fs::set_permissions(s.path(), PermissionsExt::from_mode(0o755)).expect("chmod");
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    if !is_root {
        std::fs::set_permissions(&path, PermissionsExt::from_mode(0o000)).expect("chmod");
    }
    for bin in shipped_binaries() {
        let mut args: Vec<&OsStr> = Vec::new();
        let program: &OsStr = if is_root {
            args.extend(["--reuid=nobody", "--regid=nogroup", "--clear-groups"].map(OsStr::new));
            args.push(bin.as_os_str());
            OsStr::new("setpriv")
        } else {
            bin.as_os_str()
        };
        args.extend([OsStr::new("stop"), path.as_os_str(), OsStr::new("60")]);
        let run = Invoke::new(program, &args)
            .env("CLOUDSTACK_EXT_LOG", OsStr::new("off"))
            .run();
        let err = run.failure(1);
        assert!(
            err.contains("cannot read payload file") && err.contains("ermission denied"),
            "{err}"
        );
    }
}
