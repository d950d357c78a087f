//! QUIC endpoints for both ends: TLS 1.3 only, mutual authentication against the workbench CA,
//! bounded flow-control windows (quinn's receive window is unbounded by default), keep-alives
//! well below the idle timeout so a quiet sensor stays connected and a dead one is noticed.

use crate::LinkError;
use crate::identity::{HUB_NAME, HubIdentity, SensorCredentials};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// ALPN of this protocol version: a peer speaking another version fails the handshake.
pub const ALPN: &[u8] = b"tapline/2";
/// A silent peer is declared gone after this long. Short, because a hub that died (or
/// restarted, which forgets every connection) is noticed only by this silence, and a sensor
/// loses nothing by reconnecting: its spool keeps every unacknowledged batch.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(6);
/// Keep-alive interval: four of them fit in [`IDLE_TIMEOUT`], so a lost one or two do not end
/// a healthy link.
pub const KEEP_ALIVE: Duration = Duration::from_millis(1500);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    // Constant and valid: 6 s is far below QUIC's idle-timeout limit.
    if let Ok(idle) = IDLE_TIMEOUT.try_into() {
        t.max_idle_timeout(Some(idle));
    }
    t.keep_alive_interval(Some(KEEP_ALIVE));
    // Enough for a few compressed batches in flight on a fast link; bounded memory per peer.
    t.stream_receive_window(quinn::VarInt::from_u32(16 << 20));
    t.receive_window(quinn::VarInt::from_u32(32 << 20));
    t.send_window(32 << 20);
    t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(1));
    t.max_concurrent_uni_streams(quinn::VarInt::from_u32(0));
    Arc::new(t)
}

/// The hub's endpoint on `listen`: accepts only clients with a certificate signed by the CA.
pub fn server(identity: &HubIdentity, listen: SocketAddr) -> Result<quinn::Endpoint, LinkError> {
    let (ca, cert, key) = identity.server_parts()?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone())?;
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert, ca], key)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = QuicServerConfig::try_from(tls).map_err(|e| LinkError::QuicTls(e.to_string()))?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(quic));
    cfg.transport_config(transport());
    quinn::Endpoint::server(cfg, listen).map_err(|source| LinkError::Bind {
        addr: listen,
        source,
    })
}

/// A sensor's endpoint: trusts only the pinned workbench CA, presents the sensor certificate.
pub fn client(creds: &SensorCredentials, hub: SocketAddr) -> Result<quinn::Endpoint, LinkError> {
    let (ca, cert, key) = creds.client_parts()?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca)?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![cert], key)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = QuicClientConfig::try_from(tls).map_err(|e| LinkError::QuicTls(e.to_string()))?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(quic));
    cfg.transport_config(transport());
    let bind: SocketAddr = if hub.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let mut ep =
        quinn::Endpoint::client(bind).map_err(|source| LinkError::Bind { addr: bind, source })?;
    ep.set_default_client_config(cfg);
    Ok(ep)
}

/// Connects a client endpoint to the hub.
pub async fn connect(
    ep: &quinn::Endpoint,
    hub: SocketAddr,
) -> Result<quinn::Connection, LinkError> {
    Ok(ep.connect(hub, HUB_NAME)?.await?)
}

/// The fingerprint of the certificate the peer presented.
pub fn peer_fingerprint(conn: &quinn::Connection) -> Option<String> {
    let certs = conn
        .peer_identity()?
        .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
        .ok()?;
    certs.first().map(|c| crate::identity::fingerprint(c))
}
