//! `--register`: makes CloudStack's view of the extension match what the binary declares, with
//! CloudMonkey, idempotently.
//!
//! It looks up the extension (`listExtensions name=`) and its custom actions
//! (`listCustomActions extensionid=`), creates what is missing, updates what differs and
//! prints what it did. Every step leaves a state the next run can finish from, so a run that
//! failed half-way is completed by running it again. With `dry_run` it only reads, and prints
//! the commands it would run.
//!
//! The extension is created with `path=<exe>` (the bare file name: CloudStack prefixes it with
//! the directory it derives from the name, see [`crate::layout`]), the declared
//! `orchestratorrequirespreparevm` and `reservedresourcedetails`, and every custom action of
//! [`Meta::actions`] with its exact name, parameters, types and required flags.

pub mod cmk;

use std::collections::BTreeSet;
use std::fmt;
use std::io::{self, Write};

use serde_json::{Map, Value};

use crate::catalog::{
    self, ALLOWED_ROLE_TYPES, CustomActionSpec, Parameter, RESOURCE_TYPE, Registration,
};
use crate::layout;
use crate::runner::Meta;
use cmk::{Api, Arg, CmkError, shell_word};

/// Why registration stopped.
#[derive(Debug)]
pub enum RegisterError {
    /// A cmk call failed.
    Cmk(CmkError),
    /// CloudStack holds something `--register` must not or cannot change.
    Refused(String),
    /// Writing the report failed.
    Io(io::Error),
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::Cmk(e) => e.fmt(f),
            RegisterError::Refused(why) => f.write_str(why),
            RegisterError::Io(e) => write!(f, "cannot print the report: {e}"),
        }
    }
}

impl std::error::Error for RegisterError {}

impl From<CmkError> for RegisterError {
    fn from(e: CmkError) -> Self {
        RegisterError::Cmk(e)
    }
}

impl From<io::Error> for RegisterError {
    fn from(e: io::Error) -> Self {
        RegisterError::Io(e)
    }
}

/// What a run did, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Objects created (the extension, custom actions).
    pub created: usize,
    /// Objects updated.
    pub updated: usize,
    /// Objects already as declared.
    pub unchanged: usize,
}

/// The placeholder for the extension id in a dry run that would create the extension.
const ID_PLACEHOLDER: &str = "$EXTENSION_ID";

/// One registration run.
struct Run<'a> {
    meta: &'a Meta,
    registration: &'a Registration,
    name: &'a str,
    dry_run: bool,
    api: &'a mut dyn Api,
    out: &'a mut dyn Write,
    summary: Summary,
}

/// Registers `meta`'s extension under `name` (see the module documentation).
pub fn register(
    meta: &Meta,
    registration: &Registration,
    name: &str,
    dry_run: bool,
    api: &mut dyn Api,
    out: &mut dyn Write,
) -> Result<Summary, RegisterError> {
    layout::check_extension_name(name).map_err(RegisterError::Refused)?;
    catalog::check(meta.actions)
        .map_err(|e| RegisterError::Refused(format!("{} declares a bad action: {e}", meta.name)))?;
    let mut run = Run {
        meta,
        registration,
        name,
        dry_run,
        api,
        out,
        summary: Summary::default(),
    };
    if dry_run {
        writeln!(
            run.out,
            "dry run: nothing is changed; these are the commands --register would run:"
        )?;
    }
    let id = run.extension()?;
    run.custom_actions(&id)?;
    let s = run.summary;
    let (done, would) = if dry_run {
        ("dry run done", "would be ")
    } else {
        ("registered", "")
    };
    writeln!(
        run.out,
        "{name}: {done} ({would}created {}, {would}updated {}, already as declared {}); CloudStack runs {}",
        s.created,
        s.updated,
        s.unchanged,
        layout::entry_point(name, meta.name).display()
    )?;
    Ok(s)
}

/// A JSON value as text: strings as they are, other scalars as JSON.
fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// A JSON boolean, or a string spelling one (older responses), else `None`.
fn boolean(v: Option<&Value>) -> Option<bool> {
    match v {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
}

fn arg(key: impl Into<String>, value: impl Into<String>) -> Arg {
    (key.into(), value.into())
}

fn csv_set(text: &str) -> BTreeSet<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The list in `answer[key]`, which cmk leaves out when nothing matched.
fn list<'v>(
    api: &str,
    answer: &'v Map<String, Value>,
    key: &str,
) -> Result<Vec<&'v Map<String, Value>>, CmkError> {
    match answer.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_object().ok_or_else(|| CmkError::Unexpected {
                    api: api.to_owned(),
                    problem: format!("an entry of '{key}' is not an object: {item}"),
                })
            })
            .collect(),
        Some(other) => Err(CmkError::Unexpected {
            api: api.to_owned(),
            problem: format!("'{key}' is not a list: {other}"),
        }),
    }
}

/// The object `answer[key]` of a create or update call.
fn object<'v>(
    api: &str,
    answer: &'v Map<String, Value>,
    key: &str,
) -> Result<&'v Map<String, Value>, CmkError> {
    answer
        .get(key)
        .and_then(Value::as_object)
        .ok_or_else(|| CmkError::Unexpected {
            api: api.to_owned(),
            problem: format!(
                "no '{key}' object in the answer: {}",
                Value::Object(answer.clone())
            ),
        })
}

fn id_of(api: &str, item: &Map<String, Value>) -> Result<String, CmkError> {
    match item.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => Ok(id.to_owned()),
        _ => Err(CmkError::Unexpected {
            api: api.to_owned(),
            problem: format!("no 'id' in {}", Value::Object(item.clone())),
        }),
    }
}

/// The `parameters[i].*` arguments of a custom action.
fn parameter_args(parameters: &[Parameter]) -> Vec<Arg> {
    parameters
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            [
                arg(format!("parameters[{i}].name"), p.name),
                arg(format!("parameters[{i}].type"), p.kind.api_name()),
                arg(format!("parameters[{i}].required"), p.required.to_string()),
            ]
        })
        .collect()
}

/// A parameter as CloudStack reports it, reduced to what this project declares.
fn reported_parameter(p: &Value) -> Option<(String, String, bool, bool)> {
    let p = p.as_object()?;
    let name = p.get("name")?.as_str()?.to_owned();
    let kind = p.get("type")?.as_str()?.to_ascii_uppercase();
    let required = boolean(p.get("required")).unwrap_or(false);
    // Anything beyond name, type and required (a validation format, value options) was
    // added by someone else: updating puts the declaration back.
    let plain = matches!(text(p.get("validationformat")).as_str(), "" | "NONE")
        && p.get("valueoptions")
            .is_none_or(|v| v.is_null() || v.as_array().is_some_and(Vec::is_empty));
    Some((name, kind, required, plain))
}

impl Run<'_> {
    /// Runs a call that changes something, or prints it in a dry run (answering `None`).
    fn change(
        &mut self,
        api: &str,
        args: &[Arg],
    ) -> Result<Option<Map<String, Value>>, RegisterError> {
        if self.dry_run {
            let line = self.api.command_line(api, args);
            let words: Vec<String> = line
                .iter()
                .map(|w| match w.strip_suffix(ID_PLACEHOLDER) {
                    // Left for the shell to expand: the id createExtension prints.
                    Some(key) if key.ends_with('=') => format!("{key}\"{ID_PLACEHOLDER}\""),
                    _ => shell_word(w),
                })
                .collect();
            writeln!(self.out, "{}", words.join(" "))?;
            return Ok(None);
        }
        Ok(Some(self.api.call(api, args)?))
    }

    /// Creates or updates the extension; answers its id.
    fn extension(&mut self) -> Result<String, RegisterError> {
        let api = "listExtensions";
        let found = match self.api.call(api, &[arg("name", self.name)]) {
            Ok(answer) => {
                let items = list(api, &answer, "extension")?;
                let exact = items.iter().find(|e| text(e.get("name")) == self.name);
                let other_case = items
                    .iter()
                    .find(|e| text(e.get("name")).eq_ignore_ascii_case(self.name));
                match (exact, other_case) {
                    (Some(e), _) => Some((*e).clone()),
                    (None, Some(e)) => {
                        return Err(RegisterError::Refused(format!(
                            "CloudStack already has an extension named '{}' (names differ only in case, which CloudStack does not tell apart); register with --name '{}' to update it, or choose another name",
                            text(e.get("name")),
                            text(e.get("name"))
                        )));
                    }
                    (None, None) => None,
                }
            }
            Err(e) if self.dry_run => {
                writeln!(
                    self.out,
                    "# could not read what CloudStack has ({e}); showing a registration from scratch"
                )?;
                None
            }
            Err(e) => return Err(e.into()),
        };
        match found {
            None => self.create_extension(),
            Some(existing) => self.update_extension(&existing),
        }
    }

    fn create_extension(&mut self) -> Result<String, RegisterError> {
        let r = self.registration;
        let mut args = vec![
            arg("name", self.name),
            arg("type", "Orchestrator"),
            arg("path", self.meta.name),
            arg("description", r.description),
            arg(
                "orchestratorrequirespreparevm",
                r.requires_prepare_vm.to_string(),
            ),
        ];
        if !r.reserved_resource_details.is_empty() {
            args.push(arg(
                "reservedresourcedetails",
                r.reserved_resource_details.join(","),
            ));
        }
        self.summary.created += 1;
        let api = "createExtension";
        let Some(answer) = self.change(api, &args)? else {
            return Ok(ID_PLACEHOLDER.to_owned());
        };
        let extension = object(api, &answer, "extension")?;
        let id = id_of(api, extension)?;
        writeln!(
            self.out,
            "{}: extension created (id {id}, path {})",
            self.name, self.meta.name
        )?;
        self.warn_unreserved(extension)?;
        Ok(id)
    }

    fn update_extension(&mut self, existing: &Map<String, Value>) -> Result<String, RegisterError> {
        let id = id_of("listExtensions", existing)?;
        let name = self.name;
        if boolean(existing.get("isuserdefined")) == Some(false) {
            return Err(RegisterError::Refused(format!(
                "'{name}' is one of CloudStack's built-in extensions; register under another --name"
            )));
        }
        let kind = text(existing.get("type"));
        if !kind.is_empty() && kind != "Orchestrator" {
            return Err(RegisterError::Refused(format!(
                "CloudStack's extension '{name}' is of type {kind}, not Orchestrator; register under another --name"
            )));
        }
        let want_path = format!("{}/{}", layout::directory_name(name), self.meta.name);
        let path = text(existing.get("path"));
        if !path.is_empty() && path != want_path && !path.ends_with(&format!("/{want_path}")) {
            return Err(RegisterError::Refused(format!(
                "CloudStack's extension '{name}' (id {id}) runs {path}, but this package's entry point is {}; CloudStack cannot change an extension's path (updateExtension has none), so remove the extension and run --register again: unregister it from its clusters (cmk unregisterExtension id={id} resourceid=<cluster id> resourcetype=Cluster), delete its custom actions (cmk deleteCustomAction id=...), then 'cmk deleteExtension id={id}' (without cleanup=true, which deletes the entry point on every management server); or register under another --name",
                layout::entry_point(name, self.meta.name).display()
            )));
        }

        let r = self.registration;
        let mut args = vec![arg("id", id.clone())];
        let mut what = Vec::new();
        let description = text(existing.get("description"));
        if description != r.description {
            args.push(arg("description", r.description));
            what.push("description".to_owned());
        }
        let prepare = boolean(existing.get("orchestratorrequirespreparevm"));
        if prepare.unwrap_or(false) != r.requires_prepare_vm
            || (r.requires_prepare_vm && prepare.is_none())
        {
            args.push(arg(
                "orchestratorrequirespreparevm",
                r.requires_prepare_vm.to_string(),
            ));
            what.push(format!(
                "orchestratorrequirespreparevm {} -> {}",
                prepare.map_or("unset".to_owned(), |p| p.to_string()),
                r.requires_prepare_vm
            ));
        }
        let reserved = csv_set(&text(existing.get("reservedresourcedetails")));
        let missing: Vec<&str> = r
            .reserved_resource_details
            .iter()
            .copied()
            .filter(|k| !reserved.contains(*k))
            .collect();
        if !missing.is_empty() {
            // Keep what an operator reserved beside ours.
            let mut all = reserved.clone();
            all.extend(missing.iter().map(|k| (*k).to_owned()));
            args.push(arg(
                "reservedresourcedetails",
                all.into_iter().collect::<Vec<_>>().join(","),
            ));
            what.push(format!("reservedresourcedetails + {}", missing.join(",")));
        }
        let state = text(existing.get("state"));
        if !state.is_empty() && state != "Enabled" {
            args.push(arg("state", "Enabled"));
            what.push(format!("state {state} -> Enabled"));
        }
        if what.is_empty() {
            self.summary.unchanged += 1;
            writeln!(self.out, "{name}: extension already as declared (id {id})")?;
            return Ok(id);
        }
        self.summary.updated += 1;
        let api = "updateExtension";
        if let Some(answer) = self.change(api, &args)? {
            writeln!(
                self.out,
                "{name}: extension updated (id {id}): {}",
                what.join("; ")
            )?;
            if let Ok(extension) = object(api, &answer, "extension") {
                self.warn_unreserved(extension)?;
            }
        }
        Ok(id)
    }

    /// CloudStack before 4.22 ignores `reservedresourcedetails`: say what that leaves open.
    fn warn_unreserved(&mut self, extension: &Map<String, Value>) -> Result<(), RegisterError> {
        let stored = csv_set(&text(extension.get("reservedresourcedetails")));
        let open: Vec<&str> = self
            .registration
            .reserved_resource_details
            .iter()
            .copied()
            .filter(|k| !stored.contains(*k))
            .collect();
        if !open.is_empty() {
            writeln!(
                self.out,
                "{}: WARNING: CloudStack did not store reservedresourcedetails={} (it needs CloudStack 4.22 or later): end users can see and change these VM details, and with proxmox_vmid point their VM at another tenant's VM (CVE-2026-25199). Upgrade CloudStack, then run --register again.",
                self.name,
                open.join(",")
            )?;
        }
        Ok(())
    }

    fn custom_actions(&mut self, extension_id: &str) -> Result<(), RegisterError> {
        let wanted: Vec<(&'static str, CustomActionSpec)> = self
            .meta
            .actions
            .iter()
            .filter_map(|a| a.custom.map(|c| (a.name, c)))
            .collect();
        let api = "listCustomActions";
        let existing: Vec<Map<String, Value>> = if extension_id == ID_PLACEHOLDER {
            Vec::new()
        } else {
            let answer = self.api.call(api, &[arg("extensionid", extension_id)])?;
            list(api, &answer, "extensioncustomaction")?
                .into_iter()
                .cloned()
                .collect()
        };
        for (name, spec) in &wanted {
            let found = existing
                .iter()
                .find(|e| text(e.get("name")) == *name)
                .or_else(|| {
                    existing
                        .iter()
                        .find(|e| text(e.get("name")).eq_ignore_ascii_case(name))
                });
            match found {
                None => self.add_action(extension_id, name, spec)?,
                Some(e) => self.update_action(name, spec, e)?,
            }
        }
        for e in &existing {
            let name = text(e.get("name"));
            if !wanted.iter().any(|(w, _)| w.eq_ignore_ascii_case(&name)) {
                writeln!(
                    self.out,
                    "{}: custom action {name} left as it is ({} has no such action)",
                    self.name, self.meta.name
                )?;
            }
        }
        Ok(())
    }

    fn action_args(spec: &CustomActionSpec) -> Vec<Arg> {
        vec![
            arg("description", spec.description),
            arg("resourcetype", RESOURCE_TYPE),
            arg("allowedroletypes", ALLOWED_ROLE_TYPES.join(",")),
            arg("timeout", spec.timeout_secs.to_string()),
            arg("enabled", "true"),
        ]
    }

    fn add_action(
        &mut self,
        extension_id: &str,
        name: &str,
        spec: &CustomActionSpec,
    ) -> Result<(), RegisterError> {
        let mut args = vec![arg("extensionid", extension_id), arg("name", name)];
        args.extend(Self::action_args(spec));
        args.extend(parameter_args(spec.parameters));
        self.summary.created += 1;
        if self.change("addCustomAction", &args)?.is_some() {
            writeln!(self.out, "{}: custom action {name} created", self.name)?;
        }
        Ok(())
    }

    fn update_action(
        &mut self,
        name: &str,
        spec: &CustomActionSpec,
        existing: &Map<String, Value>,
    ) -> Result<(), RegisterError> {
        let id = id_of("listCustomActions", existing)?;
        let mut what = Vec::new();
        if text(existing.get("description")) != spec.description {
            what.push("description".to_owned());
        }
        let resource = text(existing.get("resourcetype"));
        if resource != RESOURCE_TYPE {
            what.push(format!("resourcetype {resource} -> {RESOURCE_TYPE}"));
        }
        let roles: BTreeSet<String> = match existing.get("allowedroletypes") {
            Some(Value::Array(a)) => a.iter().map(|r| text(Some(r))).collect(),
            other => csv_set(&text(other)),
        };
        let want_roles: BTreeSet<String> =
            ALLOWED_ROLE_TYPES.iter().map(|r| (*r).to_owned()).collect();
        if roles != want_roles {
            what.push("allowedroletypes".to_owned());
        }
        let timeout = existing.get("timeout").and_then(|t| match t {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        });
        if timeout != Some(u64::from(spec.timeout_secs)) {
            what.push(format!(
                "timeout {} -> {}",
                timeout.map_or("unset".to_owned(), |t| t.to_string()),
                spec.timeout_secs
            ));
        }
        if boolean(existing.get("enabled")) != Some(true) {
            what.push("enabled".to_owned());
        }
        let reported: Vec<(String, String, bool, bool)> = match existing.get("parameters") {
            Some(Value::Array(ps)) => ps.iter().filter_map(reported_parameter).collect(),
            _ => Vec::new(),
        };
        let have: BTreeSet<(String, String, bool)> = reported
            .iter()
            .map(|(n, k, r, _)| (n.clone(), k.clone(), *r))
            .collect();
        let want: BTreeSet<(String, String, bool)> = spec
            .parameters
            .iter()
            .map(|p| (p.name.to_owned(), p.kind.api_name().to_owned(), p.required))
            .collect();
        if have != want || reported.iter().any(|(_, _, _, plain)| !plain) {
            what.push("parameters".to_owned());
        }
        if what.is_empty() {
            self.summary.unchanged += 1;
            writeln!(
                self.out,
                "{}: custom action {name} already as declared",
                self.name
            )?;
            return Ok(());
        }
        let mut args = vec![arg("id", id)];
        args.extend(Self::action_args(spec));
        if spec.parameters.is_empty() {
            args.push(arg("cleanupparameters", "true"));
        } else {
            args.extend(parameter_args(spec.parameters));
        }
        self.summary.updated += 1;
        if self.change("updateCustomAction", &args)?.is_some() {
            writeln!(
                self.out,
                "{}: custom action {name} updated: {}",
                self.name,
                what.join("; ")
            )?;
        }
        Ok(())
    }
}
