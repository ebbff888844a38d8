//! `floor URL [--ca FILE | --insecure] [--header NAME:VALUE]... [--method GET|POST] [--body TEXT]`
//!
//! One HTTPS request and nothing else: the floor a Proxmox extension process cannot go below
//! for the same request. Same stack as proxmox-ext (ureq 3 + rustls, ring). Prints nothing;
//! exits 0 on a 2xx answer, 1 otherwise, 2 on usage errors.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(url) = args.next() else {
        return usage();
    };
    let mut ca = None;
    let mut insecure = false;
    let mut headers = Vec::new();
    let mut method = "GET".to_string();
    let mut body = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--ca" => ca = args.next(),
            "--insecure" => insecure = true,
            "--header" => match args.next().and_then(|h| {
                h.split_once(':')
                    .map(|(n, v)| (n.to_string(), v.trim().to_string()))
            }) {
                Some(h) => headers.push(h),
                None => return usage(),
            },
            "--method" => method = args.next().unwrap_or_default(),
            "--body" => body = args.next(),
            _ => return usage(),
        }
    }
    let tls = if insecure {
        ureq::tls::TlsConfig::builder()
            .disable_verification(true)
            .build()
    } else if let Some(path) = ca {
        let pem = match std::fs::read(&path) {
            Ok(pem) => pem,
            Err(_) => return ExitCode::from(1),
        };
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
            .build()
    } else {
        ureq::tls::TlsConfig::builder().build()
    };
    // proxmox-ext's buffer sizes (its transport.rs): the floor does no more than it.
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        .input_buffer_size(32 * 1024)
        .output_buffer_size(16 * 1024)
        .build()
        .new_agent();
    let result = match method.as_str() {
        "GET" => {
            let mut request = agent.get(&url);
            for (name, value) in &headers {
                request = request.header(name, value);
            }
            request.call()
        }
        "POST" => {
            let mut request = agent
                .post(&url)
                .content_type("application/x-www-form-urlencoded");
            for (name, value) in &headers {
                request = request.header(name, value);
            }
            request.send(body.unwrap_or_default().as_bytes())
        }
        _ => return usage(),
    };
    match result {
        Ok(mut response) => {
            let ok = response.status().is_success();
            let read = response
                .body_mut()
                .with_config()
                .limit(64 * 1024 * 1024)
                .read_to_vec();
            if ok && read.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(_) => ExitCode::from(1),
    }
}

fn usage() -> ExitCode {
    ExitCode::from(2)
}
