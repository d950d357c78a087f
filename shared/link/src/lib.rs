//! `tapline-link`: the sensor ⇄ workbench link, shared by both ends so they cannot disagree.
//!
//! - [`identity`]: the workbench's private certificate authority (created with `rcgen`), the
//!   hub's server certificate, and sensor credentials signed at enrolment. Both ends use
//!   rustls's stock verifiers with a root store holding only that CA: a sensor accepts only
//!   its own workbench, the workbench only sensors it enrolled (revocation is checked by the
//!   hub against the case's sensor list, by certificate fingerprint).
//! - [`transport`]: quinn endpoints configured for TLS 1.3 only, bounded receive windows,
//!   keep-alives below the idle timeout.
//! - [`stream`]: `tapline_record::wire` messages as length-delimited frames on a QUIC stream.
//!
//! Architecture invariant: no capture, no database, no UI here — only what both ends of the
//! link must agree on.

pub mod identity;
pub mod stream;
pub mod transport;

pub use identity::{HubIdentity, SensorCredentials, fingerprint};

/// What can go wrong setting up or using the link.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// A certificate or key could not be made.
    #[error("cannot create a certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// A PEM text did not hold what it should.
    #[error("{what}: not a valid PEM {kind} ({detail})")]
    Pem {
        /// Which item (e.g. "the sensor key in sensor.toml").
        what: String,
        /// Certificate or private key.
        kind: &'static str,
        /// The parser's word.
        detail: String,
    },
    /// The hub certificate does not match the pinned fingerprint.
    #[error(
        "the hub certificate's fingerprint is {found}, but {expected} is pinned; the configuration was edited or belongs to another workbench: enrol the sensor again (`tapline sensors add`)"
    )]
    PinMismatch {
        /// Pinned.
        expected: String,
        /// Computed from the configured certificate.
        found: String,
    },
    /// TLS configuration was refused by rustls.
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
    /// Client certificate verification could not be set up.
    #[error("TLS client verification setup: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// QUIC could not use the TLS configuration.
    #[error("QUIC TLS setup: {0}")]
    QuicTls(String),
    /// Reading or writing an identity file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What happened.
        source: std::io::Error,
    },
    /// The connection failed or closed.
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// Connecting failed before any packet was sent.
    #[error("connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// Writing to the stream failed.
    #[error("sending: {0}")]
    Write(#[from] quinn::WriteError),
    /// Reading from the stream failed.
    #[error("receiving: {0}")]
    Read(#[from] quinn::ReadError),
    /// The peer sent something that is not a valid message.
    #[error("the peer sent a malformed message: {0}")]
    Wire(#[from] tapline_record::wire::WireError),
    /// A socket could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}
