//! The system trust store, read the way OpenSSL reads it, one issuer at a time.

use std::path::{Path, PathBuf};

use log::debug;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::name;

/// Where OpenSSL looks when nothing says otherwise: its hashed directory on Debian, Ubuntu,
/// SUSE and Alpine (`/usr/lib/ssl/certs` links there), and EL's directory, which has no
/// hashes (there the bundle is used).
const DEFAULT_DIRS: &[&str] = &["/etc/ssl/certs", "/etc/pki/tls/certs"];
/// Bundle files, the first that exists is used: Debian/Ubuntu/Alpine, EL/Fedora, SUSE, BSD.
const DEFAULT_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The trust store's hashed certificate directories and bundle files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemStore {
    dirs: Vec<PathBuf>,
    bundles: Vec<PathBuf>,
}

impl SystemStore {
    /// The store OpenSSL would use in this environment: `SSL_CERT_DIR` (a `:`-separated list)
    /// and `SSL_CERT_FILE` when set, else the platform's default directory and bundle.
    pub fn from_env() -> SystemStore {
        let dirs = match std::env::var_os("SSL_CERT_DIR") {
            Some(list) => std::env::split_paths(&list)
                .filter(|p| !p.as_os_str().is_empty())
                .collect(),
            None => DEFAULT_DIRS.iter().map(PathBuf::from).collect(),
        };
        let bundles = match std::env::var_os("SSL_CERT_FILE") {
            Some(file) => vec![PathBuf::from(file)],
            None => DEFAULT_BUNDLES
                .iter()
                .map(Path::new)
                .find(|p| p.is_file())
                .map(Path::to_path_buf)
                .into_iter()
                .collect(),
        };
        SystemStore { dirs, bundles }
    }

    /// A store of exactly these directories and bundle files.
    pub fn new(dirs: Vec<PathBuf>, bundles: Vec<PathBuf>) -> SystemStore {
        SystemStore { dirs, bundles }
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    pub fn bundles(&self) -> &[PathBuf] {
        &self.bundles
    }

    /// The certificates whose subject is one of `names` (whole DER names): looked up by
    /// subject hash in the hashed directories; only when none is found there, by scanning
    /// the bundle files.
    pub(crate) fn issuers(&self, names: &[&[u8]]) -> Vec<CertificateDer<'static>> {
        let wanted: Vec<Vec<u8>> = names.iter().filter_map(|n| name::canonical(n)).collect();
        let mut found = Vec::new();
        for canon in &wanted {
            let hash = name::hash_of_canonical(canon);
            for dir in &self.dirs {
                for n in 0.. {
                    let path = dir.join(format!("{hash:08x}.{n}"));
                    let Ok(pem) = std::fs::read(&path) else {
                        break;
                    };
                    debug!("trust store: reading {}", path.display());
                    found.extend(matching(&pem, &wanted));
                }
            }
        }
        if found.is_empty() {
            for bundle in &self.bundles {
                if let Ok(pem) = std::fs::read(bundle) {
                    debug!("trust store: scanning {}", bundle.display());
                    found.extend(matching(&pem, &wanted));
                }
            }
        }
        found
    }
}

/// The certificates of a PEM text whose canonical subject is one of `wanted`.
fn matching(pem: &[u8], wanted: &[Vec<u8>]) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .filter(|cert| {
            name::issuer_and_subject(cert)
                .and_then(|(_, subject)| name::canonical(subject))
                .is_some_and(|canon| wanted.contains(&canon))
        })
        .collect()
}
