//! The flow table: TCP connections keyed by their address pair, each with two reassembled
//! directions feeding one protocol decoder ([`StreamDecoder`]; HTTP/1 unless the table is
//! built with another [`DecoderFactory`]).
//!
//! Bounded: at most `max_flows` connections (the oldest-idle eighth is evicted when full, so a
//! SYN flood costs O(1) amortised per packet), idle flows expire, and out-of-order bytes share
//! one engine-wide budget.

use crate::http::{Direction, HttpConfig, HttpConnection};
use crate::packet::{TcpSegment, tcp_flags};
use crate::reassembly::{HalfStream, ReassemblyLimits, SeqNum, StreamEvent};
use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use tapline_record::{Anomalies, Transaction};

/// A protocol decoder on one reassembled TCP connection: the seam where HTTP/1 (built in) and
/// other protocols (HTTP/2, TLS) plug in. The flow table orients the connection, reassembles
/// each direction and hands the decoder in-order bytes, gaps and ends; the decoder makes
/// transactions of them within the limits of `cfg`.
pub trait StreamDecoder: Debug + Send {
    /// In-order bytes from one side.
    fn data(
        &mut self,
        dir: Direction,
        ts: i64,
        data: &[u8],
        cfg: &HttpConfig,
        out: &mut Vec<Transaction>,
    );
    /// `len` bytes from one side are missing from the capture.
    fn gap(&mut self, dir: Direction, len: u64, cfg: &HttpConfig, out: &mut Vec<Transaction>);
    /// Something about the bytes delivered last on one side (an overlap whose copies
    /// disagree, packets cut by the snap length): flag the message they belong to.
    fn flag(&mut self, dir: Direction, anomalies: Anomalies);
    /// One side finished sending.
    fn end_of_stream(&mut self, dir: Direction, cfg: &HttpConfig, out: &mut Vec<Transaction>);
    /// The connection is over: emit what is pending, with `extra` flags.
    fn close(&mut self, extra: Anomalies, cfg: &HttpConfig, out: &mut Vec<Transaction>);
    /// The connection does not carry this decoder's protocol: the flow table stops buffering
    /// for it.
    fn is_foreign(&self) -> bool;
    /// Bytes held in buffers (memory accounting).
    fn buffered_bytes(&self) -> usize;
}

impl StreamDecoder for HttpConnection {
    fn data(
        &mut self,
        dir: Direction,
        ts: i64,
        data: &[u8],
        cfg: &HttpConfig,
        out: &mut Vec<Transaction>,
    ) {
        HttpConnection::data(self, dir, ts, data, cfg, out);
    }
    fn gap(&mut self, dir: Direction, len: u64, cfg: &HttpConfig, out: &mut Vec<Transaction>) {
        HttpConnection::gap(self, dir, len, cfg, out);
    }
    fn flag(&mut self, dir: Direction, anomalies: Anomalies) {
        HttpConnection::flag(self, dir, anomalies);
    }
    fn end_of_stream(&mut self, dir: Direction, cfg: &HttpConfig, out: &mut Vec<Transaction>) {
        HttpConnection::end_of_stream(self, dir, cfg, out);
    }
    fn close(&mut self, extra: Anomalies, cfg: &HttpConfig, out: &mut Vec<Transaction>) {
        HttpConnection::close(self, extra, cfg, out);
    }
    fn is_foreign(&self) -> bool {
        self.is_not_http()
    }
    fn buffered_bytes(&self) -> usize {
        HttpConnection::buffered_bytes(self)
    }
}

/// The decoder for a new connection, chosen when its first payload arrives: (client, server,
/// midstream start, the first payload bytes seen).
pub type DecoderFactory =
    fn(Option<SocketAddr>, Option<SocketAddr>, bool, &[u8]) -> Box<dyn StreamDecoder>;

/// HTTP/1.x for every connection (content-based detection inside it gives up on others).
pub fn http1_decoder(
    client: Option<SocketAddr>,
    server: Option<SocketAddr>,
    midstream: bool,
    _first: &[u8],
) -> Box<dyn StreamDecoder> {
    Box::new(HttpConnection::new(client, server, midstream))
}

/// Limits for the flow table.
#[derive(Clone, Copy, Debug)]
pub struct FlowLimits {
    /// Connections tracked at once.
    pub max_flows: usize,
    /// A connection idle this long is closed.
    pub idle_timeout_nanos: i64,
    /// Out-of-order bytes buffered across all connections.
    pub max_ooo_total: usize,
    /// Per-direction reassembly limits.
    pub reassembly: ReassemblyLimits,
}

impl Default for FlowLimits {
    fn default() -> Self {
        FlowLimits {
            // 7/8 of 2^20: the most a table of 2^20 slots holds before the hash map doubles
            // (one more flow than this cost a second 250 MB under a SYN flood).
            max_flows: 917_504,
            idle_timeout_nanos: 120_000_000_000,
            max_ooo_total: 512 << 20,
            reassembly: ReassemblyLimits::default(),
        }
    }
}

impl FlowLimits {
    /// This table's share when `n` engines split one budget (sharded workers): the flow count
    /// and the out-of-order bytes are divided, so the process holds what one table would.
    pub fn shared_by(self, n: usize) -> FlowLimits {
        let n = n.max(1);
        FlowLimits {
            max_flows: (self.max_flows / n).max(1024),
            max_ooo_total: (self.max_ooo_total / n).max(1 << 20),
            ..self
        }
    }
}

/// Address pair in canonical order, so both directions find the same flow. Addresses are
/// kept as 128-bit integers (IPv4 mapped into IPv6) so hashing is three word writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    lo: u128,
    hi: u128,
    /// `lo`'s port in the high half, `hi`'s in the low half.
    ports: u32,
}

fn ip_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl FlowKey {
    /// The key of a segment's connection.
    pub fn of(seg: &TcpSegment<'_>) -> Self {
        let a = (ip_bits(seg.src), seg.src_port);
        let b = (ip_bits(seg.dst), seg.dst_port);
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        FlowKey {
            lo: lo.0,
            hi: hi.0,
            ports: u32::from(lo.1) << 16 | u32::from(hi.1),
        }
    }

    /// A hash equal for both directions, for sharding flows across workers.
    pub fn shard_hash(&self) -> u64 {
        // Fixed seed: every worker and the dispatcher must agree.
        foldhash::fast::FixedState::with_seed(0x7a71_1e5e).hash_one(self)
    }
}

/// One of a connection's two directions, by who sent first: `A` sent the first packet seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Half {
    A,
    B,
}

impl Half {
    fn other(self) -> Half {
        match self {
            Half::A => Half::B,
            Half::B => Half::A,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Which way a half's bytes go, given the client's half (unknown: treated as the server's).
fn direction_of(client: Option<Half>, half: Half) -> Direction {
    if client == Some(half) {
        Direction::FromClient
    } else {
        Direction::FromServer
    }
}

#[derive(Debug)]
struct Flow {
    /// The endpoint that sent the first packet we saw; direction 0 is from it.
    first: (IpAddr, u16),
    /// The client's half, once known.
    client_dir: Option<Half>,
    halves: [HalfStream; 2],
    decoder: Option<Box<dyn StreamDecoder>>,
    midstream: bool,
    last_ts: i64,
    /// Both directions saw their SYN (or SYN-ACK): a new SYN means port reuse.
    rst: bool,
}

/// The TCP flags a segment carries that the flow table acts on.
#[derive(Clone, Copy, Debug)]
struct Flags {
    syn: bool,
    ack: bool,
    rst: bool,
    fin: bool,
}

impl Flags {
    fn of(seg: &TcpSegment<'_>) -> Flags {
        Flags {
            syn: seg.flags & tcp_flags::SYN != 0,
            ack: seg.flags & tcp_flags::ACK != 0,
            rst: seg.flags & tcp_flags::RST != 0,
            fin: seg.flags & tcp_flags::FIN != 0,
        }
    }
}

/// What one segment's processing writes to and is bounded by, outside its flow.
struct Feed<'a> {
    ts: i64,
    /// The engine-wide out-of-order byte allowance.
    budget: &'a mut usize,
    limits: &'a ReassemblyLimits,
    /// Makes the decoder of a connection's first payload.
    decoder: DecoderFactory,
    cfg: &'a HttpConfig,
    out: &'a mut Vec<Transaction>,
}

impl Flow {
    /// One segment of this connection: handshake state, then its bytes through reassembly
    /// into the HTTP parser.
    fn segment(&mut self, seg: &TcpSegment<'_>, flags: Flags, feed: &mut Feed<'_>) {
        self.last_ts = feed.ts;
        let dir = if self.first == (seg.src, seg.src_port) {
            Half::A
        } else {
            Half::B
        };
        if flags.syn {
            self.halves[dir.index()].syn(SeqNum(seg.seq));
            if self.client_dir.is_none() && !flags.ack {
                self.client_dir = Some(dir);
            }
        }
        if flags.rst {
            self.rst = true;
        }
        let data_seq = if flags.syn {
            SeqNum(seg.seq) + 1
        } else {
            SeqNum(seg.seq)
        };
        if !seg.payload.is_empty() && self.decoder.is_none() {
            self.start_decoder(dir, seg, feed.decoder);
        }
        if flags.ack {
            // What the other side has received: holes before it are capture loss.
            self.acked(dir.other(), SeqNum(seg.ack), feed);
        }
        if !seg.payload.is_empty() {
            self.payload(dir, data_seq, seg, feed);
        }
        if flags.fin {
            self.fin(dir, data_seq, seg.payload.len(), feed);
        }
    }

    /// First payload: settles who is the client, then starts the protocol decoder.
    fn start_decoder(&mut self, dir: Half, seg: &TcpSegment<'_>, factory: DecoderFactory) {
        let client = self
            .client_dir
            .unwrap_or_else(|| guess_client_dir(dir, seg));
        self.client_dir = Some(client);
        let addr = |h: Half| -> SocketAddr {
            if h == dir {
                SocketAddr::new(seg.src, seg.src_port)
            } else {
                SocketAddr::new(seg.dst, seg.dst_port)
            }
        };
        // Midstream also when we saw a SYN-ACK but not the request's start.
        self.decoder = Some(factory(
            Some(addr(client)),
            Some(addr(client.other())),
            self.midstream,
            seg.payload,
        ));
    }

    /// `half`'s peer acknowledged up to `ack`.
    fn acked(&mut self, half: Half, ack: SeqNum, feed: &mut Feed<'_>) {
        let Some(conn) = self.decoder.as_deref_mut() else {
            return;
        };
        let direction = direction_of(self.client_dir, half);
        let Feed {
            ts,
            budget,
            cfg,
            out,
            ..
        } = feed;
        self.halves[half.index()].acked(ack, budget, &mut |ev| {
            deliver(conn, direction, *ts, ev, cfg, out);
        });
    }

    /// A segment's payload into `half`'s stream and on to HTTP.
    fn payload(&mut self, half: Half, seq: SeqNum, seg: &TcpSegment<'_>, feed: &mut Feed<'_>) {
        let stream = &mut self.halves[half.index()];
        if seg.payload.len() < seg.wire_payload_len as usize {
            stream.anomalies.insert(Anomalies::SNAPLEN_TRUNCATED);
        }
        let Some(conn) = self.decoder.as_deref_mut() else {
            return;
        };
        if conn.is_foreign() {
            // Keep sequence tracking cheap: no buffering for non-HTTP flows.
            stream.start_at(seq);
            return;
        }
        let direction = direction_of(self.client_dir, half);
        let Feed {
            ts,
            budget,
            limits,
            cfg,
            out,
            ..
        } = feed;
        stream.segment(seq, seg.payload, limits, budget, &mut |ev| {
            deliver(conn, direction, *ts, ev, cfg, out);
        });
        if (seg.payload.len() as u32) < seg.wire_payload_len {
            // Bytes cut by the snap length are missing from the stream.
            let missing = seg.wire_payload_len - seg.payload.len() as u32;
            conn.flag(direction, Anomalies::SNAPLEN_TRUNCATED);
            stream.lost(seq + seg.payload.len() as u32, missing, &mut |ev| {
                deliver(conn, direction, *ts, ev, cfg, out);
            });
        }
    }

    /// `half` sent its FIN after `len` payload bytes from `seq`.
    fn fin(&mut self, half: Half, seq: SeqNum, len: usize, feed: &mut Feed<'_>) {
        let stream = &mut self.halves[half.index()];
        let Some(conn) = self.decoder.as_deref_mut() else {
            stream.fin(seq, len, &mut |_| {});
            return;
        };
        let direction = direction_of(self.client_dir, half);
        let was_closed = stream.is_closed();
        let Feed { ts, cfg, out, .. } = feed;
        stream.fin(seq, len, &mut |ev| {
            deliver(conn, direction, *ts, ev, cfg, out);
        });
        if !was_closed && stream.is_closed() {
            conn.end_of_stream(direction, cfg, out);
        }
    }
}

/// Counters the flow table keeps.
#[derive(Clone, Copy, Debug, Default)]
pub struct FlowStats {
    /// Connections created.
    pub created: u64,
    /// Connections closed by FIN/RST.
    pub closed: u64,
    /// Connections closed by idle timeout.
    pub timed_out: u64,
    /// Connections evicted because the table was full.
    pub evicted: u64,
    /// Connections that turned out not to be HTTP.
    pub not_http: u64,
    /// Connections that ended without carrying a byte of payload (SYN floods, port scans).
    pub silent: u64,
    /// Connections that carried at most one byte (probes).
    pub probes: u64,
}

/// Out-of-order bytes a flow table holds ([`FlowTable::ooo_buffered`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OooBuffered {
    /// Across all connections.
    pub total: usize,
    /// The most one direction of one connection holds.
    pub max_direction: usize,
}

/// All tracked TCP connections.
pub struct FlowTable {
    /// Boxed: a slot is then 56 bytes, so the table's empty and deleted slots cost little
    /// under a SYN flood.
    flows: HashMap<FlowKey, Box<Flow>, foldhash::fast::RandomState>,
    limits: FlowLimits,
    decoder: DecoderFactory,
    ooo_budget: usize,
    next_sweep: i64,
    /// Counters.
    pub stats: FlowStats,
}

impl FlowTable {
    /// An empty table whose connections are decoded as HTTP/1.
    pub fn new(limits: FlowLimits) -> Self {
        FlowTable::with_decoder(limits, http1_decoder)
    }

    /// An empty table whose connections get the decoder `decoder` makes.
    pub fn with_decoder(limits: FlowLimits, decoder: DecoderFactory) -> Self {
        FlowTable {
            flows: HashMap::default(),
            limits,
            decoder,
            ooo_budget: limits.max_ooo_total,
            next_sweep: i64::MIN,
            stats: FlowStats::default(),
        }
    }

    /// Connections tracked now.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// True when no connection is tracked.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Out-of-order bytes buffered now: across all connections, and the most any one
    /// direction holds (what the caps in [`FlowLimits`] bound).
    pub fn ooo_buffered(&self) -> OooBuffered {
        let mut b = OooBuffered::default();
        for half in self.flows.values().flat_map(|f| &f.halves) {
            b.total += half.buffered_bytes();
            b.max_direction = b.max_direction.max(half.buffered_bytes());
        }
        b
    }

    /// Bytes the HTTP parsers of all connections hold in buffers.
    pub fn http_buffered(&self) -> usize {
        self.flows
            .values()
            .filter_map(|f| f.decoder.as_deref())
            .map(StreamDecoder::buffered_bytes)
            .sum()
    }

    /// Processes one TCP segment.
    pub fn segment(
        &mut self,
        ts: i64,
        seg: &TcpSegment<'_>,
        http_cfg: &HttpConfig,
        out: &mut Vec<Transaction>,
    ) {
        if ts >= self.next_sweep {
            if self.next_sweep != i64::MIN {
                self.expire(ts, http_cfg, out);
            }
            self.next_sweep = ts.saturating_add(1_000_000_000);
        }
        let key = FlowKey::of(seg);
        let flags = Flags::of(seg);
        // A new SYN on a finished connection is port reuse: close the old one first. So is
        // one on a connection we joined midstream (a SYN is never part of a connection whose
        // start we missed: that one ended unseen, and the tuple is being reused).
        if flags.syn
            && !flags.ack
            && let Some(flow) = self.flows.get(&key)
            && (flow.rst
                || flow.midstream
                || flow.halves.iter().any(HalfStream::is_closed)
                || flow.first != (seg.src, seg.src_port))
        {
            self.remove(&key, Anomalies::NONE, http_cfg, out);
            self.stats.closed += 1;
        }
        if !self.flows.contains_key(&key) && !self.open(key, ts, seg, flags, http_cfg, out) {
            return;
        }
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        let mut feed = Feed {
            ts,
            budget: &mut self.ooo_budget,
            limits: &self.limits.reassembly,
            decoder: self.decoder,
            cfg: http_cfg,
            out,
        };
        flow.segment(seg, flags, &mut feed);
        if flow.rst || flow.halves.iter().all(HalfStream::is_closed) {
            self.remove(&key, Anomalies::NONE, http_cfg, out);
            self.stats.closed += 1;
        }
    }

    /// Starts tracking the connection `seg` belongs to (evicting when full). A stray RST,
    /// FIN or bare ACK (the last ACK of a connection already closed) starts nothing: there
    /// is nothing to reassemble from it.
    fn open(
        &mut self,
        key: FlowKey,
        ts: i64,
        seg: &TcpSegment<'_>,
        flags: Flags,
        http_cfg: &HttpConfig,
        out: &mut Vec<Transaction>,
    ) -> bool {
        if flags.rst || (seg.payload.is_empty() && !flags.syn) {
            return false;
        }
        if self.flows.len() >= self.limits.max_flows {
            self.evict_oldest(http_cfg, out);
        }
        let client_dir = match (flags.syn, flags.ack) {
            (true, false) => Some(Half::A),
            (true, true) => Some(Half::B),
            _ => None,
        };
        self.flows.insert(
            key,
            Box::new(Flow {
                first: (seg.src, seg.src_port),
                client_dir,
                halves: [HalfStream::default(), HalfStream::default()],
                decoder: None,
                midstream: client_dir.is_none(),
                last_ts: ts,
                rst: false,
            }),
        );
        self.stats.created += 1;
        true
    }

    fn remove(
        &mut self,
        key: &FlowKey,
        extra: Anomalies,
        http_cfg: &HttpConfig,
        out: &mut Vec<Transaction>,
    ) {
        if let Some(flow) = self.flows.remove(key) {
            self.finish(*flow, extra, http_cfg, out);
        }
    }

    fn finish(
        &mut self,
        mut flow: Flow,
        extra: Anomalies,
        http_cfg: &HttpConfig,
        out: &mut Vec<Transaction>,
    ) {
        let client = flow.client_dir.unwrap_or(Half::A);
        let ts = flow.last_ts;
        let carried = flow.halves[0].position() + flow.halves[1].position();
        if flow.decoder.is_none() {
            self.stats.silent += 1;
        } else if carried <= 1 {
            self.stats.probes += 1;
        }
        if let Some(conn) = flow.decoder.as_deref_mut() {
            if conn.is_foreign() {
                self.stats.not_http += 1;
            }
            for half in [Half::A, Half::B] {
                let direction = direction_of(Some(client), half);
                flow.halves[half.index()].flush(&mut self.ooo_budget, &mut |ev| {
                    deliver(conn, direction, ts, ev, http_cfg, out);
                });
            }
            let start = out.len();
            let stream_flags = flow.halves[0].anomalies | flow.halves[1].anomalies;
            conn.close(extra, http_cfg, out);
            if !stream_flags.is_empty() {
                for tx in &mut out[start..] {
                    tx.anomalies |= stream_flags;
                }
            }
        } else {
            for half in &mut flow.halves {
                half.flush(&mut self.ooo_budget, &mut |_| {});
            }
        }
    }

    /// Closes connections idle since before `now - idle_timeout`.
    pub fn expire(&mut self, now: i64, http_cfg: &HttpConfig, out: &mut Vec<Transaction>) {
        let cutoff = now.saturating_sub(self.limits.idle_timeout_nanos);
        let stale: Vec<FlowKey> = self
            .flows
            .iter()
            .filter(|(_, f)| f.last_ts < cutoff)
            .map(|(k, _)| *k)
            .collect();
        for key in stale {
            self.remove(&key, Anomalies::NONE, http_cfg, out);
            self.stats.timed_out += 1;
        }
    }

    fn evict_oldest(&mut self, http_cfg: &HttpConfig, out: &mut Vec<Transaction>) {
        let mut ages: Vec<i64> = self.flows.values().map(|f| f.last_ts).collect();
        if ages.is_empty() {
            return;
        }
        let k = (ages.len() / 8).max(1) - 1;
        let (_, cutoff, _) = ages.select_nth_unstable(k);
        let cutoff = *cutoff;
        let victims: Vec<FlowKey> = self
            .flows
            .iter()
            .filter(|(_, f)| f.last_ts <= cutoff)
            .map(|(k, _)| *k)
            .collect();
        for key in victims {
            self.remove(&key, Anomalies::FLOW_EVICTED, http_cfg, out);
            self.stats.evicted += 1;
        }
        // The removals left deleted slots that would make the next inserts double the table;
        // a fresh table of the live flows is smaller than that doubling (measured: 2 M SYNs
        // grew it to 2^21 slots).
        let live = std::mem::take(&mut self.flows);
        self.flows = HashMap::with_capacity_and_hasher(
            live.len().max(self.limits.max_flows),
            Default::default(),
        );
        self.flows.extend(live);
    }

    /// Closes every connection (end of capture).
    pub fn close_all(&mut self, http_cfg: &HttpConfig, out: &mut Vec<Transaction>) {
        // Deterministic output order: by last activity, then address. Only the keys are
        // sorted, so closing a full table does not hold a second copy of every flow.
        let mut order: Vec<(i64, FlowKey)> =
            self.flows.iter().map(|(k, f)| (f.last_ts, *k)).collect();
        order.sort_unstable();
        for (_, key) in order {
            if let Some(flow) = self.flows.remove(&key) {
                self.finish(*flow, Anomalies::NONE, http_cfg, out);
            }
        }
        self.flows.shrink_to_fit();
    }
}

fn deliver(
    conn: &mut dyn StreamDecoder,
    direction: Direction,
    ts: i64,
    ev: StreamEvent<'_>,
    cfg: &HttpConfig,
    out: &mut Vec<Transaction>,
) {
    match ev {
        StreamEvent::Data(d) => conn.data(direction, ts, d, cfg, out),
        StreamEvent::Gap(n) => conn.gap(direction, n, cfg, out),
        StreamEvent::Flag(a) => conn.flag(direction, a),
    }
}

/// Which direction is the client's when the handshake was not seen: the one whose data looks
/// like a request, else the one from the higher (ephemeral) port.
fn guess_client_dir(dir: Half, seg: &TcpSegment<'_>) -> Half {
    let p = seg.payload;
    if p.starts_with(b"HTTP/") {
        return dir.other();
    }
    let first_word = p.iter().take(16).position(|&b| b == b' ');
    if first_word.is_some_and(|n| n > 0 && p[..n].iter().all(u8::is_ascii_uppercase)) {
        return dir;
    }
    if seg.src_port > seg.dst_port {
        dir
    } else {
        dir.other()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::packet::tcp_flags::{ACK, FIN, PSH, SYN};
    use std::net::Ipv4Addr;

    const CLIENT: (Ipv4Addr, u16) = (Ipv4Addr::new(10, 0, 0, 1), 40000);
    const SERVER: (Ipv4Addr, u16) = (Ipv4Addr::new(10, 0, 0, 2), 80);

    fn seg(from_client: bool, seq: u32, flags: u8, payload: &[u8]) -> TcpSegment<'_> {
        let (src, dst) = if from_client {
            (CLIENT, SERVER)
        } else {
            (SERVER, CLIENT)
        };
        TcpSegment {
            src: src.0.into(),
            dst: dst.0.into(),
            src_port: src.1,
            dst_port: dst.1,
            seq,
            ack: 0,
            flags,
            payload,
            wire_payload_len: payload.len() as u32,
        }
    }

    const REQ: &[u8] = b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n";
    const RESP: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    fn run(segments: &[TcpSegment<'_>]) -> (FlowTable, Vec<Transaction>) {
        let mut t = FlowTable::new(FlowLimits::default());
        let cfg = HttpConfig::default();
        let mut out = Vec::new();
        for (i, s) in segments.iter().enumerate() {
            t.segment(i as i64, s, &cfg, &mut out);
        }
        (t, out)
    }

    #[test]
    fn test_handshake_exchange_and_fin_close_the_flow() {
        let (t, out) = run(&[
            seg(true, 100, SYN, b""),
            seg(false, 500, SYN | ACK, b""),
            seg(true, 101, ACK | PSH, REQ),
            seg(false, 501, ACK | PSH, RESP),
            seg(true, 101 + REQ.len() as u32, FIN | ACK, b""),
            seg(false, 501 + RESP.len() as u32, FIN | ACK, b""),
        ]);
        assert_eq!(out.len(), 1);
        assert_eq!((&*out[0].method, out[0].uri.as_str()), ("GET", "/a"));
        assert_eq!(out[0].status, Some(200));
        assert_eq!(
            out[0].client,
            Some(SocketAddr::new(CLIENT.0.into(), CLIENT.1))
        );
        assert!(t.is_empty(), "both FINs close the flow");
        assert_eq!(t.stats.closed, 1);
    }

    #[test]
    fn test_a_reused_tuple_after_a_client_close_is_a_new_connection() {
        // The client closes first; its last ACK arrives after both FINs. Then the same
        // client port opens a new connection (busy clients reuse ports within seconds).
        let one = |isn: u32, srv: u32| {
            let (req_end, resp_end) = (isn + 1 + REQ.len() as u32, srv + 1 + RESP.len() as u32);
            vec![
                seg(true, isn, SYN, b""),
                seg(false, srv, SYN | ACK, b""),
                seg(true, isn + 1, ACK | PSH, REQ),
                seg(false, srv + 1, ACK | PSH, RESP),
                seg(true, req_end, FIN | ACK, b""),
                seg(false, resp_end, FIN | ACK, b""),
                seg(true, req_end + 1, ACK, b""),
            ]
        };
        let all: Vec<TcpSegment<'_>> = [one(100, 500), one(90_000, 7_000), one(5, 60)].concat();
        let (t, out) = run(&all);
        assert_eq!(out.len(), 3);
        for tx in &out {
            assert_eq!(tx.status, Some(200), "{tx:?}");
            assert!(tx.anomalies.is_empty(), "{:?}", tx.anomalies);
        }
        assert_eq!(t.stats.created, 3, "a last bare ACK starts no connection");
        assert!(t.is_empty());
    }

    #[test]
    fn test_without_a_handshake_the_request_side_is_the_client() {
        // The capture starts with the server's response to an earlier request, then a request.
        let (mut t, mut out) = run(&[
            seg(false, 9000, ACK | PSH, RESP),
            seg(true, 7000, ACK | PSH, REQ),
        ]);
        t.close_all(&HttpConfig::default(), &mut out);
        let with_request = out
            .iter()
            .find(|tx| !tx.method.is_empty())
            .expect("the request");
        assert_eq!(
            with_request.client,
            Some(SocketAddr::new(CLIENT.0.into(), CLIENT.1))
        );
    }

    #[test]
    fn test_both_directions_share_one_key_and_one_shard() {
        let a = seg(true, 1, ACK, b"");
        let b = seg(false, 1, ACK, b"");
        assert_eq!(FlowKey::of(&a), FlowKey::of(&b));
        assert_eq!(FlowKey::of(&a).shard_hash(), FlowKey::of(&b).shard_hash());
    }

    #[test]
    fn test_the_table_stays_within_max_flows() {
        let mut t = FlowTable::new(FlowLimits {
            max_flows: 8,
            ..FlowLimits::default()
        });
        let cfg = HttpConfig::default();
        let mut out = Vec::new();
        for port in 0..100u16 {
            let mut s = seg(true, 1, SYN, b"");
            s.src_port = 1000 + port;
            t.segment(i64::from(port), &s, &cfg, &mut out);
            assert!(t.len() <= 8);
        }
        assert!(t.stats.evicted > 0);
    }

    /// A decoder that counts what the flow table hands it and reports it as one record.
    #[derive(Debug, Default)]
    struct Counting {
        first: String,
        client_bytes: usize,
        server_bytes: usize,
        ends: usize,
    }

    impl StreamDecoder for Counting {
        fn data(
            &mut self,
            dir: Direction,
            _: i64,
            d: &[u8],
            _: &HttpConfig,
            _: &mut Vec<Transaction>,
        ) {
            match dir {
                Direction::FromClient => self.client_bytes += d.len(),
                Direction::FromServer => self.server_bytes += d.len(),
            }
        }
        fn gap(&mut self, _: Direction, _: u64, _: &HttpConfig, _: &mut Vec<Transaction>) {}
        fn flag(&mut self, _: Direction, _: Anomalies) {}
        fn end_of_stream(&mut self, _: Direction, _: &HttpConfig, _: &mut Vec<Transaction>) {
            self.ends += 1;
        }
        fn close(&mut self, _: Anomalies, _: &HttpConfig, out: &mut Vec<Transaction>) {
            out.push(Transaction {
                uri: format!(
                    "{} client={} server={} ends={}",
                    self.first, self.client_bytes, self.server_bytes, self.ends
                ),
                ..Transaction::default()
            });
        }
        fn is_foreign(&self) -> bool {
            false
        }
        fn buffered_bytes(&self) -> usize {
            0
        }
    }

    /// A decoder that counts each direction's bytes and reports them on close.
    pub(crate) fn counting(
        _: Option<SocketAddr>,
        _: Option<SocketAddr>,
        _: bool,
        first: &[u8],
    ) -> Box<dyn StreamDecoder> {
        Box::new(Counting {
            first: String::from_utf8_lossy(&first[..first.len().min(3)]).into_owned(),
            ..Counting::default()
        })
    }

    #[test]
    fn test_another_decoder_plugs_into_the_seam() {
        let mut t = FlowTable::with_decoder(FlowLimits::default(), counting);
        let cfg = HttpConfig::default();
        let mut out = Vec::new();
        for (i, s) in [
            seg(true, 100, SYN, b""),
            seg(false, 500, SYN | ACK, b""),
            seg(true, 101, ACK | PSH, REQ),
            seg(false, 501, ACK | PSH, RESP),
            seg(true, 101 + REQ.len() as u32, FIN | ACK, b""),
            seg(false, 501 + RESP.len() as u32, FIN | ACK, b""),
        ]
        .iter()
        .enumerate()
        {
            t.segment(i as i64, s, &cfg, &mut out);
        }
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].uri,
            format!("GET client={} server={} ends=2", REQ.len(), RESP.len())
        );
    }

    #[test]
    fn test_a_conflicting_retransmission_flags_its_transaction_before_the_close() {
        let mut evil = REQ.to_vec();
        evil[5] = b'b'; // GET /b
        for (copy, flagged) in [(REQ, false), (&evil[..], true)] {
            let (_, out) = run(&[
                seg(true, 100, SYN, b""),
                seg(false, 500, SYN | ACK, b""),
                seg(true, 101, ACK | PSH, REQ),
                seg(true, 101, ACK | PSH, copy),
                seg(false, 501, ACK | PSH, RESP),
            ]);
            assert_eq!(
                out.len(),
                1,
                "emitted with its response, the connection open"
            );
            let got = out[0].anomalies.contains(Anomalies::OVERLAP_MISMATCH);
            assert_eq!(got, flagged);
        }
    }

    #[test]
    fn test_a_syn_flood_is_bounded_and_counted() {
        let limits = FlowLimits {
            max_flows: 1000,
            ..FlowLimits::default()
        };
        let mut t = FlowTable::new(limits);
        let cfg = HttpConfig::default();
        let mut out = Vec::new();
        for port in 0..5000u16 {
            let mut s = seg(true, 100, SYN, b"");
            s.src_port = 10_000 + port;
            t.segment(i64::from(port), &s, &cfg, &mut out);
            assert!(t.len() <= 1000, "the table stays within its cap");
        }
        // One probe: a single byte after the handshake.
        let mut probe = seg(true, 100, SYN, b"");
        probe.src_port = 9;
        t.segment(6000, &probe, &cfg, &mut out);
        probe.flags = ACK | PSH;
        probe.seq = 101;
        probe.payload = b"x";
        probe.wire_payload_len = 1;
        t.segment(6001, &probe, &cfg, &mut out);
        t.close_all(&cfg, &mut out);
        assert!(out.is_empty(), "no transaction from a flood");
        assert!(t.stats.evicted >= 4001, "{}", t.stats.evicted);
        assert_eq!(t.stats.silent, 5000);
        assert_eq!(t.stats.probes, 1);
        // Sharded engines split one budget.
        assert_eq!(FlowLimits::default().shared_by(4).max_flows, 917_504 / 4);
    }

    #[test]
    fn test_halves_and_directions() {
        assert_eq!(Half::A.other(), Half::B);
        assert_eq!(Half::B.other().index(), 0);
        assert_eq!(direction_of(Some(Half::B), Half::B), Direction::FromClient);
        assert_eq!(direction_of(Some(Half::B), Half::A), Direction::FromServer);
        assert_eq!(direction_of(None, Half::A), Direction::FromServer);
    }
}
#[cfg(test)]
mod size {
    #[test]
    fn a_flow_stays_compact() {
        // A SYN flood is paid per flow: keep the state small (it was 368 bytes with the
        // delivered-segment hashes inline; they are now allocated with the first data).
        assert!(std::mem::size_of::<super::Flow>() <= 192);
        assert!(std::mem::size_of::<crate::reassembly::HalfStream>() <= 72);
    }
}
