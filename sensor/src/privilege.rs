//! Giving up privileges once the capture is open. Opening a live capture needs CAP_NET_RAW
//! (and CAP_NET_ADMIN for promiscuous mode); reading from the open handle needs nothing. So
//! the sensor opens the capture first, then clears every capability set and forbids regaining
//! any (`no_new_privs`) — before any other thread exists, because Linux capabilities belong to
//! threads and new threads inherit their creator's.

use anyhow::{Context, Result};
use rustix::thread::{CapabilitySet, CapabilitySets};

/// What was held before dropping (for the log).
pub struct Dropped {
    /// The permitted set held before.
    pub had: CapabilitySet,
}

/// Clears the effective, permitted, inheritable and ambient capability sets of the calling
/// thread and sets `no_new_privs`. Call it from the main thread before starting others.
pub fn drop_all() -> Result<Dropped> {
    let had = rustix::thread::capabilities(None)
        .context("cannot read the sensor's capabilities")?
        .permitted;
    // Kernels before 4.3 have no ambient set; nothing to clear there.
    let _ = rustix::thread::clear_ambient_capability_set();
    rustix::thread::set_capabilities(
        None,
        CapabilitySets {
            effective: CapabilitySet::empty(),
            permitted: CapabilitySet::empty(),
            inheritable: CapabilitySet::empty(),
        },
    )
    .context("cannot drop capabilities after opening the capture")?;
    rustix::thread::set_no_new_privs(true).context("cannot set no_new_privs")?;
    Ok(Dropped { had })
}
