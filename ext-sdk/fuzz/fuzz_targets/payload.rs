//! Fuzzes everything ext-sdk does with an untrusted payload: parsing, VM identity, NIC
//! VLAN/MAC parsing, detail lookup across levels, and rendering a result that quotes it.
#![no_main]

use ext_sdk::output::to_ascii_json;
use ext_sdk::{Detail, Level, MacAddress, Payload, Response};
use libfuzzer_sys::fuzz_target;

const DETAILS: [Detail; 5] = [
    Detail::new("url", &[Level::Host, Level::ResourceMap, Level::Extension]),
    Detail::new("secret", &[Level::Host, Level::Extension]).secret(),
    Detail::new("template_id", &[Level::VirtualMachine]),
    Detail::new("proxmox_vmid", &[Level::VmDetail]),
    Detail::new("snap_name", &[Level::Parameter, Level::Action]),
];

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = Payload::from_slice(data, "fuzz") else {
        return;
    };
    let name = payload.vm_name().unwrap_or_default().to_owned();
    let mut rows = Vec::new();
    for nic in payload.nics() {
        let vlan = nic.vlan().map(|v| v.tag()).map_err(|e| e.to_string());
        let mac = nic.mac.as_deref().map(|m| MacAddress::parse_nic(m).map(|m| m.to_bare_upper()));
        rows.push(serde_json::json!({"vlan": format!("{vlan:?}"), "mac": format!("{mac:?}")}));
    }
    let mut reader = payload.details();
    for detail in &DETAILS {
        let _: Option<u32> = reader.optional(detail);
        let _: String = reader.required(detail);
    }
    let problems = reader.finish().err().map(|e| e.to_string()).unwrap_or_default();
    let text = to_ascii_json(&Response::table(rows).with("name", name).with("problems", problems).to_json());
    assert!(text.is_ascii());
});
