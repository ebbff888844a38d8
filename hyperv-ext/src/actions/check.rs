//! `check`: a read-only preflight of one host's set-up, answered as a table (one row per
//! probe, the summary first; exit 0 whenever the check could run, failed probes included).
//!
//! One connection and one PowerShell start, as for every action: the transport reports each
//! step it passes (TCP, the server's key or certificate, authentication), then the read-only
//! `check` script answers every remote fact at once. A probe that could not run because an earlier one
//! failed, or because the deadline came first, is `skip` with the reason. Nothing is changed
//! anywhere: the script only reads (the test host proves it for every run), and a host key
//! trusted on first use is not recorded.

use std::net::SocketAddr;

use ext_sdk::check::{Report, Verdict, probe_log_file};
use ext_sdk::tcp::ConnectError;
use ext_sdk::{Detail, DetailsError, HostPort, Invocation, Payload, Response};
use hyperv_protocol::call::CHECK;
use hyperv_protocol::data::CheckData;
use hyperv_protocol::reply::{Folder, HostFacts, Probed, VmHost, rights};
use hyperv_protocol::{CommandError, Failure};

use crate::remote::{self, RemoteError};
use crate::settings;
use crate::ssh::{HostKeyError, SshError, SshFailure};
use crate::transport::{Connector, Progress, Step, TransportError, Trust};
use crate::validate;
use crate::winrm::WinrmFailure;

/// What the docs call the section on the host's SSH server.
const OPENSSH_DOC: &str = "docs/hyperv-ext.md, 'Enabling the OpenSSH server'";
/// And on its WinRM listener.
const WINRM_DOC: &str = "docs/hyperv-ext.md, 'Choosing the transport'";

pub(super) fn check(inv: &Invocation, hosts: &dyn Connector) -> anyhow::Result<Response> {
    let mut report = Report::new();
    let local = Local::read(&inv.payload);
    let remote = probe_remotely(&mut report, inv, hosts, &local);
    host_rows(&mut report, &local, &remote);
    probe_log_file(&mut report, crate::META.name, &inv.payload);
    report.details(&inv.payload);
    Ok(report.into_response())
}

/// One detail the check probes, read on its own so that one problem hides no other.
enum Setting {
    Set(String),
    /// Not set anywhere.
    Unset,
    /// Set, but unusable: the reader's sentence.
    Invalid(String),
}

impl Setting {
    fn read(payload: &Payload, detail: &Detail, parse: fn(&str) -> Result<String, String>) -> Self {
        let mut d = payload.details();
        let value = d.optional_with(detail, parse);
        match (d.finish(), value) {
            (Err(e), _) => Setting::Invalid(e.to_string()),
            (Ok(()), Some(value)) => Setting::Set(value),
            (Ok(()), None) => Setting::Unset,
        }
    }

    fn value(&self) -> Option<String> {
        match self {
            Setting::Set(v) => Some(v.clone()),
            Setting::Unset | Setting::Invalid(_) => None,
        }
    }
}

/// The host objects' details, read before connecting.
struct Local {
    switch: Setting,
    vhd_path: Setting,
    vm_path: Setting,
    template: Setting,
    iso: Setting,
    /// `template_type`, when set to a known value: which of template and ISO is used.
    iso_install: Option<bool>,
}

impl Local {
    fn read(payload: &Payload) -> Local {
        let template_disk = |s: &str| {
            validate::windows_path(s).and_then(|p| settings::template_disk(&p).map(|()| p))
        };
        let iso_install = payload.lookup(&settings::TEMPLATE_TYPE).and_then(|f| {
            match f.value.to_ascii_lowercase().as_str() {
                "iso" => Some(true),
                "template" => Some(false),
                _ => None,
            }
        });
        Local {
            switch: Setting::read(payload, &settings::SWITCH, validate::object_name),
            vhd_path: Setting::read(payload, &settings::VHD_PATH, validate::windows_path),
            vm_path: Setting::read(payload, &settings::VM_PATH, validate::windows_path),
            template: Setting::read(payload, &settings::TEMPLATE_PATH, template_disk),
            iso: Setting::read(payload, &settings::ISO_PATH, validate::windows_path),
            iso_install,
        }
    }

    fn data(&self) -> CheckData {
        CheckData {
            vhd_path: self.vhd_path.value(),
            vm_path: self.vm_path.value(),
            template: self
                .template
                .value()
                .filter(|_| self.iso_install != Some(true)),
            iso: self.iso.value().filter(|_| self.iso_install != Some(false)),
        }
    }
}

/// The steps a run passed; it may record nothing.
#[derive(Default)]
struct Steps {
    /// Connected, and to which address when the transport says.
    connected: Option<Option<SocketAddr>>,
    trusted: Option<(Option<String>, Trust)>,
    authenticated: Option<&'static str>,
}

impl Progress for Steps {
    fn step(&mut self, step: Step) {
        match step {
            Step::Connected { peer } => self.connected = Some(peer),
            Step::ServerTrusted { fingerprint, trust } => self.trusted = Some((fingerprint, trust)),
            Step::Authenticated { method } => self.authenticated = Some(method),
        }
    }

    fn may_record(&self) -> bool {
        false
    }
}

/// What the remote probes found: the host's facts, or why the host rows cannot say.
enum Remote {
    Facts(Box<HostFacts>),
    /// Why the rows after the failed one are skipped.
    NotProbed(String),
}

/// The connection rows (tcp, host key, authentication, powershell) and the host's facts.
fn probe_remotely(
    report: &mut Report,
    inv: &Invocation,
    hosts: &dyn Connector,
    local: &Local,
) -> Remote {
    let mut d = inv.payload.details();
    let host = hosts.transport(settings::connection(&mut d));
    let identity = Identity::of(host.name());
    if let Err(problems) = d.finish()
        && !only_the_host_key_is_missing(&problems)
    {
        report.fail(
            "connection details",
            problems.to_string(),
            "set the missing or invalid details (docs/hyperv-ext.md, 'Settings')",
        );
        let why = "not probed: the connection details are incomplete";
        for probe in ["tcp", identity.probe, "authentication", "powershell"] {
            report.skip(probe, why);
        }
        return Remote::NotProbed(why.into());
    }
    let mut steps = Steps::default();
    let result = remote::run_with_progress(
        &*host,
        CHECK,
        &local.data(),
        &inv.deadline,
        &inv.id,
        &mut steps,
    );
    let at = Place {
        address: HostPort {
            host: host.host().to_owned(),
            port: Some(host.port()),
        }
        .to_string(),
        origin: settings::address_origin(&inv.payload, host.name() != "SSH"),
        transport: host.name(),
        identity,
        user: host.username().to_owned(),
    };
    match result {
        Ok(facts) => {
            connection_rows(report, &at, &steps, None);
            powershell_row(report, &facts);
            Remote::Facts(Box::new(facts))
        }
        Err(RemoteError::Transport(e)) => {
            let stopped = connection_rows(report, &at, &steps, Some(&e));
            if stopped.is_none() {
                // Connected, trusted and authenticated: the session broke (or the deadline
                // came) while PowerShell ran.
                report.fail(
                    "powershell",
                    e.to_string(),
                    "run the check again; if it persists, see the log for the remote output",
                );
            } else {
                report.skip("powershell", not_probed(stopped));
            }
            Remote::NotProbed(not_probed(stopped.or(Some("powershell"))))
        }
        Err(RemoteError::Command(e)) => {
            command_row(report, &at, &e);
            Remote::NotProbed(not_probed(Some("tcp")))
        }
        Err(e @ (RemoteError::NoResult { .. } | RemoteError::Failed(_))) => {
            connection_rows(report, &at, &steps, None);
            let fix = match &e {
                RemoteError::Failed(Failure::PsError { .. }) => {
                    "the check script failed on this host: report it with the log \
                     (docs/hyperv-windows-checklist.md shows how to run it by hand)"
                        .to_owned()
                }
                _ => format!(
                    "check that powershell.exe starts for '{}' over {} and prints its result \
                     (docs/hyperv-windows-checklist.md, step 5)",
                    at.user, at.transport
                ),
            };
            report.fail("powershell", e.to_string(), fix);
            Remote::NotProbed(not_probed(Some("powershell")))
        }
    }
}

/// The host key details alone are missing: the check still connects, with a policy that
/// refuses every key after showing it, so the host key row can print the fingerprint to pin.
fn only_the_host_key_is_missing(problems: &DetailsError) -> bool {
    problems.invalid.is_empty()
        && problems.other.is_empty()
        && problems.missing.iter().all(|d| {
            [
                settings::HOST_KEY_FINGERPRINT.key,
                settings::KNOWN_HOSTS.key,
            ]
            .contains(&d.key)
        })
}

fn not_probed(after: Option<&str>) -> String {
    match after {
        Some(probe) => format!("not probed: '{probe}' failed"),
        None => "not probed".into(),
    }
}

/// The host as the check reached it, for the rows' text.
struct Place {
    address: String,
    origin: String,
    transport: &'static str,
    identity: &'static Identity,
    user: String,
}

/// How the server proves who it is, in the words of one transport's settings.
struct Identity {
    /// The row: `host key` (SSH), `certificate` (WinRM's TLS).
    probe: &'static str,
    /// The detail that pins it.
    pin: &'static str,
    /// The setting that turns the check off.
    off: &'static str,
    /// Where to read the fingerprint on the host, to compare.
    on_host: &'static str,
}

const HOST_KEY: Identity = Identity {
    probe: "host key",
    pin: "host_key_fingerprint",
    off: "host_key_check=off",
    on_host: "the host's own key (on the host: ssh-keygen -lf \
              C:\\ProgramData\\ssh\\ssh_host_ed25519_key.pub)",
};

const CERTIFICATE: Identity = Identity {
    probe: "certificate",
    pin: "tls_fingerprint",
    off: "verify_tls_certificate=false",
    on_host: "the fingerprint of the host's WinRM certificate (on the host: \
              docs/hyperv-windows-checklist.md, step 6b)",
};

impl Identity {
    fn of(transport: &str) -> &'static Identity {
        if transport == "SSH" {
            &HOST_KEY
        } else {
            &CERTIFICATE
        }
    }

    /// What to pin after comparing: the key or certificate the server presented.
    fn compare_and_pin(&self, fingerprint: &str) -> String {
        format!(
            "compare {fingerprint} with {} and pin it: {}={fingerprint}",
            self.on_host, self.pin
        )
    }
}

/// The tcp, identity (host key or certificate) and authentication rows; `error` is the
/// transport's failure, if any. Returns the probe that failed (the later ones are skipped),
/// `None` when all passed.
fn connection_rows(
    report: &mut Report,
    at: &Place,
    steps: &Steps,
    error: Option<&TransportError>,
) -> Option<&'static str> {
    let found = || error.map(ToString::to_string).unwrap_or_default();
    let cause = error.map_or(Cause::Other, Cause::of);
    // Without an error the command ran, so every step passed, reported or not.
    let passed = |step: bool| step || error.is_none();
    let identity = at.identity;

    if passed(steps.connected.is_some()) {
        // The address the name resolved to, when it says more than the address itself.
        let peer = steps
            .connected
            .flatten()
            .map(|p| p.to_string())
            .filter(|p| *p != at.address)
            .map(|p| format!(" ({p})"))
            .unwrap_or_default();
        report.ok(
            "tcp",
            format!(
                "reached {}{peer} for {}; address from {}",
                at.address, at.transport, at.origin
            ),
        );
    } else {
        let port = port_of(&at.address);
        let fix = match cause {
            Cause::Resolve => "set url to the host's DNS name or IP address".to_owned(),
            _ if at.transport == "SSH" => format!(
                "start the host's OpenSSH server and let TCP port {port} in through its \
                 firewall ({OPENSSH_DOC})"
            ),
            _ => format!(
                "enable WinRM's HTTPS listener on the host (winrm quickconfig \
                 -transport:https) and let TCP port {port} in through its firewall \
                 ({WINRM_DOC}); or, to reach it over SSH, set transport=ssh"
            ),
        };
        report.fail("tcp", found(), fix);
        skip_all(report, &[identity.probe, "authentication"], "tcp");
        return Some("tcp");
    }

    match &steps.trusted {
        Some((fingerprint, trust)) => {
            identity_row(report, identity, fingerprint.as_deref(), trust);
        }
        None if error.is_none() => {
            report.ok(identity.probe, "the server was trusted (the check ran)");
        }
        None => {
            let fix = match cause {
                Cause::HostKey(e) => host_key_fix(e),
                Cause::Certificate(Some(peer)) => certificate_fix(peer),
                _ if at.transport == "SSH" => format!(
                    "check that the host's OpenSSH server is what listens on {} ({OPENSSH_DOC})",
                    at.address
                ),
                _ => format!(
                    "check that the host's WinRM HTTPS listener is what listens on {} \
                     ({WINRM_DOC})",
                    at.address
                ),
            };
            report.fail(identity.probe, found(), fix);
            skip_all(report, &["authentication"], identity.probe);
            return Some(identity.probe);
        }
    }

    if passed(steps.authenticated.is_some()) {
        let how = steps
            .authenticated
            .map(|m| format!(" by {m}"))
            .unwrap_or_default();
        report.ok("authentication", format!("as '{}'{how}", at.user));
        None
    } else {
        let fix = if at.transport == "SSH" {
            "check username and password or private_key; an administrator's public key \
             belongs in C:\\ProgramData\\ssh\\administrators_authorized_keys, readable only by \
             Administrators and SYSTEM (docs/hyperv-ext.md, 'Enabling the OpenSSH server')"
        } else {
            "check username (user, HOST\\user, DOMAIN\\user or user@domain) and password; a \
             local administrator other than the built-in one also needs \
             LocalAccountTokenFilterPolicy=1 (docs/hyperv-ext.md, 'Choosing the transport')"
        };
        report.fail("authentication", found(), fix);
        Some("authentication")
    }
}

/// The port of `host:port`.
fn port_of(address: &str) -> &str {
    address.rsplit(':').next().unwrap_or_default()
}

fn skip_all(report: &mut Report, probes: &[&str], after: &str) {
    for probe in probes {
        report.skip(*probe, not_probed(Some(after)));
    }
}

/// What in a transport's failure decides the fix.
enum Cause<'e> {
    /// The host's name did not resolve.
    Resolve,
    /// The SSH host key was refused.
    HostKey(&'e HostKeyError),
    /// The TLS handshake failed, with what the server presented (if it got that far).
    Certificate(Option<&'e ext_tls::PeerCertificate>),
    Other,
}

impl<'e> Cause<'e> {
    fn of(error: &'e TransportError) -> Cause<'e> {
        let inner = error.error();
        if let Some(ssh) = inner.downcast_ref::<SshFailure>() {
            return match &ssh.error {
                SshError::Resolve { .. } => Cause::Resolve,
                SshError::HostKey(e) => Cause::HostKey(e),
                _ => Cause::Other,
            };
        }
        if let Some(winrm) = inner.downcast_ref::<WinrmFailure>() {
            return match &winrm.error.kind {
                winrm::ErrorKind::Connect(ConnectError::Resolve { .. }) => Cause::Resolve,
                winrm::ErrorKind::Tls(failure) => Cause::Certificate(failure.peer.as_ref()),
                _ => Cause::Other,
            };
        }
        Cause::Other
    }
}

fn host_key_fix(error: &HostKeyError) -> String {
    match (error, error.presented()) {
        (HostKeyError::KnownHostsFile { .. }, _) => {
            "fix or replace the known_hosts file, or pin host_key_fingerprint instead".into()
        }
        (HostKeyError::Revoked { .. }, _) => {
            "find out why the key was revoked before trusting this host again".into()
        }
        (HostKeyError::Mismatch { .. } | HostKeyError::Changed { .. }, Some(fingerprint)) => {
            format!(
                "if the host was reinstalled or its key renewed, {}",
                HOST_KEY.compare_and_pin(fingerprint.as_str())
            )
        }
        (_, Some(fingerprint)) => HOST_KEY.compare_and_pin(fingerprint.as_str()),
        (_, None) => "set host_key_fingerprint to the host's key fingerprint".into(),
    }
}

fn certificate_fix(peer: &ext_tls::PeerCertificate) -> String {
    let fingerprint = peer.fingerprint.to_string();
    match &peer.refusal {
        Some(ext_tls::Refusal::NotPinned { .. }) => format!(
            "if the host's WinRM certificate was renewed, {}",
            CERTIFICATE.compare_and_pin(&fingerprint)
        ),
        _ => format!(
            "{}; or set ca_certificate to the CA that issued it (a PEM file, or the PEM itself)",
            CERTIFICATE.compare_and_pin(&fingerprint)
        ),
    }
}

fn identity_row(
    report: &mut Report,
    identity: &Identity,
    fingerprint: Option<&str>,
    trust: &Trust,
) -> Verdict {
    let probe = identity.probe;
    let Some(fingerprint) = fingerprint else {
        return report.ok(probe, "the server passed the check its settings choose");
    };
    match trust {
        Trust::Pinned => report.ok(probe, format!("{fingerprint} matches {}", identity.pin)),
        Trust::Listed { path } => report.ok(
            probe,
            format!("{fingerprint} is listed in {}", path.display()),
        ),
        Trust::FirstUse { path, recorded } => report.warn(
            probe,
            format!(
                "{fingerprint} is not in {}; host_key_check=accept-new trusts it on first use \
                 and records it there{}",
                path.display(),
                if *recorded {
                    ""
                } else {
                    " at the first action (check records nothing)"
                }
            ),
            identity.compare_and_pin(fingerprint),
        ),
        Trust::Unverified => report.warn(
            probe,
            format!(
                "not verified ({}); the server presented {fingerprint}",
                identity.off
            ),
            identity.compare_and_pin(fingerprint),
        ),
        Trust::Issued { by } => report.ok(
            probe,
            format!("{fingerprint}, valid for this host name and issued by {by}"),
        ),
    }
}

/// A command line that could not be built: nothing was sent, nothing is known.
fn command_row(report: &mut Report, at: &Place, error: &CommandError) {
    report.fail(
        "tcp",
        format!("not connected: {error}"),
        "shorten the paths in the details",
    );
    skip_all(
        report,
        &[at.identity.probe, "authentication", "powershell"],
        "tcp",
    );
}

fn powershell_row(report: &mut Report, facts: &HostFacts) -> Verdict {
    let version = &facts.powershell;
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) >= (5, 1) {
        report.ok(
            "powershell",
            format!("Windows PowerShell {version}, running as {}", facts.user),
        )
    } else {
        report.warn(
            "powershell",
            format!(
                "PowerShell {version}: hyperv-ext's scripts are written for Windows PowerShell \
                 5.1"
            ),
            "use Windows Server 2016 or later, or install Windows Management Framework 5.1",
        )
    }
}

/// The rows about the host's objects: module, rights, switch, folders, template and ISO.
fn host_rows(report: &mut Report, local: &Local, remote: &Remote) {
    let facts = match remote {
        Remote::Facts(facts) => Some(facts.as_ref()),
        Remote::NotProbed(why) => {
            report.skip("hyper-v module", why.clone());
            report.skip("hyper-v rights", why.clone());
            None
        }
    };
    let vmhost = facts.and_then(|f| match &f.vmhost {
        Some(Probed::Found(host)) => Some(host),
        _ => None,
    });
    if let Some(facts) = facts {
        module_and_rights_rows(report, facts);
    }
    let unprobed = |why: &str| match remote {
        Remote::NotProbed(reason) => reason.clone(),
        Remote::Facts(_) => format!("not probed: {why}"),
    };

    // The switch: known only with Hyper-V rights.
    let switches = facts.and_then(|f| f.switches.as_deref());
    match (&local.switch, switches) {
        (Setting::Set(name), Some(names)) => {
            switch_row(report, name, names);
        }
        (Setting::Set(_), None) => {
            report.skip(
                settings::SWITCH.key,
                unprobed("listing the switches needs Hyper-V rights"),
            );
        }
        (setting, names) => {
            let known = names
                .filter(|n| !n.is_empty())
                .map(|n| format!(": the host has {}", quoted_list(n)))
                .unwrap_or_default();
            unset_or_invalid(
                report,
                settings::SWITCH.key,
                setting,
                &format!("set network_switch to the virtual switch VM NICs connect to{known}"),
            );
        }
    }

    let user = facts.map_or("the account", |f| f.user.as_str());
    for (setting, key, folder, default) in [
        (
            &local.vhd_path,
            settings::VHD_PATH.key,
            facts.and_then(|f| f.vhd_path.as_ref()),
            vmhost.map(|h: &VmHost| h.vhd_path.as_str()),
        ),
        (
            &local.vm_path,
            settings::VM_PATH.key,
            facts.and_then(|f| f.vm_path.as_ref()),
            vmhost.map(|h: &VmHost| h.vm_path.as_str()),
        ),
    ] {
        let default = default
            .filter(|d| !d.is_empty())
            .map(|d| format!(" (the host's default is '{d}')"))
            .unwrap_or_default();
        match (setting, folder) {
            (Setting::Set(path), Some(folder)) => {
                folder_row(report, key, path, folder, user, &default);
            }
            (Setting::Set(_), None) => {
                report.skip(key, unprobed("the folder was not looked at"));
            }
            (setting, _) => {
                unset_or_invalid(
                    report,
                    key,
                    setting,
                    &format!("set {key} to a folder on the host{default}"),
                );
            }
        }
    }

    for (setting, key, iso, exists) in [
        (
            &local.template,
            settings::TEMPLATE_PATH.key,
            false,
            facts.and_then(|f| f.template),
        ),
        (
            &local.iso,
            settings::ISO_PATH.key,
            true,
            facts.and_then(|f| f.iso),
        ),
    ] {
        if local.iso_install == Some(!iso) {
            report.skip(
                key,
                format!(
                    "template_type={} does not use it",
                    if iso { "template" } else { "iso" }
                ),
            );
            continue;
        }
        match (setting, exists) {
            (Setting::Set(path), Some(true)) => {
                report.ok(key, format!("{path} exists on the host"));
            }
            (Setting::Set(path), Some(false)) => {
                report.fail(
                    key,
                    format!("{path} does not exist on the host, or {user} cannot read it"),
                    format!(
                        "put the {} there or correct {key}; with key authentication a UNC path \
                         (\\\\server\\share) cannot be reached, use a local path",
                        if iso { "ISO" } else { "template disk" }
                    ),
                );
            }
            (Setting::Set(_), None) => {
                report.skip(key, unprobed("the file was not looked at"));
            }
            (Setting::Unset, _) => {
                report.skip(
                    key,
                    format!(
                        "{key} is not in this payload: it is a template detail, sent with a \
                         deploy; to probe one from a host, pass {key} as a parameter of check"
                    ),
                );
            }
            (Setting::Invalid(problem), _) => {
                report.fail(key, problem.clone(), format!("correct {key}"));
            }
        }
    }
}

fn module_and_rights_rows(report: &mut Report, facts: &HostFacts) {
    let Some(version) = &facts.module else {
        report.fail(
            "hyper-v module",
            "the Hyper-V PowerShell module is not installed on the host",
            "install it: Install-WindowsFeature -Name Hyper-V-PowerShell (Windows Server), or \
             Enable-WindowsOptionalFeature -Online -FeatureName \
             Microsoft-Hyper-V-Management-PowerShell (Windows client)",
        );
        report.skip("hyper-v rights", not_probed(Some("hyper-v module")));
        return;
    };
    report.ok("hyper-v module", format!("Hyper-V module {version}"));
    let groups = match (facts.hyperv_admin, facts.admin) {
        (true, true) => "in Hyper-V Administrators and Administrators (elevated)",
        (true, false) => "in Hyper-V Administrators",
        (false, true) => "in Administrators (elevated)",
        (false, false) => "in neither Hyper-V Administrators nor Administrators",
    };
    match &facts.vmhost {
        Some(Probed::Found(host)) => report.ok(
            "hyper-v rights",
            format!(
                "Get-VMHost answers for {}; {} is {groups}",
                host.name, facts.user
            ),
        ),
        Some(Probed::Failed { error }) => report.fail(
            "hyper-v rights",
            format!("Get-VMHost failed for {} ({groups}): {error}", facts.user),
            format!(
                "add '{}' to Hyper-V Administrators (on the host: Add-LocalGroupMember -SID \
                 S-1-5-32-578 -Member '{}') or to Administrators, then run check again",
                facts.user, facts.user
            ),
        ),
        None => report.skip("hyper-v rights", "Get-VMHost was not run"),
    };
}

fn switch_row(report: &mut Report, name: &str, names: &[String]) -> Verdict {
    const KEY: &str = settings::SWITCH.key;
    let exact = names.iter().filter(|n| *n == name).count();
    match exact {
        1 => report.ok(KEY, format!("the host has a virtual switch named '{name}'")),
        0 if names.is_empty() => report.fail(
            KEY,
            format!("no virtual switch is named '{name}': the host has no virtual switch"),
            "create one on the host (New-VMSwitch) and set network_switch to its name",
        ),
        0 => {
            let case = names
                .iter()
                .find(|n| n.eq_ignore_ascii_case(name))
                .map(|n| format!(" ('{n}' differs only in case: names are matched exactly)"))
                .unwrap_or_default();
            report.fail(
                KEY,
                format!(
                    "no virtual switch is named '{name}'{case}; the host has {}",
                    quoted_list(names)
                ),
                "set network_switch to one of them, exactly as Get-VMSwitch shows it",
            )
        }
        many => report.fail(
            KEY,
            format!("{many} virtual switches are named '{name}'"),
            "rename all but one (Rename-VMSwitch): create cannot tell them apart",
        ),
    }
}

fn folder_row(
    report: &mut Report,
    key: &str,
    path: &str,
    folder: &Folder,
    user: &str,
    default: &str,
) -> Verdict {
    if !folder.exists {
        return report.fail(
            key,
            format!("{path} is not a folder on the host, or {user} cannot see it"),
            format!(
                "create it (New-Item -ItemType Directory -Path '{path}') or set {key} to an \
                 existing folder{default}"
            ),
        );
    }
    let grant = format!("grant Modify on it: icacls '{path}' /grant '{user}:(OI)(CI)M'");
    match &folder.acl {
        Some(Probed::Found(acl)) => {
            let missing = acl.missing_for_vms();
            let held = format!(
                "its ACL gives {user} {} on the folder and {} on new files",
                rights::describe(acl.folder_rights()),
                rights::describe(acl.file_rights())
            );
            if missing.is_empty() {
                report.ok(
                    key,
                    format!("{path} exists and {user} may create and delete files in it ({held})"),
                )
            } else {
                report.fail(
                    key,
                    format!(
                        "{path} exists but {user} may not {} there ({held})",
                        missing.join(", ")
                    ),
                    grant,
                )
            }
        }
        Some(Probed::Failed { error }) => report.warn(
            key,
            format!("{path} exists, but its ACL cannot be read: {error}"),
            grant,
        ),
        None => report.warn(key, format!("{path} exists; its ACL was not read"), grant),
    }
}

/// A detail the set-up needs that is missing or unusable.
fn unset_or_invalid(report: &mut Report, key: &str, setting: &Setting, fix: &str) -> Verdict {
    match setting {
        Setting::Invalid(problem) => report.fail(key, problem.clone(), fix),
        Setting::Unset | Setting::Set(_) => report.fail(
            key,
            format!(
                "{key} is not set (host, cluster mapping or extension detail): create needs it"
            ),
            fix,
        ),
    }
}

fn quoted_list(names: &[String]) -> String {
    let shown: Vec<String> = names.iter().take(20).map(|n| format!("'{n}'")).collect();
    let more = names.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use ext_sdk::{Action, Deadline};
    use hyperv_protocol::Script;
    use serde_json::{Value, json};

    use super::*;
    use crate::fake::{Answer, FakeHost};
    use crate::transport::Sent;

    fn payload(host: Value, parameters: Value) -> Value {
        json!({"externaldetails": {"host": host}, "parameters": parameters})
    }

    fn host_details() -> Value {
        json!({"url": "hv1.example", "username": "cloud", "password": "pw-1234",
               "host_key_fingerprint": "SHA256:rR6iUlzF3uUDWWx6mhOqgnuP3WdqUWW2Yl5chxZ8Vik",
               "network_switch": "External", "vhd_path": "D:\\VHD", "vm_path": "D:\\VMs",
               "log_file": "off"})
    }

    fn parameters() -> Value {
        json!({"template_path": "D:\\T\\u.vhdx", "iso_path": "D:\\ISO\\u.iso"})
    }

    const MODIFY: i64 = 0x13_01BF;

    fn facts() -> Value {
        let folder = json!({"exists": true, "acl": {"allow": MODIFY, "deny": 0,
                                                   "file_allow": MODIFY, "file_deny": 0}});
        json!({"powershell": "5.1.20348.2400", "user": "HV1\\cloud", "hyperv_admin": true,
               "admin": false, "module": "2.0.0.0",
               "vmhost": {"name": "HV1", "vhd_path": "C:\\VHD", "vm_path": "C:\\VM"},
               "switches": ["External", "Internal"], "vhd_path": folder, "vm_path": folder,
               "template": true, "iso": true})
    }

    fn connected() -> Vec<Step> {
        vec![
            Step::Connected {
                peer: Some("192.0.2.10:22".parse().unwrap()),
            },
            Step::ServerTrusted {
                fingerprint: Some("SHA256:rR6iUlzF3uUDWWx6mhOqgnuP3WdqUWW2Yl5chxZ8Vik".into()),
                trust: Trust::Pinned,
            },
            Step::Authenticated { method: "password" },
        ]
    }

    /// Runs check against `host`; the rows as (probe, result) and the whole table.
    fn run(payload: &Value, host: &FakeHost) -> (Vec<(String, String)>, Vec<Value>) {
        let inv = Invocation {
            id: "0a1b2c3d".into(),
            action: Action::parse("check"),
            payload: Payload::from_slice(payload.to_string().as_bytes(), "test").unwrap(),
            payload_path: PathBuf::from("check.json"),
            deadline: Deadline::after(Duration::from_secs(60)),
        };
        let doc = super::super::dispatch(&inv, host).unwrap().to_json();
        assert_eq!(doc["printmessage"], "true", "{doc}");
        let rows = doc["message"].as_array().unwrap().clone();
        let verdicts = rows
            .iter()
            .map(|r| {
                (
                    r["probe"].as_str().unwrap().to_owned(),
                    r["result"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        (verdicts, rows)
    }

    fn row<'a>(rows: &'a [Value], probe: &str) -> &'a Value {
        rows.iter().find(|r| r["probe"] == probe).unwrap()
    }

    #[test]
    fn a_healthy_host_is_all_ok_in_one_read_only_run() {
        let host = FakeHost::answering([Answer::Done(facts())]).with_steps(connected());
        let (verdicts, rows) = run(&payload(host_details(), parameters()), &host);
        let expected = [
            ("tcp", "ok"),
            ("host key", "ok"),
            ("authentication", "ok"),
            ("powershell", "ok"),
            ("hyper-v module", "ok"),
            ("hyper-v rights", "ok"),
            ("network_switch", "ok"),
            ("vhd_path", "ok"),
            ("vm_path", "ok"),
            ("template_path", "ok"),
            ("iso_path", "ok"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(p, r)| ((*p).to_owned(), (*r).to_owned()))
            .collect();
        // The summary first, then the log file (this process's environment may name one) and
        // the details (none misspelt) last.
        assert_eq!(verdicts[0].0, "summary");
        assert_eq!(verdicts[verdicts.len() - 2].0, "log_file");
        assert_eq!(
            verdicts[verdicts.len() - 1],
            ("details".to_owned(), "ok".to_owned())
        );
        assert_eq!(verdicts[1..verdicts.len() - 2], expected[..]);
        assert_eq!(host.scripts(), [Script::Check]);
        assert_eq!(host.may_record(), [false], "check records nothing");
        let sent = &host.received()[0].data;
        assert_eq!(
            (&sent["vhd_path"], &sent["template"], &sent["iso"]),
            (
                &json!("D:\\VHD"),
                &json!("D:\\T\\u.vhdx"),
                &json!("D:\\ISO\\u.iso")
            )
        );
        assert_eq!(
            row(&rows, "tcp")["found"],
            "reached hv1.example:22 (192.0.2.10:22) for SSH; address from url 'hv1.example' \
             (host detail) and the default port"
        );
        for r in &rows {
            assert!(r.to_string().is_ascii(), "{r}");
        }
    }

    #[test]
    fn each_broken_host_object_is_its_own_failed_row() {
        let mut broken = facts();
        broken["switches"] = json!(["external", "Internal"]);
        broken["vhd_path"] = json!({"exists": false});
        broken["vm_path"]["acl"] = json!({"allow": 0x12_00A9, "deny": 0,
                                          "file_allow": 0x12_00A9, "file_deny": 0});
        broken["template"] = json!(false);
        broken["powershell"] = json!("4.0");
        let host = FakeHost::answering([Answer::Done(broken)]).with_steps(connected());
        let (verdicts, rows) = run(&payload(host_details(), parameters()), &host);
        let result = |probe: &str| {
            verdicts
                .iter()
                .find(|(p, _)| p == probe)
                .map(|(_, r)| r.as_str())
                .unwrap()
        };
        assert_eq!(result("powershell"), "warn");
        for probe in [
            "network_switch",
            "vhd_path",
            "vm_path",
            "template_path",
            "summary",
        ] {
            assert_eq!(result(probe), "fail", "{probe}: {rows:?}");
        }
        assert_eq!(result("iso_path"), "ok");
        let switch = row(&rows, "network_switch");
        assert!(
            switch["found"]
                .as_str()
                .unwrap()
                .contains("('external' differs only in case"),
            "{switch}"
        );
        let vhd = row(&rows, "vhd_path");
        assert!(
            vhd["fix"]
                .as_str()
                .unwrap()
                .contains("the host's default is 'C:\\VHD'"),
            "{vhd}"
        );
        let vm = row(&rows, "vm_path");
        assert!(
            vm["found"]
                .as_str()
                .unwrap()
                .contains("may not create files (CreateFiles)")
                && vm["fix"]
                    .as_str()
                    .unwrap()
                    .contains("icacls 'D:\\VMs' /grant 'HV1\\cloud:(OI)(CI)M'"),
            "{vm}"
        );

        // No module: rights and the switch cannot be probed; the folders still can.
        let mut no_module = facts();
        no_module["module"] = Value::Null;
        no_module["vmhost"] = Value::Null;
        no_module["switches"] = Value::Null;
        let host = FakeHost::answering([Answer::Done(no_module)]).with_steps(connected());
        let (verdicts, _) = run(&payload(host_details(), parameters()), &host);
        let get = |probe: &str| verdicts.iter().find(|(p, _)| p == probe).unwrap().1.clone();
        assert_eq!(get("hyper-v module"), "fail");
        assert_eq!(get("hyper-v rights"), "skip");
        assert_eq!(get("network_switch"), "skip");
        assert_eq!(get("vhd_path"), "ok");
    }

    #[test]
    fn a_failed_connection_skips_what_it_hides_and_the_table_still_comes_back() {
        let host = FakeHost::answering([Answer::Broken(
            Sent::No,
            "cannot connect to hv1.example:22: Connection refused".into(),
        )]);
        let (verdicts, rows) = run(&payload(host_details(), parameters()), &host);
        let skipped: Vec<&str> = verdicts
            .iter()
            .filter(|(_, r)| r == "skip")
            .map(|(p, _)| p.as_str())
            .collect();
        assert_eq!(
            skipped,
            [
                "host key",
                "authentication",
                "powershell",
                "hyper-v module",
                "hyper-v rights",
                "network_switch",
                "vhd_path",
                "vm_path",
                "template_path",
                "iso_path"
            ]
        );
        assert_eq!(row(&rows, "tcp")["result"], "fail");
        assert_eq!(row(&rows, "vhd_path")["found"], "not probed: 'tcp' failed");

        // Authenticated, then the session broke: powershell fails, the host rows skip.
        let host = FakeHost::answering([Answer::Broken(Sent::Maybe, "deadline reached".into())])
            .with_steps(connected());
        let (verdicts, _) = run(&payload(host_details(), parameters()), &host);
        assert!(verdicts.contains(&("authentication".into(), "ok".into())));
        assert!(verdicts.contains(&("powershell".into(), "fail".into())));
        assert!(verdicts.contains(&("network_switch".into(), "skip".into())));
    }

    #[test]
    fn missing_details_fail_their_rows_without_hiding_the_others() {
        // No url: nothing can connect.
        let mut no_url = host_details();
        no_url.as_object_mut().unwrap().remove("url");
        let host_ = FakeHost::answering([]);
        let (verdicts, rows) = run(&payload(no_url, json!({})), &host_);
        assert!(host_.scripts().is_empty());
        assert_eq!(verdicts[1], ("connection details".into(), "fail".into()));
        assert!(
            row(&rows, "connection details")["found"]
                .as_str()
                .unwrap()
                .contains("'url'")
        );

        // No switch, no template details: the switch fails, template and ISO do not apply.
        let mut no_switch = host_details();
        no_switch.as_object_mut().unwrap().remove("network_switch");
        let fake = FakeHost::answering([Answer::Done(facts())]).with_steps(connected());
        let (verdicts, rows) = run(&payload(no_switch, json!({})), &fake);
        assert!(verdicts.contains(&("network_switch".into(), "fail".into())));
        assert!(
            row(&rows, "network_switch")["fix"]
                .as_str()
                .unwrap()
                .contains("the host has 'External', 'Internal'")
        );
        assert!(verdicts.contains(&("template_path".into(), "skip".into())));
        assert_eq!(fake.received()[0].data.get("template"), None);

        // Only the host key detail is missing: the check still connects to show the key.
        let mut no_key = host_details();
        no_key
            .as_object_mut()
            .unwrap()
            .remove("host_key_fingerprint");
        // Without an SSH-only detail the host would be reached over WinRM.
        no_key["transport"] = json!("ssh");
        let fake = FakeHost::answering([Answer::Broken(Sent::No, "no host key detail".into())])
            .with_steps(connected().into_iter().take(1));
        let (verdicts, _) = run(&payload(no_key, parameters()), &fake);
        assert_eq!(fake.scripts(), [Script::Check]);
        assert!(verdicts.contains(&("tcp".into(), "ok".into())));
        assert!(verdicts.contains(&("host key".into(), "fail".into())));
        assert!(verdicts.contains(&("authentication".into(), "skip".into())));
    }

    #[test]
    fn template_type_says_which_of_template_and_iso_applies() {
        let mut p = payload(host_details(), parameters());
        p["externaldetails"]["virtualmachine"] = json!({"template_type": "iso"});
        let fake = FakeHost::answering([Answer::Done(facts())]).with_steps(connected());
        let (verdicts, rows) = run(&p, &fake);
        assert!(verdicts.contains(&("template_path".into(), "skip".into())));
        assert!(verdicts.contains(&("iso_path".into(), "ok".into())));
        assert_eq!(
            row(&rows, "template_path")["found"],
            "template_type=iso does not use it"
        );
        assert_eq!(fake.received()[0].data.get("template"), None);
    }

    #[test]
    fn a_host_trusted_without_verification_or_on_first_use_is_a_warning_with_the_pin() {
        let fp = "SHA256:rR6iUlzF3uUDWWx6mhOqgnuP3WdqUWW2Yl5chxZ8Vik";
        for trust in [
            Trust::Unverified,
            Trust::FirstUse {
                path: "/home/cloud/.ssh/known_hosts".into(),
                recorded: false,
            },
        ] {
            let mut steps = connected();
            steps[1] = Step::ServerTrusted {
                fingerprint: Some(fp.into()),
                trust,
            };
            let fake = FakeHost::answering([Answer::Done(facts())]).with_steps(steps);
            let (_, rows) = run(&payload(host_details(), parameters()), &fake);
            let key = row(&rows, "host key");
            assert_eq!(key["result"], "warn", "{key}");
            assert!(
                key["fix"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("host_key_fingerprint={fp}")),
                "{key}"
            );
        }
    }
}
