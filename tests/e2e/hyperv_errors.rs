//! What an action says when it cannot reach the host (issue 10 item 4): every connection,
//! DNS, timeout, SSH and WinRM error names the address and the details it came from, says
//! which transport reaches this host, and is plain ASCII. The timeout is asserted in hyperv_transport
//! (`a_server_that_never_answers_is_bounded_by_the_deadline`).

use std::io::{Read, Write};
use std::time::Duration;

use e2e::hyperv::{Cost, Hv, UUID, VM};
use serde_json::json;

/// The error of `status` with the host details edited by `f`; nothing ran on the host.
fn status_error(hv: &Hv, timeout: &str, f: impl FnOnce(&mut serde_json::Value)) -> String {
    let p = hv.with_host(&hv.payload(VM, UUID), f);
    let launches = hv.state().invocations;
    let run = hv.run_with_timeout("status", &p, timeout);
    let limit = Duration::from_secs(timeout.parse().unwrap());
    let err = run.failure_within(1, limit);
    assert!(err.is_ascii(), "{err}");
    assert_eq!(hv.state().invocations, launches, "PowerShell never ran");
    err
}

#[test]
fn a_refused_connection_names_the_address_its_details_and_ssh() {
    let hv = Hv::start();
    let port = e2e::closed_port("127.0.0.1");
    let err = status_error(&hv, "30", |h| h["port"] = json!(port.to_string()));
    assert!(
        err.starts_with(&format!(
            "reading the state of VM {VM} on 127.0.0.1:{port}: cannot connect to \
             127.0.0.1:{port}: "
        )),
        "{err}"
    );
    assert!(
        err.ends_with(&format!(
            "; hyperv-ext connects to this host over SSH at 127.0.0.1:{port}, from url \
             '127.0.0.1' (host detail) and port '{port}' (host detail): check that the host's \
             OpenSSH server is running and that its firewall lets TCP port {port} in \
             (docs/hyperv-ext.md, 'Enabling the OpenSSH server')"
        )),
        "{err}"
    );
}

#[test]
fn a_name_that_does_not_resolve_is_named_with_its_detail() {
    let hv = Hv::start();
    let err = status_error(&hv, "10", |h| {
        h["url"] = json!("hv1.invalid");
        h.as_object_mut().unwrap().remove("port");
    });
    // The resolver answers, or the deadline ends the wait: either way the name and the
    // details it came from are in the message.
    assert!(
        err.contains("cannot resolve hv1.invalid: ") || err.contains("resolving hv1.invalid"),
        "{err}"
    );
    assert!(
        err.contains(
            "hyperv-ext connects to this host over SSH at hv1.invalid:22, from url \
             'hv1.invalid' (host detail) and the default port"
        ),
        "{err}"
    );
}

#[test]
fn a_service_that_is_not_ssh_fails_the_handshake_and_says_what_to_check() {
    let hv = Hv::start();
    // Answers like a web server, then closes.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
            let mut buf = [0u8; 256];
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = stream.read(&mut buf);
        }
    });
    let err = status_error(&hv, "30", |h| h["port"] = json!(port.to_string()));
    server.join().unwrap();
    assert!(
        err.contains(&format!("SSH handshake with 127.0.0.1:{port} failed")),
        "{err}"
    );
    assert!(
        err.ends_with(&format!(
            "hyperv-ext connects to this host over SSH at 127.0.0.1:{port}, from url \
             '127.0.0.1' (host detail) and port '{port}' (host detail): is the host's OpenSSH \
             server what listens there?"
        )),
        "{err}"
    );
}

#[test]
fn host_key_and_authentication_errors_name_the_address_and_its_details() {
    let hv = Hv::start();
    let port = hv.host.info.port;
    let suffix = format!(
        "; SSH to 127.0.0.1:{port}, from url '127.0.0.1' (host detail) and port '{port}' \
         (host detail)"
    );
    let err = status_error(&hv, "30", |h| {
        h["host_key_fingerprint"] = json!("SHA256:rR6iUlzF3uUDWWx6mhOqgnuP3WdqUWW2Yl5chxZ8Vik");
    });
    assert!(
        err.contains("host key mismatch") && err.ends_with(&suffix),
        "{err}"
    );
    let (run, cost) = hv.run_counted(
        "status",
        &hv.with_host(&hv.payload(VM, UUID), |h| h["password"] = json!("wrong")),
    );
    let err = run.failure(1);
    assert!(
        err.contains("SSH authentication as 'hvtest' by password failed") && err.ends_with(&suffix),
        "{err}"
    );
    assert_eq!(cost, Cost::CONNECTED_ONLY);
}

#[test]
fn over_winrm_a_refused_connection_and_rejected_credentials_name_the_url_and_its_detail() {
    let hv = Hv::start_winrm();
    let host = hv.host.info.winrm.winrm_host.clone();
    let port = e2e::closed_port(&host);
    let url = format!("https://{host}:{port}/wsman");
    let err = status_error(&hv, "30", |h| h["url"] = json!(url));
    assert!(
        err.contains(&format!("WinRM: cannot connect to {host}:{port}: ")),
        "{err}"
    );
    assert!(
        err.ends_with(&format!(
            "; hyperv-ext connects to this host over WinRM at {url}, from url '{url}' (host \
             detail): WinRM was chosen because no SSH detail is set; set \
             transport=ssh and host_key_fingerprint to use SSH"
        )),
        "{err}"
    );

    let err = status_error(&hv, "30", |h| h["password"] = json!("Wrong-Password-9"));
    assert!(
        err.contains(&format!(
            "the WinRM service rejected the credentials (NTLM): check the username and \
             password; WinRM to https://{host}:5986/wsman, from url '{host}' (host detail) and \
             the default port"
        )),
        "{err}"
    );
    assert!(!err.contains("Wrong-Password-9"), "{err}");
}
