//! Records the commit the binaries are built from, for `--version`: operators compare it
//! across management servers (CloudStack needs byte-identical executables on all of them).
//!
//! `CSEXT_BUILD_COMMIT` wins (builds from a source tarball have no git); else
//! `git rev-parse --short=12 HEAD`, with `-dirty` when tracked files differ from it; else
//! `unknown`. Nothing here depends on the time or the checkout path, so the binaries stay
//! reproducible.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn main() {
    println!("cargo:rerun-if-env-changed=CSEXT_BUILD_COMMIT");
    let commit = match std::env::var("CSEXT_BUILD_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_owned(),
        _ => from_git().unwrap_or_else(|| "unknown".to_owned()),
    };
    println!("cargo:rustc-env=CSEXT_COMMIT={commit}");
}

fn from_git() -> Option<String> {
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    // Rebuild when HEAD moves or the index changes (a commit, a checkout, a staged edit).
    for path in ["HEAD", "index"] {
        if let Some(p) = git(&["rev-parse", "--git-path", path]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(p) = git(&["rev-parse", "--git-path", &reference])
        && Path::new(&p).exists()
    {
        println!("cargo:rerun-if-changed={p}");
    }
    let dirty = git(&[
        "--no-optional-locks",
        "status",
        "--porcelain",
        "--untracked-files=no",
    ])
    .is_some_and(|s| !s.is_empty());
    Some(if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    })
}
