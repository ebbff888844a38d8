//! The commands an operator runs by hand, never CloudStack: `--register` and `--entry-point`.
//!
//! They are ordinary command-line tools: text on stdout, errors on stderr, exit status 0, 1
//! (failed) or 2 (usage). The CloudStack contract (one JSON document, nothing on stderr)
//! applies to actions only.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Arg, ArgAction, Command};

use crate::catalog::Registration;
use crate::layout;
use crate::register::{self, cmk::Cmk};
use crate::runner::Meta;

/// The first arguments that select an operator command.
const COMMANDS: &[&str] = &["--register", "--entry-point"];

/// Runs an operator command if argv asks for one; `None` for everything else.
#[expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an operator command is a command-line tool, not a CloudStack action: text on stdout, errors on stderr"
)]
pub(crate) fn dispatch(meta: &Meta, argv: &[OsString]) -> Option<ExitCode> {
    let registration = meta.registration.as_ref()?;
    let first = argv.get(1)?.to_str()?;
    if !COMMANDS.contains(&first) {
        return None;
    }
    let matches = match command(meta, registration).try_get_matches_from(argv) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return Some(ExitCode::from(2));
        }
    };
    let register = matches.get_flag("register");
    if !register && (matches.get_flag("dry-run") || matches.contains_id("cmk")) {
        eprintln!(
            "{}: error: --dry-run and --cmk go with --register",
            meta.name
        );
        return Some(ExitCode::from(2));
    }
    let name = matches
        .get_one::<String>("name")
        .cloned()
        .unwrap_or_else(|| registration.default_name.to_owned());
    let result = if register {
        let cmk = matches
            .get_one::<PathBuf>("cmk")
            .cloned()
            .unwrap_or_else(|| PathBuf::from("cmk"));
        run_register(meta, registration, &name, matches.get_flag("dry-run"), cmk)
    } else {
        layout::check_extension_name(&name).map(|()| {
            println!("{}", layout::entry_point(&name, meta.name).display());
        })
    };
    Some(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}: error: {e}", meta.name);
            ExitCode::from(1)
        }
    })
}

fn command(meta: &Meta, registration: &Registration) -> Command {
    Command::new(meta.name)
        .about(meta.about)
        .disable_help_subcommand(true)
        .arg(
            Arg::new("register")
                .long("register")
                .action(ArgAction::SetTrue)
                .conflicts_with("entry-point")
                .help("Create or update the extension and its custom actions in CloudStack with CloudMonkey (cmk)"),
        )
        .arg(
            Arg::new("entry-point")
                .long("entry-point")
                .action(ArgAction::SetTrue)
                .help("Print the path CloudStack runs for the extension (where the package links the binary)"),
        )
        .arg(
            Arg::new("name")
                .long("name")
                .value_name("NAME")
                .help(format!(
                    "Extension name in CloudStack (default {})",
                    registration.default_name
                )),
        )
        .arg(
            Arg::new("dry-run")
                .long("dry-run")
                .action(ArgAction::SetTrue)
                .help("Only read from CloudStack; print the cmk commands that would change it"),
        )
        .arg(
            Arg::new("cmk")
                .long("cmk")
                .value_name("PATH")
                .value_parser(clap::value_parser!(PathBuf))
                .help("CloudMonkey executable (default: cmk from PATH)"),
        )
}

fn run_register(
    meta: &Meta,
    registration: &Registration,
    name: &str,
    dry_run: bool,
    cmk: PathBuf,
) -> Result<(), String> {
    layout::check_extension_name(name)?;
    let mut out = std::io::stdout().lock();
    match check_entry_point(meta, registration, name, Path::new(layout::EXTENSIONS_ROOT)) {
        Ok(None) => {}
        Ok(Some(note)) => {
            let _ = writeln!(out, "# note: {note}");
        }
        Err(problem) if dry_run => {
            let _ = writeln!(out, "# note: {problem}");
        }
        Err(problem) => return Err(problem),
    }
    register::register(
        meta,
        registration,
        name,
        dry_run,
        &mut Cmk::new(cmk),
        &mut out,
    )
    .map(|_| ())
    .map_err(|e| {
        if dry_run {
            e.to_string()
        } else {
            format!(
                "{e}\nWhat was registered before this error stays; run --register again to finish."
            )
        }
    })
}

/// Checks, on a management server, the file CloudStack will run for `name`: a missing or
/// unusable entry point makes `createExtension` fail ("path is not ready") and the extension
/// Not Ready. Answers a note when this is not a management server or something deserves a
/// look.
fn check_entry_point(
    meta: &Meta,
    registration: &Registration,
    name: &str,
    root: &Path,
) -> Result<Option<String>, String> {
    if !root.is_dir() {
        return Ok(Some(format!(
            "{} does not exist here, so this is not a management server: make sure every management server has the {} package installed",
            root.display(),
            meta.name
        )));
    }
    let dir = root.join(layout::directory_name(name));
    let entry = dir.join(meta.name);
    let how = if name == registration.default_name {
        format!("reinstall the {} package, which creates it", meta.name)
    } else {
        let target = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| format!("/usr/libexec/{0}/{0}", meta.name));
        format!(
            "the package creates it only for the name {}; for '{name}' run on every management server: install -d -o cloud -g cloud {} && ln -sfn {target} {}",
            registration.default_name,
            dir.display(),
            entry.display()
        )
    };
    let meta_data = std::fs::metadata(&entry).map_err(|e| {
        format!(
            "CloudStack would run {}, which cannot be used ({e}): {how}",
            entry.display()
        )
    })?;
    if !meta_data.is_file() || meta_data.permissions().mode() & 0o111 == 0 {
        return Err(format!(
            "CloudStack would run {}, which is not an executable file: {how}",
            entry.display()
        ));
    }
    let others: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != meta.name)
                .collect()
        })
        .unwrap_or_default();
    if !others.is_empty() {
        return Ok(Some(format!(
            "{} also holds {}: CloudStack compares every file there across management servers, so keep only {} in it",
            dir.display(),
            others.join(", "),
            meta.name
        )));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ActionSpec;

    const REGISTRATION: Registration = Registration {
        default_name: "TestRs",
        description: "test",
        requires_prepare_vm: false,
        reserved_resource_details: &[],
    };
    const META: Meta = Meta {
        name: "test-ext",
        version: "0.0.0",
        about: "test",
        actions: &[ActionSpec::built_in("status")],
        registration: Some(REGISTRATION),
        details: &[],
    };

    #[test]
    fn entry_point_checks() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("extensions");
        let note = check_entry_point(&META, &REGISTRATION, "TestRs", &root).unwrap();
        assert!(note.unwrap().contains("not a management server"));

        std::fs::create_dir_all(root.join("testrs")).unwrap();
        let err = check_entry_point(&META, &REGISTRATION, "TestRs", &root).unwrap_err();
        assert!(
            err.contains("testrs/test-ext") && err.contains("reinstall"),
            "{err}"
        );
        let err = check_entry_point(&META, &REGISTRATION, "Other Name", &root).unwrap_err();
        assert!(
            err.contains("other_name/test-ext") && err.contains("ln -sfn"),
            "{err}"
        );

        let bin = tmp.path().join("bin");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        std::os::unix::fs::symlink(&bin, root.join("testrs/test-ext")).unwrap();
        let err = check_entry_point(&META, &REGISTRATION, "TestRs", &root).unwrap_err();
        assert!(err.contains("not an executable"), "{err}");
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            check_entry_point(&META, &REGISTRATION, "TestRs", &root),
            Ok(None)
        );
        std::fs::write(root.join("testrs/notes.txt"), "x").unwrap();
        let note = check_entry_point(&META, &REGISTRATION, "TestRs", &root)
            .unwrap()
            .unwrap();
        assert!(note.contains("notes.txt"), "{note}");
    }
}
