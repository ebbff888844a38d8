//! Checks on every value before anything is sent to the host. Each returns the normalised
//! value or a sentence saying what is wrong, for a detail parser or a payload problem list.
//!
//! These are the first line of defence: scripts get data only through their base64 blob,
//! but a value that is invalid for Windows or Hyper-V is refused here, with a clear message,
//! before any connection is made.

use std::net::Ipv6Addr;

use ext_sdk::HostPort;
use ext_sdk::hardware::{self, SizeLimits};

/// Names of host objects we look up (virtual switches): free text, exact match, but no
/// control or line-breaking characters.
pub fn object_name(name: &str) -> Result<String, String> {
    if name.chars().count() > 100 {
        return Err("expected at most 100 characters".into());
    }
    if let Some(c) = name.chars().find(|c| is_control_like(*c)) {
        return Err(format!("contains the control character U+{:04X}", c as u32));
    }
    Ok(name.to_owned())
}

/// Whether Windows takes `name` (one path component) for a device: `CON`, `PRN`, `AUX`, `NUL`,
/// `COM0`-`COM9` and `LPT0`-`LPT9` (also with the superscript digits `¹²³`, which Windows
/// counts as digits there), in any case, alone or followed by an extension (`NUL.txt` and
/// `nul .tar.gz` are both the device NUL). Writing such a "file" writes to the device, and
/// a folder of that name cannot be made. (`COM0`/`LPT0` are not devices on every Windows
/// version; refusing them costs nothing.)
pub fn is_reserved_device_name(name: &str) -> bool {
    let base = name.split('.').next().unwrap_or(name).trim_end_matches(' ');
    let mut chars = base.chars();
    let prefix: String = chars.by_ref().take(3).collect();
    let rest: Vec<char> = chars.collect();
    let prefix = prefix.to_ascii_uppercase();
    match (prefix.as_str(), rest.as_slice()) {
        ("CON" | "PRN" | "AUX" | "NUL", []) => true,
        ("COM" | "LPT", [digit]) => {
            digit.is_ascii_digit() || matches!(digit, '\u{b9}' | '\u{b2}' | '\u{b3}')
        }
        _ => false,
    }
}

/// Hyper-V VM names also become file and folder names (`<vhd_path>\<vm name>.vhdx`,
/// `<vm_path>\<vm name>\`), so we keep to a portable set and refuse what Windows would alter
/// or take for a device.
pub fn vm_name(name: &str) -> Result<String, String> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if name.is_empty() || name.len() > 100 || !ok_chars {
        return Err(format!(
            "VM name '{}' must be 1-100 characters of A-Z, a-z, 0-9, '.', '_' and '-'",
            name.escape_debug()
        ));
    }
    if name.ends_with('.') {
        return Err(format!(
            "VM name '{name}' must not end with '.' (Windows drops it from file names)"
        ));
    }
    if hyperv_protocol::data::is_creating_name(name) {
        return Err(format!(
            "VM name '{name}' contains '{}', which marks the name create gives a VM before it \
             is named",
            hyperv_protocol::data::CREATING_MARK
        ));
    }
    if is_reserved_device_name(name) {
        return Err(format!(
            "VM name '{name}' is a Windows device name (CON, PRN, AUX, NUL, COM1-9, LPT1-9, with \
             or without an extension): its disk and folder would be the device, not files"
        ));
    }
    Ok(name.to_owned())
}

/// CloudStack UUIDs are written into the VM's Notes as its ownership mark.
pub fn vm_uuid(uuid: &str) -> Result<String, String> {
    if uuid.is_empty()
        || uuid.len() > 64
        || !uuid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(format!(
            "VM UUID '{}' must be 1-64 characters of A-Z, a-z, 0-9 and '-'",
            uuid.escape_debug()
        ));
    }
    Ok(uuid.to_owned())
}

/// Checkpoint names are free text for users: any printable characters, quotes, `$()` and
/// the like included (they reach PowerShell only as data), but no control or line-breaking
/// characters.
pub fn snapshot_name(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("the snapshot name is empty".into());
    }
    if name.chars().count() > 100 {
        return Err("the snapshot name is longer than 100 characters".into());
    }
    if let Some(c) = name.chars().find(|c| is_control_like(*c)) {
        return Err(format!(
            "the snapshot name contains the control character U+{:04X}",
            c as u32
        ));
    }
    Ok(name.to_owned())
}

/// Control characters plus the Unicode line and paragraph separators, which PowerShell's
/// tokenizer treats as line breaks.
pub fn is_control_like(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}')
}

/// An absolute Windows path, `X:\...` or `\\server\share\...`; `/` is accepted and turned
/// into `\`, a trailing separator dropped. Refused: relative paths, `..`, characters Windows
/// forbids in names, and `[` `]` (wildcards to Hyper-V cmdlets that take `-Path`).
pub fn windows_path(path: &str) -> Result<String, String> {
    let shown = path.escape_debug();
    if let Some(c) = path.chars().find(|c| is_control_like(*c)) {
        return Err(format!(
            "path '{shown}' contains the control character U+{:04X}",
            c as u32
        ));
    }
    if let Some(c) = path
        .chars()
        .find(|c| matches!(c, '<' | '>' | '"' | '|' | '?' | '*' | '[' | ']'))
    {
        return Err(format!(
            "path '{shown}' contains '{c}', which Windows or Hyper-V treat as a wildcard or forbid"
        ));
    }
    let p = path.replace('/', "\\");
    let (root, rest) = if let Some(unc) = p.strip_prefix("\\\\") {
        let mut it = unc.splitn(3, '\\');
        let (server, share) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
        if server.is_empty() || share.is_empty() || server == "?" || server == "." {
            return Err(format!(
                "path '{shown}' must be X:\\... or \\\\server\\share\\..."
            ));
        }
        (
            format!("\\\\{server}\\{share}"),
            it.next().unwrap_or("").to_owned(),
        )
    } else {
        let b = p.as_bytes();
        if b.len() < 3 || !b[0].is_ascii_alphabetic() || b[1] != b':' || b[2] != b'\\' {
            return Err(format!(
                "path '{shown}' is not an absolute Windows path (X:\\... or \\\\server\\share\\...)"
            ));
        }
        (p[..2].to_ascii_uppercase(), p[3..].to_owned())
    };
    let mut out = root;
    for part in rest.split('\\').filter(|s| !s.is_empty()) {
        if part == "." || part == ".." {
            return Err(format!(
                "path '{shown}' must not contain '.' or '..' components"
            ));
        }
        if part.contains(':') {
            return Err(format!("path '{shown}' contains ':' after the drive"));
        }
        if part.ends_with('.') || part.ends_with(' ') || part.starts_with(' ') {
            return Err(format!(
                "path '{shown}' has a component with a leading space or trailing dot or space, which Windows alters"
            ));
        }
        if is_reserved_device_name(part) {
            return Err(format!(
                "path '{shown}' has the component '{}', a Windows device name (CON, PRN, AUX, \
                 NUL, COM1-9, LPT1-9, with or without an extension), which is no file or folder",
                part.escape_debug()
            ));
        }
        out.push('\\');
        out.push_str(part);
    }
    if out.len() == 2 {
        // `C:` alone means the drive's current directory to Windows; the root is `C:\`.
        out.push('\\');
    }
    if out.chars().count() > 240 {
        return Err(format!("path '{shown}' is longer than 240 characters"));
    }
    Ok(out)
}

/// Joins a validated directory and a file name.
pub fn join(dir: &str, file: &str) -> String {
    format!("{}\\{file}", dir.trim_end_matches('\\'))
}

/// What Hyper-V accepts as a VM's size: 1 to 240 virtual processors; whole MiB, at least 32
/// and an even number of them (else "not properly aligned").
const SIZE_LIMITS: SizeLimits = SizeLimits {
    hypervisor: "Hyper-V",
    max_cpus: Some(240),
    min_memory_mib: 32,
    memory_multiple_mib: 2,
};

/// The VM's memory in bytes, from `minRam`, as Hyper-V accepts it.
pub fn memory_bytes(min_ram: Option<u64>) -> Result<u64, String> {
    hardware::memory_mib(min_ram, &SIZE_LIMITS).map(|mib| mib * 1024 * 1024)
}

pub fn cpus(cpus: Option<u32>) -> Result<u32, String> {
    hardware::vcpus(cpus, &SIZE_LIMITS)
}

pub fn generation(text: &str) -> Result<u8, String> {
    match text.trim() {
        "1" => Ok(1),
        "2" => Ok(2),
        _ => Err("expected 1 or 2".into()),
    }
}

/// An SSH login name: sent only to the SSH server, but never with control characters.
pub fn username(name: &str) -> Result<String, String> {
    if name.is_empty() || name.len() > 256 || name.chars().any(is_control_like) {
        return Err(
            "expected 1-256 printable characters (DOMAIN\\user, user@domain or user)".into(),
        );
    }
    Ok(name.to_owned())
}

/// `host`, `host:port`, `[v6]:port` or a bare IPv6 address (`ssh` takes one; with no port
/// to separate it is unambiguous). Returns the host and the port if one was given.
pub fn ssh_url(text: &str) -> Result<(String, Option<u16>), String> {
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Err("this extension talks SSH: set the host name or address (host or host:port), not a WinRM URL".into());
    }
    let text = text
        .strip_prefix("ssh://")
        .unwrap_or(text)
        .trim_end_matches('/');
    if text.parse::<Ipv6Addr>().is_ok() {
        return Ok((text.to_owned(), None));
    }
    HostPort::parse(text).map(|hp| (hp.host, hp.port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_names() {
        assert_eq!(vm_name("i-2-45-VM").unwrap(), "i-2-45-VM");
        for bad in [
            "",
            "a b",
            "a'b",
            "a$(b)",
            "a;b",
            "a\nb",
            "x.",
            "a*",
            "\u{e9}",
            &"x".repeat(101),
            "i-2-45-VM.cs-create-0a1b2c3d",
        ] {
            assert!(vm_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn windows_device_names_are_refused_in_any_case_and_with_any_extension() {
        for reserved in [
            "CON",
            "con",
            "Prn",
            "aux",
            "NUL",
            "nul.txt",
            "NUL.tar.gz",
            "nul .txt",
            "COM1",
            "com9.log",
            "LPT1",
            "lpt5.x",
            "COM0",
            "LPT0",
            "COM\u{b9}",
            "lpt\u{b2}.txt",
            "COM\u{b3}",
        ] {
            assert!(is_reserved_device_name(reserved), "{reserved:?}");
            assert!(
                windows_path(&format!("C:\\Hyper-V\\{reserved}\\Disks")).is_err(),
                "{reserved:?}"
            );
            assert!(
                windows_path(&format!("D:\\Templates\\{reserved}")).is_err(),
                "{reserved:?}"
            );
        }
        for name in ["CON", "nul.vm", "Com1", "LPT9", "aux.x.y"] {
            let err = vm_name(name).unwrap_err();
            assert!(err.contains("Windows device name"), "{err}");
        }
        for fine in [
            "CONSOLE",
            "icon",
            "NULL",
            "COM10",
            "COM",
            "LPT",
            "xCOM1",
            "a.CON",
            "com1x",
            "COM\u{b4}",
            "CON-1",
            "i-2-45-VM",
        ] {
            assert!(!is_reserved_device_name(fine), "{fine:?}");
        }
        assert!(vm_name("CONSOLE").is_ok() && vm_name("a.CON").is_ok());
        assert_eq!(
            windows_path("C:\\Hyper-V\\CONSOLE\\a.con").unwrap(),
            "C:\\Hyper-V\\CONSOLE\\a.con"
        );
    }

    #[test]
    fn snapshot_names_allow_text_but_not_control_characters() {
        for ok in [
            "before-upgrade",
            "it's",
            "a\u{2019}b",
            "$(Stop-Computer)",
            "`;*?[]",
            "caf\u{e9} \u{1F600}",
        ] {
            assert_eq!(snapshot_name(ok).unwrap(), ok);
        }
        for bad in [
            "",
            "a\nb",
            "a\rb",
            "a\u{0}b",
            "a\u{2028}b",
            "a\u{1b}[0m",
            &"x".repeat(101),
        ] {
            assert!(snapshot_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn windows_paths() {
        assert_eq!(
            windows_path("c:/Hyper-V/Disks/").unwrap(),
            "C:\\Hyper-V\\Disks"
        );
        assert_eq!(
            windows_path("D:\\a'b $(c) `d;\u{2019}\u{e9}").unwrap(),
            "D:\\a'b $(c) `d;\u{2019}\u{e9}"
        );
        assert_eq!(
            windows_path("\\\\srv\\share\\t.vhdx").unwrap(),
            "\\\\srv\\share\\t.vhdx"
        );
        assert_eq!(windows_path("C:\\").unwrap(), "C:\\");
        for bad in [
            "relative",
            "C:relative",
            "\\\\srv",
            "C:\\a\\..\\b",
            "C:\\a*",
            "C:\\a?",
            "C:\\[x]",
            "C:\\a\nb",
            "C:\\a:b",
            "C:\\a.\\b",
            "\\\\?\\C:\\x",
            "C:\\a\"b",
        ] {
            assert!(windows_path(bad).is_err(), "{bad:?}");
        }
        assert_eq!(join("C:\\", "x.vhdx"), "C:\\x.vhdx");
        assert_eq!(join("C:\\d", "x.vhdx"), "C:\\d\\x.vhdx");
    }

    #[test]
    fn memory_and_cpus() {
        let mib = 1024 * 1024;
        assert_eq!(memory_bytes(Some(512 * mib)).unwrap(), 512 * mib);
        assert!(
            memory_bytes(Some(4077 * mib))
                .unwrap_err()
                .contains("4076 or 4078")
        );
        assert!(memory_bytes(Some(512 * mib + 1)).is_err());
        assert!(memory_bytes(Some(16 * mib)).is_err());
        assert!(memory_bytes(None).is_err());
        assert_eq!(cpus(Some(2)), Ok(2));
        assert!(cpus(Some(0)).is_err() && cpus(None).is_err() && cpus(Some(241)).is_err());
        assert_eq!(generation(" 2"), Ok(2));
        assert!(generation("3").is_err() && generation("two").is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(
            ssh_url("hv1.example.net"),
            Ok(("hv1.example.net".into(), None))
        );
        assert_eq!(ssh_url("hv1:2222"), Ok(("hv1".into(), Some(2222))));
        assert_eq!(
            ssh_url("ssh://10.0.0.5:22/"),
            Ok(("10.0.0.5".into(), Some(22)))
        );
        assert_eq!(
            ssh_url("[fd00::5]:2222"),
            Ok(("fd00::5".into(), Some(2222)))
        );
        assert_eq!(ssh_url("fd00::5"), Ok(("fd00::5".into(), None)));
        for bad in [
            "https://hv1:5986/wsman",
            "hv1:0",
            "hv1:99999",
            "hv 1",
            "hv1;rm",
            "a$(b)",
            "",
            "-x",
            "[a-z]",
            "[hv1]:22",
        ] {
            assert!(ssh_url(bad).is_err(), "{bad}");
        }
    }
}
