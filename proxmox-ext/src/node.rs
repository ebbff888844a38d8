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

/// Why an empty answer about a node cannot be trusted: the node is not in the cluster, or
/// the cluster's node list could not be read to tell (then the answer is unknown, never "no
/// VM").
#[derive(Debug)]
pub enum Unconfirmed {
    NotInCluster(NotInCluster),
    Unchecked { node: String, error: Error },
}

impl fmt::Display for Unconfirmed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unconfirmed::NotInCluster(absent) => absent.fmt(f),
            Unconfirmed::Unchecked { node, error } => write!(
                f,
                "node '{node}' (host detail 'node') answered with no VM, and whether it is a node of this Proxmox cluster cannot be checked (listing the cluster's nodes failed: {error}), so the state is unknown"
            ),
        }
    }
}

impl std::error::Error for Unconfirmed {}

/// `Ok` when the cluster's node list has `node`; else why an empty answer about it proves
/// nothing.
pub fn require_member(client: &Client, node: &str) -> Result<(), Unconfirmed> {
    match cluster_nodes(client) {
        Ok(nodes) if nodes.iter().any(|(n, _)| n == node) => Ok(()),
        Ok(nodes) => Err(Unconfirmed::NotInCluster(NotInCluster {
            node: node.to_string(),
            nodes: nodes.into_iter().map(|(n, _)| n).collect(),
        })),
        Err(error) => {
            warn!("cannot list the cluster's nodes to check node '{node}' ({error})");
            Err(Unconfirmed::Unchecked {
                node: node.to_string(),
                error,
            })
        }
    }
}

/// Whether a failed request's answer can come from a node name PVE does not know: an error
/// answer (PVE's hostname lookup failure), not a refused token, a transport failure or the
/// deadline.
pub fn may_be_unknown_node(error: &Error) -> bool {
    matches!(error, Error::Api(_))
}

/// A failed request about `node`, explained by the node being absent when it is (when that
/// cannot be told, the request's own error stands).
pub fn explain(client: &Client, node: &str, error: Error) -> anyhow::Error {
    if !may_be_unknown_node(&error) {
        return error.into();
    }
    match require_member(client, node) {
        Err(Unconfirmed::NotInCluster(absent)) => {
            debug!("request for node {node} failed: {error}");
            absent.into()
        }
        Ok(()) | Err(Unconfirmed::Unchecked { .. }) => error.into(),
    }
}
