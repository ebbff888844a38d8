//! What the binary was built from, for `--version`: operators compare it across management
//! servers, which must all run byte-identical executables.

/// The commit the binary was built from (`git rev-parse --short=12 HEAD`, `-dirty` when the
/// tracked files differed from it, the `CSEXT_BUILD_COMMIT` environment variable of the build
/// when set, or `unknown`).
pub const COMMIT: &str = env!("CSEXT_COMMIT");

/// The version line: `<version> (commit <commit>)`.
pub fn version(version: &str) -> String {
    format!("{version} (commit {COMMIT})")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_version_names_the_commit() {
        assert!(!super::COMMIT.is_empty());
        assert_eq!(
            super::version("1.2.3"),
            format!("1.2.3 (commit {})", super::COMMIT)
        );
    }
}
