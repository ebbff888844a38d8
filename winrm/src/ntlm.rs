//! NTLM (v2, with MIC and the TLS channel binding) through the `sspi` crate: the negotiate
//! message, then the authenticate message answering the server's challenge.

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
    /// `tls-server-end-point` application data ([`ext_tls::tls_server_end_point`]).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_message_is_an_ntlm_negotiate() {
        let mut client =
            NtlmClient::new("HV-TEST\\hvtest", "pw", "hv1", b"tls-server-end-point:x").unwrap();
        let negotiate = client.negotiate().unwrap();
        assert_eq!(&negotiate[..8], b"NTLMSSP\0");
        assert_eq!(negotiate[8], 1);
    }
}
