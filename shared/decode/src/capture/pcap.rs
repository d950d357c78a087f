//! The classic libpcap file format: a 24-byte global header, then 16-byte record headers each
//! followed by the captured bytes. Micro- or nanosecond timestamps, either byte order.

use super::{CaptureError, CaptureErrorKind, Endian, LinkType, Packet, truncated};

const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
const GLOBAL_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;
/// Larger records than this are damage, not packets (libpcap uses 256 KiB; jumbo TSO captures
/// on loopback reach 64 KiB; allow generous headroom).
const MAX_RECORD_LEN: u32 = 16 * 1024 * 1024;

pub(super) fn is_pcap_magic(magic_le: u32) -> bool {
    [MAGIC_MICROS, MAGIC_NANOS].contains(&magic_le)
        || [MAGIC_MICROS, MAGIC_NANOS].contains(&magic_le.swap_bytes())
}

/// Reads packets from a classic pcap file held in memory.
pub struct PcapReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    endian: Endian,
    nanos: bool,
    link_type: LinkType,
    snaplen: u32,
    failed: bool,
}

impl<'a> PcapReader<'a> {
    /// Parses the global header.
    pub fn new(bytes: &'a [u8]) -> Result<Self, CaptureError> {
        if bytes.len() < GLOBAL_HEADER_LEN {
            return Err(truncated(0, GLOBAL_HEADER_LEN, bytes.len()));
        }
        let magic = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let (big, nanos) = match magic {
            MAGIC_MICROS => (false, false),
            MAGIC_NANOS => (false, true),
            m if m.swap_bytes() == MAGIC_MICROS => (true, false),
            m if m.swap_bytes() == MAGIC_NANOS => (true, true),
            m => {
                return Err(CaptureError {
                    offset: 0,
                    kind: CaptureErrorKind::UnknownFormat(m.swap_bytes()),
                });
            }
        };
        let endian = Endian { big };
        let snaplen = endian.u32(bytes, 16);
        // The upper 16 bits of the network field carry FCS length flags (pcap-savefile(5)).
        let link_type = LinkType((endian.u32(bytes, 20) & 0xffff) as u16);
        Ok(PcapReader {
            bytes,
            pos: GLOBAL_HEADER_LEN,
            endian,
            nanos,
            link_type,
            snaplen,
            failed: false,
        })
    }

    /// The file's link type.
    pub fn link_type(&self) -> LinkType {
        self.link_type
    }

    /// The file's snap length.
    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.pos as u64
    }

    fn fail(&mut self, err: CaptureError) -> Option<Result<Packet<'a>, CaptureError>> {
        self.failed = true;
        Some(Err(err))
    }
}

impl<'a> Iterator for PcapReader<'a> {
    type Item = Result<Packet<'a>, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos == self.bytes.len() {
            return None;
        }
        let at = self.pos;
        let rest = &self.bytes[at..];
        if rest.len() < RECORD_HEADER_LEN {
            return self.fail(truncated(at, RECORD_HEADER_LEN, rest.len()));
        }
        let e = self.endian;
        let ts_sec = e.u32(rest, 0);
        let ts_frac = e.u32(rest, 4);
        let incl_len = e.u32(rest, 8);
        let orig_len = e.u32(rest, 12);
        if incl_len > MAX_RECORD_LEN {
            return self.fail(CaptureError {
                offset: at as u64,
                kind: CaptureErrorKind::BadLength(u64::from(incl_len)),
            });
        }
        let end = RECORD_HEADER_LEN + incl_len as usize;
        if rest.len() < end {
            return self.fail(truncated(at, end, rest.len()));
        }
        let frac_nanos = if self.nanos {
            i64::from(ts_frac)
        } else {
            i64::from(ts_frac) * 1_000
        };
        self.pos += end;
        Some(Ok(Packet {
            ts_nanos: i64::from(ts_sec) * 1_000_000_000 + frac_nanos,
            link_type: self.link_type,
            data: &rest[RECORD_HEADER_LEN..end],
            orig_len: orig_len.max(incl_len),
            offset: at as u64,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(big: bool, nanos: bool, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let magic = if nanos { MAGIC_NANOS } else { MAGIC_MICROS };
        let w32 = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let w16 = |v: u16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut out = Vec::new();
        out.extend(w32(magic));
        out.extend(w16(2));
        out.extend(w16(4));
        out.extend(w32(0));
        out.extend(w32(0));
        out.extend(w32(65535));
        out.extend(w32(1));
        for (sec, frac, data) in records {
            out.extend(w32(*sec));
            out.extend(w32(*frac));
            out.extend(w32(data.len() as u32));
            out.extend(w32(data.len() as u32));
            out.extend_from_slice(data);
        }
        out
    }

    #[test]
    fn test_parse_all_variants() {
        for big in [false, true] {
            for nanos in [false, true] {
                let bytes = file(big, nanos, &[(10, 5, b"abc"), (11, 0, b"")]);
                let packets: Vec<_> = PcapReader::new(&bytes)
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                assert_eq!(packets.len(), 2);
                let frac = if nanos { 5 } else { 5_000 };
                assert_eq!(packets[0].ts_nanos, 10_000_000_000 + frac);
                assert_eq!(packets[0].data, b"abc");
                assert_eq!(packets[0].link_type, LinkType::ETHERNET);
                assert_eq!(packets[1].offset, 24 + 16 + 3);
            }
        }
    }

    #[test]
    fn test_truncated_record_names_offset() {
        let mut bytes = file(false, false, &[(1, 0, b"abcdef")]);
        bytes.truncate(bytes.len() - 2);
        let mut reader = PcapReader::new(&bytes).unwrap();
        let err = reader.next().unwrap().unwrap_err();
        assert_eq!(err.offset, 24);
        assert!(matches!(err.kind, CaptureErrorKind::Truncated { .. }));
        assert!(reader.next().is_none());
    }

    #[test]
    fn test_absurd_length_is_an_error() {
        let mut bytes = file(false, false, &[(1, 0, b"ab")]);
        bytes[24 + 8..24 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = PcapReader::new(&bytes)
            .unwrap()
            .next()
            .unwrap()
            .unwrap_err();
        assert!(matches!(err.kind, CaptureErrorKind::BadLength(_)));
    }
}
