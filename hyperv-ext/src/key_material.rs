//! What a `private_key` value is: the path of a key file on the management server, or the key
//! itself. Key material is a secret wherever it is pasted: a PEM key (also with a byte-order
//! mark, in quotes, with literal `\n` or with spaces for line breaks), or something that is
//! not one but is plainly key material (a PuTTY `.ppk` file, the base64 body without its
//! `-----BEGIN`/`-----END` lines, a public key line). Only the first is usable; the others get
//! an error saying what to paste instead, which never quotes the value (the detail is secret
//! whenever [`is_key_material`] says so, see `settings::PRIVATE_KEY`).

use std::path::PathBuf;

use ext_sdk::Secret;

use crate::ssh::PrivateKey;

/// What a `private_key` value holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// A complete PEM private key, normalised to one line per line.
    Pem(String),
    /// A file name.
    Path,
    /// Key material that cannot be used as it is: why, and what to do.
    Unusable(&'static str),
}

/// Whether `value` is key material (a secret) rather than the path of a key file.
pub fn is_key_material(value: &str) -> bool {
    !matches!(classify(value), Kind::Path)
}

/// The key `value` gives: a key file, or the key itself. Key material that is not a usable
/// private key is refused with what to paste instead (the value is never quoted).
pub fn parse(value: &str) -> Result<PrivateKey, String> {
    match classify(value) {
        Kind::Pem(pem) => {
            ext_sdk::redact::register_all(&pem);
            Ok(PrivateKey::Inline(Secret::new(pem)))
        }
        Kind::Path => Ok(PrivateKey::File(PathBuf::from(value))),
        Kind::Unusable(why) => Err(why.to_owned()),
    }
}

const PUBLIC_KEY: &str = "this is a public key; private_key needs the private key (the file \
    without .pub, in OpenSSH or PEM format) or the path of its file on the management server";
const PUTTY: &str = "this is a PuTTY .ppk key, which OpenSSH cannot read: convert it with \
    'puttygen key.ppk -O private-openssh -o key' and paste that file (or set its path)";
const BODY_ONLY: &str = "this looks like the body of a private key without its -----BEGIN and \
    -----END lines: paste the whole key file, from its -----BEGIN line to its -----END line \
    (or set the path of the file)";
const PARTIAL: &str = "this holds part of a PEM private key (text around it, or its -----END \
    line missing): paste the whole key file, from its -----BEGIN line to its -----END line \
    (or set the path of the file)";

fn classify(value: &str) -> Kind {
    let text = unwrap(value);
    if text.contains("-----BEGIN") || text.contains("-----END") {
        return pem(text);
    }
    if text.starts_with("PuTTY-User-Key-File-") {
        return Kind::Unusable(PUTTY);
    }
    if text.starts_with("---- BEGIN SSH2 PUBLIC KEY") || is_public_key_line(text) {
        return Kind::Unusable(PUBLIC_KEY);
    }
    let multi_line = text.contains(['\n', '\r']) || text.contains("\\n");
    if multi_line || is_base64_run(text) {
        return Kind::Unusable(BODY_ONLY);
    }
    Kind::Path
}

/// The value without what pasting adds around a key: a byte-order mark, surrounding
/// whitespace, one pair of matching quotes.
fn unwrap(value: &str) -> &str {
    let text = value.trim_start_matches('\u{feff}').trim();
    for quote in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(quote).and_then(|t| t.strip_suffix(quote)) {
            return inner.trim();
        }
    }
    text
}

/// A PEM block: usable when it is one whole private key.
fn pem(text: &str) -> Kind {
    // Pasted into a one-line field: literal "\n" sequences.
    let text = if text.contains('\n') {
        text.replace("\r\n", "\n")
    } else {
        text.replace("\\r\\n", "\n").replace("\\n", "\n")
    };
    let Some(rest) = text.strip_prefix("-----BEGIN ") else {
        return Kind::Unusable(PARTIAL);
    };
    let Some((label, body)) = rest.split_once("-----") else {
        return Kind::Unusable(PARTIAL);
    };
    if label.contains("PUBLIC KEY") {
        return Kind::Unusable(PUBLIC_KEY);
    }
    let end = format!("-----END {label}-----");
    let Some(body) = body.trim_end().strip_suffix(end.as_str()) else {
        return Kind::Unusable(PARTIAL);
    };
    let lines: Vec<&str> = if body.contains('\n') {
        body.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    } else if body.contains(':') {
        // Spaces for line breaks, but with headers (legacy encrypted PEM) that contain spaces
        // themselves: leave it to the key reader to judge.
        vec![body.trim()]
    } else {
        // Spaces for line breaks (a field that turned them into spaces).
        body.split_whitespace().collect()
    };
    Kind::Pem(format!(
        "-----BEGIN {label}-----\n{}\n{end}\n",
        lines.join("\n")
    ))
}

/// `ssh-ed25519 AAAA... comment` and the like, as in a `.pub` file or `authorized_keys`.
fn is_public_key_line(text: &str) -> bool {
    let mut words = text.split_whitespace();
    let (Some(kind), Some(blob)) = (words.next(), words.next()) else {
        return false;
    };
    let known = kind.starts_with("ssh-")
        || kind.starts_with("ecdsa-sha2-")
        || kind.starts_with("sk-ssh-")
        || kind.starts_with("sk-ecdsa-");
    known && blob.starts_with("AAAA")
}

/// A long run of base64 characters only: no file name looks like that (no extension, no
/// directory, 40 characters and more), key material does.
fn is_base64_run(text: &str) -> bool {
    text.len() >= 40
        && !text.starts_with(['/', '~', '.'])
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: [&str; 3] = [
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
        "QyNTUxOQAAACDk8zQz5r4Wm9Gc5oXwq8k2QmSgW7Wn3bq8Qy0GJg4b1AAAAJgH3cUzB93F",
        "MwAAAAtzc2gtZWQyNTUxOQAAACDk8zQz5r4Wm9Gc5oXwq8k2QmSgW7Wn3bq8Qy0GJg4b1A",
    ];

    fn key() -> String {
        format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            BODY.join("\n")
        )
    }

    fn inline(value: &str) -> String {
        match parse(value) {
            Ok(PrivateKey::Inline(pem)) => pem.expose().to_owned(),
            other => panic!("not an inline key: {other:?}"),
        }
    }

    #[test]
    fn a_whole_key_is_used_however_it_was_pasted() {
        let key = key();
        for pasted in [
            key.clone(),
            key.trim_end().to_owned(),
            key.replace('\n', "\r\n"),
            key.trim_end().replace('\n', "\\n"),
            format!("\u{feff}{key}"),
            format!("\"{}\"", key.trim_end()),
            format!("'{}'", key.trim_end().replace('\n', "\\n")),
            format!("  {key}  "),
            key.trim_end().replace('\n', " "),
        ] {
            assert_eq!(inline(&pasted), key, "{pasted:?}");
            assert!(is_key_material(&pasted));
        }
    }

    #[test]
    fn key_material_that_is_not_a_whole_private_key_is_refused_clearly() {
        let key = key();
        let cases = [
            (BODY.join("\n"), BODY_ONLY),
            (BODY.join("\\n"), BODY_ONLY),
            (BODY.concat(), BODY_ONLY),
            (BODY[0].to_owned(), BODY_ONLY),
            (key.replace("-----END OPENSSH PRIVATE KEY-----\n", ""), PARTIAL),
            (format!("my key: {key}"), PARTIAL),
            (key.replace("-----BEGIN OPENSSH PRIVATE KEY-----\n", ""), PARTIAL),
            (
                "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: x\nPublic-Lines: 2\nAAAAC3NzaC1lZDI1NTE5AAAAIOTzNDPmvhab0ZzmhfCryTZCZKBbtaf\nPrivate-Lines: 1\nAAAAIFk=\nPrivate-MAC: 1f\n".to_owned(),
                PUTTY,
            ),
            (
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOTzNDPmvhab0ZzmhfCryTZCZKBbtafdurzxDLQYmDhv cloud@ms1".to_owned(),
                PUBLIC_KEY,
            ),
            (
                "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA5PM0M+a+FpvRnOaF8KvJNkJkoFu1p926vEMtBiYOG9Q=\n-----END PUBLIC KEY-----".to_owned(),
                PUBLIC_KEY,
            ),
        ];
        for (value, why) in cases {
            assert_eq!(parse(&value).unwrap_err(), why, "{value:?}");
            assert!(is_key_material(&value), "{value:?}");
        }
    }

    #[test]
    fn file_names_stay_file_names() {
        for path in [
            "/var/lib/cloudstack/management/.ssh/id_ed25519",
            "~/.ssh/id_rsa",
            "keys/hv1",
            "/etc/cloudstack/hyperv/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "C:\\keys\\hv1.pem",
        ] {
            assert_eq!(
                parse(path).unwrap_err_or_path(),
                PathBuf::from(path),
                "{path}"
            );
            assert!(!is_key_material(path), "{path}");
        }
    }

    trait PathOf {
        fn unwrap_err_or_path(self) -> PathBuf;
    }

    impl PathOf for Result<PrivateKey, String> {
        fn unwrap_err_or_path(self) -> PathBuf {
            match self {
                Ok(PrivateKey::File(path)) => path,
                other => panic!("not a file: {other:?}"),
            }
        }
    }
}
