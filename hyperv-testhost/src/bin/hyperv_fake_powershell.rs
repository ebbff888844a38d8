//! The fake `powershell.exe` behind the test host's sshd (`ForceCommand ... --home DIR`).
//! See `hyperv_testhost::fake`.

#![forbid(unsafe_code)]
#![allow(
    clippy::print_stderr,
    reason = "the usage line for someone who runs it by hand; as sshd's ForceCommand it never prints it"
)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.as_slice() {
        [flag, home] if flag == "--home" => hyperv_testhost::fake::main(std::path::Path::new(home)),
        _ => {
            eprintln!("usage: hyperv-fake-powershell --home DIR (run by sshd as ForceCommand)");
            2
        }
    };
    ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(u8::MAX))
}
