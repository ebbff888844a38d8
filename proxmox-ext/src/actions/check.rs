//! `check`: a read-only preflight of the set-up, answered as a table (one row per probe, the
//! summary first), from a shell (`proxmox-ext check payload.json`) or as a custom action on a
//! host or a VM.
//!
//! Probes, in order: the URL parses and resolves; TCP reaches it; the connection details are
//! complete; TLS verifies (or why not, with the certificate's fingerprint to pin); the token
//! authenticates; it holds every privilege of [`crate::privileges::TABLE`]; the node exists
//! and is online; the bridge exists on it; the storage of new disks exists, is enabled and
//! holds images; `template_id` is a template; the ISO exists; VMIDs can be handed out (range,
//! ledger directory); the log file; misspelt or misplaced details.
//!
//! Only GET requests are sent, and nothing is written but a probe file that is removed at once.
//! Each network probe has at most [`PROBE_TIME`], always within the deadline; once the API
//! stops answering (or a probe it depends on failed), the probes that need it are skipped with
//! the reason. The answer is the table with exit 0 whenever the check could run.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ext_sdk::check::Report;
use ext_sdk::{Deadline, Invocation, Payload, Response};
use ext_tls::Trust;
use serde_json::Value;

use crate::allocation::VmidRange;
use crate::api::Client;
use crate::error::Error;
use crate::model::Vmid;
use crate::node;
use crate::privileges::{Deploy, Need, TABLE, Target};
use crate::settings::{
    ApiUrl, Connection, DEFAULT_ISO_STORAGE, IS_FULL_CLONE, ISO_PATH, NETWORK_BRIDGE, STATE_DIR,
    STORAGE, TEMPLATE_ID, TEMPLATE_TYPE, URL, VMID_RANGE,
};
use crate::state;
use crate::transport::{TransportErrorKind, UreqTransport};

/// The longest one network probe may take (DNS, TCP, or one probe's requests).
pub const PROBE_TIME: Duration = Duration::from_secs(10);
/// A probe does not start with less time than this left.
const MIN_PROBE_TIME: Duration = Duration::from_millis(300);

pub fn check(inv: &Invocation) -> anyhow::Result<Response> {
    let mut probes = Probes {
        payload: &inv.payload,
        deadline: inv.deadline,
        report: Report::new(),
        api: None,
        transport: None,
        unreachable: None,
        node_ok: false,
    };
    probes.run();
    Ok(probes.report.into_response())
}

/// The API, once the connection probes got that far.
struct Api {
    client: Client,
    conn: Connection,
}

struct Probes<'a> {
    payload: &'a Payload,
    deadline: Deadline,
    report: Report,
    api: Option<Api>,
    /// The API's transport, for what the TLS handshake saw.
    transport: Option<Rc<UreqTransport>>,
    /// Why the probes that need the API cannot run.
    unreachable: Option<String>,
    node_ok: bool,
}

/// What `create` will deploy from, as far as the payload says.
enum Source {
    Template { id: Vmid, full: bool },
    Iso(String),
    Unknown,
}

impl Probes<'_> {
    fn run(&mut self) {
        let addresses = self.url();
        self.tcp(addresses);
        self.connection();
        let version = self.tls();
        self.token(version);
        let source = self.source();
        let template_storages = self.template_storages(&source);
        self.privileges(&source, &template_storages);
        self.node();
        self.bridge();
        self.template(&source);
        self.storage(&source, template_storages);
        self.iso(&source);
        self.vmids();
        ext_sdk::check::probe_log_file(&mut self.report, env!("CARGO_PKG_NAME"), self.payload);
        self.report.details(self.payload);
    }

    /// The deadline of one probe, or `None` (and a skip row) when too little time is left.
    fn budget(&mut self, probe: &str) -> Option<Deadline> {
        if self.deadline.remaining() < MIN_PROBE_TIME {
            self.report.skip(
                probe,
                format!(
                    "not run: the check's {} s are used up",
                    self.deadline.timeout().as_secs()
                ),
            );
            return None;
        }
        Some(self.deadline.within(PROBE_TIME))
    }

    /// The API client for one probe, or `None` (and a skip row saying why).
    fn client(&mut self, probe: &str) -> Option<Client> {
        if let Some(why) = &self.unreachable {
            let why = why.clone();
            self.report.skip(probe, format!("not run: {why}"));
            return None;
        }
        let deadline = self.budget(probe)?;
        self.api
            .as_ref()
            .map(|api| api.client.with_deadline(deadline))
    }

    /// A request of `probe` failed: a `fail` row saying which, and the API marked silent when
    /// the error means it stopped answering.
    fn request_failed(&mut self, probe: &str, what: &str, error: &Error) {
        self.report
            .fail(probe, what, "see the message; the check only reads (GET)");
        self.note_silence(probe, error);
    }

    /// Skips a probe of another kind of deploy than `source`, saying what `source` is.
    fn skip_for(&mut self, probe: &str, source: &Source) {
        let why = match source {
            Source::Template { .. } => "a template deploy (template_id): no ISO is used",
            Source::Iso(_) => "an ISO deploy (iso_path): no template is cloned",
            Source::Unknown => NO_VM_DETAILS,
        };
        self.report.skip(probe, why);
    }

    /// An error that means the API stopped answering: later probes are skipped.
    fn note_silence(&mut self, probe: &str, error: &Error) {
        let silent = matches!(error, Error::Deadline(_) | Error::Unanswered(_))
            || matches!(error, Error::Transport(t) if t.kind != TransportErrorKind::Redirect);
        if silent {
            self.unreachable = Some(format!("the API did not answer the {probe} probe"));
        }
    }

    fn node_name(&self) -> &str {
        self.api.as_ref().map_or("", |a| a.conn.node.as_str())
    }

    // ------------------------------------------------------------------ probes

    fn url(&mut self) -> Vec<SocketAddr> {
        const PROBE: &str = "url";
        let Some(found) = self.payload.lookup(&URL) else {
            self.report.fail(
                PROBE,
                "url is not set (host or extension detail)",
                "set the host detail url to the node's API, e.g. https://pve1:8006",
            );
            self.unreachable = Some("url is not set".into());
            return Vec::new();
        };
        let origin = format!("{} '{}'", found.level.describe(), found.key);
        let url = match ApiUrl::parse(&found.value) {
            Ok(url) => url,
            Err(why) => {
                self.report.fail(
                    PROBE,
                    format!("'{}' ({origin}) is not an API address: {why}", found.value),
                    "set url to https://<node>:8006 (a host name or address; port 8006 by default)",
                );
                self.unreachable = Some("url does not parse".into());
                return Vec::new();
            }
        };
        let Some(deadline) = self.budget(PROBE) else {
            self.unreachable = Some("no time left".into());
            return Vec::new();
        };
        match resolve(&url.host, url.port, deadline.remaining()) {
            Ok(addresses) if !addresses.is_empty() => {
                let list: Vec<String> = addresses.iter().map(|a| a.ip().to_string()).collect();
                let verb = if url.host.parse::<std::net::IpAddr>().is_ok() {
                    "is the address"
                } else {
                    "resolves to"
                };
                self.report.ok(
                    PROBE,
                    format!("{url} ({origin}) {verb} {}", list.join(", ")),
                );
                addresses
            }
            result => {
                let why = match result {
                    Err(e) => e,
                    Ok(_) => "no address".into(),
                };
                self.report.fail(
                    PROBE,
                    format!("{url} ({origin}): the host name '{}' does not resolve: {why}", url.host),
                    "use a name this management server resolves (check /etc/hosts and DNS) or the node's IP address in url",
                );
                self.unreachable = Some(format!("{} does not resolve", url.host));
                Vec::new()
            }
        }
    }

    fn tcp(&mut self, addresses: Vec<SocketAddr>) {
        const PROBE: &str = "tcp";
        if addresses.is_empty() {
            let why = self.unreachable.clone().unwrap_or_default();
            self.report.skip(PROBE, format!("not run: {why}"));
            return;
        }
        let mut failures = Vec::new();
        for address in &addresses {
            let Some(deadline) = self.budget(PROBE) else {
                self.unreachable = Some("no time left".into());
                return;
            };
            let started = Instant::now();
            match TcpStream::connect_timeout(
                address,
                deadline.remaining().min(Duration::from_secs(5)),
            ) {
                Ok(_) => {
                    self.report.ok(
                        PROBE,
                        format!("reached {address} in {} ms", started.elapsed().as_millis()),
                    );
                    return;
                }
                Err(e) => failures.push(format!("{address}: {e}")),
            }
        }
        self.report.fail(
            PROBE,
            format!("cannot reach {}", failures.join("; ")),
            "check the port in url (8006 by default), that pveproxy runs on the node (systemctl status pveproxy) and that no firewall blocks this management server",
        );
        self.unreachable = Some("the API's port cannot be reached (tcp probe)".into());
    }

    fn connection(&mut self) {
        const PROBE: &str = "connection details";
        match self.payload.read(Connection::read) {
            Ok(conn) => {
                let trust = match &conn.tls {
                    Trust::System(_) => "the system trust store".to_string(),
                    Trust::Ca(ca) => format!("ca_certificate, {ca}"),
                    Trust::Pinned(fp) => format!("tls_fingerprint {fp}"),
                    Trust::Insecure => "none (verify_tls_certificate=false)".to_string(),
                };
                self.report.ok(
                    PROBE,
                    format!(
                        "token {}, node {}, certificate check: {trust}",
                        conn.token_id, conn.node
                    ),
                );
                match UreqTransport::new(
                    &conn.address(),
                    &conn.url.api_base(),
                    &conn.token_id,
                    &conn.secret,
                    &conn.tls,
                ) {
                    Ok(transport) => {
                        let transport = Rc::new(transport);
                        let client = Client::new(transport.clone(), self.deadline, &conn.token_id)
                            .at(&conn.address());
                        self.transport = Some(transport);
                        self.api = Some(Api { client, conn });
                    }
                    Err(e) => {
                        self.report.fail("tls", e.to_string(), "set ca_certificate to a readable PEM file, e.g. a copy of the cluster's /etc/pve/pve-root-ca.pem");
                        self.unreachable
                            .get_or_insert_with(|| "ca_certificate cannot be used".into());
                    }
                }
            }
            Err(e) => {
                self.report.fail(
                    PROBE,
                    e.to_string(),
                    "set the details this names, where it says",
                );
                self.unreachable
                    .get_or_insert_with(|| "the connection details are incomplete".into());
            }
        }
    }
}

impl Probes<'_> {
    /// The first request (`GET /version`): its TLS handshake and its answer.
    fn tls(&mut self) -> Option<Result<Value, Error>> {
        const PROBE: &str = "tls";
        let client = self.client(PROBE)?;
        let answer = client.version();
        let peer = self.transport.as_ref().and_then(|t| t.peer());
        let fingerprint = peer
            .as_ref()
            .map_or_else(|| "unknown".to_string(), |p| p.fingerprint.to_string());
        let tls = self.api.as_ref().map(|a| a.conn.tls.clone());
        match &answer {
            Err(Error::Transport(t)) if t.kind == TransportErrorKind::Tls => {
                self.report.fail(
                    PROBE,
                    t.to_string(),
                    format!(
                        "check the node's certificate on the node (pvenode cert info): if it is SHA-256 {fingerprint}, set tls_fingerprint to it; or set ca_certificate to a copy of the cluster's /etc/pve/pve-root-ca.pem"
                    ),
                );
                self.unreachable = Some("the TLS handshake failed (tls probe)".into());
                return None;
            }
            Err(e @ (Error::Transport(_) | Error::Deadline(_) | Error::Unanswered(_))) => {
                self.report.fail(
                    PROBE,
                    format!("no answer over TLS: {e}"),
                    "check that pveproxy answers on the node (systemctl status pveproxy) and that nothing between here and the node holds the connection",
                );
                self.note_silence(PROBE, e);
                self.unreachable
                    .get_or_insert_with(|| "the API did not answer (tls probe)".into());
                return None;
            }
            _ => {}
        }
        match tls {
            Some(Trust::Insecure) => {
                self.report.warn(
                    PROBE,
                    format!(
                        "not verified (verify_tls_certificate=false): anyone on the network path could pose as the node; it presented SHA-256 {fingerprint}"
                    ),
                    format!(
                        "check the fingerprint on the node (pvenode cert info) and set tls_fingerprint to {fingerprint} instead of verify_tls_certificate=false"
                    ),
                );
            }
            Some(Trust::Pinned(_)) => {
                self.report.ok(
                    PROBE,
                    format!("the node presented the pinned certificate, SHA-256 {fingerprint}"),
                );
            }
            Some(Trust::Ca(ca)) => {
                self.report.ok(
                    PROBE,
                    format!(
                        "verified against ca_certificate, {ca}; the node's certificate is SHA-256 {fingerprint}"
                    ),
                );
            }
            _ => {
                self.report.ok(
                    PROBE,
                    format!(
                        "verified against the system trust store; the node's certificate is SHA-256 {fingerprint}"
                    ),
                );
            }
        }
        Some(answer)
    }

    fn token(&mut self, version: Option<Result<Value, Error>>) {
        const PROBE: &str = "token";
        let Some(answer) = version else {
            let why = self.unreachable.clone().unwrap_or_default();
            self.report.skip(PROBE, format!("not run: {why}"));
            return;
        };
        let token = self
            .api
            .as_ref()
            .map(|a| a.conn.token_id.clone())
            .unwrap_or_default();
        match answer {
            Ok(version) => {
                let v = version
                    .get("version")
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                self.report
                    .ok(PROBE, format!("{token} authenticates (Proxmox VE {v})"));
            }
            Err(Error::Unauthorized { .. }) => {
                self.report.fail(
                    PROBE,
                    format!("Proxmox refused the API token {token}"),
                    "check user, token and secret (the secret is shown once, when the token is made with pveum user token add or in Datacenter > Permissions > API Tokens; make a new token if it is lost) and that the token has not expired",
                );
                self.unreachable = Some("the token was refused (token probe)".into());
            }
            Err(e) => {
                self.report.fail(
                    PROBE,
                    format!("GET /version failed: {e}"),
                    "see the message; the check reads /version with the token",
                );
                self.note_silence(PROBE, &e);
            }
        }
    }

    /// Where `create` deploys from, as far as the template and instance details say.
    fn source(&self) -> Source {
        let p = self.payload;
        let kind = p
            .lookup(&TEMPLATE_TYPE)
            .map(|f| f.value.to_ascii_lowercase());
        let template = p
            .lookup(&TEMPLATE_ID)
            .and_then(|f| f.value.parse::<Vmid>().ok());
        let iso = p.lookup(&ISO_PATH).map(|f| f.value.into_owned());
        let full = p
            .lookup(&IS_FULL_CLONE)
            .and_then(|f| ext_sdk::lenient::parse_bool(&f.value))
            .unwrap_or(crate::settings::DEFAULT_FULL_CLONE);
        match (kind.as_deref(), template, iso) {
            (Some("iso"), _, Some(iso)) | (None, None, Some(iso)) => Source::Iso(iso),
            (Some("template") | None, Some(id), _) => Source::Template { id, full },
            _ => Source::Unknown,
        }
    }

    /// The paths `target` stands for in this set-up, or why they are not known.
    fn paths_of(
        &self,
        target: Target,
        source: &Source,
        template_storages: &[String],
    ) -> Result<Vec<String>, String> {
        match target {
            Target::Vms => Ok(vec!["/vms".into()]),
            Target::Root => Ok(vec!["/".into()]),
            Target::Template => match source {
                Source::Template { id, .. } => Ok(vec![format!("/vms/{id}")]),
                _ => Err("no template_id".into()),
            },
            Target::Storage => self
                .disk_storages(source, template_storages)
                .map(|storages| storages.iter().map(|s| format!("/storage/{s}")).collect())
                .map_err(str::to_string),
            Target::IsoStorage => match source {
                Source::Iso(iso) => Ok(vec![format!(
                    "/storage/{}",
                    iso.split(':').next().unwrap_or_default()
                )]),
                _ => Err("no iso_path".into()),
            },
            Target::Bridge => self
                .payload
                .lookup(&NETWORK_BRIDGE)
                .map(|f| vec![format!("/sdn/zones/localnetwork/{}", f.value)])
                .ok_or_else(|| "no network_bridge".into()),
        }
    }

    /// Where `create` puts the new disk: `storage` (or its default) for ISO installs and full
    /// clones that name one, else the template's storages.
    fn disk_storages(
        &self,
        source: &Source,
        template_storages: &[String],
    ) -> Result<Vec<String>, &'static str> {
        match source {
            Source::Iso(_) => Ok(vec![self.iso_disk_storage()]),
            Source::Template { full: true, .. } if self.payload.lookup(&STORAGE).is_some() => {
                Ok(vec![self.iso_disk_storage()])
            }
            Source::Template { .. } if !template_storages.is_empty() => {
                Ok(template_storages.to_vec())
            }
            Source::Template { .. } => Err("the template's storage is not known (template probe)"),
            Source::Unknown => Err("no template or ISO details"),
        }
    }

    /// The storages of the template's disks, read quietly (the template probe reports on the
    /// template itself); empty when they cannot be read.
    fn template_storages(&self, source: &Source) -> Vec<String> {
        let Source::Template { id, .. } = source else {
            return Vec::new();
        };
        if self.unreachable.is_some() || self.deadline.remaining() < MIN_PROBE_TIME {
            return Vec::new();
        }
        let Some(api) = &self.api else {
            return Vec::new();
        };
        let client = api.client.with_deadline(self.deadline.within(PROBE_TIME));
        client
            .vm_config(&api.conn.node, *id)
            .map(|config| {
                dedup(
                    disk_volumes(&config)
                        .iter()
                        .filter_map(|v| v.split(':').next().map(str::to_string))
                        .collect(),
                )
            })
            .unwrap_or_default()
    }

    /// `storage`, else the default of an ISO install's disk.
    fn iso_disk_storage(&self) -> String {
        self.payload
            .lookup(&STORAGE)
            .map_or_else(|| DEFAULT_ISO_STORAGE.to_string(), |f| f.value.into_owned())
    }

    fn privileges(&mut self, source: &Source, template_storages: &[String]) {
        const PROBE: &str = "privileges";
        let Some(client) = self.client(PROBE) else {
            return;
        };
        let applies = |n: &Need| {
            matches!(
                (n.deploy, source),
                (Deploy::Any, _)
                    | (Deploy::Template, Source::Template { .. } | Source::Unknown)
                    | (Deploy::Iso, Source::Iso(_))
            )
        };
        // path -> held privileges, each path asked once
        let mut held: Vec<(String, Vec<String>)> = Vec::new();
        let mut missing = Vec::new();
        let mut optional_missing = Vec::new();
        let mut unchecked = BTreeSet::new();
        let mut checked = BTreeSet::new();
        for (action, needs) in TABLE {
            for n in needs.iter().filter(|n| applies(n)) {
                let paths = match self.paths_of(n.on, source, template_storages) {
                    Ok(paths) => paths,
                    Err(why) => {
                        unchecked.insert(format!("{} ({why})", n.on.pattern()));
                        continue;
                    }
                };
                for path in paths {
                    let privileges = match held.iter().find(|(p, _)| *p == path) {
                        Some((_, privileges)) => privileges.clone(),
                        None => match client.permissions(&path) {
                            Ok(map) => {
                                let privileges = privileges_on(&map, &path);
                                held.push((path.clone(), privileges.clone()));
                                privileges
                            }
                            Err(e) => {
                                self.request_failed(
                                    PROBE,
                                    &format!("GET /access/permissions?path={path} failed: {e}"),
                                    &e,
                                );
                                return;
                            }
                        },
                    };
                    checked.insert(path.clone());
                    if !n.met_by(&privileges) {
                        let line =
                            format!("{} on {path} ({action}: {})", n.privileges_text(), n.why);
                        if n.optional {
                            optional_missing.push(line);
                        } else {
                            missing.push(line);
                        }
                    }
                }
            }
        }
        dedup_keep_order(&mut missing);
        dedup_keep_order(&mut optional_missing);
        let token = self
            .api
            .as_ref()
            .map(|a| a.conn.token_id.clone())
            .unwrap_or_default();
        let mut found = if missing.is_empty() && optional_missing.is_empty() {
            format!(
                "{token} holds every privilege the actions need on {}",
                checked.into_iter().collect::<Vec<_>>().join(", ")
            )
        } else {
            let mut parts = Vec::new();
            if !missing.is_empty() {
                parts.push(format!("{token} lacks {}", missing.join("; ")));
            }
            if !optional_missing.is_empty() {
                parts.push(format!(
                    "optional, lacking: {}",
                    optional_missing.join("; ")
                ));
            }
            parts.join("; ")
        };
        if !unchecked.is_empty() {
            let _ = write!(
                found,
                "; not checked: {}",
                unchecked.into_iter().collect::<Vec<_>>().join(", ")
            );
        }
        let fix = format!(
            "grant them to the token and its user, e.g. with the CloudStack role of the README: pveum acl modify /vms --roles CloudStack --users {user} --tokens '{token}'",
            user = token.split('!').next().unwrap_or_default()
        );
        if !missing.is_empty() {
            self.report.fail(PROBE, found, fix);
        } else if !optional_missing.is_empty() {
            self.report.warn(PROBE, found, fix);
        } else {
            self.report.ok(PROBE, found);
        }
    }

    fn node(&mut self) {
        const PROBE: &str = "node";
        let Some(client) = self.client(PROBE) else {
            return;
        };
        let name = self.node_name().to_string();
        match node::cluster_nodes(&client) {
            Ok(nodes) => {
                let list = nodes
                    .iter()
                    .map(|(n, online)| {
                        if *online {
                            n.clone()
                        } else {
                            format!("{n} (offline)")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                match nodes.iter().find(|(n, _)| *n == name) {
                    Some((_, true)) => {
                        self.node_ok = true;
                        self.report
                            .ok(PROBE, format!("{name} is online (cluster nodes: {list})"));
                    }
                    Some((_, false)) => {
                        self.report.fail(
                            PROBE,
                            format!("{name} is offline (cluster nodes: {list})"),
                            format!(
                                "bring node {name} back, or move this host's VMs to an online node"
                            ),
                        );
                    }
                    None => {
                        self.report.fail(
                            PROBE,
                            format!("{name} (host detail 'node') is not a node of this cluster, whose nodes are {list}"),
                            "set the host detail node to the node this CloudStack host stands for",
                        );
                    }
                }
            }
            Err(e) => {
                self.request_failed(PROBE, &format!("GET /nodes failed: {e}"), &e);
            }
        }
    }

    /// The probes that ask the node itself run only when the node is there.
    fn node_client(&mut self, probe: &str) -> Option<Client> {
        if self.unreachable.is_none() && !self.node_ok {
            self.report
                .skip(probe, "not run: the node is not there (node probe)");
            return None;
        }
        self.client(probe)
    }

    fn bridge(&mut self) {
        const PROBE: &str = "bridge";
        let bridge = self
            .payload
            .lookup(&NETWORK_BRIDGE)
            .map(|f| f.value.into_owned());
        let Some(bridge) = bridge else {
            if self.payload.nics().is_empty() {
                self.report.warn(
                    PROBE,
                    "network_bridge is not set: create fails for every VM with a NIC",
                    "set the host detail network_bridge to the bridge VM NICs attach to, e.g. vmbr0",
                );
            } else {
                self.report.fail(
                    PROBE,
                    "network_bridge is not set, and this VM has NICs",
                    "set the host detail network_bridge to the bridge VM NICs attach to, e.g. vmbr0",
                );
            }
            return;
        };
        let Some(client) = self.node_client(PROBE) else {
            return;
        };
        let node = self.node_name().to_string();
        match client.network(&node) {
            Ok(interfaces) => {
                let bridges: Vec<String> = interfaces
                    .iter()
                    .filter(|i| is_bridge(i.kind.as_deref()))
                    .filter_map(|i| i.iface.clone())
                    .collect();
                match interfaces.iter().find(|i| i.iface.as_deref() == Some(bridge.as_str())) {
                    Some(i) if is_bridge(i.kind.as_deref()) => {
                        let state = if i.active == Some(false) { "inactive" } else { "active" };
                        self.report
                            .ok(PROBE, format!("{bridge} is a bridge on {node} ({state})"))
                    }
                    Some(i) => self.report.fail(
                        PROBE,
                        format!(
                            "{bridge} on {node} is not a bridge but of type {} (bridges: {})",
                            i.kind.as_deref().unwrap_or("?"),
                            bridges.join(", ")
                        ),
                        "set network_bridge to a Linux or OVS bridge of the node",
                    ),
                    None => self.report.fail(
                        PROBE,
                        format!(
                            "{node} has no interface {bridge} (host detail 'network_bridge'); its bridges: {}",
                            if bridges.is_empty() { "none".to_string() } else { bridges.join(", ") }
                        ),
                        "set network_bridge to one of the node's bridges, or create the bridge on the node",
                    ),
                };
            }
            Err(e) => {
                self.request_failed(PROBE, &format!("GET /nodes/{node}/network failed: {e}"), &e);
            }
        }
    }

    /// Checks that `template_id` is a template on the node (linked clones: with base- disks).
    fn template(&mut self, source: &Source) {
        const PROBE: &str = "template";
        let Source::Template { id, full } = *source else {
            self.skip_for(PROBE, source);
            return;
        };
        let Some(client) = self.node_client(PROBE) else {
            return;
        };
        let node = self.node_name().to_string();
        let status = match client.vm_status(&node, id) {
            Ok(status) => status,
            Err(e) if e.is_missing_vm() => {
                let elsewhere = client.cluster_vms().ok().and_then(|vms| {
                    vms.into_iter()
                        .find(|v| v.vmid == Some(u64::from(id.get())))
                        .and_then(|v| v.node)
                });
                let found = match elsewhere {
                    Some(other) => format!("template_id {id} is on node {other}, not on {node}"),
                    None => format!("there is no VM {id} in the cluster (template_id)"),
                };
                self.report.fail(
                    PROBE,
                    found,
                    format!("set template_id to a template on node {node} (clones are made on the host's node)"),
                );
                return;
            }
            Err(e) => {
                self.request_failed(PROBE, &format!("reading VM {id} failed: {e}"), &e);
                return;
            }
        };
        let name = status.name.clone().unwrap_or_default();
        if status.template != Some(true) {
            self.report.fail(
                PROBE,
                format!("VM {id} ('{name}') on {node} is not a template"),
                format!(
                    "convert it on the node (qm template {id}), or set template_id to a template"
                ),
            );
            return;
        }
        let disks = match client.vm_config(&node, id) {
            Ok(config) => disk_volumes(&config),
            Err(e) => {
                self.note_silence(PROBE, &e);
                Vec::new()
            }
        };
        let storages: Vec<String> = dedup(
            disks
                .iter()
                .filter_map(|v| v.split(':').next().map(str::to_string))
                .collect(),
        );
        if !full && !disks.is_empty() && !disks.iter().any(|v| v.contains("base-")) {
            self.report.warn(
                PROBE,
                format!("VM {id} ('{name}') is a template, but its disks are not base- volumes, which linked clones need"),
                "convert it again with qm template, or set is_full_clone=true",
            );
        } else {
            let kind = if full { "full clones" } else { "linked clones" };
            self.report.ok(
                PROBE,
                format!(
                    "VM {id} ('{name}') on {node} is a template ({kind}; disks on {})",
                    storages.join(", ")
                ),
            );
        }
    }

    fn storage(&mut self, source: &Source, template_storages: Vec<String>) {
        const PROBE: &str = "storage";
        if matches!(source, Source::Unknown) {
            self.report.skip(PROBE, NO_VM_DETAILS);
            return;
        }
        let Some(client) = self.node_client(PROBE) else {
            return;
        };
        let wanted = match self.disk_storages(source, &template_storages) {
            Ok(storages) => storages,
            Err(why) => {
                self.report.skip(PROBE, format!("not run: {why}"));
                return;
            }
        };
        let node = self.node_name().to_string();
        let storages = match client.node_storages(&node) {
            Ok(s) => s,
            Err(e) => {
                self.request_failed(PROBE, &format!("GET /nodes/{node}/storage failed: {e}"), &e);
                return;
            }
        };
        let names: Vec<String> = storages.iter().filter_map(|s| s.storage.clone()).collect();
        let mut problems = Vec::new();
        let mut fine = Vec::new();
        for want in &wanted {
            match storages
                .iter()
                .find(|s| s.storage.as_deref() == Some(want.as_str()))
            {
                None => problems.push(format!(
                    "{node} has no storage {want} the token can see (its storages: {})",
                    names.join(", ")
                )),
                Some(s) if s.enabled == Some(false) => {
                    problems.push(format!("{want} is disabled on {node}"));
                }
                Some(s) if s.active == Some(false) => {
                    problems.push(format!("{want} is not active on {node}"));
                }
                Some(s) => {
                    let content = s.content.clone().unwrap_or_default();
                    if content.split(',').any(|c| c.trim() == "images") {
                        fine.push(format!(
                            "{want} is enabled and active on {node} and holds images"
                        ));
                    } else {
                        problems.push(format!(
                            "{want} on {node} does not hold disk images (content: {content})"
                        ));
                    }
                }
            }
        }
        if problems.is_empty() {
            self.report.ok(PROBE, fine.join("; "));
        } else {
            self.report.fail(
                PROBE,
                problems.join("; "),
                "set storage (template or offering detail) to an enabled storage of the node whose content includes Disk image, or give the token Datastore.Audit on it",
            );
        }
    }

    fn iso(&mut self, source: &Source) {
        const PROBE: &str = "iso";
        let Source::Iso(iso) = source else {
            self.skip_for(PROBE, source);
            return;
        };
        let iso = iso.clone();
        let Some(client) = self.node_client(PROBE) else {
            return;
        };
        let node = self.node_name().to_string();
        let Some((storage, _)) = iso.split_once(':') else {
            self.report.fail(
                PROBE,
                format!("iso_path '{iso}' is not a volume id"),
                "set iso_path to a volume such as local:iso/debian-12.iso",
            );
            return;
        };
        match client.storage_content(&node, storage, "iso") {
            Ok(volumes) => {
                let ids: Vec<String> = volumes.into_iter().filter_map(|v| v.volid).collect();
                if ids.contains(&iso) {
                    self.report.ok(PROBE, format!("{iso} exists on {node}"));
                } else {
                    let shown: Vec<&str> = ids.iter().take(5).map(String::as_str).collect();
                    self.report.fail(
                        PROBE,
                        format!(
                            "{node} has no {iso} (ISOs on {storage}: {})",
                            if shown.is_empty() {
                                "none".to_string()
                            } else {
                                shown.join(", ")
                            }
                        ),
                        "upload the ISO to that storage of the node, or set iso_path to one it has",
                    );
                }
            }
            Err(e) => {
                self.report.fail(
                    PROBE,
                    format!("listing the ISOs of {storage} on {node} failed: {e}"),
                    "check that the storage exists on the node and the token has Datastore.Audit or Datastore.AllocateSpace on it",
                );
                self.note_silence(PROBE, &e);
            }
        }
    }

    fn vmids(&mut self) {
        const PROBE: &str = "vmid allocation";
        let range = match self.payload.lookup(&VMID_RANGE) {
            None => None,
            Some(f) => match f.value.parse::<VmidRange>() {
                Ok(r) => Some(r),
                Err(e) => {
                    self.report.fail(
                        PROBE,
                        format!("vmid_range '{}' ({}): {e}", f.value, f.level.describe()),
                        "set vmid_range to first-last, e.g. 20000-29999",
                    );
                    return;
                }
            },
        };
        let configured = self
            .payload
            .lookup(&STATE_DIR)
            .map(|f| std::path::PathBuf::from(f.value.as_ref()));
        let (dir, origin, problem) = state::inspect(configured);
        let ledger = format!("ledger in {} (from {origin})", dir.display());
        if let Some(problem) = problem {
            self.report.fail(
                PROBE,
                format!("{ledger}: {problem}"),
                "make the state directory writable for the management server's user, or set state_dir to one",
            );
            return;
        }
        let Some(client) = self.client(PROBE) else {
            return;
        };
        let ids = match range {
            Some(r) => {
                match client.cluster_vms() {
                    Ok(vms) => {
                        let used = vms
                            .iter()
                            .filter_map(|v| v.vmid)
                            .filter(|&id| {
                                id >= u64::from(r.first.get()) && id <= u64::from(r.last.get())
                            })
                            .count();
                        let size = usize::try_from(r.last.get() - r.first.get())
                            .unwrap_or(usize::MAX)
                            .saturating_add(1);
                        if used >= size {
                            self.report.fail(
                            PROBE,
                            format!("vmid_range {r}: all {size} ids are used in the cluster; {ledger}"),
                            "widen vmid_range",
                        );
                            return;
                        }
                        format!(
                            "vmid_range {r}: {} of {size} ids free in the cluster",
                            size - used
                        )
                    }
                    Err(e) => {
                        self.note_silence(PROBE, &e);
                        format!("vmid_range {r} (the cluster's VMs could not be read: {e})")
                    }
                }
            }
            None => match client.next_id(&crate::api::params::NextId::default()) {
                Ok(id) => format!("no vmid_range: ids from /cluster/nextid, now {id}"),
                Err(e) => {
                    self.note_silence(PROBE, &e);
                    format!("no vmid_range (GET /cluster/nextid failed: {e})")
                }
            },
        };
        self.report
            .ok(PROBE, format!("{ids}; {ledger} is writable"));
    }
}

const NO_VM_DETAILS: &str = "no template_id or iso_path in the payload: run check as a custom action on a VM, or give the template's details in the payload";

fn is_bridge(kind: Option<&str>) -> bool {
    matches!(kind, Some("bridge" | "OVSBridge"))
}

/// The privileges held on `path`: those listed for it, and (fakepve lists the ancestors an ACL
/// sits on) those of its ancestors.
fn privileges_on(map: &serde_json::Map<String, Value>, path: &str) -> Vec<String> {
    map.iter()
        .filter(|(p, _)| {
            p.as_str() == path
                || p.as_str() == "/"
                || path.starts_with(&format!("{}/", p.trim_end_matches('/')))
        })
        .filter_map(|(_, privs)| privs.as_object())
        .flat_map(|privs| privs.keys().cloned())
        .collect()
}

/// The volumes of a config's disks (not CD-ROMs), e.g. `local-lvm:base-9000-disk-0`.
fn disk_volumes(config: &serde_json::Map<String, Value>) -> Vec<String> {
    const BUSES: [&str; 4] = ["scsi", "virtio", "sata", "ide"];
    config
        .iter()
        .filter(|(k, _)| {
            BUSES.iter().any(|b| {
                k.strip_prefix(b)
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
            })
        })
        .filter_map(|(_, v)| v.as_str())
        .filter(|v| !v.contains("media=cdrom"))
        .filter_map(|v| v.split(',').next())
        .filter(|v| v.contains(':'))
        .map(str::to_string)
        .collect()
}

fn dedup(mut items: Vec<String>) -> Vec<String> {
    dedup_keep_order(&mut items);
    items
}

fn dedup_keep_order(items: &mut Vec<String>) {
    let mut seen = BTreeSet::new();
    items.retain(|i| seen.insert(i.clone()));
}

/// Resolves `host:port` within `limit` (getaddrinfo has no timeout of its own, so it runs on a
/// thread that is left behind if it hangs).
fn resolve(host: &str, port: u16, limit: Duration) -> Result<Vec<SocketAddr>, String> {
    let (tx, rx) = mpsc::channel();
    let target = (host.to_string(), port);
    let spawned = std::thread::Builder::new()
        .name("check-resolve".into())
        .spawn(move || {
            let result = target
                .to_socket_addrs()
                .map(Iterator::collect::<Vec<_>>)
                .map_err(|e| e.to_string());
            let _ = tx.send(result);
        });
    if let Err(e) = spawned {
        return Err(format!("cannot start the lookup: {e}"));
    }
    rx.recv_timeout(limit.min(Duration::from_secs(5)))
        .unwrap_or_else(|_| Err("the lookup did not finish in time".into()))
}
