//! A stand-in for CloudMonkey (`cmk`) in front of a CloudStack that knows only extensions: it
//! keeps CloudStack's extensions and custom actions in a JSON state file, answers the way cmk
//! prints CloudStack's answers, and records every call, for the `--register` tests.
//!
//! Environment:
//! - `FAKE_CMK_STATE`: the state file (created when missing);
//! - `FAKE_CMK_LOG`: every call is appended as one JSON line `{"argv": [...]}`;
//! - `FAKE_CMK_FAIL_AT=N`: the N-th call (counted in the log) fails as CloudStack would,
//!   changing nothing; `FAKE_CMK_GARBAGE_AT=N`: the N-th call prints text that is not JSON
//!   and exits 0 (as cmk does for "Missing required parameters");
//! - `FAKE_CMK_EXTENSIONS_ROOT`: when set, enabling an extension checks that its entry point
//!   exists there, as the management server does ("path is not ready");
//! - `FAKE_CMK_NO_RESERVED=1`: behave like CloudStack 4.21, which ignores
//!   `reservedresourcedetails`.
//!
//! The rules follow CloudStack's `ExtensionsManagerImpl` (names unique ignoring case, the
//! stored path prefixed with the lower-cased directory, `Admin` always allowed, timeout 3 by
//! default, parameters replaced as a whole) and cmk (`-o json`, nothing printed for an empty
//! answer, errors on stdout with exit status 1).

#![forbid(unsafe_code)]
#![expect(
    clippy::print_stdout,
    reason = "a stand-in for cmk, which prints its answers and errors on stdout"
)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{Map, Value, json};

const ROOT: &str = "/usr/share/cloudstack-management/extensions";

type Obj = Map<String, Value>;

struct Fail(String);

fn env_path(key: &str) -> Option<PathBuf> {
    std::env::var_os(key)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let log = env_path("FAKE_CMK_LOG");
    let calls = log
        .as_ref()
        .and_then(|l| std::fs::read_to_string(l).ok())
        .map_or(0, |t| t.lines().count())
        + 1;
    if let Some(log) = &log {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the call log");
        writeln!(f, "{}", json!({ "argv": argv })).expect("write the call log");
    }
    let nth = |key: &str| {
        std::env::var(key)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
    };
    if nth("FAKE_CMK_GARBAGE_AT") == Some(calls) {
        println!("Missing required parameters:  id");
        return ExitCode::SUCCESS;
    }
    if nth("FAKE_CMK_FAIL_AT") == Some(calls) {
        println!("Error: (HTTP 530, error code 9999) Internal error (injected by the test)");
        return ExitCode::from(1);
    }

    let args: Vec<&str> = match argv.as_slice() {
        [o, format, rest @ ..] if o == "-o" && format == "json" => {
            rest.iter().map(String::as_str).collect()
        }
        _ => {
            println!("Error: the fake cmk is only ever run as 'cmk -o json <api> key=value...'");
            return ExitCode::from(1);
        }
    };
    let Some((api, params)) = args.split_first() else {
        println!("Error: please provide an API to execute");
        return ExitCode::from(1);
    };
    let params: BTreeMap<String, String> = params
        .iter()
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();

    let state_path = env_path("FAKE_CMK_STATE").expect("FAKE_CMK_STATE is set");
    let mut state: Obj = std::fs::read_to_string(&state_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    for key in ["extensions", "actions"] {
        state.entry(key).or_insert_with(|| json!([]));
    }
    let before = state.clone();
    let answer = match handle(&mut state, api, &params) {
        Ok(answer) => answer,
        Err(Fail(message)) => {
            // CloudStack rolls back what a failed call changed, except a create whose path was
            // not ready: that one stays, disabled.
            if !message.contains("path is not ready") {
                state = before;
            }
            save(&state_path, &state);
            println!("Error: (HTTP 530, error code 9999) {message}");
            return ExitCode::from(1);
        }
    };
    save(&state_path, &state);
    if !answer.is_empty() {
        println!(
            "{}",
            serde_json::to_string_pretty(&Value::Object(answer)).expect("json")
        );
    }
    ExitCode::SUCCESS
}

fn save(path: &PathBuf, state: &Obj) {
    std::fs::write(
        path,
        serde_json::to_string_pretty(&Value::Object(state.clone())).expect("json"),
    )
    .expect("write the state");
}

/// CloudStack's `Extension.getDirectoryName`, restated from its Java source.
fn directory_name(name: &str) -> String {
    let replaced: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    replaced.to_lowercase()
}

/// `getValidatedExtensionRelativePath`.
fn relative_path(name: &str, path: &str) -> String {
    let safe = directory_name(name);
    let path = path.replace('\\', "/");
    let path = path.strip_prefix('/').unwrap_or(&path);
    if path == safe {
        format!("{safe}/{safe}")
    } else if !path.starts_with(&format!("{safe}/")) {
        format!("{safe}/{path}")
    } else {
        path.to_owned()
    }
}

fn list_mut<'s>(state: &'s mut Obj, key: &str) -> &'s mut Vec<Value> {
    state
        .get_mut(key)
        .and_then(Value::as_array_mut)
        .expect("state lists")
}

fn find<'s>(state: &'s mut Obj, key: &str, id: &str) -> Result<&'s mut Obj, Fail> {
    list_mut(state, key)
        .iter_mut()
        .filter_map(Value::as_object_mut)
        .find(|o| o.get("id").and_then(Value::as_str) == Some(id))
        .ok_or_else(|| Fail(format!("Unable to find the object with id {id}")))
}

fn next_id(state: &mut Obj, prefix: &str) -> String {
    let n = state.get("next_id").and_then(Value::as_u64).unwrap_or(1);
    state.insert("next_id".into(), json!(n + 1));
    format!("{prefix}-{n:04}")
}

fn boolean(params: &BTreeMap<String, String>, key: &str) -> Result<Option<bool>, Fail> {
    match params.get(key).map(String::as_str) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(Fail(format!("Unable to verify parameter {key}: {other}"))),
    }
}

fn parameters(params: &BTreeMap<String, String>) -> Result<Option<Vec<Value>>, Fail> {
    let mut by_index: BTreeMap<usize, Obj> = BTreeMap::new();
    for (k, v) in params {
        let Some(rest) = k.strip_prefix("parameters[") else {
            continue;
        };
        let (index, field) = rest
            .split_once("].")
            .ok_or_else(|| Fail(format!("bad parameter key {k}")))?;
        let index: usize = index
            .parse()
            .map_err(|_| Fail(format!("bad index in {k}")))?;
        by_index
            .entry(index)
            .or_default()
            .insert(field.to_owned(), json!(v));
    }
    if by_index.is_empty() {
        return Ok(None);
    }
    by_index
        .into_values()
        .map(|p| {
            let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
            let kind = p.get("type").and_then(Value::as_str).unwrap_or("STRING");
            if name.is_empty() {
                return Err(Fail("parameter without a name".into()));
            }
            if !["STRING", "NUMBER", "BOOLEAN", "DATE"].contains(&kind) {
                return Err(Fail(format!("Invalid parameter type {kind}")));
            }
            let required = p.get("required").and_then(Value::as_str) == Some("true");
            Ok(json!({"name": name, "type": kind, "validationformat": "NONE", "required": required}))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn roles(text: &str) -> Result<Vec<Value>, Fail> {
    let mut roles = vec!["Admin".to_owned()];
    for r in text.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        if !["Admin", "ResourceAdmin", "DomainAdmin", "User"].contains(&r) {
            return Err(Fail(format!("Invalid role specified - {r}")));
        }
        if !roles.iter().any(|x| x == r) {
            roles.push(r.to_owned());
        }
    }
    Ok(roles.into_iter().map(Value::String).collect())
}

fn path_ready(extension: &Obj) -> bool {
    let Some(root) = env_path("FAKE_CMK_EXTENSIONS_ROOT") else {
        return true;
    };
    let path = extension.get("path").and_then(Value::as_str).unwrap_or("");
    let relative = path.strip_prefix(&format!("{ROOT}/")).unwrap_or(path);
    root.join(relative).is_file()
}

fn listed(key: &str, items: Vec<Value>) -> Obj {
    let mut answer = Obj::new();
    if !items.is_empty() {
        answer.insert("count".into(), json!(items.len()));
        answer.insert(key.into(), Value::Array(items));
    }
    answer
}

fn one(key: &str, item: &Obj) -> Obj {
    let mut answer = Obj::new();
    answer.insert(key.into(), Value::Object(item.clone()));
    answer
}

fn handle(state: &mut Obj, api: &str, p: &BTreeMap<String, String>) -> Result<Obj, Fail> {
    let reserved_supported = std::env::var("FAKE_CMK_NO_RESERVED").as_deref() != Ok("1");
    match api {
        "listExtensions" => {
            let name = p.get("name");
            let items = list_mut(state, "extensions")
                .iter()
                .filter(|e| {
                    name.is_none_or(|n| {
                        e["name"]
                            .as_str()
                            .is_some_and(|x| x.eq_ignore_ascii_case(n))
                    })
                })
                .cloned()
                .collect();
            Ok(listed("extension", items))
        }
        "createExtension" => {
            let name = p
                .get("name")
                .ok_or_else(|| Fail("name is required".into()))?;
            if list_mut(state, "extensions").iter().any(|e| {
                e["name"]
                    .as_str()
                    .is_some_and(|x| x.eq_ignore_ascii_case(name))
            }) {
                return Err(Fail("Extension by name already exists".into()));
            }
            if p.get("type").map(String::as_str) != Some("Orchestrator") {
                return Err(Fail("Invalid type specified".into()));
            }
            let relative = match p.get("path") {
                Some(path) if !path.is_empty() => relative_path(name, path),
                _ => format!("{0}/{0}.sh", directory_name(name)),
            };
            let id = next_id(state, "ext");
            let mut e = Obj::new();
            e.insert("id".into(), json!(id));
            e.insert("name".into(), json!(name));
            e.insert(
                "description".into(),
                json!(p.get("description").cloned().unwrap_or_default()),
            );
            e.insert("type".into(), json!("Orchestrator"));
            e.insert("path".into(), json!(format!("{ROOT}/{relative}")));
            e.insert("isuserdefined".into(), json!(true));
            if let Some(b) = boolean(p, "orchestratorrequirespreparevm")? {
                e.insert("orchestratorrequirespreparevm".into(), json!(b));
            }
            if reserved_supported && let Some(r) = p.get("reservedresourcedetails") {
                e.insert("reservedresourcedetails".into(), json!(r));
            }
            let ready = path_ready(&e);
            e.insert("pathready".into(), json!(ready));
            e.insert(
                "state".into(),
                json!(if ready { "Enabled" } else { "Disabled" }),
            );
            list_mut(state, "extensions").push(Value::Object(e.clone()));
            if !ready {
                return Err(Fail(format!(
                    "Failed to enable extension: {name} as its path is not ready"
                )));
            }
            Ok(one("extension", &e))
        }
        "updateExtension" => {
            let id = p.get("id").ok_or_else(|| Fail("id is required".into()))?;
            let e = find(state, "extensions", id)?;
            if let Some(d) = p.get("description") {
                e.insert("description".into(), json!(d));
            }
            if let Some(b) = boolean(p, "orchestratorrequirespreparevm")? {
                e.insert("orchestratorrequirespreparevm".into(), json!(b));
            }
            if reserved_supported && let Some(r) = p.get("reservedresourcedetails") {
                e.insert("reservedresourcedetails".into(), json!(r));
            }
            if let Some(s) = p.get("state") {
                if s == "Enabled" && !path_ready(e) {
                    return Err(Fail(format!(
                        "Failed to enable extension: {} as it path is not ready",
                        e["name"].as_str().unwrap_or_default()
                    )));
                }
                e.insert("state".into(), json!(s));
                e.insert("pathready".into(), json!(s == "Enabled"));
            }
            Ok(one("extension", e))
        }
        "listCustomActions" => {
            let ext = p.get("extensionid");
            let items = list_mut(state, "actions")
                .iter()
                .filter(|a| ext.is_none_or(|x| a["extensionid"].as_str() == Some(x)))
                .cloned()
                .collect();
            Ok(listed("extensioncustomaction", items))
        }
        "addCustomAction" => {
            let name = p.get("name").cloned().unwrap_or_default();
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || " _-".contains(c));
            if !valid {
                return Err(Fail(format!("Invalid action name: {name}")));
            }
            let ext = p
                .get("extensionid")
                .ok_or_else(|| Fail("extensionid is required".into()))?
                .clone();
            find(state, "extensions", &ext)
                .map_err(|_| Fail("Specified extension can not be found".into()))?;
            if list_mut(state, "actions").iter().any(|a| {
                a["extensionid"].as_str() == Some(ext.as_str())
                    && a["name"]
                        .as_str()
                        .is_some_and(|x| x.eq_ignore_ascii_case(&name))
            }) {
                return Err(Fail("Action by name already exists".into()));
            }
            let id = next_id(state, "action");
            let mut a = Obj::new();
            a.insert("id".into(), json!(id));
            a.insert("name".into(), json!(name));
            a.insert(
                "description".into(),
                json!(p.get("description").cloned().unwrap_or_default()),
            );
            a.insert("extensionid".into(), json!(ext));
            a.insert(
                "resourcetype".into(),
                json!(
                    p.get("resourcetype")
                        .cloned()
                        .unwrap_or_else(|| "VirtualMachine".into())
                ),
            );
            a.insert(
                "allowedroletypes".into(),
                Value::Array(roles(p.get("allowedroletypes").map_or("", String::as_str))?),
            );
            let timeout: u64 = match p.get("timeout") {
                Some(t) => t.parse().map_err(|_| Fail(format!("bad timeout {t}")))?,
                None => 3,
            };
            a.insert("timeout".into(), json!(timeout));
            a.insert(
                "enabled".into(),
                json!(boolean(p, "enabled")?.unwrap_or(true)),
            );
            if let Some(ps) = parameters(p)? {
                a.insert("parameters".into(), Value::Array(ps));
            }
            list_mut(state, "actions").push(Value::Object(a.clone()));
            Ok(one("extensioncustomaction", &a))
        }
        "updateCustomAction" => {
            let id = p.get("id").ok_or_else(|| Fail("id is required".into()))?;
            let new_parameters = parameters(p)?;
            let new_roles = p.get("allowedroletypes").map(|r| roles(r)).transpose()?;
            let a = find(state, "actions", id)?;
            for key in ["description", "resourcetype"] {
                if let Some(v) = p.get(key).filter(|v| !v.is_empty()) {
                    a.insert(key.into(), json!(v));
                }
            }
            if let Some(r) = new_roles {
                a.insert("allowedroletypes".into(), Value::Array(r));
            }
            if let Some(t) = p.get("timeout") {
                let t: u64 = t.parse().map_err(|_| Fail(format!("bad timeout {t}")))?;
                a.insert("timeout".into(), json!(t));
            }
            if let Some(b) = boolean(p, "enabled")? {
                a.insert("enabled".into(), json!(b));
            }
            if boolean(p, "cleanupparameters")? == Some(true) {
                a.remove("parameters");
            } else if let Some(ps) = new_parameters {
                a.insert("parameters".into(), Value::Array(ps));
            }
            Ok(one("extensioncustomaction", a))
        }
        _ => Err(Fail("unknown command or API requested".into())),
    }
}
