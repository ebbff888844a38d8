//! `getconsole`: a one-time VNC ticket and the node address CloudStack's console proxy
//! connects to.

use ext_sdk::{Console, Invocation, Response};
use log::debug;

use super::vm_session;
use crate::api::Client;
use crate::error::Error;

pub fn get_console(inv: &Invocation) -> anyhow::Result<Response> {
    let (client, vm, ()) = vm_session(inv, |_| ())?;
    let found = vm.require_usable(&client)?;
    if !found.status.is_running() {
        anyhow::bail!(
            "Proxmox VM {} is not running: start it to open its console",
            vm.vmid
        );
    }
    let proxy = client.vnc_proxy(&found.node, vm.vmid)?;
    let bad = |detail: &str| Error::BadResponse {
        what: format!("POST /nodes/{}/qemu/{}/vncproxy", found.node, vm.vmid),
        detail: detail.to_string(),
    };
    let port = proxy
        .port
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| bad("no usable port"))?;
    // A generated VNC password (when PVE gives one) works with plain VNC clients; else the ticket.
    let password = proxy
        .password
        .or(proxy.ticket)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("no ticket"))?;
    let host = node_address(&client, &found.node)?;
    vm.adopt(&client, &found);
    Ok(Response::console(Console::Vnc {
        host,
        port,
        password,
        one_time: true,
    }))
}

/// The node's address as the cluster knows it (`/cluster/status`), else the address of the
/// interface holding the default gateway, else any static address on the node.
fn node_address(client: &Client, node: &str) -> anyhow::Result<String> {
    match client.cluster_members() {
        Ok(members) => {
            let ip = members
                .into_iter()
                .filter(|m| m.kind.as_deref() == Some("node") && m.name.as_deref() == Some(node))
                .find_map(|m| m.ip.filter(|ip| !ip.is_empty()));
            if let Some(ip) = ip {
                return Ok(ip);
            }
        }
        Err(e) => debug!("cluster status unavailable ({e}); using the node's interfaces"),
    }
    let interfaces = client.network(node)?;
    let address = |i: &crate::model::NetworkInterface| {
        i.address
            .clone()
            .or_else(|| {
                i.cidr
                    .as_deref()
                    .and_then(|c| c.split('/').next())
                    .map(str::to_string)
            })
            .filter(|a| !a.is_empty())
    };
    interfaces
        .iter()
        .filter(|i| i.gateway.as_deref().is_some_and(|g| !g.is_empty()))
        .find_map(address)
        .or_else(|| {
            interfaces
                .iter()
                .filter(|i| i.active != Some(false))
                .find_map(address)
        })
        .ok_or_else(|| {
            anyhow::anyhow!("cannot find an address of node {node} for the console proxy")
        })
}
