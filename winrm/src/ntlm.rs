//! NTLM (v2, with MIC and the TLS channel binding) through the `sspi` crate: the negotiate
//! message, then the authenticate message answering the server's challenge.

use sha2::{Digest, Sha256, Sha384, Sha512};
use sspi::{
    AuthIdentity, BufferType, ClientRequestFlags, CredentialUse, DataRepresentation, Ntlm,
    SecurityBuffer, SecurityStatus, Sspi, SspiImpl, Username,
};

pub(crate) struct NtlmClient {
    context: Ntlm,
    credentials: Option<sspi::AuthIdentityBuffers>,
    target: String,
}

impl NtlmClient {
    /// `username` as `user`, `DOMAIN\user` or `user@domain`; `channel_binding` the
    /// `tls-server-end-point` application data ([`channel_binding`]).
    pub fn new(
        username: &str,
        password: &str,
        host: &str,
        channel_binding: &[u8],
    ) -> Result<NtlmClient, String> {
        let mut context = Ntlm::new();
        context.set_channel_bindings(channel_binding);
        let identity = AuthIdentity {
            username: Username::parse(username)
                .map_err(|e| format!("the username '{username}' is not usable for NTLM: {e}"))?,
            password: password.to_owned().into(),
        };
        let acquired = context
            .acquire_credentials_handle()
            .with_credential_use(CredentialUse::Outbound)
            .with_auth_data(&identity)
            .execute(&mut context)
            .map_err(|e| format!("NTLM credentials: {e}"))?;
        Ok(NtlmClient {
            context,
            credentials: acquired.credentials_handle,
            target: format!("HTTP/{host}"),
        })
    }

    fn step(&mut self, challenge: Option<&[u8]>) -> Result<Vec<u8>, String> {
        let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
        let mut input = challenge.map(|c| vec![SecurityBuffer::new(c.to_vec(), BufferType::Token)]);
        let mut builder = self
            .context
            .initialize_security_context()
            .with_credentials_handle(&mut self.credentials)
            .with_context_requirements(
                ClientRequestFlags::ALLOCATE_MEMORY | ClientRequestFlags::INTEGRITY,
            )
            .with_target_data_representation(DataRepresentation::Native)
            .with_target_name(&self.target)
            .with_output(&mut output);
        if let Some(input) = input.as_mut() {
            builder = builder.with_input(input);
        }
        let result = self
            .context
            .initialize_security_context_impl(&mut builder)
            .and_then(|mut generator| generator.resolve_to_result())
            .map_err(|e| format!("NTLM: {e}"))?;
        match result.status {
            SecurityStatus::ContinueNeeded
            | SecurityStatus::CompleteNeeded
            | SecurityStatus::Ok => {}
            other => return Err(format!("NTLM: unexpected status {other:?}")),
        }
        Ok(std::mem::take(&mut output[0].buffer))
    }

    /// The first (NEGOTIATE) message.
    pub fn negotiate(&mut self) -> Result<Vec<u8>, String> {
        self.step(None)
    }

    /// The AUTHENTICATE message for the server's CHALLENGE.
    pub fn authenticate(&mut self, challenge: &[u8]) -> Result<Vec<u8>, String> {
        self.step(Some(challenge))
    }
}

/// RFC 5929 `tls-server-end-point` application data: the prefix and the hash of the server's
/// certificate, with the certificate signature's hash function (SHA-256 for MD5 and SHA-1).
pub(crate) fn channel_binding(certificate_der: &[u8]) -> Vec<u8> {
    let hash = match signature_hash(certificate_der) {
        SignatureHash::Sha384 => Sha384::digest(certificate_der).to_vec(),
        SignatureHash::Sha512 => Sha512::digest(certificate_der).to_vec(),
        SignatureHash::Sha256 => Sha256::digest(certificate_der).to_vec(),
    };
    let mut data = b"tls-server-end-point:".to_vec();
    data.extend_from_slice(&hash);
    data
}

#[derive(Debug, PartialEq, Eq)]
enum SignatureHash {
    Sha256,
    Sha384,
    Sha512,
}

/// The hash of the certificate's `signatureAlgorithm` (the outer one, after the TBS part).
fn signature_hash(der: &[u8]) -> SignatureHash {
    // DER OIDs (content bytes) of the SHA-384 and SHA-512 signature algorithms.
    const SHA384: [&[u8]; 2] = [
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c], // sha384WithRSAEncryption
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03],       // ecdsa-with-SHA384
    ];
    const SHA512: [&[u8]; 2] = [
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d], // sha512WithRSAEncryption
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04],       // ecdsa-with-SHA512
    ];
    let oid = (|| {
        let (certificate, _) = der_element(der, 0x30)?;
        let (_tbs, rest) = der_element(certificate, 0x30)?;
        let (algorithm, _) = der_element(rest, 0x30)?;
        let (oid, _) = der_element(algorithm, 0x06)?;
        Some(oid)
    })();
    match oid {
        Some(oid) if SHA384.contains(&oid) => SignatureHash::Sha384,
        Some(oid) if SHA512.contains(&oid) => SignatureHash::Sha512,
        _ => SignatureHash::Sha256,
    }
}

/// The content of the DER element of type `tag` at the start of `data`, and what follows it.
fn der_element(data: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = data.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate skeleton: SEQUENCE { SEQUENCE tbs, SEQUENCE { OID }, BIT STRING }.
    fn cert_with(oid: &[u8]) -> Vec<u8> {
        let tbs = [0x30, 0x03, 0x02, 0x01, 0x01];
        let mut alg = vec![0x30, oid.len() as u8 + 2, 0x06, oid.len() as u8];
        alg.extend_from_slice(oid);
        let sig = [0x03, 0x02, 0x00, 0xff];
        let inner: Vec<u8> = [&tbs[..], &alg, &sig].concat();
        let mut der = vec![0x30, 0x81, inner.len() as u8];
        der.extend(inner);
        der
    }

    #[test]
    fn channel_binding_hash_follows_the_signature_algorithm() {
        let ecdsa_sha256 = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
        let rsa_sha1 = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
        let rsa_sha384 = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
        let ecdsa_sha512 = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
        assert_eq!(
            signature_hash(&cert_with(&ecdsa_sha256)),
            SignatureHash::Sha256
        );
        assert_eq!(signature_hash(&cert_with(&rsa_sha1)), SignatureHash::Sha256);
        assert_eq!(
            signature_hash(&cert_with(&rsa_sha384)),
            SignatureHash::Sha384
        );
        assert_eq!(
            signature_hash(&cert_with(&ecdsa_sha512)),
            SignatureHash::Sha512
        );
        assert_eq!(signature_hash(b"garbage"), SignatureHash::Sha256);
        let cert = cert_with(&rsa_sha384);
        let data = channel_binding(&cert);
        assert_eq!(&data[..21], b"tls-server-end-point:");
        assert_eq!(&data[21..], Sha384::digest(&cert).as_slice());
    }

    #[test]
    fn the_first_message_is_an_ntlm_negotiate() {
        let mut client =
            NtlmClient::new("HV-TEST\\hvtest", "pw", "hv1", b"tls-server-end-point:x").unwrap();
        let negotiate = client.negotiate().unwrap();
        assert_eq!(&negotiate[..8], b"NTLMSSP\0");
        assert_eq!(negotiate[8], 1);
    }
}
