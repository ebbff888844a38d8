//! `<exe> --settings` is the one settings reference: the READMEs' settings tables are its
//! output, between `<!-- settings-<exe>:begin/end -->` markers, and this test fails when they
//! drift (`UPDATE_DOCS=1 cargo nextest run --release -p e2e settings_docs::` writes them).

use e2e::{Invoke, binary, repo_root};
use serde_json::Value;

/// Where each binary's reference is shown.
const PLACES: &[(&str, &[&str])] = &[
    ("proxmox-ext", &["README.md", "proxmox-ext/README.md"]),
    ("hyperv-ext", &["README.md", "docs/hyperv-ext.md"]),
];

fn settings(exe: &str, format: Option<&str>) -> String {
    let mut args = vec!["--settings"];
    if let Some(f) = format {
        args.extend(["--format", f]);
    }
    let args: Vec<&std::ffi::OsStr> = args.iter().map(AsRef::as_ref).collect();
    let run = Invoke::new(binary(exe), &args).run();
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert!(run.stderr.is_empty());
    assert!(run.stdout.is_ascii(), "{}", run.stdout);
    run.stdout
}

#[test]
fn the_readmes_show_what_settings_prints() {
    let update = std::env::var_os("UPDATE_DOCS").is_some();
    let mut stale = Vec::new();
    for (exe, files) in PLACES {
        let reference = settings(exe, None);
        for file in *files {
            let path = repo_root().join(file);
            let text = std::fs::read_to_string(&path).unwrap();
            let name = format!("settings-{exe}");
            let wanted = ext_sdk::reference::replace_section(&text, &name, &reference)
                .unwrap_or_else(|| panic!("{file} has no <!-- {name}:begin/end --> markers"));
            if wanted != text {
                if update {
                    std::fs::write(&path, wanted).unwrap();
                } else {
                    stale.push(format!("{file} ({exe})"));
                }
            }
        }
    }
    assert!(
        stale.is_empty(),
        "settings tables out of date in {stale:?}: run UPDATE_DOCS=1 cargo nextest run --release -p e2e settings_docs::"
    );
}

#[test]
fn json_and_markdown_name_the_same_details() {
    for (exe, _) in PLACES {
        let doc: Value = serde_json::from_str(settings(exe, Some("json")).trim()).unwrap();
        assert_eq!(doc["extension"], *exe);
        let markdown = settings(exe, Some("markdown"));
        let details = doc["details"].as_array().unwrap();
        assert!(details.len() > 15, "{exe}: {}", details.len());
        for d in details {
            let key = d["key"].as_str().unwrap();
            assert!(
                markdown.contains(&format!("| `{key}`")),
                "{exe}: {key} missing"
            );
            for field in [
                "levels", "type", "default", "required", "actions", "secret", "meaning",
            ] {
                assert!(d.get(field).is_some(), "{exe}: {key} has no {field}");
            }
        }
        let logging = details.iter().find(|d| d["key"] == "log_level").unwrap();
        assert_eq!(logging["choices"][3], "debug");
    }
}
