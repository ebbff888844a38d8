//! X.509 names as OpenSSL's hashed certificate directory files them: the subject hash
//! (`openssl x509 -hash`, `X509_NAME_hash_ex`) is the first four bytes, little-endian, of the
//! SHA-1 of the name's canonical encoding (`x509_name_canon`): each string value converted to
//! UTF-8, trimmed, inner white space collapsed to one space, ASCII lower-cased, re-encoded as
//! UTF8String; the RDN sets concatenated without the outer SEQUENCE.

use crate::der::{self, SEQUENCE, SET};

/// Issuer and subject names (whole DER encodings) of a DER certificate.
pub(crate) fn issuer_and_subject(cert: &[u8]) -> Option<(&[u8], &[u8])> {
    let (certificate, _) = der::read(cert)?;
    if certificate.tag != SEQUENCE {
        return None;
    }
    let (tbs, _) = der::read(certificate.content)?;
    if tbs.tag != SEQUENCE {
        return None;
    }
    let mut fields = der::children(tbs.content)?.into_iter();
    let mut field = fields.next()?;
    if field.tag == 0xa0 {
        // [0] version
        field = fields.next()?;
    }
    // field is the serial number; then the signature algorithm, issuer, validity, subject
    let _signature = fields.next()?;
    let issuer = fields.next()?;
    let _validity = fields.next()?;
    let subject = fields.next()?;
    (field.tag == 0x02 && issuer.tag == SEQUENCE && subject.tag == SEQUENCE)
        .then_some((issuer.whole, subject.whole))
}

/// The canonical encoding of a DER name (whole SEQUENCE), or `None` when it is malformed.
pub(crate) fn canonical(name: &[u8]) -> Option<Vec<u8>> {
    let (seq, rest) = der::read(name)?;
    if seq.tag != SEQUENCE || !rest.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for rdn in der::children(seq.content)? {
        if rdn.tag != SET {
            return None;
        }
        let mut entries = Vec::new();
        for entry in der::children(rdn.content)? {
            let parts = der::children(entry.content)?;
            let [oid, value] = parts.as_slice() else {
                return None;
            };
            let mut content = oid.whole.to_vec();
            match to_utf8(value.tag, value.content) {
                Some(text) => der::write(&mut content, 0x0c, &canonical_text(&text)),
                None => content.extend_from_slice(value.whole),
            }
            let mut encoded = Vec::new();
            der::write(&mut encoded, SEQUENCE, &content);
            entries.push(encoded);
        }
        // DER orders the members of a SET OF by their encodings.
        entries.sort();
        der::write(&mut out, SET, &entries.concat());
    }
    Some(out)
}

/// OpenSSL's subject hash of a DER certificate (`openssl x509 -hash`): the `<hash>` of the
/// `<hash>.0` file a hashed certificate directory holds it in.
pub fn subject_hash(cert: &[u8]) -> Option<u32> {
    let (_, subject) = issuer_and_subject(cert)?;
    canonical(subject).map(|canon| hash_of_canonical(&canon))
}

/// The hash of a canonical name encoding.
pub(crate) fn hash_of_canonical(canon: &[u8]) -> u32 {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, canon);
    let d = digest.as_ref();
    u32::from_le_bytes([d[0], d[1], d[2], d[3]])
}

/// The UTF-8 text of the string types OpenSSL canonicalises; `None` for any other type.
fn to_utf8(tag: u8, content: &[u8]) -> Option<Vec<u8>> {
    match tag {
        // UTF8String, PrintableString, IA5String, VisibleString
        0x0c | 0x13 | 0x16 | 0x1a => Some(content.to_vec()),
        // T61String: one byte per character, as OpenSSL reads it
        0x14 => Some(
            content
                .iter()
                .map(|&b| b as char)
                .collect::<String>()
                .into_bytes(),
        ),
        // BMPString: UCS-2, big-endian
        0x1e => {
            if !content.len().is_multiple_of(2) {
                return None;
            }
            let units = content.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            let text: Option<String> = units.map(|u| char::from_u32(u as u32)).collect();
            text.map(String::into_bytes)
        }
        // UniversalString: UCS-4, big-endian
        0x1c => {
            if !content.len().is_multiple_of(4) {
                return None;
            }
            let text: Option<String> = content
                .chunks(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect();
            text.map(String::into_bytes)
        }
        _ => None,
    }
}

/// `asn1_string_canon`: trim, collapse inner white space, lower-case ASCII.
fn canonical_text(text: &[u8]) -> Vec<u8> {
    let space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let start = text.iter().position(|&b| !space(b)).unwrap_or(text.len());
    let end = text
        .iter()
        .rposition(|&b| !space(b))
        .map_or(start, |i| i + 1);
    let mut out = Vec::with_capacity(end - start);
    let mut in_space = false;
    for &b in &text[start..end] {
        if space(b) {
            if !in_space {
                out.push(b' ');
            }
            in_space = true;
        } else {
            in_space = false;
            out.push(if b.is_ascii() {
                b.to_ascii_lowercase()
            } else {
                b
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    #[test]
    fn canonical_text_is_openssls() {
        assert_eq!(canonical_text(b"  Foo   Bar\tBAZ  "), b"foo bar baz");
        assert_eq!(canonical_text(b""), b"");
        assert_eq!(canonical_text(b"   "), b"");
        assert_eq!(canonical_text("Ünï  X".as_bytes()), "Ünï x".as_bytes());
    }

    /// Every `<hash>.N` link of this machine's hashed directory names its certificate by the
    /// hash we compute: the layout was made by OpenSSL (`c_rehash`/`update-ca-certificates`).
    #[test]
    #[allow(
        clippy::print_stderr,
        reason = "what was compared, for the test runner's output"
    )]
    fn matches_the_hashes_openssl_gave_this_machines_store() {
        let dir = std::path::Path::new("/etc/ssl/certs");
        let Ok(entries) = std::fs::read_dir(dir) else {
            eprintln!("no /etc/ssl/certs here; nothing to compare with");
            return;
        };
        let mut checked = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((hash, n)) = name.split_once('.') else {
                continue;
            };
            if hash.len() != 8 || n.parse::<u32>().is_err() {
                continue;
            }
            let Ok(want) = u32::from_str_radix(hash, 16) else {
                continue;
            };
            let pem = std::fs::read(entry.path()).unwrap();
            let cert = CertificateDer::pem_slice_iter(&pem)
                .next()
                .unwrap()
                .unwrap();
            assert_eq!(subject_hash(&cert), Some(want), "{name}");
            checked += 1;
        }
        eprintln!("{checked} hashed certificates agree");
    }
}
