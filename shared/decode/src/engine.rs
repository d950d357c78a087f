//! The decoding engine: captured packets in, HTTP transactions out. One engine per worker
//! thread; shard packets by [`crate::flow::FlowKey::shard_hash`] so both directions of a
//! connection reach the same engine.

use crate::capture::{CaptureReader, LinkType, Packet};
use crate::defrag::{DefragLimits, Defragmenter};
use crate::flow::{DecoderFactory, FlowKey, FlowLimits, FlowStats, FlowTable, http1_decoder};
use crate::http::HttpConfig;
use crate::packet::{self, Decoded};
use tapline_record::Transaction;

/// Everything that bounds the engine's work and memory.
#[derive(Clone, Debug, Default)]
pub struct EngineConfig {
    /// HTTP parsing limits.
    pub http: HttpConfig,
    /// Flow table limits.
    pub flows: FlowLimits,
    /// IPv4 fragment reassembly limits.
    pub defrag: DefragLimits,
    /// Stamped on every record (set by sensors).
    pub sensor_id: Option<std::sync::Arc<str>>,
    /// `(index, count)`: this engine handles only the connections whose
    /// [`crate::flow::FlowKey::shard_hash`] falls in its shard, so `count` engines can each
    /// scan the same packets and split the work without talking to each other.
    pub shard: Option<(u64, u64)>,
    /// The protocol decoder each new connection gets; `None` is HTTP/1
    /// ([`crate::flow::http1_decoder`]).
    pub decoder: Option<DecoderFactory>,
}

/// Counters over everything the engine saw.
#[derive(Clone, Copy, Debug, Default)]
pub struct EngineStats {
    /// Packets given to the engine.
    pub packets: u64,
    /// Captured bytes given to the engine.
    pub bytes: u64,
    /// TCP segments decoded.
    pub tcp_segments: u64,
    /// Packets that were not TCP (ARP, UDP, ...).
    pub other_packets: u64,
    /// Packets whose headers were damaged or truncated.
    pub malformed_packets: u64,
    /// IPv4 fragments seen.
    pub fragments: u64,
    /// Fragments dropped by reassembly limits.
    pub fragments_dropped: u64,
    /// Transactions emitted.
    pub transactions: u64,
    /// TCP segments left to other shards' engines.
    pub other_shard_segments: u64,
    /// Flow table counters.
    pub flows: FlowStats,
}

/// Packets → transactions.
pub struct Engine {
    cfg: EngineConfig,
    flows: FlowTable,
    defrag: Defragmenter,
    stats: EngineStats,
}

impl Engine {
    /// A new engine.
    pub fn new(cfg: EngineConfig) -> Self {
        Engine {
            flows: FlowTable::with_decoder(cfg.flows, cfg.decoder.unwrap_or(http1_decoder)),
            defrag: Defragmenter::new(cfg.defrag),
            cfg,
            stats: EngineStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> EngineStats {
        let mut s = self.stats;
        s.flows = self.flows.stats;
        s.fragments_dropped = self.defrag.dropped;
        s
    }

    /// Connections currently tracked.
    pub fn active_flows(&self) -> usize {
        self.flows.len()
    }

    /// Processes one captured packet; completed transactions are appended to `out`.
    pub fn packet(&mut self, pkt: &Packet<'_>, out: &mut Vec<Transaction>) {
        self.frame(pkt.ts_nanos, pkt.link_type, pkt.data, out);
    }

    /// Processes one frame given by its parts.
    pub fn frame(&mut self, ts: i64, link: LinkType, data: &[u8], out: &mut Vec<Transaction>) {
        self.stats.packets += 1;
        self.stats.bytes += data.len() as u64;
        let start = out.len();
        match packet::decode(link, data) {
            Ok(Decoded::Tcp(seg)) => self.tcp(ts, &seg, out),
            Ok(Decoded::Ipv4Fragment(frag)) => {
                self.stats.fragments += 1;
                if let Some(datagram) = self.defrag.add(ts, &frag) {
                    let wire = datagram.len() as u32;
                    match packet::decode_transport(
                        frag.src.into(),
                        frag.dst.into(),
                        frag.protocol,
                        &datagram,
                        wire,
                        0,
                    ) {
                        Ok(Decoded::Tcp(seg)) => self.tcp(ts, &seg, out),
                        Ok(_) => self.stats.other_packets += 1,
                        Err(_) => self.stats.malformed_packets += 1,
                    }
                }
            }
            Ok(Decoded::Other) => self.stats.other_packets += 1,
            Err(_) => self.stats.malformed_packets += 1,
        }
        self.stamp(start, out);
    }

    fn tcp(&mut self, ts: i64, seg: &packet::TcpSegment<'_>, out: &mut Vec<Transaction>) {
        if let Some((index, count)) = self.cfg.shard
            && FlowKey::of(seg).shard_hash() % count.max(1) != index
        {
            self.stats.other_shard_segments += 1;
            return;
        }
        self.stats.tcp_segments += 1;
        self.flows.segment(ts, seg, &self.cfg.http, out);
    }

    /// End of input: closes every connection and emits what is pending.
    pub fn finish(&mut self, out: &mut Vec<Transaction>) {
        let start = out.len();
        self.flows.close_all(&self.cfg.http, out);
        self.stamp(start, out);
    }

    fn stamp(&mut self, start: usize, out: &mut [Transaction]) {
        let new = &mut out[start..];
        self.stats.transactions += new.len() as u64;
        if let Some(id) = &self.cfg.sensor_id {
            for tx in new {
                tx.sensor_id = Some(id.clone());
            }
        }
    }
}

/// Where a dispatcher sends a frame when `count` engines share the traffic (each configured
/// with [`EngineConfig::shard`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameShard {
    /// Only this shard needs it: a TCP segment of one of its connections, or a frame that is
    /// merely counted (given to shard 0 so it is counted once).
    One(u64),
    /// Every shard needs it: an IPv4 fragment, whose ports are known only after reassembly
    /// (each shard reassembles and keeps the datagram only if the connection is its own).
    All,
}

/// Which shard of `count` handles `data` (reads only the headers).
pub fn frame_shard(link: LinkType, data: &[u8], count: u64) -> FrameShard {
    match packet::decode(link, data) {
        Ok(Decoded::Tcp(seg)) => FrameShard::One(FlowKey::of(&seg).shard_hash() % count.max(1)),
        Ok(Decoded::Ipv4Fragment(_)) => FrameShard::All,
        Ok(Decoded::Other) | Err(_) => FrameShard::One(0),
    }
}

/// What decoding a whole capture held in memory produced.
#[derive(Debug, Default)]
pub struct DecodedCapture {
    /// Transactions in emission order.
    pub transactions: Vec<Transaction>,
    /// Engine counters.
    pub stats: EngineStats,
    /// A reader error that ended the file early (everything before it was decoded).
    pub error: Option<crate::capture::CaptureError>,
}

/// Decodes a whole pcap/pcapng file held in memory on this thread.
pub fn decode_capture(
    bytes: &[u8],
    cfg: EngineConfig,
) -> Result<DecodedCapture, crate::capture::CaptureError> {
    let mut transactions = Vec::new();
    let streamed = stream_capture(bytes, cfg, |txs| {
        transactions.append(txs);
        Ok::<(), crate::capture::CaptureError>(())
    })?;
    Ok(DecodedCapture {
        transactions,
        stats: streamed.stats,
        error: streamed.error,
    })
}

/// What streaming a capture ended with: the counters, and the reader error that ended the file
/// early, if one did (everything before it was decoded and handed on).
#[derive(Debug, Default)]
pub struct StreamedCapture {
    /// Engine counters.
    pub stats: EngineStats,
    /// A reader error that ended the file early.
    pub error: Option<crate::capture::CaptureError>,
}

/// Decodes a capture held in memory, handing each packet's finished transactions to `each`
/// (which takes them out of the vector) as they complete: memory stays flat however large
/// the capture. An error from `each` stops the decode and is returned.
pub fn stream_capture<E: From<crate::capture::CaptureError>>(
    bytes: &[u8],
    cfg: EngineConfig,
    mut each: impl FnMut(&mut Vec<Transaction>) -> Result<(), E>,
) -> Result<StreamedCapture, E> {
    let reader = CaptureReader::new(bytes)?;
    let mut engine = Engine::new(cfg);
    let mut out = Vec::new();
    let mut error = None;
    for item in reader {
        match item {
            Ok(pkt) => engine.packet(&pkt, &mut out),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
        if !out.is_empty() {
            each(&mut out)?;
            out.clear();
        }
    }
    engine.finish(&mut out);
    each(&mut out)?;
    Ok(StreamedCapture {
        stats: engine.stats(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::LinkType;
    use crate::packet::tcp_flags::{ACK, FIN, PSH, SYN};
    use crate::packet::tests::eth_ipv4_tcp;

    const C: ([u8; 4], u16) = ([10, 0, 0, 1], 40000);
    const S: ([u8; 4], u16) = ([10, 0, 0, 2], 8080);

    fn frames() -> Vec<Vec<u8>> {
        let req = b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc";
        let resp = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
        vec![
            eth_ipv4_tcp(C, S, 10, SYN, b""),
            eth_ipv4_tcp(S, C, 50, SYN | ACK, b""),
            eth_ipv4_tcp(C, S, 11, ACK | PSH, req),
            eth_ipv4_tcp(S, C, 51, ACK | PSH, resp),
            eth_ipv4_tcp(C, S, 11 + req.len() as u32, FIN | ACK, b""),
            eth_ipv4_tcp(S, C, 51 + resp.len() as u32, FIN | ACK, b""),
        ]
    }

    fn decode(cfg: EngineConfig) -> (Vec<Transaction>, EngineStats) {
        let mut e = Engine::new(cfg);
        let mut out = Vec::new();
        for (i, f) in frames().iter().enumerate() {
            e.frame(i as i64 * 1_000, LinkType::ETHERNET, f, &mut out);
        }
        e.finish(&mut out);
        (out, e.stats())
    }

    #[test]
    fn test_frames_become_one_transaction_on_any_port() {
        let (out, stats) = decode(EngineConfig::default());
        assert_eq!(out.len(), 1);
        let tx = &out[0];
        assert_eq!(
            (&*tx.method, tx.uri.as_str(), tx.status),
            ("POST", "/x", Some(201))
        );
        assert_eq!(tx.request_body.data, b"abc");
        assert_eq!(tx.request_ts_nanos, 2_000);
        assert_eq!(stats.packets, 6);
    }

    #[test]
    fn test_shards_split_connections_without_losing_any() {
        let mut total = 0;
        for shard in 0..3 {
            let (out, _) = decode(EngineConfig {
                shard: Some((shard, 3)),
                ..EngineConfig::default()
            });
            total += out.len();
        }
        assert_eq!(total, 1, "exactly one shard keeps the connection");
    }

    #[test]
    fn test_the_configuration_chooses_the_protocol_decoder() {
        let (out, _) = decode(EngineConfig {
            decoder: Some(crate::flow::tests::counting),
            ..EngineConfig::default()
        });
        assert_eq!(out.len(), 1);
        assert!(out[0].uri.starts_with("POS client="), "{}", out[0].uri);
    }

    #[test]
    fn test_frame_shard_agrees_for_both_directions() {
        let f = frames();
        let a = frame_shard(LinkType::ETHERNET, &f[0], 4);
        let b = frame_shard(LinkType::ETHERNET, &f[1], 4);
        assert_eq!(a, b);
    }
}
