//! `hyperv-testhost --dir DIR`: start a test Hyper-V host (see the crate docs), print one JSON
//! line describing it, run until SIGTERM/SIGINT/SIGHUP or until the parent process exits.
//!
//! `hyperv-testhost script NAME [JSON] [--command-line]`: print the PowerShell text
//! hyperv-ext would run for script NAME with data JSON, or the whole `powershell.exe ...
//! -EncodedCommand` line it would send (for running a script by hand on a real Windows host,
//! see docs/hyperv-windows-checklist.md). The result line is framed with the id `manual`.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool: the info line and the scripts on stdout, usage and errors on stderr"
)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use hyperv_protocol::Script;

const USAGE: &str =
    "usage: hyperv-testhost --dir DIR\n       hyperv-testhost script NAME [JSON-DATA]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["--dir", dir] => serve(PathBuf::from(dir)),
        ["script", name] => print_script(name, "{}", false),
        ["script", name, "--command-line"] => print_script(name, "{}", true),
        ["script", name, data] => print_script(name, data, false),
        ["script", name, data, "--command-line"] => print_script(name, data, true),
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn print_script(name: &str, data: &str, command_line: bool) -> ExitCode {
    let Some(script) = Script::from_name(name) else {
        let names: Vec<&str> = Script::ALL.iter().map(|s| s.name()).collect();
        eprintln!("unknown script '{name}'; one of: {}", names.join(", "));
        return ExitCode::from(2);
    };
    if !script.is_read_only() {
        // stderr, so `line=$(hyperv-testhost script ...)` still captures only the line.
        eprintln!(
            "note: script '{name}' changes the host; on a production host run only the \
             read-only ones (status, statuses, list-snapshots, check)"
        );
    }
    let data: serde_json::Value = match serde_json::from_str(data) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("data is not JSON: {e}");
            return ExitCode::from(2);
        }
    };
    match script.render(&data, "manual") {
        Ok(text) if command_line => match hyperv_protocol::command_line(script, &text) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(dir: PathBuf) -> ExitCode {
    let fake = match std::env::current_exe() {
        Ok(exe) => exe.with_file_name("hyperv-fake-powershell"),
        Err(e) => {
            eprintln!("hyperv-testhost: {e}");
            return ExitCode::FAILURE;
        }
    };
    let parent = std::os::unix::process::parent_id();
    let mut running = match hyperv_testhost::host::start(&dir, &fake) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hyperv-testhost: {e}");
            return ExitCode::FAILURE;
        }
    };
    let line = serde_json::to_string(&running.info).expect("info serialises");
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        running.stop();
        return ExitCode::FAILURE;
    }
    drop(stdout);

    // Wait for a termination signal, the parent's exit, or sshd's death.
    #[expect(unsafe_code, reason = "std cannot block or wait for signals")]
    // SAFETY: a zeroed sigset_t is a valid argument to sigemptyset, which initialises it;
    // each call gets a pointer to that local set, borrowed for the call only; on this thread,
    // before any other thread exists.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&raw mut set);
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&raw mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &raw const set, std::ptr::null_mut());
        set
    };
    let timeout = libc::timespec {
        tv_sec: 0,
        tv_nsec: 200_000_000,
    };
    let code = loop {
        #[expect(unsafe_code, reason = "std cannot wait for a signal")]
        // SAFETY: pointers to a valid set and timeout, borrowed for the call; no siginfo wanted.
        let sig =
            unsafe { libc::sigtimedwait(&raw const set, std::ptr::null_mut(), &raw const timeout) };
        if sig > 0 {
            break ExitCode::SUCCESS;
        }
        if std::os::unix::process::parent_id() != parent {
            break ExitCode::SUCCESS;
        }
        if let Some(status) = running.sshd_exited() {
            eprintln!("hyperv-testhost: sshd exited unexpectedly ({status})");
            break ExitCode::FAILURE;
        }
    };
    running.stop();
    code
}
