//! pcapng: a sequence of blocks. Section headers fix the byte order; interface description
//! blocks give each interface its link type and timestamp resolution; packets come in enhanced
//! (EPB), simple (SPB) and obsolete (OPB) packet blocks. Other blocks are skipped.

use super::{CaptureError, CaptureErrorKind, Endian, LinkType, Packet, truncated};

pub(super) const SHB_TYPE: u32 = 0x0a0d_0d0a;
const IDB_TYPE: u32 = 1;
const OPB_TYPE: u32 = 2;
const SPB_TYPE: u32 = 3;
const EPB_TYPE: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
const OPT_END: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;
/// Blocks larger than this are damage, not packets.
const MAX_BLOCK_LEN: u32 = 64 * 1024 * 1024;
/// More interfaces than this in one section is damage (and would let a file grow our table).
const MAX_INTERFACES: usize = 65_536;

#[derive(Clone, Copy, Debug)]
struct Interface {
    link_type: LinkType,
    snaplen: u32,
    /// Timestamp units per second.
    units_per_sec: u64,
    /// Seconds added to every timestamp (if_tsoffset).
    offset_secs: i64,
}

/// Reads packets from a pcapng file held in memory.
pub struct PcapNgReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    endian: Endian,
    interfaces: Vec<Interface>,
    failed: bool,
}

impl<'a> PcapNgReader<'a> {
    /// Checks the first section header.
    pub fn new(bytes: &'a [u8]) -> Result<Self, CaptureError> {
        if bytes.len() < 12 {
            return Err(truncated(0, 12, bytes.len()));
        }
        let mut reader = PcapNgReader {
            bytes,
            pos: 0,
            endian: Endian { big: false },
            interfaces: Vec::new(),
            failed: false,
        };
        reader.endian = reader.section_endian(0)?;
        Ok(reader)
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.pos as u64
    }

    fn section_endian(&self, at: usize) -> Result<Endian, CaptureError> {
        let b = self
            .bytes
            .get(at + 8..at + 12)
            .ok_or_else(|| truncated(at, 12, self.bytes.len() - at))?;
        match u32::from_le_bytes([b[0], b[1], b[2], b[3]]) {
            BYTE_ORDER_MAGIC => Ok(Endian { big: false }),
            m if m.swap_bytes() == BYTE_ORDER_MAGIC => Ok(Endian { big: true }),
            m => Err(CaptureError {
                offset: at as u64 + 8,
                kind: CaptureErrorKind::BadByteOrder(m),
            }),
        }
    }

    fn interface(&self, id: u32, at: usize) -> Result<Interface, CaptureError> {
        self.interfaces
            .get(id as usize)
            .copied()
            .ok_or(CaptureError {
                offset: at as u64,
                kind: CaptureErrorKind::UnknownInterface(id),
            })
    }

    fn parse_idb(&self, body: &[u8]) -> Interface {
        let e = self.endian;
        let link_type = LinkType(e.u16(body, 0));
        let snaplen = e.u32(body, 4);
        let mut iface = Interface {
            link_type,
            snaplen,
            units_per_sec: 1_000_000,
            offset_secs: 0,
        };
        let mut opts = &body[8..];
        while opts.len() >= 4 {
            let code = e.u16(opts, 0);
            let len = e.u16(opts, 2) as usize;
            let padded = (len + 3) & !3;
            let Some(value) = opts.get(4..4 + len) else {
                break;
            };
            match code {
                OPT_END => break,
                OPT_IF_TSRESOL if len >= 1 => {
                    let r = value[0];
                    let exp = u32::from(r & 0x7f);
                    let base: u64 = if r & 0x80 == 0 { 10 } else { 2 };
                    // Beyond 10^-19 / 2^-63 no u64 holds the unit; keep microseconds then.
                    if let Some(units) = base.checked_pow(exp) {
                        iface.units_per_sec = units.max(1);
                    }
                }
                OPT_IF_TSOFFSET if len >= 8 => {
                    let hi = e.u32(value, if e.big { 0 } else { 4 });
                    let lo = e.u32(value, if e.big { 4 } else { 0 });
                    iface.offset_secs = ((u64::from(hi) << 32) | u64::from(lo)) as i64;
                }
                _ => {}
            }
            opts = opts.get(4 + padded..).unwrap_or(&[]);
        }
        iface
    }

    fn packet(
        &self,
        iface: Interface,
        ts: u64,
        data: &'a [u8],
        orig_len: u32,
        at: usize,
    ) -> Packet<'a> {
        let units = iface.units_per_sec;
        let secs = ts / units;
        let frac = ts % units;
        // frac < units, so frac * 1e9 / units never overflows u128 and is < 1e9.
        let frac_nanos = (u128::from(frac) * 1_000_000_000 / u128::from(units)) as i64;
        let ts_nanos = (secs as i64)
            .saturating_add(iface.offset_secs)
            .saturating_mul(1_000_000_000)
            .saturating_add(frac_nanos);
        Packet {
            ts_nanos,
            link_type: iface.link_type,
            data,
            orig_len: orig_len.max(data.len() as u32),
            offset: at as u64,
        }
    }

    fn fail(&mut self, err: CaptureError) -> Option<Result<Packet<'a>, CaptureError>> {
        self.failed = true;
        Some(Err(err))
    }
}

impl<'a> Iterator for PcapNgReader<'a> {
    type Item = Result<Packet<'a>, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.failed && self.pos < self.bytes.len() {
            let at = self.pos;
            let rest = &self.bytes[at..];
            if rest.len() < 12 {
                return self.fail(truncated(at, 12, rest.len()));
            }
            // A section header can switch byte order; read its type without it.
            let raw_type = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
            if raw_type == SHB_TYPE {
                match self.section_endian(at) {
                    Ok(e) => self.endian = e,
                    Err(err) => return self.fail(err),
                }
                self.interfaces.clear();
            }
            let e = self.endian;
            let block_type = e.u32(rest, 0);
            let block_len = e.u32(rest, 4);
            if block_len < 12 || !block_len.is_multiple_of(4) || block_len > MAX_BLOCK_LEN {
                return self.fail(CaptureError {
                    offset: at as u64,
                    kind: CaptureErrorKind::BadLength(u64::from(block_len)),
                });
            }
            let block_len = block_len as usize;
            if rest.len() < block_len {
                return self.fail(truncated(at, block_len, rest.len()));
            }
            let tail = e.u32(rest, block_len - 4) as usize;
            if tail != block_len {
                return self.fail(CaptureError {
                    offset: at as u64,
                    kind: CaptureErrorKind::LengthMismatch {
                        head: block_len as u64,
                        tail: tail as u64,
                    },
                });
            }
            self.pos += block_len;
            let body = &rest[8..block_len - 4];
            match block_type {
                IDB_TYPE if body.len() >= 8 => {
                    if self.interfaces.len() >= MAX_INTERFACES {
                        return self.fail(CaptureError {
                            offset: at as u64,
                            kind: CaptureErrorKind::BadLength(self.interfaces.len() as u64),
                        });
                    }
                    let iface = self.parse_idb(body);
                    self.interfaces.push(iface);
                }
                EPB_TYPE if body.len() >= 20 => {
                    let iface = match self.interface(e.u32(body, 0), at) {
                        Ok(i) => i,
                        Err(err) => return self.fail(err),
                    };
                    let ts = (u64::from(e.u32(body, 4)) << 32) | u64::from(e.u32(body, 8));
                    let cap_len = e.u32(body, 12) as usize;
                    let orig_len = e.u32(body, 16);
                    let Some(data) = body.get(20..20 + cap_len) else {
                        return self.fail(CaptureError {
                            offset: at as u64,
                            kind: CaptureErrorKind::BadLength(cap_len as u64),
                        });
                    };
                    return Some(Ok(self.packet(iface, ts, data, orig_len, at)));
                }
                OPB_TYPE if body.len() >= 20 => {
                    let iface = match self.interface(u32::from(e.u16(body, 0)), at) {
                        Ok(i) => i,
                        Err(err) => return self.fail(err),
                    };
                    let ts = (u64::from(e.u32(body, 4)) << 32) | u64::from(e.u32(body, 8));
                    let cap_len = e.u32(body, 12) as usize;
                    let orig_len = e.u32(body, 16);
                    let Some(data) = body.get(20..20 + cap_len) else {
                        return self.fail(CaptureError {
                            offset: at as u64,
                            kind: CaptureErrorKind::BadLength(cap_len as u64),
                        });
                    };
                    return Some(Ok(self.packet(iface, ts, data, orig_len, at)));
                }
                SPB_TYPE if body.len() >= 4 => {
                    let iface = match self.interface(0, at) {
                        Ok(i) => i,
                        Err(err) => return self.fail(err),
                    };
                    let orig_len = e.u32(body, 0);
                    let mut cap = (body.len() - 4).min(orig_len as usize);
                    if iface.snaplen > 0 {
                        cap = cap.min(iface.snaplen as usize);
                    }
                    let data = &body[4..4 + cap];
                    // SPBs carry no timestamp.
                    return Some(Ok(self.packet(iface, 0, data, orig_len, at)));
                }
                _ => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(kind: u32, body: &[u8]) -> Vec<u8> {
        let padded = (body.len() + 3) & !3;
        let len = (12 + padded) as u32;
        let mut out = Vec::new();
        out.extend(kind.to_le_bytes());
        out.extend(len.to_le_bytes());
        out.extend_from_slice(body);
        out.resize(8 + padded, 0);
        out.extend(len.to_le_bytes());
        out
    }

    fn shb() -> Vec<u8> {
        let mut body = Vec::new();
        body.extend(BYTE_ORDER_MAGIC.to_le_bytes());
        body.extend(1u16.to_le_bytes());
        body.extend(0u16.to_le_bytes());
        body.extend(u64::MAX.to_le_bytes());
        block(SHB_TYPE, &body)
    }

    fn idb(link: u16, tsresol: Option<u8>) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend(link.to_le_bytes());
        body.extend(0u16.to_le_bytes());
        body.extend(0u32.to_le_bytes());
        if let Some(r) = tsresol {
            body.extend(OPT_IF_TSRESOL.to_le_bytes());
            body.extend(1u16.to_le_bytes());
            body.extend([r, 0, 0, 0]);
            body.extend([0u8; 4]);
        }
        block(IDB_TYPE, &body)
    }

    fn epb(iface: u32, ts: u64, data: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend(iface.to_le_bytes());
        body.extend(((ts >> 32) as u32).to_le_bytes());
        body.extend((ts as u32).to_le_bytes());
        body.extend((data.len() as u32).to_le_bytes());
        body.extend((data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        block(EPB_TYPE, &body)
    }

    #[test]
    fn test_parse_interfaces_and_resolutions() {
        let mut file = shb();
        file.extend(idb(1, None));
        file.extend(idb(101, Some(9)));
        file.extend(epb(0, 1_500_000, b"eth"));
        file.extend(epb(1, 2_000_000_007, b"raw ip"));
        let packets: Vec<_> = PcapNgReader::new(&file)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(packets.len(), 2);
        assert_eq!(packets[0].link_type, LinkType::ETHERNET);
        assert_eq!(packets[0].ts_nanos, 1_500_000_000);
        assert_eq!(packets[0].data, b"eth");
        assert_eq!(packets[1].link_type, LinkType::RAW);
        assert_eq!(packets[1].ts_nanos, 2_000_000_007);
    }

    #[test]
    fn test_unknown_interface_is_an_error() {
        let mut file = shb();
        file.extend(epb(3, 0, b"x"));
        let err = PcapNgReader::new(&file)
            .unwrap()
            .next()
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind, CaptureErrorKind::UnknownInterface(3));
        assert_eq!(err.offset, 28);
    }

    #[test]
    fn test_bad_block_length() {
        let mut file = shb();
        file.extend(idb(1, None));
        let mut bad = epb(0, 0, b"abcd");
        bad[4] = 13;
        file.extend(bad);
        let results: Vec<_> = PcapNgReader::new(&file).unwrap().collect();
        assert_eq!(results.len(), 1);
        assert!(matches!(
            results[0].as_ref().unwrap_err().kind,
            CaptureErrorKind::BadLength(13)
        ));
    }

    #[test]
    fn test_a_trailing_length_that_differs_is_damage() {
        let mut file = shb();
        file.extend(idb(1, None));
        let good = file.len();
        file.extend(epb(0, 0, b"abcd"));
        let end = file.len();
        file[end - 4] = 40; // the header says 36, the trailer 40
        let results: Vec<_> = PcapNgReader::new(&file).unwrap().collect();
        assert_eq!(results.len(), 1);
        let err = results[0].as_ref().unwrap_err();
        assert_eq!(err.offset, good as u64);
        assert_eq!(
            err.kind,
            CaptureErrorKind::LengthMismatch { head: 36, tail: 40 }
        );
    }
}
