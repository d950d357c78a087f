//! Where packets come from: a live interface (libpcap, non-blocking, woken by `poll` so a stop
//! request or an idle batch is seen within [`IDLE_WAKE`] even when no packet arrives) or a
//! capture file replayed as fast as possible or at its recorded speed.

use crate::counters::Counters;
use anyhow::{Context, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tapline_decode::capture::LinkType;

/// Longest a live capture sleeps without looking at the stop flag and the clock.
pub const IDLE_WAKE: Duration = Duration::from_millis(100);

/// Set by the signal handler: finish the capture, flush, report, exit.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// Whether a stop was requested.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// What the frames go to.
pub trait FrameSink {
    /// One captured frame.
    fn frame(&mut self, ts_nanos: i64, link: LinkType, data: &[u8]) -> Result<()>;
    /// Nothing arrived for a while (live capture): close what waits on time.
    fn idle(&mut self) -> Result<()>;
}

/// How to open a live interface.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Interface name.
    pub interface: String,
    /// BPF filter compiled in the kernel.
    pub filter: Option<String>,
    /// Bytes kept of each packet.
    pub snaplen: i32,
    /// Promiscuous mode (off for a host sensor).
    pub promisc: bool,
    /// Kernel ring buffer, bytes.
    pub buffer_bytes: i32,
    /// Deliver each packet at once rather than in blocks.
    pub immediate: bool,
}

/// An opened live capture.
pub struct Live {
    cap: pcap::Capture<pcap::Active>,
    name: String,
}

impl Live {
    /// Opens the interface: this is the step that needs CAP_NET_RAW (and CAP_NET_ADMIN for
    /// promiscuous mode); everything after it runs without privileges.
    pub fn open(o: &LiveOptions) -> Result<Live> {
        let cap = pcap::Capture::from_device(o.interface.as_str())
            .with_context(|| format!("no capture device {:?}", o.interface))?
            .snaplen(o.snaplen)
            .promisc(o.promisc)
            .buffer_size(o.buffer_bytes)
            .immediate_mode(o.immediate)
            // The kernel hands over a block of packets at most this long after its first.
            .timeout(IDLE_WAKE.as_millis() as i32)
            .open()
            .with_context(|| {
                format!(
                    "cannot capture on {} (needs CAP_NET_RAW, and CAP_NET_ADMIN for promiscuous mode; \
                     run as root or grant them with setcap or systemd AmbientCapabilities)",
                    o.interface
                )
            })?;
        // libpcap's read timeout does not fire while no packet at all arrives (TPACKET_V3 retires
        // only non-empty blocks), so read without blocking and wait in poll(2) ourselves.
        let mut cap = cap
            .setnonblock()
            .with_context(|| format!("cannot make the capture on {} non-blocking", o.interface))?;
        if let Some(f) = &o.filter {
            cap.filter(f, true)
                .with_context(|| format!("bad BPF filter {f:?}"))?;
        }
        Ok(Live {
            cap,
            name: o.interface.clone(),
        })
    }

    /// Reads until a stop is requested.
    pub fn run(&mut self, sink: &mut dyn FrameSink, counters: &Counters) -> Result<()> {
        let link = LinkType(self.cap.get_datalink().0 as u16);
        let mut last_stats = Instant::now();
        while !stop_requested() {
            match self.cap.next_packet() {
                Ok(p) => {
                    counters.count(p.data.len());
                    sink.frame(nanos(p.header), link, p.data)?;
                }
                Err(pcap::Error::TimeoutExpired) => {
                    sink.idle()?;
                    wait_readable(&self.cap, IDLE_WAKE)?;
                }
                Err(pcap::Error::NoMorePackets) => break,
                Err(e) => {
                    return Err(e).with_context(|| format!("capture on {} failed", self.name));
                }
            }
            if last_stats.elapsed() >= Duration::from_secs(1) {
                self.update_stats(counters);
                last_stats = Instant::now();
            }
        }
        self.update_stats(counters);
        Ok(())
    }

    fn update_stats(&mut self, counters: &Counters) {
        if let Ok(st) = self.cap.stats() {
            counters
                .kernel_drops
                .store(u64::from(st.dropped), Ordering::Relaxed);
            counters
                .interface_drops
                .store(u64::from(st.if_dropped), Ordering::Relaxed);
        }
    }

    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Waits until the capture has something to read, or `timeout`. An interrupted wait (a signal)
/// is a normal wake-up.
fn wait_readable(cap: &pcap::Capture<pcap::Active>, timeout: Duration) -> Result<()> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let mut fds = [PollFd::new(cap, PollFlags::IN)];
    let ts = Timespec {
        tv_sec: timeout.as_secs() as _,
        tv_nsec: timeout.subsec_nanos() as _,
    };
    match poll(&mut fds, Some(&ts)) {
        Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
        Err(e) => Err(std::io::Error::from(e)).context("waiting for packets failed"),
    }
}

/// A pcap header's time in nanoseconds since the epoch.
fn nanos(h: &pcap::PacketHeader) -> i64 {
    // Plain `as`: time_t and suseconds_t are i64 on the 64-bit targets the sensor ships for.
    #[allow(clippy::unnecessary_cast)]
    let (s, us) = (h.ts.tv_sec as i64, h.ts.tv_usec as i64);
    s.saturating_mul(1_000_000_000)
        .saturating_add(us.saturating_mul(1_000))
}

/// Replays a capture file through libpcap.
pub fn replay(
    path: &std::path::Path,
    filter: Option<&str>,
    recorded_speed: bool,
    sink: &mut dyn FrameSink,
    counters: &Counters,
) -> Result<()> {
    let mut cap = pcap::Capture::from_file(path)
        .with_context(|| format!("cannot open {} with libpcap", path.display()))?;
    if let Some(f) = filter {
        cap.filter(f, true)
            .with_context(|| format!("bad BPF filter {f:?}"))?;
    }
    let link = LinkType(cap.get_datalink().0 as u16);
    // Recorded speed: frame i is handed over when (its time − the first frame's time) has passed.
    let mut clock: Option<(i64, Instant)> = None;
    while !stop_requested() {
        match cap.next_packet() {
            Ok(p) => {
                let ts = nanos(p.header);
                if recorded_speed {
                    let (first, started) = *clock.get_or_insert((ts, Instant::now()));
                    let due = Duration::from_nanos(ts.saturating_sub(first).max(0) as u64);
                    // Sleep in short steps so a stop request and idle batches are seen.
                    while let Some(left) = due.checked_sub(started.elapsed()) {
                        if left.is_zero() || stop_requested() {
                            break;
                        }
                        sink.idle()?;
                        std::thread::sleep(left.min(IDLE_WAKE));
                    }
                }
                counters.count(p.data.len());
                sink.frame(ts, link, p.data)?;
            }
            Err(pcap::Error::NoMorePackets) => break,
            Err(e) => {
                // Keep what was decoded before the damage; say where it stopped.
                tracing::warn!(
                    "{}: stopped reading after {} packets: {e}",
                    path.display(),
                    counters.packets.load(Ordering::Relaxed)
                );
                break;
            }
        }
    }
    Ok(())
}
