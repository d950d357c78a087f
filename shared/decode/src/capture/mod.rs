//! Capture file readers: classic pcap and pcapng, over a byte slice.
//!
//! Readers are zero-copy: a [`Packet`] borrows its bytes from the slice the caller provides (a
//! memory map or a buffer), so reading allocates nothing per packet. Choosing how the bytes get
//! into memory is the caller's I/O policy, not ours.
//!
//! A reader never panics on bad input. Damage inside the file ends iteration with a
//! [`CaptureError`] naming the byte offset; a final record cut short (a capture killed mid-write)
//! is reported the same way, after every complete packet has been returned.

mod pcap;
mod pcapng;

pub use pcap::PcapReader;
pub use pcapng::PcapNgReader;

use thiserror::Error;

/// A link-layer header type, as registered at tcpdump.org (`LINKTYPE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkType(pub u16);

impl LinkType {
    /// BSD loopback: a 4-byte address family in host byte order.
    pub const NULL: LinkType = LinkType(0);
    /// Ethernet II / 802.3.
    pub const ETHERNET: LinkType = LinkType(1);
    /// Raw IP (v4 or v6 by version nibble).
    pub const RAW: LinkType = LinkType(101);
    /// OpenBSD loopback: like NULL but the family is big-endian.
    pub const LOOP: LinkType = LinkType(108);
    /// Linux cooked capture v1.
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// Raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6.
    pub const IPV6: LinkType = LinkType(229);
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: LinkType = LinkType(276);
    /// Linux netfilter NFLOG.
    pub const NFLOG: LinkType = LinkType(239);
    /// OpenBSD/old raw IP value some writers still use.
    pub const RAW_OLD: LinkType = LinkType(12);
    /// Another legacy raw IP value (LINKTYPE 14 on some BSDs).
    pub const RAW_OLD2: LinkType = LinkType(14);
    /// PPP: optional HDLC address and control (FF 03), then the PPP protocol.
    pub const PPP: LinkType = LinkType(9);
    /// PPP in HDLC-like framing (RFC 1662), or Cisco HDLC on some writers.
    pub const PPP_HDLC: LinkType = LinkType(50);
    /// PPPoE without its Ethernet header: the 6-byte session header, then PPP.
    pub const PPP_ETHER: LinkType = LinkType(51);
    /// Cisco HDLC: address, control, then an Ethernet type.
    pub const C_HDLC: LinkType = LinkType(104);
    /// PPP after a direction byte.
    pub const PPP_WITH_DIR: LinkType = LinkType(204);
    /// Cisco HDLC after a direction byte.
    pub const C_HDLC_WITH_DIR: LinkType = LinkType(205);
}

/// One captured packet, borrowed from the file's bytes.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_nanos: i64,
    /// How to read the first bytes of `data`.
    pub link_type: LinkType,
    /// The captured bytes (at most the snap length).
    pub data: &'a [u8],
    /// The length of the packet on the wire; larger than `data.len()` when truncated.
    pub orig_len: u32,
    /// Byte offset of this packet's record in the file, for error messages.
    pub offset: u64,
}

/// What went wrong reading a capture file, and where.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{kind} at byte offset {offset}")]
pub struct CaptureError {
    /// Byte offset in the file where the problem starts.
    pub offset: u64,
    /// What the problem is.
    pub kind: CaptureErrorKind,
}

/// The kinds of capture file damage.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CaptureErrorKind {
    /// The first bytes are not a pcap or pcapng magic number.
    #[error(
        "not a pcap or pcapng file (magic {0:#010x}); convert it with `editcap -F pcap` or check the file"
    )]
    UnknownFormat(u32),
    /// The file ends in the middle of a header or record.
    #[error(
        "file ends inside a record ({needed} bytes needed, {available} left); the capture was probably cut short"
    )]
    Truncated {
        /// Bytes the record needs.
        needed: u64,
        /// Bytes left in the file.
        available: u64,
    },
    /// A record header holds a length that cannot be right.
    #[error("implausible record length {0}; the file is damaged from here on")]
    BadLength(u64),
    /// A pcapng block references an interface that was never described.
    #[error("packet refers to interface {0}, which no interface description block defined")]
    UnknownInterface(u32),
    /// A pcapng block whose trailing length differs from the length in its header: one of the
    /// two is damaged, so where the next block starts is unknown.
    #[error(
        "pcapng block length {head} in its header but {tail} at its end; the file is damaged from here on"
    )]
    LengthMismatch {
        /// The length in the block's header.
        head: u64,
        /// The length repeated at its end.
        tail: u64,
    },
    /// A pcapng section header with an unknown byte-order magic.
    #[error("pcapng section header has a bad byte-order magic {0:#010x}")]
    BadByteOrder(u32),
}

/// A pcap or pcapng reader, chosen from the file's magic number.
pub enum CaptureReader<'a> {
    /// Classic libpcap format.
    Pcap(PcapReader<'a>),
    /// pcapng.
    PcapNg(PcapNgReader<'a>),
}

impl<'a> CaptureReader<'a> {
    /// Detects the format from the first bytes and prepares to read.
    pub fn new(bytes: &'a [u8]) -> Result<Self, CaptureError> {
        let magic = match bytes.get(..4) {
            Some(m) => u32::from_le_bytes([m[0], m[1], m[2], m[3]]),
            None => {
                return Err(CaptureError {
                    offset: 0,
                    kind: CaptureErrorKind::Truncated {
                        needed: 4,
                        available: bytes.len() as u64,
                    },
                });
            }
        };
        if magic == pcapng::SHB_TYPE {
            PcapNgReader::new(bytes).map(CaptureReader::PcapNg)
        } else if pcap::is_pcap_magic(magic) {
            PcapReader::new(bytes).map(CaptureReader::Pcap)
        } else {
            Err(CaptureError {
                offset: 0,
                kind: CaptureErrorKind::UnknownFormat(magic.swap_bytes()),
            })
        }
    }

    /// Bytes consumed so far (for progress reporting).
    pub fn position(&self) -> u64 {
        match self {
            CaptureReader::Pcap(r) => r.position(),
            CaptureReader::PcapNg(r) => r.position(),
        }
    }
}

impl<'a> Iterator for CaptureReader<'a> {
    type Item = Result<Packet<'a>, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            CaptureReader::Pcap(r) => r.next(),
            CaptureReader::PcapNg(r) => r.next(),
        }
    }
}

/// Reads a `u16`/`u32`/`u64` in the byte order a file declared.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Endian {
    pub big: bool,
}

impl Endian {
    #[inline]
    pub fn u16(self, b: &[u8], at: usize) -> u16 {
        let v = [b[at], b[at + 1]];
        if self.big {
            u16::from_be_bytes(v)
        } else {
            u16::from_le_bytes(v)
        }
    }

    #[inline]
    pub fn u32(self, b: &[u8], at: usize) -> u32 {
        let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.big {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    }
}

pub(crate) fn truncated(offset: usize, needed: usize, available: usize) -> CaptureError {
    CaptureError {
        offset: offset as u64,
        kind: CaptureErrorKind::Truncated {
            needed: needed as u64,
            available: available as u64,
        },
    }
}
