//! The TLS channel binding of a connection, RFC 5929 `tls-server-end-point`: what NTLM and
//! Kerberos put in their authenticator so that a credential proven over this connection
//! cannot be relayed through another (WinRM's "CBT hardening").

use crate::der::{self, SEQUENCE};

/// The `tls-server-end-point` application data for a server certificate (DER):
/// `tls-server-end-point:` followed by the certificate's hash, with the hash function of its
/// signature algorithm, SHA-256 when that is MD5 or SHA-1 (RFC 5929 section 4.1) or unknown.
pub fn tls_server_end_point(certificate: &[u8]) -> Vec<u8> {
    let algorithm = match signature_hash(certificate) {
        SignatureHash::Sha384 => &ring::digest::SHA384,
        SignatureHash::Sha512 => &ring::digest::SHA512,
        SignatureHash::Sha256 => &ring::digest::SHA256,
    };
    let mut data = b"tls-server-end-point:".to_vec();
    data.extend_from_slice(ring::digest::digest(algorithm, certificate).as_ref());
    data
}

#[derive(Debug, PartialEq, Eq)]
enum SignatureHash {
    Sha256,
    Sha384,
    Sha512,
}

/// DER OIDs (content bytes) of the SHA-384 and SHA-512 signature algorithms.
const SHA384: [&[u8]; 2] = [
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c], // sha384WithRSAEncryption
    &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03],       // ecdsa-with-SHA384
];
const SHA512: [&[u8]; 2] = [
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d], // sha512WithRSAEncryption
    &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04],       // ecdsa-with-SHA512
];
const OID: u8 = 0x06;

/// The hash of the certificate's `signatureAlgorithm` (the outer one, after the TBS part).
fn signature_hash(certificate: &[u8]) -> SignatureHash {
    let oid = (|| {
        let (cert, _) = der::read(certificate)?;
        let [tbs, algorithm, ..] = der::children(cert.content)?[..] else {
            return None;
        };
        if cert.tag != SEQUENCE || tbs.tag != SEQUENCE || algorithm.tag != SEQUENCE {
            return None;
        }
        let (oid, _) = der::read(algorithm.content)?;
        (oid.tag == OID).then_some(oid.content)
    })();
    match oid {
        Some(oid) if SHA384.contains(&oid) => SignatureHash::Sha384,
        Some(oid) if SHA512.contains(&oid) => SignatureHash::Sha512,
        _ => SignatureHash::Sha256,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate skeleton: SEQUENCE { SEQUENCE tbs, SEQUENCE { OID }, BIT STRING }.
    fn cert_with(oid: &[u8]) -> Vec<u8> {
        let mut tbs = Vec::new();
        der::write(&mut tbs, SEQUENCE, &[0x02, 0x01, 0x01]);
        let mut oid_tlv = Vec::new();
        der::write(&mut oid_tlv, OID, oid);
        let mut alg = Vec::new();
        der::write(&mut alg, SEQUENCE, &oid_tlv);
        let sig = [0x03, 0x02, 0x00, 0xff];
        let mut cert = Vec::new();
        der::write(&mut cert, SEQUENCE, &[&tbs[..], &alg, &sig].concat());
        cert
    }

    #[test]
    fn the_hash_follows_the_signature_algorithm() {
        let ecdsa_sha256 = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
        let rsa_sha1 = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
        let rsa_sha384 = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
        let ecdsa_sha512 = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
        for (oid, want) in [
            (&ecdsa_sha256[..], SignatureHash::Sha256),
            (&rsa_sha1[..], SignatureHash::Sha256),
            (&rsa_sha384[..], SignatureHash::Sha384),
            (&ecdsa_sha512[..], SignatureHash::Sha512),
        ] {
            assert_eq!(signature_hash(&cert_with(oid)), want, "{oid:02x?}");
        }
        assert_eq!(signature_hash(b"garbage"), SignatureHash::Sha256);

        let cert = cert_with(&rsa_sha384);
        let data = tls_server_end_point(&cert);
        assert_eq!(&data[..21], b"tls-server-end-point:");
        assert_eq!(
            &data[21..],
            ring::digest::digest(&ring::digest::SHA384, &cert).as_ref()
        );
        let cert = cert_with(&ecdsa_sha256);
        assert_eq!(
            &tls_server_end_point(&cert)[21..],
            crate::Fingerprint::of(&cert).as_bytes()
        );
    }
}
