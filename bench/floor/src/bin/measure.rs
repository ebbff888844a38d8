//! `measure [--stdout FILE] [--stderr FILE] -- PROGRAM ARGS...`
//!
//! Runs PROGRAM once the way CloudStack does (no shell; stdin an open pipe nobody writes to)
//! and prints one JSON line: wall time, user and system CPU time, peak RSS and exit status of
//! that process, from `wait4(2)`, plus its start and end on CLOCK_MONOTONIC (the clock Python's
//! `time.monotonic()` reads, so the harness can relate them to simulator events).
//!
//! Why a native helper: Linux carries the pre-exec peak RSS of the forked child into
//! `ru_maxrss`, so a child forked from a Python parent reports the parent's ~18 MiB. This
//! process is small, so what it reports is the child's own peak.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

fn monotonic_ns() -> u128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

fn open_out(path: &str) -> libc::c_int {
    let c = CString::new(path).expect("path without NUL");
    // SAFETY: a valid C string.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            0o644,
        )
    };
    if fd < 0 {
        eprintln!("measure: cannot open {path}");
        std::process::exit(2);
    }
    fd
}

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let mut stdout_path = None;
    let mut stderr_path = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].to_str() {
            Some("--stdout") => {
                stdout_path = args.get(i + 1).and_then(|a| a.to_str()).map(String::from);
                i += 2;
            }
            Some("--stderr") => {
                stderr_path = args.get(i + 1).and_then(|a| a.to_str()).map(String::from);
                i += 2;
            }
            Some("--") => {
                i += 1;
                break;
            }
            _ => {
                eprintln!("usage: measure [--stdout FILE] [--stderr FILE] -- PROGRAM ARGS...");
                std::process::exit(2);
            }
        }
    }
    let command: Vec<CString> = args[i..]
        .iter()
        .map(|a| CString::new(a.as_bytes()).expect("argument without NUL"))
        .collect();
    if command.is_empty() {
        eprintln!("measure: no program");
        std::process::exit(2);
    }
    let mut argv: Vec<*const libc::c_char> = command.iter().map(|c| c.as_ptr()).collect();
    argv.push(std::ptr::null());
    let out_fd = open_out(stdout_path.as_deref().unwrap_or("/dev/null"));
    let err_fd = open_out(stderr_path.as_deref().unwrap_or("/dev/null"));
    let mut pipe = [0 as libc::c_int; 2];
    // SAFETY: a valid array of two descriptors.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        eprintln!("measure: pipe failed");
        std::process::exit(2);
    }

    let start = monotonic_ns();
    // SAFETY: the child only calls async-signal-safe functions (dup2, execvp, _exit) on data
    // prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe {
            libc::dup2(pipe[0], 0);
            libc::dup2(out_fd, 1);
            libc::dup2(err_fd, 2);
            libc::execvp(argv[0], argv.as_ptr());
            libc::_exit(127);
        }
    }
    if pid < 0 {
        eprintln!("measure: fork failed");
        std::process::exit(2);
    }
    let mut status: libc::c_int = 0;
    // SAFETY: zeroed rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers; our own child.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let end = monotonic_ns();
    // The stdin pipe stays open (nobody writes) until the child is gone.
    unsafe { libc::close(pipe[1]) };
    if waited != pid {
        eprintln!("measure: wait4 failed");
        std::process::exit(2);
    }
    let exit = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    let us = |t: libc::timeval| t.tv_sec * 1_000_000 + t.tv_usec;
    println!(
        "{{\"wall_ns\":{},\"user_us\":{},\"sys_us\":{},\"maxrss_kib\":{},\"exit\":{},\"start_ns\":{},\"end_ns\":{}}}",
        end - start,
        us(usage.ru_utime),
        us(usage.ru_stime),
        usage.ru_maxrss,
        exit,
        start,
        end
    );
}
