//! Every operator- and template-controlled setting, declared once with where it may be set,
//! and read into typed values. Invalid values are reported together by the SDK's
//! `DetailReader`, before anything connects anywhere.

use std::path::PathBuf;
use std::time::Duration;

use ext_sdk::{Detail, DetailReader, Kind, Level, Payload, Secret};

use crate::key_material;
use crate::ssh::{Credential, Fingerprint, HostKeyPolicy, PrivateKey, Target};
use crate::validate;
use crate::winrm::WinrmTarget;

const HOST: &[Level] = &[Level::Host];
/// Settings that are often the same for every host may also sit on the cluster mapping or
/// the extension; the host's value wins.
const SHARED: &[Level] = &[Level::Host, Level::ResourceMap, Level::Extension];
/// Template, service offering or instance details.
const INSTANCE: &[Level] = &[Level::VirtualMachine];
/// Where `proxmox-ext` reads the same key (`tls_fingerprint`).
const HOST_OR_EXTENSION: &[Level] = &[Level::Host, Level::Extension];

/// The actions that do not reach the host (the others all read the connection details).
const LOCAL: &[&str] = &["prepare", "getconsole"];
const CREATE: &[&str] = &["create"];

/// `transport`'s values.
pub const TRANSPORTS: &[&str] = &["winrm", "ssh"];
/// `winrm_auth`'s values (`negotiate` is taken for NTLM).
pub const WINRM_AUTHS: &[&str] = &["ntlm", "negotiate", "basic"];
/// `host_key_check`'s values (`yes` and `no` as OpenSSH's StrictHostKeyChecking spells them).
pub const HOST_KEY_CHECKS: &[&str] = &["strict", "accept-new", "off", "yes", "no"];
/// `stop_mode`'s values.
pub const STOP_MODES: &[&str] = &["graceful-then-turnoff", "graceful", "turnoff"];
/// `template_type`'s values.
pub const TEMPLATE_TYPES: &[&str] = &["template", "iso"];
/// `generation`'s values.
pub const GENERATIONS: &[&str] = &["1", "2"];
/// `secure_boot`'s values (`true` and `false` too).
pub const SECURE_BOOTS: &[&str] = &["off", "on", "on-uefi-ca", "true", "false"];

pub const TRANSPORT: Detail = Detail::new("transport", SHARED)
    .kind(Kind::Choice(TRANSPORTS))
    .default_described(
        "ssh when an SSH-only detail (port, private_key, host_key_fingerprint, known_hosts, \
         host_key_check) is set, else winrm (as upstream's hyperv.py)",
    )
    .used_by_all_but(LOCAL)
    .hint("how the host is reached: WinRM over HTTPS, or PowerShell over SSH");
pub const URL: Detail = Detail::new("url", HOST)
    .kind(Kind::Format(
        "host, host:port or an https URL (IPv6 in brackets)",
    ))
    .required()
    .used_by_all_but(LOCAL)
    .hint(
        "the Hyper-V host: for WinRM its name or address (https://<url>:5986/wsman, or a full \
         https URL), for SSH host or host:port",
    );
pub const PORT: Detail = Detail::new("port", SHARED)
    .kind(Kind::Number)
    .default_value("22")
    .used_by_all_but(LOCAL)
    .hint("SSH port, when url names none (for WinRM the port goes in url)");
pub const USERNAME: Detail = Detail::new("username", SHARED)
    .required()
    .used_by_all_but(LOCAL)
    .hint("user with Hyper-V rights (member of Hyper-V Administrators or Administrators)");
pub const PASSWORD: Detail = Detail::new("password", SHARED)
    .secret()
    .required_when("for WinRM; for SSH unless private_key is set")
    .used_by_all_but(LOCAL)
    .hint("the password (for SSH, or set private_key instead)");
pub const VERIFY_TLS_CERTIFICATE: Detail = Detail::new("verify_tls_certificate", SHARED)
    .kind(Kind::Bool)
    .default_value("true")
    .used_by_all_but(LOCAL)
    .hint(
        "false: WinRM without checking the host's certificate (as upstream; ca_certificate is \
         then not used; logged as a warning on every action)",
    );
pub const CA_CERTIFICATE: Detail = Detail::new("ca_certificate", SHARED)
    .kind(Kind::Format("PEM file path, or the PEM itself"))
    .default_described("the system trust store")
    .used_by_all_but(LOCAL)
    .hint(
        "PEM file on the management server, or the PEM itself, of the CA that signed the host's \
         WinRM certificate, or of that certificate itself",
    );
/// The same key and levels as `proxmox-ext`'s; `certificate_fingerprint` was its name in the
/// first WinRM builds.
pub const TLS_FINGERPRINT: Detail = Detail::new("tls_fingerprint", HOST_OR_EXTENSION)
    .alias(&["certificate_fingerprint"])
    .kind(Kind::Format("SHA-256 fingerprint, AB:CD:...:EF"))
    .used_by_all_but(LOCAL)
    .hint(
        "SHA-256 fingerprint of the host's WinRM certificate, AB:CD:...:EF (as the error of a \
         refused certificate prints it); only that certificate is trusted; wins over the two above",
    );
pub const WINRM_AUTH: Detail = Detail::new("winrm_auth", SHARED)
    .kind(Kind::Choice(WINRM_AUTHS))
    .default_value("ntlm")
    .used_by_all_but(LOCAL)
    .hint("how WinRM authenticates: NTLM, or Basic (over HTTPS only)");
/// A path on the management server, or the key itself; only key material is a secret (in
/// whatever form it was pasted, usable or not: `key_material`), so a path stays readable in
/// errors.
pub const PRIVATE_KEY: Detail = Detail::new("private_key", SHARED)
    .secret_when(key_material::is_key_material)
    .kind(Kind::Format("path, or a PEM key"))
    .used_by_all_but(LOCAL)
    .hint("path of an OpenSSH private key on the management server, or the key itself (PEM; a secret then)");
pub const PRIVATE_KEY_PASSPHRASE: Detail = Detail::new("private_key_passphrase", SHARED)
    .secret()
    .used_by_all_but(LOCAL)
    .hint("the passphrase of private_key, when it has one");
pub const HOST_KEY_FINGERPRINT: Detail = Detail::new("host_key_fingerprint", HOST)
    .kind(Kind::Format("SHA256:... fingerprint"))
    .required_when("unless known_hosts or host_key_check=accept-new is set")
    .used_by_all_but(LOCAL)
    .hint(
        "the host's SSH key fingerprint, SHA256:..., from 'ssh-keygen -lf' of its key; or set \
         known_hosts, or host_key_check=accept-new to trust the key on first use",
    );
pub const KNOWN_HOSTS: Detail = Detail::new("known_hosts", SHARED)
    .kind(Kind::Path)
    .default_described("~/.ssh/known_hosts with host_key_check=accept-new")
    .used_by_all_but(LOCAL)
    .hint("an OpenSSH known_hosts file on the management server");
pub const HOST_KEY_CHECK: Detail = Detail::new("host_key_check", SHARED)
    .kind(Kind::Choice(HOST_KEY_CHECKS))
    .default_value("strict")
    .used_by_all_but(LOCAL)
    .hint("strict, accept-new (trust on first use, recorded in known_hosts) or off");
pub const SWITCH: Detail = Detail::new("network_switch", SHARED)
    .alias(&["network_bridge"])
    .exact()
    .required()
    .used_by(CREATE)
    .hint("the Hyper-V virtual switch VM NICs connect to (exact name)");
pub const VHD_PATH: Detail = Detail::new("vhd_path", SHARED)
    .kind(Kind::Format("Windows path"))
    .required()
    .used_by(&["create", "delete"])
    .hint("folder for VM disks on the host, e.g. D:\\Hyper-V\\Virtual Hard Disks");
pub const VM_PATH: Detail = Detail::new("vm_path", SHARED)
    .kind(Kind::Format("Windows path"))
    .required()
    .used_by(CREATE)
    .hint("folder for VM configurations on the host, e.g. D:\\Hyper-V");
pub const STOP_MODE: Detail = Detail::new("stop_mode", SHARED)
    .kind(Kind::Choice(STOP_MODES))
    .default_value("graceful-then-turnoff")
    .used_by(&["stop", "reboot"])
    .hint("how stop and reboot end a VM: ask the guest and power off if it does not stop, only ask, or only power off");
pub const STOP_TIMEOUT: Detail = Detail::new("stop_timeout", SHARED)
    .kind(Kind::Number)
    .default_value("300")
    .used_by(&["stop", "reboot"])
    .hint("seconds a graceful shutdown may take");
/// The actions that find no VM by name (every other one, `statuses` included, reads the next
/// two).
const NO_VM_LOOKUP: &[&str] = &["prepare", "getconsole", "create", "check"];
pub const ADOPT_UNMARKED_VMS: Detail =
    Detail::new("adopt_unmarked_vms", &[Level::Host, Level::Extension])
        .kind(Kind::Bool)
        .default_value("false")
        .used_by_all_but(NO_VM_LOOKUP)
        .hint(
            "true to adopt a VM named exactly as the instance that has no ownership line (made \
             by upstream's hyperv.py)",
        );
pub const STATE_DIR: Detail = Detail::new("state_dir", SHARED)
    .kind(Kind::Path)
    .default_described(
        "HYPERV_EXT_STATE_DIR, else hyperv-ext in the home of the management server's user \
         ($HOME/hyperv-ext: /var/lib/cloudstack/management/hyperv-ext on Debian and Ubuntu, \
         /var/cloudstack/management/hyperv-ext on EL), else a private <tmp>/hyperv-ext-<uid>",
    )
    .used_by_all_but(NO_VM_LOOKUP)
    .hint(
        "directory on the management server for the UUID each instance name came with \
         (statuses needs it)",
    );

pub const TEMPLATE_TYPE: Detail = Detail::new("template_type", INSTANCE)
    .kind(Kind::Choice(TEMPLATE_TYPES))
    .default_described("iso when only iso_path is set, else template")
    .used_by(CREATE)
    .hint("whether create copies a template disk or installs from an ISO");
pub const GENERATION: Detail = Detail::new("generation", INSTANCE)
    .kind(Kind::Choice(GENERATIONS))
    .default_value("1")
    .used_by(CREATE)
    .hint("Hyper-V VM generation, 1 or 2");
/// The template disk and the ISO: template details in a deploy; for a check run on a host
/// (where CloudStack sends no template), parameters of the check action.
const INSTANCE_OR_CHECK: &[Level] = &[Level::VirtualMachine, Level::Parameter];
pub const TEMPLATE_PATH: Detail = Detail::new("template_path", INSTANCE_OR_CHECK)
    .kind(Kind::Format("Windows path of a .vhdx or .vhd"))
    .required_when("for template deploys")
    .used_by(&["create", "check"])
    .hint("the template disk (.vhdx or .vhd) on the host, copied for each VM (a parameter of check, which looks for it)");
pub const ISO_PATH: Detail = Detail::new("iso_path", INSTANCE_OR_CHECK)
    .kind(Kind::Format("Windows path"))
    .required_when("for ISO deploys")
    .used_by(&["create", "check"])
    .hint("the installer ISO on the host (a parameter of check, which looks for it)");
pub const VHD_SIZE_GB: Detail = Detail::new("vhd_size_gb", INSTANCE)
    .kind(Kind::Number)
    .required_when("for ISO deploys")
    .used_by(CREATE)
    .hint("size in GiB of the empty disk created for an ISO install");
pub const SECURE_BOOT: Detail = Detail::new("secure_boot", INSTANCE)
    .kind(Kind::Choice(SECURE_BOOTS))
    .default_value("off")
    .used_by(CREATE)
    .hint("off, on (Windows guests) or on-uefi-ca (Linux guests); generation 2 only");

pub const SNAPSHOT_NAME: Detail = Detail::new("snapshot_name", &[Level::Parameter])
    .alias(&["snap_name"])
    .exact()
    .required()
    .used_by(&["CreateSnapshot", "RestoreSnapshot", "DeleteSnapshot"])
    .hint("the checkpoint's name (or its id)");

/// Every detail this extension reads (the SDK's own, such as `log_file`, are in
/// [`ext_sdk::logging::DETAILS`]): what a settings reference or a typo check enumerates.
pub const DETAILS: &[Detail] = &[
    TRANSPORT,
    URL,
    PORT,
    USERNAME,
    PASSWORD,
    PRIVATE_KEY,
    PRIVATE_KEY_PASSPHRASE,
    HOST_KEY_FINGERPRINT,
    KNOWN_HOSTS,
    HOST_KEY_CHECK,
    VERIFY_TLS_CERTIFICATE,
    CA_CERTIFICATE,
    TLS_FINGERPRINT,
    WINRM_AUTH,
    SWITCH,
    VHD_PATH,
    VM_PATH,
    STOP_MODE,
    STOP_TIMEOUT,
    ADOPT_UNMARKED_VMS,
    STATE_DIR,
    TEMPLATE_TYPE,
    GENERATION,
    TEMPLATE_PATH,
    ISO_PATH,
    VHD_SIZE_GB,
    SECURE_BOOT,
    SNAPSHOT_NAME,
];

// Each key once: checked when the extension compiles.
const _: () = assert!(
    ext_sdk::details::keys_are_unique(&[DETAILS, ext_sdk::logging::DETAILS]),
    "a detail key or alias is declared twice"
);

/// The SSH port when neither `url` nor `port` names one.
pub const DEFAULT_SSH_PORT: u16 = 22;
/// How long a graceful shutdown may take when `stop_timeout` is not set.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(300);
/// The VM generation when `generation` is not set.
pub const DEFAULT_GENERATION: u8 = 1;

/// How the host is reached, by the transport its details choose.
#[derive(Debug, Clone)]
pub enum HostTarget {
    Ssh(Target),
    Winrm(WinrmTarget),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Ssh,
    Winrm,
}

/// The details only SSH reads: any of them set means SSH when `transport` is not.
const SSH_ONLY: [&Detail; 6] = [
    &PORT,
    &PRIVATE_KEY,
    &PRIVATE_KEY_PASSPHRASE,
    &HOST_KEY_FINGERPRINT,
    &KNOWN_HOSTS,
    &HOST_KEY_CHECK,
];

/// The host's transport and its settings: `transport`, or WinRM unless an SSH-only detail
/// is set (so upstream's details alone reach the host as `hyperv.py` did).
pub fn connection(d: &mut DetailReader) -> HostTarget {
    let chosen = d.optional_with(&TRANSPORT, |s| match s.to_ascii_lowercase().as_str() {
        "ssh" => Ok(Via::Ssh),
        "winrm" => Ok(Via::Winrm),
        _ => Err("expected winrm or ssh".to_owned()),
    });
    let ssh_detail = SSH_ONLY
        .iter()
        .any(|detail| d.payload().lookup(detail).is_some());
    match chosen.unwrap_or(if ssh_detail { Via::Ssh } else { Via::Winrm }) {
        Via::Ssh => HostTarget::Ssh(ssh_connection(d)),
        Via::Winrm => HostTarget::Winrm(winrm_connection(d, chosen.is_none())),
    }
}

fn winrm_connection(d: &mut DetailReader, defaulted: bool) -> WinrmTarget {
    d.require_if(true, &URL);
    let endpoint = d.optional_with(&URL, |s| {
        winrm::Endpoint::parse(s)
            .map_err(|e| e.to_string())
            .and_then(|ep| match ep.scheme {
                winrm::Scheme::Https => Ok(ep),
                winrm::Scheme::Http => Err("plain HTTP (5985) would carry the commands in \
                     clear: use the host name (https, 5986) or an https:// URL"
                    .to_owned()),
            })
    });
    if d.payload().lookup(&PORT).is_some() {
        d.reject(&PORT, "for WinRM the port goes in url (host:port)");
    }
    let username: String = d.required_with(&USERNAME, validate::username);
    let password: Secret = d.required(&PASSWORD);
    let auth = d
        .optional_with(&WINRM_AUTH, |s| match s.to_ascii_lowercase().as_str() {
            "ntlm" | "negotiate" => Ok(winrm::Auth::Ntlm),
            "basic" => Ok(winrm::Auth::Basic),
            _ => Err("expected ntlm or basic".to_owned()),
        })
        .unwrap_or(winrm::Auth::Ntlm);
    let (trust, tls) = tls_trust(d);
    // Never used: finish() fails when url was missing or invalid.
    let endpoint = endpoint.unwrap_or_else(|| winrm::Endpoint {
        scheme: winrm::Scheme::Https,
        host: String::new(),
        port: winrm::Scheme::Https.default_port(),
        path: "/wsman".into(),
    });
    WinrmTarget {
        config: winrm::Config::new(endpoint, auth, username, password, tls),
        defaulted,
        trust,
        origin: address_origin(d.payload(), true),
    }
}

/// Whom the WinRM connection trusts, by the rule `proxmox-ext` follows too
/// ([`ext_tls::Trust::from_settings`]): the pinned certificate, else nobody checked
/// (`verify_tls_certificate=false`, warned about), else the CA certificate, else the system's
/// store.
fn tls_trust(d: &mut DetailReader) -> (ext_tls::Trust, ext_tls::ClientTls) {
    let verify = d
        .optional_with(&VERIFY_TLS_CERTIFICATE, |s| {
            match s.to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => Ok(true),
                "false" | "no" | "0" => Ok(false),
                _ => Err("expected true or false".to_owned()),
            }
        })
        .unwrap_or(true);
    let pinned = d.optional_with(&TLS_FINGERPRINT, |s| {
        s.parse::<ext_tls::Fingerprint>().map_err(|e| e.to_string())
    });
    let ca = d.optional_with(&CA_CERTIFICATE, |s| {
        Ok(ext_tls::CaCertificate::from_setting(s))
    });
    let trust = ext_tls::Trust::from_settings(pinned, verify, ca);
    if trust == ext_tls::Trust::Insecure {
        log::warn!(
            "verify_tls_certificate=false: the WinRM host's certificate is not checked, so \
             the server is not authenticated and anyone on the network path can pose as it \
             and take the NTLM exchange; set tls_fingerprint (or ca_certificate) instead"
        );
    }
    match ext_tls::ClientTls::new(&trust) {
        Ok(tls) => (trust, tls),
        Err(e) => {
            d.reject(&CA_CERTIFICATE, e.message_for("it"));
            (ext_tls::Trust::Insecure, insecure())
        }
    }
}

/// A configuration that is never used: the settings have a problem, so `finish()` fails
/// before anything connects.
fn insecure() -> ext_tls::ClientTls {
    ext_tls::ClientTls::new(&ext_tls::Trust::Insecure)
        .expect("no verification needs no CA certificate")
}

/// The SSH target of the host.
fn ssh_connection(d: &mut DetailReader) -> Target {
    let (host, url_port): (String, Option<u16>) = d.required_with(&URL, validate::ssh_url);
    let port: Option<u16> = d.optional_with(&PORT, |s| {
        s.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| "expected a port number 1-65535".into())
    });
    if let (Some(a), Some(b)) = (url_port, port)
        && a != b
    {
        d.reject(&PORT, format!("differs from the port {a} given in url"));
    }
    let username: String = d.required_with(&USERNAME, validate::username);
    let password: Option<Secret> = d.optional(&PASSWORD);
    let key_given = d.payload().lookup(&PRIVATE_KEY).is_some();
    let key: Option<PrivateKey> = d.optional_with(&PRIVATE_KEY, key_material::parse);
    let passphrase: Option<Secret> = d.optional(&PRIVATE_KEY_PASSPHRASE);
    let credential = match (key, password) {
        (Some(key), _) => Credential::Key { key, passphrase },
        (None, Some(password)) => Credential::Password(password),
        // An unusable private_key is reported as such, not as a missing password.
        (None, None) if key_given => Credential::Password(Secret::default()),
        (None, None) => {
            d.require_if(true, &PASSWORD);
            Credential::Password(Secret::default())
        }
    };
    Target {
        host,
        port: url_port.or(port).unwrap_or(DEFAULT_SSH_PORT),
        origin: address_origin(d.payload(), false),
        username,
        credential,
        host_key: host_key_policy(d),
    }
}

/// Where the host's address comes from, as messages name it: `url 'hv1' (host detail) and
/// the default port`, `url 'hv1:2222' (host detail)`, or (SSH) `url 'hv1' (host detail) and
/// port '2222' (extension detail)`. Over WinRM the port is only ever in `url`.
pub fn address_origin(payload: &Payload, winrm: bool) -> String {
    let named = |detail: &Detail| {
        payload.lookup(detail).map(|f| {
            (
                format!("{} '{}' ({})", f.key, f.value, f.level.describe()),
                f.value,
            )
        })
    };
    let Some((url, value)) = named(&URL) else {
        return "no url detail".into();
    };
    let url_has_port = if winrm {
        winrm_url_names_port(&value)
    } else {
        validate::ssh_url(&value).is_ok_and(|(_, port)| port.is_some())
    };
    match named(&PORT) {
        _ if url_has_port => url,
        _ if winrm => format!("{url} and the default port"),
        Some((port, _)) => format!("{url} and {port}"),
        None => format!("{url} and the default port"),
    }
}

/// Whether a WinRM `url` (`hv1`, `hv1:5986`, `https://[::1]:5986/wsman`) names its port.
fn winrm_url_names_port(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    let port = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once("]:").map(|(_, port)| port),
        // A bare IPv6 address has colons and no port.
        None if authority.matches(':').count() == 1 => authority.rsplit_once(':').map(|p| p.1),
        None => None,
    };
    port.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Strict,
    AcceptNew,
    Off,
}

fn host_key_policy(d: &mut DetailReader) -> HostKeyPolicy {
    let pinned: Option<Fingerprint> = d.optional_with(&HOST_KEY_FINGERPRINT, Fingerprint::parse);
    let known: Option<PathBuf> = d.optional(&KNOWN_HOSTS);
    let check = d.optional_with(&HOST_KEY_CHECK, |s| match s.to_ascii_lowercase().as_str() {
        "strict" | "yes" => Ok(Check::Strict),
        "accept-new" => Ok(Check::AcceptNew),
        "off" | "no" => Ok(Check::Off),
        _ => Err("expected strict, accept-new or off".to_owned()),
    });
    match (pinned, check, known) {
        (Some(fingerprint), _, _) => HostKeyPolicy::Pinned(fingerprint),
        (None, Some(Check::Off), _) => HostKeyPolicy::Off,
        (None, Some(Check::AcceptNew), known) => {
            let path = known.or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ssh/known_hosts"))
            });
            match path {
                Some(path) => HostKeyPolicy::KnownHosts {
                    path,
                    accept_new: true,
                },
                None => {
                    d.require_if(true, &KNOWN_HOSTS);
                    HostKeyPolicy::Unset
                }
            }
        }
        (None, _, Some(path)) => HostKeyPolicy::KnownHosts {
            path,
            accept_new: false,
        },
        (None, _, None) => {
            // Never connect without a way to authenticate the server: the reader fails, and a
            // target that went on all the same would refuse every key (what `check` uses to
            // show the key to pin).
            d.require_if(true, &HOST_KEY_FINGERPRINT);
            HostKeyPolicy::Unset
        }
    }
}

/// Whether a VM without an ownership line, named exactly as the instance, may be adopted.
pub fn adopt_unmarked_vms(d: &mut DetailReader) -> bool {
    d.optional(&ADOPT_UNMARKED_VMS).unwrap_or(false)
}

/// The state directory's `state_dir` detail, when set.
pub fn state_dir(d: &mut DetailReader) -> Option<PathBuf> {
    d.optional(&STATE_DIR)
}

pub fn switch(d: &mut DetailReader) -> String {
    d.required_with(&SWITCH, validate::object_name)
}

pub fn vhd_path(d: &mut DetailReader) -> String {
    d.required_with(&VHD_PATH, validate::windows_path)
}

pub fn vm_path(d: &mut DetailReader) -> String {
    d.required_with(&VM_PATH, validate::windows_path)
}

/// How `stop` and `reboot` shut a VM down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopPolicy {
    /// Ask the guest first (`Stop-VM -Force`), within `timeout`.
    pub graceful: bool,
    /// Power off (`Stop-VM -TurnOff`) when the guest did not stop.
    pub turn_off_fallback: bool,
    pub timeout: Duration,
}

pub fn stop_policy(d: &mut DetailReader) -> StopPolicy {
    let (graceful, turn_off_fallback) = d
        .optional_with(&STOP_MODE, |s| match s.to_ascii_lowercase().as_str() {
            "graceful-then-turnoff" => Ok((true, true)),
            "graceful" => Ok((true, false)),
            "turnoff" => Ok((false, true)),
            _ => Err("expected graceful-then-turnoff, graceful or turnoff".to_owned()),
        })
        .unwrap_or((true, true));
    let timeout = d
        .optional_with(&STOP_TIMEOUT, |s| {
            s.parse::<u64>()
                .ok()
                .filter(|n| (1..=86_400).contains(n))
                .map(Duration::from_secs)
                .ok_or_else(|| "expected whole seconds, 1 to 86400".to_owned())
        })
        .unwrap_or(DEFAULT_STOP_TIMEOUT);
    StopPolicy {
        graceful,
        turn_off_fallback,
        timeout,
    }
}

/// Where a new VM's disk comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Copy this template disk.
    Template(String),
    /// Create an empty dynamic disk of `size_bytes` and attach the ISO.
    Iso { iso: String, size_bytes: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecureBoot {
    #[default]
    Off,
    /// With the default (Windows) template.
    On,
    /// With the Microsoft UEFI CA template, which Linux shims are signed with.
    OnUefiCa,
}

impl SecureBoot {
    /// `Set-VMFirmware -EnableSecureBoot` and `-SecureBootTemplate` values.
    pub fn firmware(self) -> (&'static str, Option<&'static str>) {
        match self {
            SecureBoot::Off => ("Off", None),
            SecureBoot::On => ("On", Some("MicrosoftWindows")),
            SecureBoot::OnUefiCa => ("On", Some("MicrosoftUEFICertificateAuthority")),
        }
    }
}

/// How to build a new VM (template, offering and instance details).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub generation: u8,
    pub source: Source,
    pub secure_boot: SecureBoot,
}

pub fn instance(d: &mut DetailReader) -> Instance {
    let kind = d.optional_with(&TEMPLATE_TYPE, |s| match s.to_ascii_lowercase().as_str() {
        "template" => Ok(false),
        "iso" => Ok(true),
        _ => Err("expected template or iso".to_owned()),
    });
    let template: Option<String> = d.optional_with(&TEMPLATE_PATH, validate::windows_path);
    let iso: Option<String> = d.optional_with(&ISO_PATH, validate::windows_path);
    let size_gb: Option<u64> = d.optional_with(&VHD_SIZE_GB, |s| {
        s.parse::<u64>()
            .ok()
            .filter(|n| (1..=65_536).contains(n))
            .ok_or_else(|| "expected whole GiB, 1 to 65536".to_owned())
    });
    let generation = d
        .optional_with(&GENERATION, validate::generation)
        .unwrap_or(DEFAULT_GENERATION);
    let secure_boot = d
        .optional_with(&SECURE_BOOT, |s| match s.to_ascii_lowercase().as_str() {
            "off" | "false" => Ok(SecureBoot::Off),
            "on" | "true" => Ok(SecureBoot::On),
            "on-uefi-ca" => Ok(SecureBoot::OnUefiCa),
            _ => Err("expected off, on or on-uefi-ca".to_owned()),
        })
        .unwrap_or_default();
    if secure_boot != SecureBoot::Off && generation != 2 {
        d.reject(&SECURE_BOOT, "secure boot needs generation 2");
    }
    // Without template_type, whichever of template_path and iso_path is set decides.
    let is_iso = kind.unwrap_or(template.is_none() && iso.is_some());
    let source = if is_iso {
        d.require_if(iso.is_none(), &ISO_PATH);
        d.require_if(size_gb.is_none(), &VHD_SIZE_GB);
        Source::Iso {
            iso: iso.unwrap_or_default(),
            size_bytes: size_gb.unwrap_or(0) * 1024 * 1024 * 1024,
        }
    } else {
        d.require_if(template.is_none(), &TEMPLATE_PATH);
        let template = template.unwrap_or_default();
        if !template.is_empty()
            && let Err(problem) = template_disk(&template)
        {
            d.reject(&TEMPLATE_PATH, problem);
        }
        Source::Template(template)
    };
    Instance {
        generation,
        source,
        secure_boot,
    }
}

/// A template disk is a `.vhdx` or `.vhd` file.
pub fn template_disk(path: &str) -> Result<(), String> {
    let lower = path.to_ascii_lowercase();
    if lower.ends_with(".vhdx") || lower.ends_with(".vhd") {
        Ok(())
    } else {
        Err("the template must be a .vhdx or .vhd file".into())
    }
}

pub fn snapshot_name(d: &mut DetailReader) -> String {
    d.required_with(&SNAPSHOT_NAME, validate::snapshot_name)
}

#[cfg(test)]
mod declaration_tests {
    #[test]
    fn every_detail_is_declared_completely() {
        assert_eq!(
            ext_sdk::reference::problems(&crate::META),
            Vec::<String>::new()
        );
    }
}

#[cfg(test)]
mod tests {
    use ext_sdk::Payload;
    use serde_json::{Value, json};

    use super::*;

    /// Values for the secret `detail`, each with the pieces that must never be printed: for
    /// `private_key`, key material in every form an operator may paste.
    fn secret_values(detail: &Detail) -> Vec<String> {
        let body = [
            "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
            "QyNTUxOQAAACDk8zQz5r4Wm9Gc5oXwq8k2QmSgW7Wn3bq8Qy0GJg4b1AAAAJgH3cUzB93F",
        ];
        let pem = format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            body.join("\n")
        );
        match detail.key {
            "private_key" => vec![
                body.join("\n"),
                body.concat(),
                format!("\"{}", pem.trim_end()),
                pem.replace("-----END OPENSSH PRIVATE KEY-----\n", ""),
                format!(
                    "PuTTY-User-Key-File-3: ssh-ed25519\nPrivate-Lines: 1\n{}\n",
                    body[1]
                ),
            ],
            _ => vec!["Zq9-secret-Value-77".to_owned(), "a".to_owned()],
        }
    }

    /// Host details that choose SSH (and have an invalid port, one more problem to report).
    fn ssh_host() -> Value {
        json!({"url": "hv1", "port": "x"})
    }

    /// Host details that choose WinRM (and have an invalid fingerprint and a port WinRM
    /// rejects, so its parsers and rejections run too).
    fn winrm_host() -> Value {
        json!({"url": "hv1", "transport": "winrm", "port": "5986", "tls_fingerprint": "ab"})
    }

    fn payload_with(detail: &Detail, level: Level, value: &str) -> Payload {
        payload_on(ssh_host(), detail, level, value)
    }

    fn payload_on(host: Value, detail: &Detail, level: Level, value: &str) -> Payload {
        let mut doc = json!({"externaldetails": {"host": host}});
        let (map, key) = match level {
            Level::Host => ("host", detail.key),
            Level::ResourceMap => ("resourcemap", detail.key),
            Level::Extension => ("extension", detail.key),
            other => panic!("a secret at level {other:?}"),
        };
        doc["externaldetails"][map][key] = Value::String(value.to_owned());
        Payload::from_slice(doc.to_string().as_bytes(), "test").unwrap()
    }

    /// A secret detail's value cannot reach an error: not through the readers the actions
    /// use, nor through any parser or rejection (which may quote the value on purpose here),
    /// for every secret detail this extension declares, at every level it is read from.
    #[test]
    fn no_secret_details_value_reaches_an_error() {
        let secrets: Vec<&Detail> = DETAILS
            .iter()
            .filter(|d| d.secret || d.secret_when.is_some())
            .collect();
        let keys: Vec<&str> = secrets.iter().map(|d| d.key).collect();
        assert_eq!(keys, ["password", "private_key", "private_key_passphrase"]);
        for detail in secrets {
            for value in secret_values(detail) {
                assert!(detail.is_secret(&value), "{}: {value:?}", detail.key);
                let pieces = ext_sdk::redact::secret_pieces(&value);
                for (&level, host) in detail
                    .levels
                    .iter()
                    .flat_map(|l| [(l, ssh_host()), (l, winrm_host())])
                {
                    let winrm = host.get("transport").is_some();
                    let p = payload_on(host, detail, level, &value);
                    let via = p.read(connection).unwrap_err().to_string();
                    let chosen = if winrm {
                        "the port goes in url"
                    } else {
                        "expected a port"
                    };
                    assert!(via.contains(chosen), "{}: {via}", detail.key);
                    let errors = [
                        p.read(connection).map(drop),
                        p.read(|d| d.optional_with(detail, |v| Err::<(), _>(format!("bad: {v}"))))
                            .map(drop),
                        p.read(|d| d.reject(detail, format!("{value} conflicts"))),
                    ];
                    for error in errors {
                        let text = error.unwrap_err().to_string();
                        for piece in &pieces {
                            assert!(!text.contains(piece), "{}: {text}", detail.key);
                        }
                        if value.len() < ext_sdk::redact::MIN_SECRET_LEN {
                            assert!(!text.contains(&format!("'{value}'")), "{text}");
                        }
                    }
                }
            }
        }
    }

    fn origin(host: serde_json::Value, extension: serde_json::Value) -> String {
        let payload =
            serde_json::json!({"externaldetails": {"host": host, "extension": extension}});
        address_origin(
            &Payload::from_slice(payload.to_string().as_bytes(), "test").unwrap(),
            false,
        )
    }

    #[test]
    fn the_address_names_the_details_it_came_from() {
        use serde_json::json;
        assert_eq!(
            origin(json!({"url": "hv1"}), json!({})),
            "url 'hv1' (host detail) and the default port"
        );
        assert_eq!(
            origin(json!({"url": "hv1:2222"}), json!({})),
            "url 'hv1:2222' (host detail)"
        );
        assert_eq!(
            origin(json!({"url": "hv1"}), json!({"port": "2222"})),
            "url 'hv1' (host detail) and port '2222' (extension detail)"
        );
        assert_eq!(origin(json!({}), json!({})), "no url detail");
    }

    #[test]
    fn a_winrm_address_names_its_port_only_in_url() {
        let winrm = |url: &str| {
            let payload = serde_json::json!({"externaldetails": {"host": {"url": url}}});
            address_origin(
                &Payload::from_slice(payload.to_string().as_bytes(), "test").unwrap(),
                true,
            )
        };
        for (url, named) in [
            ("hv1", false),
            ("hv1:15986", true),
            ("https://hv1/wsman", false),
            ("https://hv1:15986/wsman", true),
            ("[::1]:5986", true),
            ("::1", false),
            ("https://[::1]/wsman", false),
        ] {
            let expected = if named {
                format!("url '{url}' (host detail)")
            } else {
                format!("url '{url}' (host detail) and the default port")
            };
            assert_eq!(winrm(url), expected);
        }
    }

    #[test]
    fn unusable_key_material_is_named_and_never_shown() {
        let p = payload_with(
            &PRIVATE_KEY,
            Level::Host,
            "PuTTY-User-Key-File-2: ssh-rsa\n",
        );
        let text = p.read(connection).unwrap_err().to_string();
        assert!(
            text.contains("'private_key' (host detail): this is a PuTTY .ppk key"),
            "{text}"
        );
        assert!(!text.contains("PuTTY-User-Key-File-2"), "{text}");
        assert!(!text.contains("'password'"), "no missing password: {text}");
        // A path is no secret and stays readable.
        let path = payload_with(&PRIVATE_KEY, Level::Host, "/nonexistent/id_ed25519");
        let err = path.read(connection).unwrap_err().to_string();
        assert!(!err.contains("private_key"), "{err}");
    }

    #[test]
    fn no_host_key_detail_refuses_every_key() {
        let payload = serde_json::json!({"externaldetails": {"host": {
            "url": "hv1", "username": "u", "password": "p", "transport": "ssh"}}});
        let payload = Payload::from_slice(payload.to_string().as_bytes(), "test").unwrap();
        let mut d = payload.details();
        let HostTarget::Ssh(target) = connection(&mut d) else {
            panic!("expected SSH")
        };
        assert_eq!(target.host_key, HostKeyPolicy::Unset);
        assert!(
            d.finish()
                .unwrap_err()
                .to_string()
                .contains("host_key_fingerprint")
        );
    }
}

#[cfg(test)]
mod transport_tests {
    use super::*;
    use ext_sdk::Payload;
    use serde_json::{Value, json};

    fn read(host: Value) -> (Result<(), String>, HostTarget) {
        let payload = json!({"externaldetails": {"host": host}});
        let payload = Payload::from_slice(payload.to_string().as_bytes(), "test").unwrap();
        let mut d = payload.details();
        let target = connection(&mut d);
        (d.finish().map_err(|e| e.to_string()), target)
    }

    #[test]
    fn upstream_details_alone_mean_winrm_to_5986() {
        let (ok, target) = read(json!({
            "url": "hv1.example.org", "username": "HV1\\cloud", "password": "pw",
            "verify_tls_certificate": "false",
        }));
        ok.unwrap();
        let HostTarget::Winrm(w) = target else {
            panic!("expected WinRM")
        };
        assert_eq!(
            w.config.endpoint.url(),
            "https://hv1.example.org:5986/wsman"
        );
        assert_eq!(w.config.auth, winrm::Auth::Ntlm);
        assert!(w.defaulted);
    }

    #[test]
    fn an_ssh_detail_or_the_transport_detail_chooses() {
        for ssh in [
            json!({"url": "hv1", "username": "u", "password": "p", "host_key_fingerprint": "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}),
            json!({"url": "hv1", "username": "u", "password": "p", "port": "22", "host_key_check": "off"}),
            json!({"url": "hv1", "username": "u", "password": "p", "transport": "SSH", "host_key_check": "off"}),
        ] {
            let (ok, target) = read(ssh.clone());
            ok.unwrap();
            assert!(matches!(target, HostTarget::Ssh(_)), "{ssh}");
        }
        let (ok, target) = read(json!({
            "url": "https://hv1:15986/wsman", "username": "u", "password": "p",
            "transport": "winrm", "tls_fingerprint": "00".repeat(32),
            "winrm_auth": "basic",
        }));
        ok.unwrap();
        let HostTarget::Winrm(w) = target else {
            panic!("expected WinRM")
        };
        assert_eq!(
            (w.config.endpoint.port, w.config.auth),
            (15986, winrm::Auth::Basic)
        );
        assert!(!w.defaulted);
    }

    #[test]
    fn winrm_problems_are_reported_together() {
        let (err, _) = read(json!({
            "url": "http://hv1", "transport": "winrm", "port": "5986",
            "tls_fingerprint": "abc", "winrm_auth": "kerberos",
            "ca_certificate": "/nonexistent/ca.pem",
        }));
        let err = err.unwrap_err();
        for needle in [
            "username",
            "password",
            "plain HTTP",
            "port goes in url",
            "32 hex bytes",
            "expected ntlm or basic",
        ] {
            assert!(err.contains(needle), "{needle}: {err}");
        }
        let (err, _) = read(json!({
            "url": "hv1", "username": "u", "password": "p", "ca_certificate": "/nonexistent/ca.pem",
        }));
        let err = err.unwrap_err();
        assert!(
            err.contains("'ca_certificate' = '/nonexistent/ca.pem' (host detail): cannot read it"),
            "{err}"
        );
    }
}
