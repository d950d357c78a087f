//! A mapped capture that shrinks under the reader (another program truncates or rewrites it)
//! raises SIGBUS on the first access past its new end, which would kill the process with no
//! message — the desktop app included. While a capture is mapped, its address range is
//! registered here; a SIGBUS inside a registered range maps zero-filled pages over the rest
//! of the range, notes the offset, and lets the read go on. The reader sees zeros (a damaged
//! tail, decoded as such) and its owner reports the shrink as an error naming the file.
//! A SIGBUS anywhere else goes to the handler that was there before (by default: the process
//! dies as it would have).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Captures mapped at once that can be watched; more are mapped unwatched.
const SLOTS: usize = 64;
const NONE: usize = usize::MAX;

struct Slot {
    start: AtomicUsize,
    len: AtomicUsize,
    /// Offset of the first access that faulted, or [`NONE`].
    fault: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    fault: AtomicUsize::new(NONE),
};
static REGIONS: [Slot; SLOTS] = [EMPTY; SLOTS];
static PAGE: AtomicUsize = AtomicUsize::new(4096);
/// The handler before ours, for faults that are not ours; set once, before ours is installed.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// A watched mapping; dropping it stops the watch (before the map is unmapped).
pub(super) struct Watch {
    slot: usize,
}

impl Watch {
    /// Watches `len` bytes mapped at `start`; `None` when every slot is taken or the handler
    /// cannot be installed (the file is read as before).
    pub(super) fn start(start: *const u8, len: usize) -> Option<Watch> {
        install()?;
        for (i, s) in REGIONS.iter().enumerate() {
            if s.len
                .compare_exchange(0, len, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                s.fault.store(NONE, Ordering::Release);
                s.start.store(start as usize, Ordering::Release);
                return Some(Watch { slot: i });
            }
        }
        tracing::debug!("{SLOTS} captures mapped at once: this one is not watched for shrinking");
        None
    }

    /// Where the file ended when a read went past its end, if one did.
    pub(super) fn fault(&self) -> Option<u64> {
        match REGIONS[self.slot].fault.load(Ordering::Acquire) {
            NONE => None,
            at => Some(at as u64),
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let s = &REGIONS[self.slot];
        s.start.store(0, Ordering::Release);
        s.len.store(0, Ordering::Release);
    }
}

/// Installs the handler once; `None` if that failed.
fn install() -> Option<()> {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    let ok = *INSTALLED.get_or_init(|| {
        #[allow(unsafe_code)]
        // SAFETY: sysconf and sigaction are called with valid arguments; the handler only
        // reads atomics and calls mmap/sigaction, which are async-signal-safe on Linux.
        unsafe {
            let page = libc::sysconf(libc::_SC_PAGESIZE);
            if page > 0 {
                PAGE.store(page as usize, Ordering::Relaxed);
            }
            let mut previous: libc::sigaction = std::mem::zeroed();
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) != 0 {
                return false;
            }
            let _ = PREVIOUS.set(previous);
            libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) == 0
        }
    });
    ok.then_some(())
}

extern "C" fn on_sigbus(_signal: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    #[allow(unsafe_code)]
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers. The pages mapped over
    // lie inside a registered mapping that is live (its slot is cleared before it is
    // unmapped), so nothing else is overwritten.
    unsafe {
        let addr = (*info).si_addr() as usize;
        let page = PAGE.load(Ordering::Relaxed);
        for s in &REGIONS {
            let (start, len) = (
                s.start.load(Ordering::Acquire),
                s.len.load(Ordering::Acquire),
            );
            if start == 0 || addr < start || addr >= start + len {
                continue;
            }
            let from = addr & !(page - 1);
            let end = (start + len).div_ceil(page) * page;
            let zeros = libc::mmap(
                from as *mut libc::c_void,
                end - from,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            );
            if zeros != libc::MAP_FAILED {
                s.fault.fetch_min(from.max(start) - start, Ordering::AcqRel);
                return;
            }
        }
        // Not a capture of ours: as before we were here. Returning re-runs the access, which
        // faults again into the previous handler (by default, the process ends).
        match PREVIOUS.get() {
            Some(previous) => libc::sigaction(libc::SIGBUS, previous, std::ptr::null_mut()),
            None => {
                libc::signal(libc::SIGBUS, libc::SIG_DFL);
                0
            }
        };
    }
}
