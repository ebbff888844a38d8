//! A test extension: reports what ext-sdk parsed, and breaks the rules on request so the tests
//! can prove the runner still keeps the output contract.

#![forbid(unsafe_code)]

use std::io::Write;
use std::time::Duration;

use anyhow::bail;
use ext_sdk::{Action, Detail, Invocation, Level, Meta, Response, Secret};
use serde_json::{Value, json};

const META: Meta = Meta {
    name: "contract-probe",
    version: env!("CARGO_PKG_VERSION"),
    about: "ext-sdk contract probe (tests only)",
    actions: &[
        "echo", "details", "panic", "error", "overrun", "big", "noise", "unicode",
    ],
    details: &[
        URL,
        SECRET,
        NODE,
        USER,
        TEMPLATE_ID,
        VMID,
        SNAP_NAME,
        SAVE_MEMORY,
    ],
};

const URL: Detail = Detail::new("url", &[Level::Host, Level::Extension]).hint("the API URL");
const SECRET: Detail = Detail::new("secret", &[Level::Host, Level::Extension]).secret();
const NODE: Detail = Detail::new("node", &[Level::Host]);
const USER: Detail = Detail::new("user", &[Level::Host, Level::Extension]);
const TEMPLATE_ID: Detail = Detail::new("template_id", &[Level::VirtualMachine]);
const VMID: Detail = Detail::new("proxmox_vmid", &[Level::VmDetail]);
const SNAP_NAME: Detail = Detail::new("snap_name", &[Level::Parameter]);
const SAVE_MEMORY: Detail = Detail::new("snap_save_memory", &[Level::Parameter]);

fn echo(inv: &Invocation) -> Value {
    let p = &inv.payload;
    let nics: Vec<Value> = p
        .nics()
        .iter()
        .map(|n| {
            json!({
                "deviceId": n.device_id, "nicUuid": n.nic_uuid, "uuid": n.uuid, "mac": n.mac,
                "vlan": match n.vlan() { Ok(v) => json!(v.tag()), Err(e) => json!(e.to_string()) },
                "defaultNic": n.default_nic, "ip6": n.ipv6_address(), "ip6Dns1": n.ip6_dns1,
            })
        })
        .collect();
    let lookup = |d: &Detail| {
        p.lookup(d)
            .map(|f| json!({"value": f.value, "level": format!("{:?}", f.level)}))
    };
    json!({
        "action": inv.action.name(),
        "custom": matches!(inv.action, Action::Custom(_)),
        "vm_name": p.vm_name(), "vm_uuid": p.vm_uuid(),
        "caller": p.caller.as_ref().and_then(|c| c.name.clone()),
        "cpus": p.vm.as_ref().and_then(|v| v.cpus),
        "memory_mib": p.vm.as_ref().and_then(ext_sdk::VmDetails::memory_mib),
        "nics": nics,
        "url": lookup(&URL), "node": lookup(&NODE), "user": lookup(&USER), "template_id": lookup(&TEMPLATE_ID),
        "proxmox_vmid": lookup(&VMID), "snap_name": lookup(&SNAP_NAME),
        "parameters": p.parameters,
        "secret_length": p.lookup(&SECRET).map(|f| f.value.len()),
        "timeout_s": inv.deadline.timeout().as_secs(),
    })
}

fn handle(inv: &Invocation) -> anyhow::Result<Response> {
    let Action::Custom(action) = &inv.action else {
        return Ok(Response::success("built-in").with("parsed", echo(inv)));
    };
    log::info!("probe action {}", action.name());
    match action.name().to_ascii_lowercase().as_str() {
        "echo" => Ok(Response::success("parsed").with("parsed", echo(inv))),
        "details" => {
            let mut d = inv.payload.details();
            let url: String = d.required(&URL);
            let secret: Secret = d.required(&SECRET);
            let save: Option<bool> = d.optional(&SAVE_MEMORY);
            let snap: String = d.required(&SNAP_NAME);
            d.finish()?;
            log::info!("url {url} secret {secret} raw {}", secret.expose());
            Ok(Response::success(format!("{url} {snap} {save:?}")))
        }
        "panic" => {
            let secret = inv.payload.lookup(&SECRET).map(|f| f.value.into_owned());
            panic!("deliberate panic holding {}", secret.unwrap_or_default())
        }
        "error" => {
            let secret = inv.payload.lookup(&SECRET).map(|f| f.value.into_owned());
            bail!(
                "deliberate failure: server said 401 for token {}",
                secret.unwrap_or_default()
            )
        }
        "overrun" => {
            // Ignores the deadline on purpose: the watchdog must answer for it.
            std::thread::sleep(inv.deadline.timeout() + Duration::from_secs(5));
            Ok(Response::success("too late"))
        }
        "big" => {
            let rows =
                (0..2000).map(|i| json!({"name": format!("row-{i:05}"), "pad": "x".repeat(40)}));
            Ok(Response::table(rows.collect()))
        }
        #[expect(
            clippy::print_stdout,
            clippy::print_stderr,
            reason = "a library misbehaving is what this action simulates"
        )]
        "noise" => {
            println!("stray stdout line from a library");
            eprintln!("stray stderr line from a library");
            let _ = std::io::stderr().write_all(b"raw stderr bytes\n");
            Ok(Response::success("quiet"))
        }
        "unicode" => Ok(Response::success("h\u{e9}llo \u{2713} \u{1F600}")),
        _ => Err(ext_sdk::unsupported_action(&inv.action, META.actions)),
    }
}

fn main() -> std::process::ExitCode {
    ext_sdk::run(&META, handle)
}
