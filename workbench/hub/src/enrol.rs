//! Enrolment: a sensor gets its name in the case, a certificate signed by the workbench's CA,
//! and a configuration file holding both (readable by its owner only).

use anyhow::{Context, Result, bail};
use std::io::Write;
use tapline_link::{HubIdentity, SensorCredentials};
use tapline_store::CaseStore;

/// The sensor configuration `sensors add` writes.
#[derive(serde::Serialize)]
struct SensorFile<'a> {
    name: &'a str,
    uplink: UplinkFile<'a>,
}

#[derive(serde::Serialize)]
struct UplinkFile<'a> {
    hub: &'a str,
    credentials: &'a SensorCredentials,
}

/// Enrols sensor `name` in `store` and writes its configuration (name, the `hub` address it
/// dials, its credentials) to `output`, readable by its owner only; returns a line for people.
/// Refuses to overwrite `output`: it would hold a new key.
pub fn enrol(
    store: &mut CaseStore,
    identity: &HubIdentity,
    name: &str,
    hub: &str,
    output: &std::path::Path,
) -> Result<String> {
    if output.exists() {
        bail!(
            "{} exists; choose another file (it would hold a new key for {name:?})",
            output.display(),
        );
    }
    let creds = identity.enrol(name)?;
    store
        .enrol_sensor(name, &creds.fingerprint()?)
        .with_context(|| {
            format!("cannot enrol {name:?} (a sensor of that name is enrolled: revoke it first)")
        })?;
    let text = format!(
        "# Tapline sensor {name:?}: run `tapline-sensor --config THIS_FILE --interface IF`.\n\
         # It holds the sensor's private key: keep it readable by the sensor's user only.\n{}",
        toml::to_string(&SensorFile {
            name,
            uplink: UplinkFile {
                hub,
                credentials: &creds,
            },
        })?
    );
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(output)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("cannot write {}", output.display()))?;
    Ok(format!(
        "enrolled sensor {name:?} (certificate sha256 {}); its configuration is in {}\n\
         workbench CA sha256 {} (pinned in that file)",
        creds.fingerprint()?,
        output.display(),
        identity.fingerprint()?
    ))
}
