//! The flow table: TCP connections keyed by their address pair, each with two reassembled
//! directions feeding one [`HttpConnection`].
//!
//! Bounded: at most `max_flows` connections (the oldest-idle eighth is evicted when full, so a
//! SYN flood costs O(1) amortised per packet), idle flows expire, and out-of-order bytes share
//! one engine-wide budget.

use crate::http::{HttpConfig, HttpConnection};
use crate::packet::{TcpSegment, tcp_flags};
use crate::reassembly::{HalfStream, ReassemblyLimits, StreamEvent};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use tapline_record::{Anomalies, Transaction};

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
            max_flows: 1 << 20,
            idle_timeout_nanos: 120_000_000_000,
            max_ooo_total: 512 << 20,
            reassembly: ReassemblyLimits::default(),
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

#[derive(Debug)]
struct Flow {
    /// The endpoint that sent the first packet we saw; direction 0 is from it.
    first: (IpAddr, u16),
    /// Direction index of the client, once known.
    client_dir: Option<usize>,
    halves: [HalfStream; 2],
    http: Option<Box<HttpConnection>>,
    midstream: bool,
    last_ts: i64,
    /// Both directions saw their SYN (or SYN-ACK): a new SYN means port reuse.
    rst: bool,
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
    flows: HashMap<FlowKey, Flow, foldhash::fast::RandomState>,
    limits: FlowLimits,
    ooo_budget: usize,
    next_sweep: i64,
    /// Counters.
    pub stats: FlowStats,
}

impl FlowTable {
    /// An empty table.
    pub fn new(limits: FlowLimits) -> Self {
        FlowTable {
            flows: HashMap::default(),
            limits,
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
            .filter_map(|f| f.http.as_deref())
            .map(HttpConnection::buffered_bytes)
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
        let syn = seg.flags & tcp_flags::SYN != 0;
        let ack = seg.flags & tcp_flags::ACK != 0;
        let rst = seg.flags & tcp_flags::RST != 0;

        // A new SYN on a finished connection is port reuse: close the old one first.
        if syn
            && !ack
            && let Some(flow) = self.flows.get(&key)
            && (flow.rst
                || flow.halves.iter().any(HalfStream::is_closed)
                || flow.first != (seg.src, seg.src_port))
        {
            self.remove(&key, Anomalies::NONE, http_cfg, out);
            self.stats.closed += 1;
        }

        if !self.flows.contains_key(&key) {
            if rst || (seg.payload.is_empty() && !syn && seg.flags & tcp_flags::FIN != 0) {
                return; // Nothing to reassemble from a stray RST/FIN.
            }
            if self.flows.len() >= self.limits.max_flows {
                self.evict_oldest(http_cfg, out);
            }
            let client_dir = match (syn, ack) {
                (true, false) => Some(0),
                (true, true) => Some(1),
                _ => None,
            };
            self.flows.insert(
                key,
                Flow {
                    first: (seg.src, seg.src_port),
                    client_dir,
                    halves: [HalfStream::default(), HalfStream::default()],
                    http: None,
                    midstream: client_dir.is_none(),
                    last_ts: ts,
                    rst: false,
                },
            );
            self.stats.created += 1;
        }
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        flow.last_ts = ts;
        let dir = usize::from(flow.first != (seg.src, seg.src_port));

        if syn {
            flow.halves[dir].syn(seg.seq);
            if flow.client_dir.is_none() && !ack {
                flow.client_dir = Some(dir);
            }
        }
        if rst {
            flow.rst = true;
        }

        let data_seq = if syn {
            seg.seq.wrapping_add(1)
        } else {
            seg.seq
        };
        let Flow {
            halves,
            http,
            client_dir,
            midstream,
            ..
        } = flow;
        let budget = &mut self.ooo_budget;
        let limits = &self.limits.reassembly;

        if !seg.payload.is_empty() && http.is_none() {
            // First payload: settle who is the client, then start HTTP parsing.
            let client = client_dir.unwrap_or_else(|| guess_client_dir(dir, seg));
            *client_dir = Some(client);
            let from = |d: usize| -> SocketAddr {
                if d == dir {
                    SocketAddr::new(seg.src, seg.src_port)
                } else {
                    SocketAddr::new(seg.dst, seg.dst_port)
                }
            };
            // Midstream also when we saw a SYN-ACK but not the request's start.
            *http = Some(Box::new(HttpConnection::new(
                Some(from(client)),
                Some(from(1 - client)),
                *midstream,
            )));
        }
        let from_client = client_dir.is_some_and(|c| c == dir);

        // The ACK tells what the other side has received: holes before it are capture loss.
        if ack {
            let other = 1 - dir;
            if let Some(conn) = http.as_deref_mut() {
                let from_other_client = client_dir.is_some_and(|c| c == other);
                halves[other].acked(seg.ack, budget, &mut |ev| {
                    deliver(conn, from_other_client, ts, ev, http_cfg, out);
                });
            }
        }

        if !seg.payload.is_empty() {
            if seg.payload.len() < seg.wire_payload_len as usize {
                halves[dir].anomalies.insert(Anomalies::SNAPLEN_TRUNCATED);
            }
            if let Some(conn) = http.as_deref_mut() {
                if conn.is_not_http() {
                    // Keep sequence tracking cheap: no buffering for non-HTTP flows.
                    halves[dir].start_at(data_seq);
                } else {
                    halves[dir].segment(data_seq, seg.payload, limits, budget, &mut |ev| {
                        deliver(conn, from_client, ts, ev, http_cfg, out);
                    });
                    if (seg.payload.len() as u32) < seg.wire_payload_len {
                        // Bytes cut by the snap length are missing from the stream.
                        let missing = seg.wire_payload_len - seg.payload.len() as u32;
                        let seq_after = data_seq.wrapping_add(seg.payload.len() as u32);
                        halves[dir].lost(seq_after, missing, &mut |ev| {
                            deliver(conn, from_client, ts, ev, http_cfg, out);
                        });
                    }
                }
            }
        }

        if seg.flags & tcp_flags::FIN != 0 {
            let was_closed = halves[dir].is_closed();
            if let Some(conn) = http.as_deref_mut() {
                halves[dir].fin(data_seq, seg.payload.len(), &mut |ev| {
                    deliver(conn, from_client, ts, ev, http_cfg, out);
                });
                if !was_closed && halves[dir].is_closed() {
                    conn.end_of_stream(from_client, http_cfg, out);
                }
            } else {
                halves[dir].fin(data_seq, seg.payload.len(), &mut |_| {});
            }
        }

        if flow.rst || flow.halves.iter().all(HalfStream::is_closed) {
            self.remove(&key, Anomalies::NONE, http_cfg, out);
            self.stats.closed += 1;
        }
    }

    fn remove(
        &mut self,
        key: &FlowKey,
        extra: Anomalies,
        http_cfg: &HttpConfig,
        out: &mut Vec<Transaction>,
    ) {
        if let Some(flow) = self.flows.remove(key) {
            self.finish(flow, extra, http_cfg, out);
        }
    }

    fn finish(
        &mut self,
        mut flow: Flow,
        extra: Anomalies,
        http_cfg: &HttpConfig,
        out: &mut Vec<Transaction>,
    ) {
        let client_dir = flow.client_dir.unwrap_or(0);
        let ts = flow.last_ts;
        if let Some(conn) = flow.http.as_deref_mut() {
            if conn.is_not_http() {
                self.stats.not_http += 1;
            }
            for dir in 0..2 {
                let from_client = dir == client_dir;
                flow.halves[dir].flush(&mut self.ooo_budget, &mut |ev| {
                    deliver(conn, from_client, ts, ev, http_cfg, out);
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
    }

    /// Closes every connection (end of capture).
    pub fn close_all(&mut self, http_cfg: &HttpConfig, out: &mut Vec<Transaction>) {
        let mut flows: Vec<(FlowKey, Flow)> = self.flows.drain().collect();
        // Deterministic output order: by last activity, then address.
        flows.sort_by(|a, b| a.1.last_ts.cmp(&b.1.last_ts).then(a.0.cmp(&b.0)));
        for (_, flow) in flows {
            self.finish(flow, Anomalies::NONE, http_cfg, out);
        }
    }
}

fn deliver(
    conn: &mut HttpConnection,
    from_client: bool,
    ts: i64,
    ev: StreamEvent<'_>,
    cfg: &HttpConfig,
    out: &mut Vec<Transaction>,
) {
    match ev {
        StreamEvent::Data(d) => conn.data(from_client, ts, d, cfg, out),
        StreamEvent::Gap(n) => conn.gap(from_client, n, cfg, out),
    }
}

/// Which direction is the client's when the handshake was not seen: the one whose data looks
/// like a request, else the one from the higher (ephemeral) port.
fn guess_client_dir(dir: usize, seg: &TcpSegment<'_>) -> usize {
    let p = seg.payload;
    if p.starts_with(b"HTTP/") {
        return 1 - dir;
    }
    let first_word = p.iter().take(16).position(|&b| b == b' ');
    if first_word.is_some_and(|n| n > 0 && p[..n].iter().all(u8::is_ascii_uppercase)) {
        return dir;
    }
    if seg.src_port > seg.dst_port {
        dir
    } else {
        1 - dir
    }
}
