//! Windows paths on a Linux disk: `C:\Hyper-V\x.vhdx` lives at `<fs root>/C/Hyper-V/x.vhdx`,
//! `\\server\share\x` at `<fs root>/UNC/server/share/x`. Parsing follows .NET's
//! `Path.GetFullPath` closely enough for the scripts' use: `\` or `/` separators, `.` and
//! `..` resolved, the characters Windows forbids in names rejected. Comparisons are
//! case-insensitive as on NTFS; the Linux side is case-sensitive (a documented difference).

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WinPath {
    /// `C:` or `\\server\share`.
    root: String,
    parts: Vec<String>,
}

impl WinPath {
    /// Parses an absolute Windows path; the error reads like the .NET one.
    pub fn parse(text: &str) -> Result<WinPath, String> {
        if text
            .chars()
            .any(|c| c.is_control() || matches!(c, '<' | '>' | '"' | '|' | '?' | '*'))
        {
            return Err(format!("Illegal characters in path '{text}'."));
        }
        let unified = text.replace('/', "\\");
        let (root, rest) = if let Some(unc) = unified.strip_prefix("\\\\") {
            let mut it = unc.splitn(3, '\\');
            let server = it.next().unwrap_or_default();
            let share = it.next().unwrap_or_default();
            if server.is_empty() || share.is_empty() {
                return Err(format!(
                    "The UNC path '{text}' should be of the form \\\\server\\share."
                ));
            }
            (
                format!("\\\\{server}\\{share}"),
                it.next().unwrap_or_default().to_owned(),
            )
        } else {
            let bytes = unified.as_bytes();
            if bytes.len() < 3
                || !bytes[0].is_ascii_alphabetic()
                || bytes[1] != b':'
                || bytes[2] != b'\\'
            {
                return Err(format!("The path '{text}' is not an absolute path."));
            }
            (unified[..2].to_ascii_uppercase(), unified[3..].to_owned())
        };
        let mut parts: Vec<String> = Vec::new();
        for part in rest.split('\\') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                p if p.contains(':') => {
                    return Err(format!(
                        "The given path's format is not supported: '{text}'."
                    ));
                }
                p if is_device(p) => {
                    // What .NET says for a path naming a DOS device (CON, NUL.txt, ...).
                    return Err(format!(
                        "FileStream will not open Win32 devices such as disk partitions and tape drives. Avoid use of \"\\\\.\\\" in the path. ('{text}')"
                    ));
                }
                p => parts.push(p.to_owned()),
            }
        }
        Ok(WinPath { root, parts })
    }

    /// The normalised path as Windows prints it.
    pub fn display(&self) -> String {
        let mut s = self.root.clone();
        for p in &self.parts {
            s.push('\\');
            s.push_str(p);
        }
        if self.parts.is_empty() {
            s.push('\\');
        }
        s
    }

    /// Where the file lives under `fs_root`.
    pub fn local(&self, fs_root: &Path) -> PathBuf {
        let mut path = fs_root.to_path_buf();
        match self.root.strip_prefix("\\\\") {
            Some(unc) => {
                path.push("UNC");
                for p in unc.split('\\') {
                    path.push(p);
                }
            }
            None => path.push(&self.root[..1]),
        }
        for p in &self.parts {
            path.push(p);
        }
        path
    }

    /// Whether `self` is `dir` or inside it (case-insensitive, as on NTFS).
    pub fn is_within(&self, dir: &WinPath) -> bool {
        self.root.eq_ignore_ascii_case(&dir.root)
            && self.parts.len() >= dir.parts.len()
            && self
                .parts
                .iter()
                .zip(&dir.parts)
                .all(|(a, b)| a.to_lowercase() == b.to_lowercase())
    }

    pub fn same_as(&self, other: &WinPath) -> bool {
        self.is_within(other) && self.parts.len() == other.parts.len()
    }

    pub fn file_name(&self) -> Option<&str> {
        self.parts.last().map(String::as_str)
    }

    pub fn join(&self, name: &str) -> WinPath {
        let mut parts = self.parts.clone();
        parts.push(name.to_owned());
        WinPath {
            root: self.root.clone(),
            parts,
        }
    }
}

/// A DOS device name, with or without an extension, in any case: Windows maps the component
/// to the device (written independently of hyperv-ext's check, which must refuse first).
fn is_device(component: &str) -> bool {
    const DIGITS: [&str; 13] = [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "\u{b9}", "\u{b2}", "\u{b3}",
    ];
    let base = component
        .split('.')
        .next()
        .unwrap_or_default()
        .trim_end_matches(' ')
        .to_uppercase();
    matches!(base.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ["COM", "LPT"]
            .iter()
            .any(|p| base.strip_prefix(p).is_some_and(|d| DIGITS.contains(&d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_display_and_map() {
        let p =
            WinPath::parse("c:/Hyper-V\\.\\x\\..\\Virtual Hard Disks\\a'$(b)`;[1].vhdx").unwrap();
        assert_eq!(
            p.display(),
            "C:\\Hyper-V\\Virtual Hard Disks\\a'$(b)`;[1].vhdx"
        );
        assert_eq!(
            p.local(Path::new("/r")),
            Path::new("/r/C/Hyper-V/Virtual Hard Disks/a'$(b)`;[1].vhdx")
        );
        let unc = WinPath::parse("\\\\srv\\share\\t.vhdx").unwrap();
        assert_eq!(
            unc.local(Path::new("/r")),
            Path::new("/r/UNC/srv/share/t.vhdx")
        );
        for bad in [
            "relative\\x",
            "C:x",
            "C:\\a*b",
            "C:\\a\nb",
            "\\\\srv",
            "C:\\a:b",
            "C:\\a?b",
            "C:\\x\\CON",
            "C:\\nul.vhdx",
            "C:\\LPT1\\x",
        ] {
            assert!(WinPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn containment_ignores_case() {
        let dir = WinPath::parse("C:\\Hyper-V\\Disks").unwrap();
        assert!(
            WinPath::parse("c:\\hyper-v\\DISKS\\x.vhdx")
                .unwrap()
                .is_within(&dir)
        );
        assert!(
            !WinPath::parse("C:\\Hyper-V\\Disks2\\x.vhdx")
                .unwrap()
                .is_within(&dir)
        );
        assert!(
            !WinPath::parse("D:\\Hyper-V\\Disks\\x.vhdx")
                .unwrap()
                .is_within(&dir)
        );
    }
}
