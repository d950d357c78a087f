//! Mutual TLS over QUIC on loopback: an enrolled sensor talks; a sensor signed by another
//! workbench's CA is refused in the handshake; a sensor trusting another CA refuses the hub.

#![allow(clippy::unwrap_used)]

use tapline_link::stream::{MessageReader, send};
use tapline_link::transport::{self, peer_fingerprint};
use tapline_link::{HubIdentity, LinkError};
use tapline_record::wire::{HubMessage, SensorMessage};

async fn hub_once(ep: quinn::Endpoint) -> Option<String> {
    let conn = ep.accept().await?.await.ok()?;
    let fp = peer_fingerprint(&conn);
    let (mut tx, rx) = conn.accept_bi().await.ok()?;
    let mut rx = MessageReader::new(rx);
    let hello: SensorMessage = rx.recv().await.ok()??;
    assert!(matches!(hello, SensorMessage::Hello { .. }));
    send(&mut tx, &HubMessage::Welcome { stored_through: 7 })
        .await
        .ok()?;
    tx.finish().ok()?;
    conn.closed().await;
    fp
}

async fn talk(
    creds: &tapline_link::SensorCredentials,
    addr: std::net::SocketAddr,
) -> Result<HubMessage, LinkError> {
    let ep = transport::client(creds, addr)?;
    let conn = transport::connect(&ep, addr).await?;
    let (mut tx, rx) = conn.open_bi().await?;
    send(&mut tx, &SensorMessage::hello("edge-1", "test", 1)).await?;
    let mut rx = MessageReader::new(rx);
    let reply = rx.recv::<HubMessage>().await?;
    conn.close(0u32.into(), b"done");
    reply.ok_or(LinkError::Wire(tapline_record::wire::WireError::Truncated))
}

#[tokio::test]
async fn enrolled_sensors_connect_and_strangers_are_refused() {
    let hub = HubIdentity::create().unwrap();
    let ep = transport::server(&hub, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = ep.local_addr().unwrap();
    let server = tokio::spawn(hub_once(ep.clone()));

    let creds = hub.enrol("edge-1").unwrap();
    let reply = talk(&creds, addr).await.unwrap();
    assert_eq!(reply, HubMessage::Welcome { stored_through: 7 });
    assert_eq!(server.await.unwrap(), creds.fingerprint().ok());

    // Signed by another workbench: the hub's verifier rejects the handshake.
    let other = HubIdentity::create().unwrap();
    let mut stranger = other.enrol("edge-1").unwrap();
    stranger.hub_ca_pem = hub.ca_cert_pem.clone();
    stranger.hub_fingerprint = hub.fingerprint().unwrap();
    let server = tokio::spawn(hub_once(ep.clone()));
    assert!(
        talk(&stranger, addr).await.is_err(),
        "a stranger's certificate is refused"
    );
    server.abort();

    // A sensor enrolled elsewhere does not trust this hub.
    let elsewhere = other.enrol("edge-2").unwrap();
    let server = tokio::spawn(hub_once(ep.clone()));
    assert!(
        talk(&elsewhere, addr).await.is_err(),
        "the hub is not the pinned workbench"
    );
    server.abort();
}
