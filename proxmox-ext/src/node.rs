//! Whether the host's `node` is a node of the cluster the API belongs to.
//!
//! A wrong `node` must not look like an empty node: `statuses` would answer success with no
//! VM, and CloudStack would believe the host runs nothing (fakepve answers `[]` for an unknown
//! node; real PVE fails with a hostname lookup error). So when a node's answer is empty, or
//! fails, or a VM turns up on another node, the cluster's node list (`GET /nodes`, which every
//! token may read) decides, and an absent node is an error naming the nodes there are.

use std::fmt;

use log::{debug, warn};

use crate::api::Client;
use crate::error::Error;

/// The host's node is not in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotInCluster {
    pub node: String,
    /// The cluster's nodes, sorted.
    pub nodes: Vec<String>,
}

impl fmt::Display for NotInCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes = if self.nodes.is_empty() {
            "none".to_string()
        } else {
            self.nodes.join(", ")
        };
        write!(
            f,
            "node '{}' (host detail 'node') is not a node of this Proxmox cluster, whose nodes are {nodes}: set the host's 'node' detail to the node this CloudStack host stands for",
            self.node
        )
    }
}

impl std::error::Error for NotInCluster {}

/// The cluster's node names (sorted) and which of them are online.
pub fn cluster_nodes(client: &Client) -> Result<Vec<(String, bool)>, Error> {
    let mut nodes: Vec<(String, bool)> = client
        .nodes()?
        .into_iter()
        .filter_map(|n| {
            let online = n.status.as_deref() == Some("online");
            n.node.map(|name| (name, online))
        })
        .collect();
    nodes.sort();
    Ok(nodes)
}

/// `Err` when the cluster's node list does not have `node`; `Ok` when it has it, or when the
/// list itself cannot be read (then nothing is known for sure, and the caller goes on).
pub fn require_member(client: &Client, node: &str) -> Result<(), NotInCluster> {
    match cluster_nodes(client) {
        Ok(nodes) if nodes.iter().any(|(n, _)| n == node) => Ok(()),
        Ok(nodes) => Err(NotInCluster {
            node: node.to_string(),
            nodes: nodes.into_iter().map(|(n, _)| n).collect(),
        }),
        Err(e) => {
            warn!("cannot list the cluster's nodes to check node '{node}' ({e})");
            Ok(())
        }
    }
}

/// Whether a failed request's answer can come from a node name PVE does not know: an error
/// answer (PVE's hostname lookup failure), not a refused token, a transport failure or the
/// deadline.
pub fn may_be_unknown_node(error: &Error) -> bool {
    matches!(error, Error::Api(_))
}

/// A failed request about `node`, explained by the node being absent when it is.
pub fn explain(client: &Client, node: &str, error: Error) -> anyhow::Error {
    if !may_be_unknown_node(&error) {
        return error.into();
    }
    match require_member(client, node) {
        Err(absent) => {
            debug!("request for node {node} failed: {error}");
            absent.into()
        }
        Ok(()) => error.into(),
    }
}
