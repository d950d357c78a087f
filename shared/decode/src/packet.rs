//! Link, network and transport headers: from a captured frame to a TCP segment.
//!
//! Written by hand rather than with a general packet library because this is the hottest loop
//! in Tapline and only one question matters here: where is the TCP payload, and for which flow.
//! Every read is bounds-checked; a frame that does not hold what its headers promise becomes a
//! [`PacketError`], never a panic. Tunnels (VXLAN, Teredo, IP-in-IP) are unwrapped up to
//! [`MAX_NESTING`] levels.

use crate::capture::LinkType;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use thiserror::Error;

/// How many encapsulations (VLAN stacks count once, tunnels each count) we follow.
pub const MAX_NESTING: usize = 8;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_MPLS_MCAST: u16 = 0x8848;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;

const PROTO_IPV4_IN_IP: u8 = 4;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_IPV6_IN_IP: u8 = 41;

const VXLAN_PORT: u16 = 4789;
const TEREDO_PORT: u16 = 3544;

/// TCP flag bits.
pub mod tcp_flags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronise sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push function.
    pub const PSH: u8 = 0x08;
    /// Acknowledgment field is significant.
    pub const ACK: u8 = 0x10;
}

/// A TCP segment found in a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flag bits ([`tcp_flags`]).
    pub flags: u8,
    /// The segment's payload as captured.
    pub payload: &'a [u8],
    /// The payload length the IP header declares; more than `payload.len()` when the capture's
    /// snap length cut the frame.
    pub wire_payload_len: u32,
}

/// An IPv4 fragment, to be reassembled before its transport header can be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Fragment<'a> {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Identification field.
    pub id: u16,
    /// Protocol of the reassembled datagram.
    pub protocol: u8,
    /// Offset of this fragment's payload in the datagram, in bytes.
    pub offset: u32,
    /// More fragments follow.
    pub more: bool,
    /// This fragment's payload.
    pub payload: &'a [u8],
}

/// What a frame carries, as far as Tapline cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A TCP segment.
    Tcp(TcpSegment<'a>),
    /// An IPv4 fragment (reassemble, then call [`decode_transport`]).
    Ipv4Fragment(Ipv4Fragment<'a>),
    /// Something else (ARP, UDP, ICMP, IPv6 fragments, unknown link types): not HTTP.
    Other,
}

/// Why a frame could not be decoded.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum PacketError {
    /// A header is cut short.
    #[error("{layer} header truncated ({have} of {need} bytes)")]
    Truncated {
        /// Which header.
        layer: &'static str,
        /// Bytes present.
        have: usize,
        /// Bytes needed.
        need: usize,
    },
    /// A header field holds an impossible value.
    #[error("{layer} header invalid: {what}")]
    Invalid {
        /// Which header.
        layer: &'static str,
        /// What is wrong.
        what: &'static str,
    },
    /// More nested encapsulations than [`MAX_NESTING`].
    #[error("more than {MAX_NESTING} nested encapsulations")]
    TooDeep,
}

fn need(layer: &'static str, data: &[u8], n: usize) -> Result<(), PacketError> {
    if data.len() < n {
        Err(PacketError::Truncated {
            layer,
            have: data.len(),
            need: n,
        })
    } else {
        Ok(())
    }
}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Decodes a captured frame of the given link type.
pub fn decode(link_type: LinkType, frame: &[u8]) -> Result<Decoded<'_>, PacketError> {
    decode_link(link_type, frame, 0)
}

fn decode_link(link: LinkType, frame: &[u8], depth: usize) -> Result<Decoded<'_>, PacketError> {
    match link {
        LinkType::ETHERNET => decode_ethernet(frame, depth),
        LinkType::RAW
        | LinkType::RAW_OLD
        | LinkType::RAW_OLD2
        | LinkType::IPV4
        | LinkType::IPV6 => decode_ip(frame, depth),
        LinkType::NULL | LinkType::LOOP => {
            need("loopback", frame, 4)?;
            // The family is in the writer's byte order; IP's version nibble is a safer guide.
            decode_ip(&frame[4..], depth)
        }
        LinkType::LINUX_SLL => {
            need("linux sll", frame, 16)?;
            decode_ethertype(be16(frame, 14), &frame[16..], depth)
        }
        LinkType::LINUX_SLL2 => {
            need("linux sll2", frame, 20)?;
            decode_ethertype(be16(frame, 0), &frame[20..], depth)
        }
        LinkType::NFLOG => decode_nflog(frame, depth),
        LinkType::C_HDLC => decode_c_hdlc(frame, depth),
        LinkType::C_HDLC_WITH_DIR => decode_c_hdlc(frame.get(1..).unwrap_or(&[]), depth),
        // Some writers label Cisco HDLC as PPP in HDLC framing: its address byte tells.
        LinkType::PPP_HDLC if matches!(frame.first(), Some(0x0f | 0x8f)) => {
            decode_c_hdlc(frame, depth)
        }
        LinkType::PPP | LinkType::PPP_HDLC => decode_ppp(frame, depth),
        LinkType::PPP_WITH_DIR => decode_ppp(frame.get(1..).unwrap_or(&[]), depth),
        LinkType::PPP_ETHER => {
            need("pppoe", frame, 6)?;
            decode_ppp(&frame[6..], depth)
        }
        _ => Ok(Decoded::Other),
    }
}

/// Cisco HDLC: address (0x0F unicast, 0x8F broadcast), control, an Ethernet type.
fn decode_c_hdlc(frame: &[u8], depth: usize) -> Result<Decoded<'_>, PacketError> {
    need("cisco hdlc", frame, 4)?;
    decode_ethertype(be16(frame, 2), &frame[4..], depth + 1)
}

/// A PPP frame: HDLC address and control (FF 03) when present, then the protocol — two
/// bytes, or one when protocol-field compression is on (an odd first byte, RFC 1661 §6.5).
fn decode_ppp(frame: &[u8], depth: usize) -> Result<Decoded<'_>, PacketError> {
    let frame = frame.strip_prefix(&[0xff, 0x03]).unwrap_or(frame);
    need("ppp", frame, 1)?;
    let (protocol, rest) = if frame[0] & 1 == 1 {
        (u16::from(frame[0]), &frame[1..])
    } else {
        need("ppp", frame, 2)?;
        (be16(frame, 0), &frame[2..])
    };
    match protocol {
        0x0021 | 0x0057 => decode_ip(rest, depth + 1),
        _ => Ok(Decoded::Other),
    }
}

fn decode_ethernet(frame: &[u8], depth: usize) -> Result<Decoded<'_>, PacketError> {
    need("ethernet", frame, 14)?;
    let type_or_len = be16(frame, 12);
    if type_or_len <= 1500 {
        // 802.3 length field: an LLC header follows; SNAP (AA AA 03 + OUI) carries an ethertype.
        let llc = &frame[14..];
        if llc.len() >= 8 && llc[0] == 0xaa && llc[1] == 0xaa && llc[2] == 0x03 {
            return decode_ethertype(be16(llc, 6), &llc[8..], depth);
        }
        return Ok(Decoded::Other);
    }
    decode_ethertype(type_or_len, &frame[14..], depth)
}

/// Linux NFLOG: a 4-byte header, then TLVs (little-endian length and type, 4-byte aligned);
/// type 9 carries the IP packet.
fn decode_nflog(frame: &[u8], depth: usize) -> Result<Decoded<'_>, PacketError> {
    need("nflog", frame, 4)?;
    let mut rest = &frame[4..];
    while rest.len() >= 4 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let kind = u16::from_le_bytes([rest[2], rest[3]]);
        if len < 4 || len > rest.len() {
            return Err(PacketError::Invalid {
                layer: "nflog",
                what: "TLV length out of bounds",
            });
        }
        if kind == 9 {
            return decode_ip(&rest[4..len], depth + 1);
        }
        let padded = (len + 3) & !3;
        rest = rest.get(padded..).unwrap_or(&[]);
    }
    Ok(Decoded::Other)
}

fn decode_ethertype(
    mut ethertype: u16,
    mut data: &[u8],
    depth: usize,
) -> Result<Decoded<'_>, PacketError> {
    if depth > MAX_NESTING {
        return Err(PacketError::TooDeep);
    }
    // VLAN tags (802.1Q, QinQ) stack; walk them without recursion.
    for _ in 0..MAX_NESTING {
        match ethertype {
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                need("vlan", data, 4)?;
                ethertype = be16(data, 2);
                data = &data[4..];
            }
            _ => break,
        }
    }
    match ethertype {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => decode_ip(data, depth),
        ETHERTYPE_MPLS | ETHERTYPE_MPLS_MCAST => {
            for _ in 0..MAX_NESTING {
                need("mpls", data, 4)?;
                let bottom = data[2] & 0x01 != 0;
                data = &data[4..];
                if bottom {
                    // No protocol field: an IP version nibble, else an Ethernet pseudowire
                    // (optionally behind a zero control word).
                    return match data.first().map(|b| b >> 4) {
                        Some(4 | 6) => decode_ip(data, depth + 1),
                        Some(0) if data.len() >= 4 + 14 => decode_ethernet(&data[4..], depth + 1),
                        _ => Ok(Decoded::Other),
                    };
                }
            }
            Err(PacketError::TooDeep)
        }
        ETHERTYPE_PPPOE_SESSION => {
            need("pppoe", data, 6)?;
            // The session header's length bounds the PPP frame (Ethernet pads short ones).
            let len = usize::from(be16(data, 4));
            let ppp = &data[6..];
            decode_ppp(ppp.get(..len).unwrap_or(ppp), depth)
        }
        _ => Ok(Decoded::Other),
    }
}

/// Decodes an IP packet (version from the first nibble).
pub fn decode_ip(data: &[u8], depth: usize) -> Result<Decoded<'_>, PacketError> {
    if depth > MAX_NESTING {
        return Err(PacketError::TooDeep);
    }
    need("ip", data, 1)?;
    match data[0] >> 4 {
        4 => decode_ipv4(data, depth),
        6 => decode_ipv6(data, depth),
        _ => Err(PacketError::Invalid {
            layer: "ip",
            what: "version is neither 4 nor 6",
        }),
    }
}

fn decode_ipv4(data: &[u8], depth: usize) -> Result<Decoded<'_>, PacketError> {
    need("ipv4", data, 20)?;
    let ihl = usize::from(data[0] & 0x0f) * 4;
    if ihl < 20 {
        return Err(PacketError::Invalid {
            layer: "ipv4",
            what: "header length below 20",
        });
    }
    need("ipv4", data, ihl)?;
    let total = usize::from(be16(data, 2));
    // Total length 0 happens with TSO on the capturing host: trust the frame then.
    let total = if total == 0 { data.len() } else { total };
    if total < ihl {
        return Err(PacketError::Invalid {
            layer: "ipv4",
            what: "total length shorter than header",
        });
    }
    let end = total.min(data.len());
    let payload = &data[ihl..end];
    let wire_len = (total - ihl) as u32;
    let flags_frag = be16(data, 6);
    let more = flags_frag & 0x2000 != 0;
    let offset = u32::from(flags_frag & 0x1fff) * 8;
    let protocol = data[9];
    let src = Ipv4Addr::new(data[12], data[13], data[14], data[15]);
    let dst = Ipv4Addr::new(data[16], data[17], data[18], data[19]);
    if more || offset != 0 {
        return Ok(Decoded::Ipv4Fragment(Ipv4Fragment {
            src,
            dst,
            id: be16(data, 4),
            protocol,
            offset,
            more,
            payload,
        }));
    }
    decode_transport(
        IpAddr::V4(src),
        IpAddr::V4(dst),
        protocol,
        payload,
        wire_len,
        depth,
    )
}

fn decode_ipv6(data: &[u8], depth: usize) -> Result<Decoded<'_>, PacketError> {
    need("ipv6", data, 40)?;
    let declared = usize::from(be16(data, 4));
    let mut src = [0u8; 16];
    src.copy_from_slice(&data[8..24]);
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&data[24..40]);
    // Payload length 0 is a jumbogram or TSO: trust the frame.
    let wire_len = if declared == 0 {
        data.len() - 40
    } else {
        declared
    };
    let end = (40 + wire_len).min(data.len());
    let mut rest = &data[40..end];
    let mut wire_rest = wire_len;
    let mut next = data[6];
    for _ in 0..MAX_NESTING {
        match next {
            // Hop-by-hop, routing, destination options, mobility: (len + 1) * 8 bytes.
            0 | 43 | 60 | 135 => {
                need("ipv6 extension", rest, 8)?;
                let len = (usize::from(rest[1]) + 1) * 8;
                need("ipv6 extension", rest, len)?;
                next = rest[0];
                rest = &rest[len..];
                wire_rest = wire_rest.saturating_sub(len);
            }
            // Authentication header: (len + 2) * 4 bytes.
            51 => {
                need("ipv6 ah", rest, 8)?;
                let len = (usize::from(rest[1]) + 2) * 4;
                need("ipv6 ah", rest, len)?;
                next = rest[0];
                rest = &rest[len..];
                wire_rest = wire_rest.saturating_sub(len);
            }
            // Fragment header: only an atomic fragment (offset 0, no more) is readable as is.
            44 => {
                need("ipv6 fragment", rest, 8)?;
                if be16(rest, 2) & 0xfff9 != 0 {
                    return Ok(Decoded::Other);
                }
                next = rest[0];
                rest = &rest[8..];
                wire_rest = wire_rest.saturating_sub(8);
            }
            _ => {
                return decode_transport(
                    IpAddr::V6(Ipv6Addr::from(src)),
                    IpAddr::V6(Ipv6Addr::from(dst)),
                    next,
                    rest,
                    wire_rest as u32,
                    depth,
                );
            }
        }
    }
    Err(PacketError::TooDeep)
}

/// Decodes the transport header of a (possibly reassembled) IP payload.
pub fn decode_transport(
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    payload: &[u8],
    wire_len: u32,
    depth: usize,
) -> Result<Decoded<'_>, PacketError> {
    match protocol {
        PROTO_TCP => decode_tcp(src, dst, payload, wire_len),
        PROTO_UDP => decode_udp(payload, depth),
        PROTO_IPV4_IN_IP | PROTO_IPV6_IN_IP => decode_ip(payload, depth + 1),
        _ => Ok(Decoded::Other),
    }
}

fn decode_tcp(
    src: IpAddr,
    dst: IpAddr,
    data: &[u8],
    wire_len: u32,
) -> Result<Decoded<'_>, PacketError> {
    need("tcp", data, 20)?;
    let header_len = usize::from(data[12] >> 4) * 4;
    if header_len < 20 {
        return Err(PacketError::Invalid {
            layer: "tcp",
            what: "data offset below 5",
        });
    }
    need("tcp", data, header_len)?;
    Ok(Decoded::Tcp(TcpSegment {
        src,
        dst,
        src_port: be16(data, 0),
        dst_port: be16(data, 2),
        seq: be32(data, 4),
        ack: be32(data, 8),
        flags: data[13],
        payload: &data[header_len..],
        wire_payload_len: wire_len.saturating_sub(header_len as u32),
    }))
}

fn decode_udp(data: &[u8], depth: usize) -> Result<Decoded<'_>, PacketError> {
    need("udp", data, 8)?;
    let src_port = be16(data, 0);
    let dst_port = be16(data, 2);
    let payload = &data[8..];
    if dst_port == VXLAN_PORT || src_port == VXLAN_PORT {
        // VXLAN: 8-byte header with the I flag, then an Ethernet frame.
        if payload.len() >= 8 + 14 && payload[0] & 0x08 != 0 {
            return decode_ethernet(&payload[8..], depth + 1);
        }
        return Ok(Decoded::Other);
    }
    // Teredo relays use any port; recognise it by content: an IPv6 header whose payload length
    // fills the datagram, possibly behind Teredo's authentication/origin headers.
    if dst_port == TEREDO_PORT || src_port == TEREDO_PORT || looks_like_teredo(payload) {
        return decode_teredo(payload, depth);
    }
    Ok(Decoded::Other)
}

fn looks_like_teredo(mut data: &[u8]) -> bool {
    if data.len() >= 8 && be16(data, 0) == 0x0000 {
        data = &data[8..];
    }
    data.len() >= 40 && data[0] >> 4 == 6 && usize::from(be16(data, 4)) + 40 == data.len()
}

fn decode_teredo(mut data: &[u8], depth: usize) -> Result<Decoded<'_>, PacketError> {
    // Optional authentication (0x0001) and origin indication (0x0000) headers precede IPv6.
    if data.len() >= 2 && be16(data, 0) == 0x0001 {
        need("teredo auth", data, 4)?;
        let len = 4 + usize::from(data[2]) + usize::from(data[3]) + 8 + 1;
        need("teredo auth", data, len)?;
        data = &data[len..];
    }
    if data.len() >= 2 && be16(data, 0) == 0x0000 {
        need("teredo origin", data, 8)?;
        data = &data[8..];
    }
    match data.first() {
        Some(b) if b >> 4 == 6 => decode_ip(data, depth + 1),
        _ => Ok(Decoded::Other),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds an Ethernet + IPv4 + TCP frame (no options) for tests across the crate.
    pub(crate) fn eth_ipv4_tcp(
        src: ([u8; 4], u16),
        dst: ([u8; 4], u16),
        seq: u32,
        flags: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        f.extend(ipv4_tcp(src, dst, seq, flags, payload));
        f
    }

    pub(crate) fn ipv4_tcp(
        src: ([u8; 4], u16),
        dst: ([u8; 4], u16),
        seq: u32,
        flags: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        let total = (20 + 20 + payload.len()) as u16;
        let mut f = vec![0x45, 0];
        f.extend(total.to_be_bytes());
        f.extend([0, 1, 0x40, 0, 64, PROTO_TCP, 0, 0]);
        f.extend(src.0);
        f.extend(dst.0);
        f.extend(src.1.to_be_bytes());
        f.extend(dst.1.to_be_bytes());
        f.extend(seq.to_be_bytes());
        f.extend(0u32.to_be_bytes());
        f.extend([0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn test_parse_ethernet_ipv4_tcp() {
        let frame = eth_ipv4_tcp(([10, 0, 0, 1], 5555), ([10, 0, 0, 2], 80), 7, 0x18, b"GET");
        let Decoded::Tcp(seg) = decode(LinkType::ETHERNET, &frame).unwrap() else {
            panic!("not tcp");
        };
        assert_eq!(seg.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(seg.dst_port, 80);
        assert_eq!(seg.seq, 7);
        assert_eq!(seg.payload, b"GET");
        assert_eq!(seg.wire_payload_len, 3);
    }

    #[test]
    fn test_parse_qinq_vlan() {
        let inner = ipv4_tcp(([1, 1, 1, 1], 1), ([2, 2, 2, 2], 2), 0, 0x02, b"");
        let mut f = vec![0u8; 12];
        f.extend(ETHERTYPE_QINQ.to_be_bytes());
        f.extend([0, 10]);
        f.extend(ETHERTYPE_VLAN.to_be_bytes());
        f.extend([0, 20]);
        f.extend(ETHERTYPE_IPV4.to_be_bytes());
        f.extend(inner);
        assert!(matches!(
            decode(LinkType::ETHERNET, &f).unwrap(),
            Decoded::Tcp(_)
        ));
    }

    #[test]
    fn test_parse_ppp_family_and_cisco_hdlc() {
        let inner = ipv4_tcp(([1, 1, 1, 1], 1), ([2, 2, 2, 2], 80), 0, 0x18, b"GET");
        let with = |head: &[u8]| [head, &inner[..]].concat();
        let cases: [(LinkType, Vec<u8>); 8] = [
            (LinkType::C_HDLC, with(&[0x0f, 0x00, 0x08, 0x00])),
            (
                LinkType::C_HDLC_WITH_DIR,
                with(&[0x01, 0x8f, 0x00, 0x08, 0x00]),
            ),
            (LinkType::PPP_HDLC, with(&[0x0f, 0x00, 0x08, 0x00])),
            (LinkType::PPP, with(&[0xff, 0x03, 0x00, 0x21])),
            (LinkType::PPP, with(&[0x21])), // address/control and protocol compressed
            (LinkType::PPP_HDLC, with(&[0xff, 0x03, 0x00, 0x21])),
            (
                LinkType::PPP_WITH_DIR,
                with(&[0x00, 0xff, 0x03, 0x00, 0x21]),
            ),
            (
                LinkType::PPP_ETHER,
                with(&[0x11, 0x00, 0x12, 0x34, 0x00, 0x2b, 0x00, 0x21]),
            ),
        ];
        for (link, frame) in &cases {
            match decode(*link, frame) {
                Ok(Decoded::Tcp(seg)) => assert_eq!(seg.payload, b"GET", "{link:?}"),
                other => panic!("{link:?}: {other:?}"),
            }
        }
        // PPPoE session on Ethernet, padded past its length, protocol compressed.
        let mut f = vec![0u8; 12];
        f.extend(ETHERTYPE_PPPOE_SESSION.to_be_bytes());
        f.extend([0x11, 0x00, 0x12, 0x34]);
        f.extend(((inner.len() + 1) as u16).to_be_bytes());
        f.push(0x21);
        f.extend(&inner);
        f.extend([0u8; 6]);
        assert!(matches!(
            decode(LinkType::ETHERNET, &f),
            Ok(Decoded::Tcp(_))
        ));
        // Truncated headers are errors, not panics.
        for link in [
            LinkType::C_HDLC,
            LinkType::PPP,
            LinkType::PPP_ETHER,
            LinkType::PPP_WITH_DIR,
        ] {
            for cut in 0..3 {
                let _ = decode(link, &[0xff, 0x03, 0x00][..cut]);
            }
        }
    }

    #[test]
    fn test_parse_sll_and_null() {
        let inner = ipv4_tcp(([1, 1, 1, 1], 1), ([2, 2, 2, 2], 2), 0, 0x02, b"x");
        let mut sll = vec![0u8; 14];
        sll.extend(ETHERTYPE_IPV4.to_be_bytes());
        sll.extend(&inner);
        assert!(matches!(
            decode(LinkType::LINUX_SLL, &sll).unwrap(),
            Decoded::Tcp(_)
        ));
        let mut null = 2u32.to_le_bytes().to_vec();
        null.extend(&inner);
        assert!(matches!(
            decode(LinkType::NULL, &null).unwrap(),
            Decoded::Tcp(_)
        ));
    }

    #[test]
    fn test_truncated_headers_are_errors_not_panics() {
        let frame = eth_ipv4_tcp(([10, 0, 0, 1], 5555), ([10, 0, 0, 2], 80), 7, 0x18, b"GET");
        for cut in 0..frame.len() {
            let _ = decode(LinkType::ETHERNET, &frame[..cut]);
        }
        assert!(matches!(
            decode(LinkType::ETHERNET, &frame[..20]),
            Err(PacketError::Truncated { layer: "ipv4", .. })
        ));
    }

    #[test]
    fn test_snaplen_truncation_is_visible() {
        let frame = eth_ipv4_tcp(
            ([10, 0, 0, 1], 5555),
            ([10, 0, 0, 2], 80),
            7,
            0x18,
            b"GET /",
        );
        let Decoded::Tcp(seg) = decode(LinkType::ETHERNET, &frame[..frame.len() - 2]).unwrap()
        else {
            panic!("not tcp");
        };
        assert_eq!(seg.payload, b"GET");
        assert_eq!(seg.wire_payload_len, 5);
    }
}
