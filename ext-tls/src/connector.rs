//! A ureq 3 connector: wraps the TCP transport of the chain in TLS with a [`crate::ClientTls`]
//! configuration (ureq's own rustls connector takes only ureq's root-certificate options).
//! Built on ureq's `unversioned` transport API, the way ureq's `RustlsConnector` is.

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use ureq::unversioned::transport::time::Duration as UreqDuration;
use ureq::unversioned::transport::time::Instant as UreqInstant;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport,
    TransportAdapter,
};

/// Chain after `TcpConnector`: `().chain(TcpConnector::default()).chain(tls.ureq_connector())`.
#[derive(Debug, Clone)]
pub struct UreqConnector {
    config: Arc<ClientConfig>,
}

impl UreqConnector {
    pub(crate) fn new(config: Arc<ClientConfig>) -> UreqConnector {
        UreqConnector { config }
    }
}

impl<In: Transport> Connector<In> for UreqConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details.uri.host().ok_or(ureq::Error::Tls(
            "no host name to verify the certificate for",
        ))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| ureq::Error::Tls("the host is not a valid TLS server name"))?;
        let mut conn = ClientConnection::new(self.config.clone(), name)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        // The handshake gets what is left of the connect budget.
        let mut timeout = details.timeout;
        if let (UreqDuration::Exact(limit), UreqInstant::Exact(started), UreqInstant::Exact(now)) =
            (timeout.after, details.now, (details.current_time)())
        {
            timeout.after =
                UreqDuration::Exact(limit.saturating_sub(now.saturating_duration_since(started)));
        }
        sock.set_timeout(timeout);
        conn.complete_io(&mut sock)?;
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(Either::B(TlsTransport {
            buffers,
            stream: StreamOwned { conn, sock },
        })))
    }
}

/// A TLS connection over ureq's transport.
pub struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl std::fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTransport").finish()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}
