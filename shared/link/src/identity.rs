//! Who is who on the link. The workbench owns a private CA; its hub certificate and every
//! sensor's certificate are signed by it. A sensor's configuration carries its own key and
//! certificate, the CA certificate, and the CA's SHA-256 fingerprint as a pin (checked before
//! anything is sent, so a configuration pointing at another workbench fails loudly).

use crate::LinkError;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;

/// The DNS name in the hub's certificate; sensors connect to any address with this name.
pub const HUB_NAME: &str = "tapline-hub";

/// SHA-256 of a DER certificate, lower-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The first certificate of a PEM text.
pub fn cert_der(pem: &str, what: &str) -> Result<CertificateDer<'static>, LinkError> {
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| LinkError::Pem {
        what: what.to_owned(),
        kind: "certificate",
        detail: e.to_string(),
    })
}

/// The private key of a PEM text.
pub fn key_der(pem: &str, what: &str) -> Result<PrivateKeyDer<'static>, LinkError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| LinkError::Pem {
        what: what.to_owned(),
        kind: "private key",
        detail: e.to_string(),
    })
}

/// (CA certificate, own certificate, own key): what each end's TLS configuration is built from.
pub(crate) type TlsParts = (
    CertificateDer<'static>,
    CertificateDer<'static>,
    PrivateKeyDer<'static>,
);

/// The workbench's side: its CA and its hub certificate.
#[derive(Clone)]
pub struct HubIdentity {
    /// CA certificate (PEM): the root both ends trust.
    pub ca_cert_pem: String,
    ca_key_pem: String,
    /// Hub server certificate (PEM), signed by the CA, for [`HUB_NAME`].
    pub hub_cert_pem: String,
    hub_key_pem: String,
}

impl std::fmt::Debug for HubIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print keys.
        f.debug_struct("HubIdentity")
            .field("ca_fingerprint", &self.fingerprint().ok())
            .finish_non_exhaustive()
    }
}

const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca.key";
const HUB_CERT: &str = "hub.pem";
const HUB_KEY: &str = "hub.key";

impl HubIdentity {
    /// A new CA and hub certificate.
    pub fn create() -> Result<HubIdentity, LinkError> {
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.distinguished_name
            .push(DnType::OrganizationName, "Tapline");
        ca.distinguished_name
            .push(DnType::CommonName, "Tapline workbench CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca.self_signed(&ca_key)?;
        let ca_key_pem = ca_key.serialize_pem();
        let issuer = Issuer::new(ca, ca_key);

        let (hub_cert, hub_key) = leaf(
            vec![HUB_NAME.to_owned()],
            HUB_NAME,
            ExtendedKeyUsagePurpose::ServerAuth,
            &issuer,
        )?;
        Ok(HubIdentity {
            ca_cert_pem: ca_cert.pem(),
            ca_key_pem,
            hub_cert_pem: hub_cert.pem(),
            hub_key_pem: hub_key.serialize_pem(),
        })
    }

    /// Loads the identity kept in `dir`, creating it (keys readable by the owner only) when
    /// the directory holds none.
    pub fn load_or_create(dir: &Path) -> Result<HubIdentity, LinkError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| LinkError::Io { path, source }
        };
        if !dir.join(CA_CERT).exists() {
            let id = HubIdentity::create()?;
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            for (name, text, secret) in [
                (CA_CERT, &id.ca_cert_pem, false),
                (CA_KEY, &id.ca_key_pem, true),
                (HUB_CERT, &id.hub_cert_pem, false),
                (HUB_KEY, &id.hub_key_pem, true),
            ] {
                write_file(&dir.join(name), text, secret)?;
            }
            return Ok(id);
        }
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(io(&path))
        };
        let id = HubIdentity {
            ca_cert_pem: read(CA_CERT)?,
            ca_key_pem: read(CA_KEY)?,
            hub_cert_pem: read(HUB_CERT)?,
            hub_key_pem: read(HUB_KEY)?,
        };
        // Fail now, with the file named, rather than at the first connection.
        cert_der(&id.ca_cert_pem, &dir.join(CA_CERT).display().to_string())?;
        key_der(&id.ca_key_pem, &dir.join(CA_KEY).display().to_string())?;
        cert_der(&id.hub_cert_pem, &dir.join(HUB_CERT).display().to_string())?;
        key_der(&id.hub_key_pem, &dir.join(HUB_KEY).display().to_string())?;
        Ok(id)
    }

    /// The CA certificate's fingerprint: what sensors pin.
    pub fn fingerprint(&self) -> Result<String, LinkError> {
        Ok(fingerprint(&cert_der(
            &self.ca_cert_pem,
            "the CA certificate",
        )?))
    }

    /// Signs new credentials for the sensor `name`.
    pub fn enrol(&self, name: &str) -> Result<SensorCredentials, LinkError> {
        let ca_key = KeyPair::from_pem(&self.ca_key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&self.ca_cert_pem, ca_key)?;
        let (cert, key) = leaf(
            Vec::new(),
            name,
            ExtendedKeyUsagePurpose::ClientAuth,
            &issuer,
        )?;
        Ok(SensorCredentials {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            hub_ca_pem: self.ca_cert_pem.clone(),
            hub_fingerprint: self.fingerprint()?,
        })
    }

    /// The hub's certificate chain and key, for the server configuration.
    /// A new HTTPS server certificate (PEM certificate chain, PEM key) signed by the CA for
    /// `names` (host names or addresses): what the agents' decision endpoint presents, so
    /// bouncers and proxies verify it against the CA instead of skipping verification.
    pub fn issue_server_cert(&self, names: &[String]) -> Result<(String, String), LinkError> {
        let ca_key = KeyPair::from_pem(&self.ca_key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&self.ca_cert_pem, ca_key)?;
        let common = names.first().map_or("tapline-agents", String::as_str);
        let (cert, key) = leaf(
            names.to_vec(),
            common,
            ExtendedKeyUsagePurpose::ServerAuth,
            &issuer,
        )?;
        Ok((cert.pem() + &self.ca_cert_pem, key.serialize_pem()))
    }

    pub(crate) fn server_parts(&self) -> Result<TlsParts, LinkError> {
        Ok((
            cert_der(&self.ca_cert_pem, "the CA certificate")?,
            cert_der(&self.hub_cert_pem, "the hub certificate")?,
            key_der(&self.hub_key_pem, "the hub key")?,
        ))
    }
}

/// A new key and a certificate for it signed by `issuer`: the hub's (server) or a sensor's
/// (client).
fn leaf(
    alt_names: Vec<String>,
    common_name: &str,
    usage: ExtendedKeyUsagePurpose,
    issuer: &Issuer<'_, KeyPair>,
) -> Result<(rcgen::Certificate, KeyPair), LinkError> {
    let mut p = CertificateParams::new(alt_names)?;
    p.distinguished_name.push(DnType::CommonName, common_name);
    p.use_authority_key_identifier_extension = true;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![usage];
    let key = KeyPair::generate()?;
    let cert = p.signed_by(&key, issuer)?;
    Ok((cert, key))
}

fn write_file(path: &Path, text: &str, secret: bool) -> Result<(), LinkError> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    o.open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|source| LinkError::Io {
            path: path.to_owned(),
            source,
        })
}

/// A sensor's side: its certificate and key, and the workbench CA it trusts (pinned).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct SensorCredentials {
    /// The sensor's certificate (PEM).
    pub cert_pem: String,
    /// The sensor's private key (PEM).
    pub key_pem: String,
    /// The workbench CA certificate (PEM).
    pub hub_ca_pem: String,
    /// SHA-256 of the workbench CA certificate, hex: the pin.
    pub hub_fingerprint: String,
}

impl std::fmt::Debug for SensorCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SensorCredentials")
            .field("fingerprint", &self.fingerprint().ok())
            .field("hub_fingerprint", &self.hub_fingerprint)
            .finish_non_exhaustive()
    }
}

impl SensorCredentials {
    /// The sensor certificate's fingerprint: how the hub knows it.
    pub fn fingerprint(&self) -> Result<String, LinkError> {
        Ok(fingerprint(&cert_der(
            &self.cert_pem,
            "the sensor certificate",
        )?))
    }

    /// Checks the pin and that every PEM text parses.
    pub fn check(&self) -> Result<(), LinkError> {
        self.client_parts().map(|_| ())
    }

    /// Checks the pin, then returns (CA, sensor certificate, sensor key).
    pub(crate) fn client_parts(&self) -> Result<TlsParts, LinkError> {
        let ca = cert_der(&self.hub_ca_pem, "the hub CA certificate")?;
        let found = fingerprint(&ca);
        if !found.eq_ignore_ascii_case(self.hub_fingerprint.trim()) {
            return Err(LinkError::PinMismatch {
                expected: self.hub_fingerprint.clone(),
                found,
            });
        }
        Ok((
            ca,
            cert_der(&self.cert_pem, "the sensor certificate")?,
            key_der(&self.key_pem, "the sensor key")?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_persist_and_enrolment_signs_distinct_sensors() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let a = HubIdentity::load_or_create(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let b = HubIdentity::load_or_create(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.fingerprint().ok(), b.fingerprint().ok());
        assert_eq!(a.fingerprint().map(|f| f.len()).ok(), Some(64));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(CA_KEY))
                .map(|m| m.permissions().mode() & 0o777)
                .ok();
            assert_eq!(mode, Some(0o600), "keys are the owner's only");
        }
        let s1 = b.enrol("edge-1").unwrap_or_else(|e| panic!("{e}"));
        let s2 = b.enrol("edge-2").unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(s1.fingerprint().ok(), s2.fingerprint().ok());
        assert!(s1.client_parts().is_ok());
        let mut tampered = s1.clone();
        tampered.hub_fingerprint = "00".repeat(32);
        assert!(matches!(
            tampered.client_parts(),
            Err(LinkError::PinMismatch { .. })
        ));
        let mut broken = s1;
        broken.key_pem = "not a key".into();
        assert!(matches!(broken.client_parts(), Err(LinkError::Pem { .. })));
    }
}
