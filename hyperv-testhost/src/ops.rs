//! hyperv-ext's scripts, step for step, against the [`HyperV`] model. Each function mirrors
//! one `.ps1` file (same checks, same order, same failure codes and result fields), so the
//! Rust side is tested against the contract the real scripts implement, and a step Hyper-V
//! would refuse fails here as well.

use std::time::Duration;

use hyperv_protocol::data::creating_name;
use hyperv_protocol::{Failure, Script};
use serde_json::{Map, Value, json};

use crate::hyperv::{HyperV, Thrown};
use crate::state::{Checkpoint, Vm};
use crate::winpath::WinPath;

/// How a script ended, before it is framed as `HVX1:{json}`.
#[derive(Debug)]
pub enum Stop {
    /// `Fail 'CODE' detail` (or create's own `Emit ... 1`): an answer the script chose.
    Fail(Failure),
    /// A cmdlet threw and the script's outer `catch` reported `PS_ERROR`.
    Thrown(Thrown),
}

impl From<Thrown> for Stop {
    fn from(t: Thrown) -> Stop {
        Stop::Thrown(t)
    }
}

type Step<T> = Result<T, Stop>;

/// The answer object for a failure, as `Fail $c $d` emits it: `detail` is always present
/// (`null` for the codes that carry none).
fn failure_object(failure: &Failure) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("ok".into(), false.into());
    if let Ok(Value::Object(fields)) = serde_json::to_value(failure) {
        m.extend(fields);
    }
    m.entry("detail").or_insert(Value::Null);
    m
}

/// The framed answer for an outcome: `(json object, exit code)`.
pub fn answer(outcome: Step<Map<String, Value>>) -> (Value, i32) {
    match outcome {
        Ok(mut m) => {
            m.insert("ok".into(), true.into());
            (Value::Object(m), 0)
        }
        Err(Stop::Fail(failure)) => (Value::Object(failure_object(&failure)), 1),
        Err(Stop::Thrown(t)) => (
            Value::Object(failure_object(&Failure::PsError {
                message: t.message,
                fqid: t.fqid,
            })),
            1,
        ),
    }
}

/// `$P.<key>` with PowerShell's view of JSON: absent and null are `$null`.
struct Data<'a>(&'a Value);

impl Data<'_> {
    fn get(&self, key: &str) -> &Value {
        self.0.get(key).unwrap_or(&Value::Null)
    }
    /// A string parameter; `$null` where a cmdlet needs one fails like parameter binding.
    fn str(&self, key: &str) -> Result<&str, Thrown> {
        match self.get(key) {
            Value::String(s) => Ok(s),
            _ => Err(Thrown {
                message: format!(
                    "Cannot bind argument to parameter because '{key}' is null or not a string."
                ),
                fqid: "ParameterArgumentValidationErrorNullNotAllowed".into(),
            }),
        }
    }
    /// String interpolation: `'x'+$null` is `'x'`.
    fn text(&self, key: &str) -> String {
        match self.get(key) {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
    fn int(&self, key: &str) -> Result<i64, Thrown> {
        self.get(key).as_i64().ok_or_else(|| Thrown {
            message: format!(
                "Cannot convert '{}' of '{key}' to an integer.",
                self.get(key)
            ),
            fqid: "CannotConvertArgumentNoMessage".into(),
        })
    }
    /// PowerShell truthiness.
    fn truthy(&self, key: &str) -> bool {
        match self.get(key) {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64() != Some(0.0),
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(_) => true,
        }
    }
}

/// Runs `script` with data `p`. `sleep` waits (returns false when the session went away).
pub fn run(
    script: Script,
    p: &Value,
    hv: &mut HyperV,
    sleep: &mut dyn FnMut(Duration) -> bool,
) -> Step<Map<String, Value>> {
    let p = Data(p);
    let outcome = match script {
        Script::Status => status(&p, hv),
        Script::Statuses => statuses(hv),
        Script::Start => start(&p, hv),
        Script::Stop => stop(&p, hv, sleep),
        Script::Reboot => reboot(&p, hv, sleep),
        Script::Suspend => suspend(&p, hv),
        Script::Resume => resume(&p, hv),
        Script::Delete => delete(&p, hv),
        Script::ListSnapshots => list_snapshots(&p, hv),
        Script::CreateSnapshot => create_snapshot(&p, hv),
        Script::RestoreSnapshot => restore_snapshot(&p, hv),
        Script::DeleteSnapshot => delete_snapshot(&p, hv),
        Script::Create => create(&p, hv),
        Script::CleanupCreate => cleanup_create(&p, hv),
        Script::Check => check(&p, hv),
    };
    // find.ps1's Done: a VM found without the ownership line gets it once the action succeeded.
    match (outcome, hv.adopt.take()) {
        (Ok(mut fields), Some(id)) => {
            let line = format!("cloudstack-vm-uuid={}", p.text("uuid"));
            // `(([string]$v.Notes).TrimEnd()+"`r`n"+line).TrimStart()`, $v as found.
            let adopted = hv
                .vm(&id)
                .map(|v| {
                    format!("{}\r\n{line}", v.notes.trim_end())
                        .trim_start()
                        .to_owned()
                })
                .ok_or_else(|| Thrown {
                    message: format!(
                        "Hyper-V was unable to find a virtual machine with ID \"{id}\"."
                    ),
                    fqid: "InvalidParameter".into(),
                })
                .and_then(|notes| hv.set_notes(&id, &notes));
            let adopted = match adopted {
                Ok(()) => "ok".to_owned(),
                Err(t) => t.message,
            };
            fields.insert("adopted".into(), adopted.into());
            Ok(fields)
        }
        (outcome, _) => outcome,
    }
}

/// `$x.Count`: how many matched.
fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn done(fields: Value) -> Step<Map<String, Value>> {
    match fields {
        Value::Object(m) => Ok(m),
        _ => unreachable!("results are objects"),
    }
}

// ---- rights.ps1 / find.ps1 ----

fn need_rights(hv: &HyperV) -> Step<()> {
    hv.get_vmhost()
        .map_err(|t| Stop::Fail(Failure::AccessDenied { message: t.message }))
}

fn test_ours(vm: &Vm, p: &Data) -> bool {
    notes_have(vm, &format!("cloudstack-vm-uuid={}", p.text("uuid")))
}

/// `Test-Marked`: any ownership line (`(?m)^cloudstack-vm-uuid=\S`).
fn marked(vm: &Vm) -> bool {
    vm.notes.split('\n').any(|l| {
        l.strip_prefix("cloudstack-vm-uuid=")
            .and_then(|rest| rest.chars().next())
            .is_some_and(|c| !c.is_whitespace())
    })
}

/// `Find-Ours`: by name with our line; as `<name>-<uuid>` with our line or none; with
/// `adopt`, the only VM of the name without any line. One found without our line is to be
/// adopted (`hv.adopt`).
fn find_ours(p: &Data, hv: &mut HyperV) -> Step<Option<Vm>> {
    let name = p.text("name");
    let vms = hv.get_vm();
    let all: Vec<&Vm> = vms.iter().filter(|v| v.name == name).collect();
    let ours: Vec<&Vm> = all.iter().copied().filter(|v| test_ours(v, p)).collect();
    let ambiguous = |n: usize| Err(Stop::Fail(Failure::VmAmbiguous { count: count(n) }));
    if ours.len() > 1 {
        return ambiguous(ours.len());
    }
    if let Some(v) = ours.first() {
        return Ok(Some((*v).clone()));
    }
    let upstream_name = format!("{name}-{}", p.text("uuid"));
    let upstream: Vec<&Vm> = vms.iter().filter(|v| v.name == upstream_name).collect();
    let mut found: Vec<&Vm> = upstream
        .iter()
        .copied()
        .filter(|v| test_ours(v, p) || !marked(v))
        .collect();
    if found.len() > 1 {
        return ambiguous(found.len());
    }
    if found.is_empty() && p.truthy("adopt") && all.len() == 1 && !marked(all[0]) {
        found = all.clone();
    }
    if let Some(v) = found.first() {
        if !test_ours(v, p) {
            hv.adopt = Some(v.id.clone());
        }
        return Ok(Some((*v).clone()));
    }
    let named = all.len() + upstream.len();
    if named > 0 && !all.iter().chain(&upstream).any(|v| marked(v)) {
        return Err(Stop::Fail(Failure::Unmarked {
            count: count(named),
        }));
    }
    if named > 0 {
        // `(?m)^cloudstack-vm-uuid=(\S+)` of each.
        let marked = all
            .iter()
            .chain(&upstream)
            .filter_map(|v| {
                v.notes.split('\n').find_map(|l| {
                    l.strip_prefix("cloudstack-vm-uuid=")
                        .and_then(|rest| rest.split(char::is_whitespace).next())
                        .filter(|u| !u.is_empty())
                        .map(str::to_owned)
                })
            })
            .collect();
        return Err(Stop::Fail(Failure::NotOurs {
            count: count(named),
            marked,
        }));
    }
    Ok(None)
}

fn need_ours(p: &Data, hv: &mut HyperV) -> Step<Vm> {
    find_ours(p, hv)?.ok_or(Stop::Fail(Failure::VmNotFound))
}

fn state(hv: &HyperV, vm: &Vm) -> String {
    hv.vm(&vm.id).map(|v| v.state.clone()).unwrap_or_default()
}

fn stopped(state: &str) -> bool {
    matches!(state, "Off" | "Saved" | "FastSaved")
}

// ---- the operations ----

fn status(p: &Data, hv: &mut HyperV) -> Step<Map<String, Value>> {
    need_rights(hv)?;
    match find_ours(p, hv)? {
        None => done(json!({"found": false})),
        Some(v) => done(json!({"found": true, "state": v.state})),
    }
}

fn statuses(hv: &mut HyperV) -> Step<Map<String, Value>> {
    need_rights(hv)?;
    // `(?m)^cloudstack-vm-uuid=(\S+)`: the first line's UUID, up to whitespace.
    let uuid = |notes: &str| {
        notes
            .split('\n')
            .find_map(|l| {
                l.strip_prefix("cloudstack-vm-uuid=")
                    .map(|rest| rest.split(char::is_whitespace).next().unwrap_or_default())
                    .filter(|u| !u.is_empty())
            })
            .unwrap_or_default()
            .to_owned()
    };
    let vms: Vec<Value> = hv
        .get_vm()
        .into_iter()
        .map(|v| json!({"name": v.name, "state": v.state, "uuid": uuid(&v.notes)}))
        .collect();
    done(json!({"vms": vms}))
}

fn start(p: &Data, hv: &mut HyperV) -> Step<Map<String, Value>> {
    need_rights(hv)?;
    let v = need_ours(p, hv)?;
    let s = v.state.clone();
    if s == "Paused" {
        hv.resume_vm(&v.id)?;
    } else if stopped(&s) {
        hv.start_vm(&v.id)?;
    } else if s != "Running" {
        return Err(Stop::Fail(Failure::InvalidState { state: s }));
    }
    done(json!({"before": s, "state": state(hv, &v)}))
}

fn stop_ours(
    p: &Data,
    hv: &mut HyperV,
    v: &Vm,
    sleep: &mut dyn FnMut(Duration) -> bool,
) -> Step<&'static str> {
    let s = v.state.as_str();
    if stopped(s) {
        return Ok("none");
    }
    if p.truthy("turnoff") || s != "Running" {
        hv.turn_off(&v.id)?;
        return Ok("turnoff");
    }
    let wait = p.int("wait")?.max(0).cast_unsigned();
    let error = match hv.shutdown_guest(&v.id, wait, sleep) {
        Ok(true) => return Ok("graceful"),
        Ok(false) => "timeout".to_owned(),
        Err(t) => t.message,
    };
    if !p.truthy("fallback") {
        return Err(Stop::Fail(Failure::StopFailed { reason: error }));
    }
    hv.turn_off(&v.id)?;
    Ok("turnoff")
}

fn stop(
    p: &Data,
    hv: &mut HyperV,
    sleep: &mut dyn FnMut(Duration) -> bool,
) -> Step<Map<String, Value>> {
    need_rights(hv)?;
    let Some(v) = find_ours(p, hv)? else {
        return done(json!({"found": false, "how": "none"}));
    };
    let how = stop_ours(p, hv, &v, sleep)?;
    done(json!({"found": true, "how": how, "state": state(hv, &v)}))
}

fn reboot(
    p: &Data,
    hv: &mut HyperV,
    sleep: &mut dyn FnMut(Duration) -> bool,
) -> Step<Map<String, Value>> {
    need_rights(hv)?;
    let v = need_ours(p, hv)?;
    if v.state != "Running" {
        return Err(Stop::Fail(Failure::InvalidState {
            state: v.state.clone(),
        }));
    }
    let how = stop_ours(p, hv, &v, sleep)?;
    hv.start_vm(&v.id)?;
    done(json!({"how": how, "state": state(hv, &v)}))
}

fn suspend(p: &Data, hv: &mut HyperV) -> Step<Map<String, Value>> {
    need_rights(hv)?;
    let v = need_ours(p, hv)?;
    if v.state == "Running" {
        hv.suspend_vm(&v.id)?;
    } else if v.state != "Paused" {
        return Err(Stop::Fail(Failure::InvalidState {
            state: v.state.clone(),
        }));
    }
    done(json!({"before": v.state, "state": state(hv, &v)}))
}

fn resume(p: &Data, hv: &mut HyperV) -> Step<Map<String, Value>> {
    need_rights(hv)?;
    let v = need_ours(p, hv)?;
    if v.state == "Paused" {
        hv.resume_vm(&v.id)?;
    } else if v.state != "Running" {
        return Err(Stop::Fail(Failure::InvalidState {
            state: v.state.clone(),
        }));
    }
    done(json!({"before": v.state, "state": state(hv, &v)}))
}

fn delete(p: &Data, hv: &mut HyperV) -> Step<Map<String, Value>> {
    need_rights(hv)?;
    let Some(v) = find_ours(p, hv)? else {
        return done(json!({"found": false}));
    };
    let disks = v.disks.clone();
    if !stopped(&v.state) {
        hv.turn_off(&v.id)?;
    }
    hv.remove_vm(&v.id)?;
    hv.adopt = None;
    if hv.get_vm().iter().any(|x| x.id == v.id) {
        return Err(Stop::Fail(Failure::StillExists));
    }
    let root = WinPath::parse(p.str("vhd_path")?).map_err(|m| Thrown {
        message: m,
        fqid: "ArgumentException".into(),
    })?;
    let (mut removed, mut kept) = (Vec::new(), Vec::new());
    for d in disks {
        let within = WinPath::parse(&d).is_ok_and(|w| w.is_within(&root));
        if within && hv.remove_item(&d).is_ok() {
            removed.push(d);
        } else {
            kept.push(d);
        }
    }
    done(json!({"found": true, "removed": removed, "kept": kept}))
}

// ---- snapshot.ps1 ----

fn find_snap(p: &Data, v: &Vm) -> Step<Checkpoint> {
    let wanted = p.text("snapshot");
    let mut m: Vec<&Checkpoint> = v.checkpoints.iter().filter(|c| c.name == wanted).collect();
    if m.is_empty() {
        m = v
            .checkpoints
            .iter()
            .filter(|c| c.id.eq_ignore_ascii_case(&wanted))
            .collect();
    }
    match m.as_slice() {
        [] => Err(Stop::Fail(Failure::SnapshotNotFound)),
        [one] => Ok((*one).clone()),
        many => Err(Stop::Fail(Failure::SnapshotAmbiguous {
            count: count(many.len()),
        })),
    }
}

fn snap_row(v: &Vm, c: &Checkpoint) -> Value {
    let parent = c
        .parent
        .as_ref()
        .and_then(|id| v.checkpoints.iter().find(|x| &x.id == id))
        .map(|x| x.name.clone())
        // `[string]$s.ParentSnapshotName`: a root checkpoint's parent is ''.
        .unwrap_or_default();
    json!({"name": c.name, "id": c.id, "created": c.created, "parent": parent, "type": "Standard"})
}

fn list_snapshots(p: &Data, hv: &mut HyperV) -> Step<Map<String, Value>> {
    need_rights(hv)?;
    let v = need_ours(p, hv)?;
    let mut all = v.checkpoints.clone();
    all.sort_by(|a, b| a.created.cmp(&b.created));
    let rows: Vec<Value> = all.iter().map(|c| snap_row(&v, c)).collect();
    done(json!({"snapshots": rows}))
}

fn create_snapshot(p: &Data, hv: &mut HyperV) -> Step<Map<String, Value>> {
    need_rights(hv)?;
    let v = need_ours(p, hv)?;
    if v.checkpoints.iter().any(|c| c.name == p.text("snapshot")) {
        return Err(Stop::Fail(Failure::SnapshotExists));
    }
    let c = hv.checkpoint_vm(&v.id, p.str("snapshot")?)?;
    let now = hv.vm(&v.id).cloned().unwrap_or(v);
    done(json!({"snapshot": snap_row(&now, &c), "state": now.state}))
}

fn restore_snapshot(p: &Data, hv: &mut HyperV) -> Step<Map<String, Value>> {
    need_rights(hv)?;
    let v = need_ours(p, hv)?;
    let c = find_snap(p, &v)?;
    if !stopped(&v.state) {
        hv.turn_off(&v.id)?;
    }
    hv.restore_checkpoint(&v.id, &c.id)?;
    done(json!({"snapshot": snap_row(&v, &c), "state": state(hv, &v)}))
}

fn delete_snapshot(p: &Data, hv: &mut HyperV) -> Step<Map<String, Value>> {
    need_rights(hv)?;
    let v = need_ours(p, hv)?;
    let c = find_snap(p, &v)?;
    let row = snap_row(&v, &c);
    hv.remove_checkpoint(&v.id, &c.id)?;
    done(json!({"snapshot": row, "state": state(hv, &v)}))
}

// ---- create.ps1 / cleanup-create.ps1 ----

enum Undo {
    RemoveDisk(String),
    RemoveVm(String),
}

fn create(p: &Data, hv: &mut HyperV) -> Step<Map<String, Value>> {
    need_rights(hv)?;
    hv.step = "check".into();
    let name = p.text("name");
    if hv.get_vm().iter().any(|v| v.name == name) {
        return Err(Stop::Fail(Failure::VmExists));
    }
    let switch = p.text("sw");
    let switches: Vec<_> = hv
        .get_vmswitch()
        .into_iter()
        .filter(|s| s.name == switch)
        .collect();
    if switches.len() != 1 {
        return Err(Stop::Fail(Failure::SwitchNotFound {
            count: count(switches.len()),
        }));
    }
    let disk = p.str("disk")?.to_owned();
    if hv.test_path(&disk, false)? {
        return Err(Stop::Fail(Failure::DiskExists));
    }
    let mut undo: Vec<Undo> = Vec::new();
    let mut vm_id = String::new();
    let result: Result<(), Thrown> = (|| {
        hv.step = "disk".into();
        if p.truthy("tpl") {
            let partial = format!("{disk}.{}.partial", p.text("id"));
            hv.copy_item(p.str("tpl")?, &partial)?;
            hv.move_item(&partial, &disk)?;
        } else {
            hv.new_vhd(&disk, p.int("size")?.max(0).cast_unsigned())?;
        }
        undo.push(Undo::RemoveDisk(disk.clone()));
        hv.step = "vm".into();
        vm_id = hv.new_vm(
            &creating_name(p.str("name")?, &p.text("id")),
            p.int("gen")?,
            p.int("mem")?,
            &disk,
            p.str("dir")?,
        )?;
        undo.push(Undo::RemoveVm(vm_id.clone()));
        hv.set_vm(
            &vm_id,
            &name,
            &format!(
                "cloudstack-vm-uuid={}\r\ncloudstack-create-id={}",
                p.text("uuid"),
                p.text("id")
            ),
            p.int("cpus")?,
        )?;
        hv.step = "network".into();
        hv.remove_all_adapters(&vm_id)?;
        let nics = match p.get("nics") {
            Value::Array(a) => a.clone(),
            Value::Null => Vec::new(),
            one => vec![one.clone()],
        };
        for (i, nic) in nics.iter().enumerate() {
            // `$m,$l=$n -split ':'`: "MAC:VLAN", an empty VLAN for untagged.
            let text = match nic {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let (mac, vlan) = text.split_once(':').unwrap_or((text.as_str(), ""));
            let adapter = hv.add_adapter(&vm_id, &format!("nic{i}"), mac)?;
            hv.connect_adapter(&vm_id, adapter, &switches[0].id)?;
            let vlan = if vlan.is_empty() {
                None
            } else {
                Some(vlan.parse::<i64>().map_err(|_| Thrown {
                    message: format!("Cannot convert value \"{vlan}\" to type \"System.Int32\"."),
                    fqid: "CannotConvertArgumentNoMessage,Microsoft.HyperV.PowerShell.Commands.SetVMNetworkAdapterVlan".into(),
                })?)
            };
            hv.set_vlan(&vm_id, adapter, vlan)?;
        }
        hv.step = "media".into();
        let dvd = p.truthy("iso");
        if dvd {
            hv.add_dvd(&vm_id, p.str("iso")?)?;
        }
        if p.int("gen").ok() == Some(2) {
            let sbt = if p.truthy("sbt") {
                Some(p.str("sbt")?)
            } else {
                None
            };
            hv.set_firmware(&vm_id, &p.text("sb"), sbt, dvd)?;
        }
        hv.step = "start".into();
        hv.start_vm(&vm_id)
    })();
    if let Err(e) = result {
        if hv.killed {
            // PowerShell died mid-way: no rollback, no answer.
            return Err(Stop::Thrown(e));
        }
        // `$t`: the step that failed; the undos run as "rollback" (for the fault knobs).
        let step = std::mem::replace(&mut hv.step, "rollback".into());
        let mut rollback: Vec<String> = Vec::new();
        for u in undo.iter().rev() {
            let r = match u {
                Undo::RemoveDisk(d) => hv.remove_item(d),
                Undo::RemoveVm(id) => hv.remove_vm(id),
            };
            if let Err(t) = r {
                rollback.push(t.message);
            }
        }
        return Err(Stop::Fail(Failure::CreateFailed {
            step,
            error: e.message,
            rollback,
        }));
    }
    done(json!({"id": vm_id}))
}

/// Whether the VM's Notes carry the line `line` (`-split '\r?\n'` then `-ccontains`).
fn notes_have(vm: &Vm, line: &str) -> bool {
    vm.notes
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .any(|l| l == line)
}

fn cleanup_create(p: &Data, hv: &mut HyperV) -> Step<Map<String, Value>> {
    need_rights(hv)?;
    let name = p.text("name");
    let created_here = format!("cloudstack-create-id={}", p.text("id"));
    let tmp = creating_name(&name, &p.text("id"));
    let vms = hv.get_vm();
    let all: Vec<&Vm> = vms.iter().filter(|v| v.name == name).collect();
    let marked: Vec<&Vm> = all
        .iter()
        .copied()
        .filter(|v| test_ours(v, p) && notes_have(v, &created_here))
        .collect();
    // `$m+@(...)`: the marked one, or the one still under the name New-VM gave.
    let ours: Vec<&Vm> = marked
        .iter()
        .copied()
        .chain(vms.iter().filter(|v| v.name == tmp))
        .collect();
    if ours.len() > 1 {
        return Err(Stop::Fail(Failure::VmAmbiguous {
            count: count(ours.len()),
        }));
    }
    let disk = p.text("disk");
    let mut removed = Vec::new();
    for v in &ours {
        // `-eq` on strings ignores case.
        let attached: Vec<String> = v
            .disks
            .iter()
            .filter(|d| d.eq_ignore_ascii_case(&disk))
            .cloned()
            .collect();
        if state(hv, v) != "Off" {
            hv.turn_off(&v.id)?;
        }
        hv.remove_vm(&v.id)?;
        for f in attached {
            hv.remove_item(&f)?;
            removed.push(f);
        }
    }
    let partial = format!("{disk}.{}.partial", p.text("id"));
    if hv.test_path(&partial, false)? {
        hv.remove_item(&partial)?;
        removed.push(partial);
    }
    done(json!({
        "removed_vm": !ours.is_empty(),
        "removed": removed,
        "kept": count(all.len() - marked.len()),
    }))
}

// ---- check.ps1 ----

/// `Probe`: the block's answer, or `{error: message}` when it threw.
fn probe(block: impl FnOnce() -> Result<Value, Thrown>) -> Value {
    block().unwrap_or_else(|t| json!({"error": t.message}))
}

/// `Folder`: absent when not asked, `{exists: false}`, or the ACL's masks for the account.
fn folder(p: &Data, key: &str, hv: &HyperV) -> Result<Value, Thrown> {
    if !p.truthy(key) {
        return Ok(Value::Null);
    }
    let path = p.str(key)?;
    if !hv.test_folder(path)? {
        return Ok(json!({"exists": false}));
    }
    let acl = probe(|| {
        let [allow, deny, file_allow, file_deny] = hv.folder_acl(path)?;
        Ok(json!({"allow": allow, "deny": deny, "file_allow": file_allow, "file_deny": file_deny}))
    });
    Ok(json!({"exists": true, "acl": acl}))
}

fn check(p: &Data, hv: &mut HyperV) -> Step<Map<String, Value>> {
    let (user, hyperv_admin) = hv.identity();
    let file = |key: &str| -> Result<Value, Thrown> {
        Ok(if p.truthy(key) {
            Value::Bool(hv.test_path(p.str(key)?, true)?)
        } else {
            Value::Null
        })
    };
    let mut facts = json!({
        "powershell": hv.powershell_version(), "user": user, "module": null, "vmhost": null,
        "switches": null, "hyperv_admin": hyperv_admin, "admin": false,
        "vhd_path": folder(p, "vhd_path", hv)?, "vm_path": folder(p, "vm_path", hv)?,
        "template": file("template")?, "iso": file("iso")?,
    });
    if let Some(version) = hv.hyperv_module() {
        facts["module"] = version.into();
        let host = probe(|| {
            hv.get_vmhost()?;
            Ok(
                json!({"name": hv.state.host_name, "vhd_path": crate::host::VHD_PATH,
                      "vm_path": crate::host::VM_PATH}),
            )
        });
        if host.get("error").is_none() {
            let names: Vec<String> = hv.get_vmswitch().into_iter().map(|s| s.name).collect();
            facts["switches"] = json!(names);
        }
        facts["vmhost"] = host;
    }
    done(facts)
}
