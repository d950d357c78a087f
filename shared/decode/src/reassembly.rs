//! TCP stream reassembly for one direction of a connection.
//!
//! Policy on overlapping data: **first copy wins**. Bytes already delivered are never replaced,
//! and a buffered out-of-order segment is never overwritten by a later overlapping one (this is
//! the BSD/Windows behaviour and what Suricata calls its default). When overlapping copies
//! disagree the stream is flagged ([`Anomalies::OVERLAP_MISMATCH`]) — a classic IDS-evasion
//! sign — because the receiving host may have kept the other copy. Copies are compared against
//! buffered segments byte for byte, and against the last few delivered segments by hash (a
//! retransmission of delivered bytes that covers one of them), so the check costs a few words
//! per direction rather than a copy of the stream. The flag goes to the application layer as
//! it is found ([`StreamEvent::Flag`]), so it lands on the message it concerns.
//!
//! Memory: out-of-order bytes are capped per direction and across the whole engine (a shared
//! budget); when a cap is hit the hole is declared a gap and the stream moves on, as smoltcp's
//! assembler refuses to grow past its capacity.

use std::collections::BTreeMap;
use tapline_record::Anomalies;

/// What the reassembler hands to the application layer.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamEvent<'a> {
    /// The next bytes of the stream, in order.
    Data(&'a [u8]),
    /// This many bytes of the stream are missing from the capture.
    Gap(u64),
    /// Something about the bytes delivered last (or about to be), such as an overlap whose
    /// copies disagree.
    Flag(Anomalies),
}

/// Delivered segments remembered (by hash) for comparing retransmissions.
const RECENT: usize = 4;

/// The last [`RECENT`] delivered segments, and where the next one goes.
#[derive(Debug, Default)]
struct Recent {
    segments: [Delivered; RECENT],
    next: u8,
}

/// A delivered segment: where it started in the stream, its length, and its bytes' hash.
#[derive(Clone, Copy, Debug, Default)]
struct Delivered {
    start: u64,
    len: u32,
    hash: u64,
}

impl Delivered {
    fn end(&self) -> u64 {
        self.start + u64::from(self.len)
    }
}

fn hash_bytes(b: &[u8]) -> u64 {
    use std::hash::BuildHasher as _;
    foldhash::fast::FixedState::with_seed(0x7a91).hash_one(b)
}

/// A TCP sequence number: arithmetic modulo 2^32 (RFC 9293 §3.4), positions compared by their
/// signed distance, which is exact within 2^31 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SeqNum(pub u32);

impl std::ops::Add<u32> for SeqNum {
    type Output = SeqNum;

    /// `n` bytes further on.
    fn add(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(n))
    }
}

impl SeqNum {
    /// How far this position is ahead of `base` (negative: behind it).
    pub fn since(self, base: SeqNum) -> i32 {
        self.0.wrapping_sub(base.0) as i32
    }
}

/// Limits for one direction's reassembly.
#[derive(Clone, Copy, Debug)]
pub struct ReassemblyLimits {
    /// Out-of-order bytes buffered per direction before giving up on the hole.
    pub max_ooo_bytes: usize,
    /// Out-of-order segments buffered per direction.
    pub max_ooo_segments: usize,
}

impl Default for ReassemblyLimits {
    fn default() -> Self {
        ReassemblyLimits {
            max_ooo_bytes: 1 << 20,
            max_ooo_segments: 256,
        }
    }
}

/// One direction of a TCP connection.
#[derive(Debug, Default)]
pub struct HalfStream {
    /// The next sequence number to deliver; meaningful once `started`.
    next_seq: SeqNum,
    started: bool,
    /// Bytes delivered or skipped as gaps so far.
    offset: u64,
    /// Out-of-order segments keyed by stream offset.
    ooo: BTreeMap<u64, Vec<u8>>,
    ooo_bytes: usize,
    /// Sequence number just past the FIN, once seen.
    fin_seq: Option<SeqNum>,
    closed: bool,
    /// The last delivered segments, oldest overwritten first; allocated with the first
    /// delivered byte, so a flow that never carries data (a SYN flood) does not pay for it.
    recent: Option<Box<Recent>>,
    /// Flags noticed on this direction.
    pub anomalies: Anomalies,
}

impl HalfStream {
    /// True once this direction has a known sequence number.
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// True once the FIN was reached (all data before it delivered or declared lost).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Bytes of the stream delivered or given up as gaps so far.
    pub fn position(&self) -> u64 {
        self.offset
    }

    /// Bytes held out of order.
    pub fn buffered_bytes(&self) -> usize {
        self.ooo_bytes
    }

    /// Starts the stream at a SYN: data begins at `isn + 1`.
    pub fn syn(&mut self, isn: SeqNum) {
        if !self.started {
            self.next_seq = isn + 1;
            self.started = true;
        }
    }

    /// Starts the stream mid-way at `seq` (the capture missed the SYN).
    pub fn start_at(&mut self, seq: SeqNum) {
        if !self.started {
            self.next_seq = seq;
            self.started = true;
        }
    }

    /// Records a FIN at `seq` with `len` payload bytes before it.
    pub fn fin(&mut self, seq: SeqNum, len: usize, emit: &mut impl FnMut(StreamEvent<'_>)) {
        if !self.started {
            self.start_at(seq);
        }
        self.fin_seq = Some(seq + len as u32);
        self.check_fin(emit);
    }

    fn check_fin(&mut self, emit: &mut impl FnMut(StreamEvent<'_>)) {
        if let Some(fin) = self.fin_seq
            && !self.closed
        {
            let ahead = fin.since(self.next_seq);
            if ahead <= 0 && self.ooo.is_empty() {
                self.closed = true;
            } else if ahead > 0 && self.ooo.is_empty() {
                // Data before the FIN never arrived: it is lost, not late.
                emit(StreamEvent::Gap(ahead as u64));
                self.advance(ahead as u32);
                self.closed = true;
            }
        }
    }

    fn advance(&mut self, n: u32) {
        self.next_seq = self.next_seq + n;
        self.offset += u64::from(n);
    }

    /// Hands `bytes` (the next of the stream) on, remembering them for later comparison.
    fn deliver(&mut self, bytes: &[u8], emit: &mut impl FnMut(StreamEvent<'_>)) {
        let recent = self.recent.get_or_insert_with(Box::default);
        let slot = usize::from(recent.next) % RECENT;
        recent.segments[slot] = Delivered {
            start: self.offset,
            len: bytes.len() as u32,
            hash: hash_bytes(bytes),
        };
        recent.next = recent.next.wrapping_add(1);
        emit(StreamEvent::Data(bytes));
        self.advance(bytes.len() as u32);
    }

    /// A copy of delivered bytes arrived again at stream offset `at`: compares it with every
    /// remembered segment it covers.
    fn compare_delivered(&mut self, at: u64, copy: &[u8], emit: &mut impl FnMut(StreamEvent<'_>)) {
        let end = at + copy.len() as u64;
        let Some(recent) = &self.recent else {
            return;
        };
        let differs = recent.segments.iter().any(|d| {
            d.len > 0
                && d.start >= at
                && d.end() <= end
                && hash_bytes(&copy[(d.start - at) as usize..(d.end() - at) as usize]) != d.hash
        });
        if differs {
            self.mismatch(emit);
        }
    }

    fn mismatch(&mut self, emit: &mut impl FnMut(StreamEvent<'_>)) {
        self.anomalies.insert(Anomalies::OVERLAP_MISMATCH);
        emit(StreamEvent::Flag(Anomalies::OVERLAP_MISMATCH));
    }

    /// Adds a segment's payload. `budget` is the engine-wide out-of-order byte allowance.
    pub fn segment(
        &mut self,
        seq: SeqNum,
        payload: &[u8],
        limits: &ReassemblyLimits,
        budget: &mut usize,
        emit: &mut impl FnMut(StreamEvent<'_>),
    ) {
        if payload.is_empty() || self.closed {
            return;
        }
        if !self.started {
            self.start_at(seq);
        }
        let rel = seq.since(self.next_seq);
        if rel <= 0 {
            let skip = rel.unsigned_abs() as usize;
            if skip > 0 {
                let at = self.offset.saturating_sub(skip as u64);
                self.compare_delivered(at, &payload[..skip.min(payload.len())], emit);
            }
            if skip >= payload.len() {
                return; // Pure retransmission of delivered bytes.
            }
            self.deliver(&payload[skip..], emit);
            self.drain_ooo(budget, emit);
        } else {
            self.buffer(self.offset + rel as u64, payload, limits, budget, emit);
        }
        self.check_fin(emit);
    }

    fn buffer(
        &mut self,
        at: u64,
        payload: &[u8],
        limits: &ReassemblyLimits,
        budget: &mut usize,
        emit: &mut impl FnMut(StreamEvent<'_>),
    ) {
        // Trim against segments already buffered (first copy wins).
        let mut start = at;
        let end = at + payload.len() as u64;
        let mut pieces: Vec<(u64, u64)> = Vec::new();
        let mut differs = false;
        for (&s, data) in self.ooo.range(..end) {
            let e = s + data.len() as u64;
            if e <= start {
                continue;
            }
            if s > start {
                pieces.push((start, s));
            }
            // Compare the overlap for evasion signs.
            let ov_start = start.max(s);
            let ov_end = end.min(e);
            if ov_start < ov_end {
                let mine = &payload[(ov_start - at) as usize..(ov_end - at) as usize];
                let theirs = &data[(ov_start - s) as usize..(ov_end - s) as usize];
                differs |= mine != theirs;
            }
            start = start.max(e);
            if start >= end {
                break;
            }
        }
        if start < end {
            pieces.push((start, end));
        }
        if differs {
            self.mismatch(emit);
        }
        for (s, e) in pieces {
            let bytes = &payload[(s - at) as usize..(e - at) as usize];
            if self.over_limits(bytes.len(), limits, *budget)
                && self.make_room(s, bytes, limits, budget, emit)
            {
                continue;
            }
            *budget -= bytes.len();
            self.ooo_bytes += bytes.len();
            self.ooo.insert(s, bytes.to_vec());
        }
    }

    /// Whether buffering `len` more bytes would break a cap (per direction or engine-wide).
    fn over_limits(&self, len: usize, limits: &ReassemblyLimits, budget: usize) -> bool {
        len > budget
            || self.ooo_bytes + len > limits.max_ooo_bytes
            || self.ooo.len() >= limits.max_ooo_segments
    }

    /// A cap is hit by the piece `bytes` at stream offset `s`: gives up on the holes before it,
    /// oldest first, until it fits. Returns true when the piece was delivered instead (its own
    /// hole declared lost, because it still did not fit); false when it may now be buffered.
    fn make_room(
        &mut self,
        s: u64,
        bytes: &[u8],
        limits: &ReassemblyLimits,
        budget: &mut usize,
        emit: &mut impl FnMut(StreamEvent<'_>),
    ) -> bool {
        while self.over_limits(bytes.len(), limits, *budget)
            && self
                .ooo
                .first_key_value()
                .is_some_and(|(&first, _)| first < s)
        {
            self.skip_to_first_buffered(budget, emit);
        }
        if s > self.offset && !self.over_limits(bytes.len(), limits, *budget) {
            return false;
        }
        if s > self.offset {
            emit(StreamEvent::Gap(s - self.offset));
            self.advance((s - self.offset) as u32);
        }
        let skip = (self.offset - s) as usize;
        if skip < bytes.len() {
            self.deliver(&bytes[skip..], emit);
        }
        self.drain_ooo(budget, emit);
        true
    }

    /// Delivers buffered segments that are now contiguous.
    fn drain_ooo(&mut self, budget: &mut usize, emit: &mut impl FnMut(StreamEvent<'_>)) {
        while let Some(entry) = self.ooo.first_entry() {
            let s = *entry.key();
            if s > self.offset {
                break;
            }
            let data = entry.remove();
            self.ooo_bytes -= data.len();
            *budget += data.len();
            let skip = (self.offset - s) as usize;
            if skip < data.len() {
                self.deliver(&data[skip..], emit);
            }
        }
    }

    /// Gives up on the hole before the first buffered segment.
    fn skip_to_first_buffered(
        &mut self,
        budget: &mut usize,
        emit: &mut impl FnMut(StreamEvent<'_>),
    ) {
        if let Some((&s, _)) = self.ooo.first_key_value()
            && s > self.offset
        {
            emit(StreamEvent::Gap(s - self.offset));
            self.advance((s - self.offset) as u32);
        }
        self.drain_ooo(budget, emit);
    }

    /// `len` bytes at `seq` were on the wire but not captured (snap length): if they are next,
    /// skip them as a gap so the stream stays aligned.
    pub fn lost(&mut self, seq: SeqNum, len: u32, emit: &mut impl FnMut(StreamEvent<'_>)) {
        if self.started && !self.closed && seq == self.next_seq && len > 0 {
            emit(StreamEvent::Gap(u64::from(len)));
            self.advance(len);
        }
    }

    /// The peer acknowledged up to `ack`: bytes before it that we still miss were lost by the
    /// capture, so if buffered data waits beyond them, declare the gap now.
    pub fn acked(
        &mut self,
        ack: SeqNum,
        budget: &mut usize,
        emit: &mut impl FnMut(StreamEvent<'_>),
    ) {
        if !self.started || self.ooo.is_empty() {
            return;
        }
        let rel = ack.since(self.next_seq);
        if rel <= 0 {
            return;
        }
        let acked_to = self.offset + rel as u64;
        if self
            .ooo
            .first_key_value()
            .is_some_and(|(&s, _)| s <= acked_to)
        {
            self.skip_to_first_buffered(budget, emit);
            self.check_fin(emit);
        }
    }

    /// The connection is over: deliver everything buffered, with gaps for the holes.
    pub fn flush(&mut self, budget: &mut usize, emit: &mut impl FnMut(StreamEvent<'_>)) {
        while !self.ooo.is_empty() {
            self.skip_to_first_buffered(budget, emit);
        }
        self.check_fin(emit);
        self.closed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Ev {
        D(Vec<u8>),
        G(u64),
        F(Anomalies),
    }

    fn run(segments: &[(u32, &[u8])], flush: bool) -> (Vec<u8>, Vec<Ev>) {
        let mut h = HalfStream::default();
        h.syn(SeqNum(999));
        let limits = ReassemblyLimits::default();
        let mut budget = usize::MAX / 2;
        let mut evs = Vec::new();
        for (seq, data) in segments {
            h.segment(SeqNum(*seq), data, &limits, &mut budget, &mut |e| match e {
                StreamEvent::Data(d) => evs.push(Ev::D(d.to_vec())),
                StreamEvent::Gap(n) => evs.push(Ev::G(n)),
                StreamEvent::Flag(a) => evs.push(Ev::F(a)),
            });
        }
        if flush {
            h.flush(&mut budget, &mut |e| match e {
                StreamEvent::Data(d) => evs.push(Ev::D(d.to_vec())),
                StreamEvent::Gap(n) => evs.push(Ev::G(n)),
                StreamEvent::Flag(a) => evs.push(Ev::F(a)),
            });
        }
        let bytes = evs
            .iter()
            .flat_map(|e| match e {
                Ev::D(d) => d.clone(),
                Ev::G(_) | Ev::F(_) => vec![],
            })
            .collect();
        (bytes, evs)
    }

    #[test]
    fn test_in_order_and_out_of_order() {
        let (bytes, _) = run(&[(1000, b"abc"), (1006, b"ghi"), (1003, b"def")], false);
        assert_eq!(bytes, b"abcdefghi");
    }

    #[test]
    fn test_retransmission_and_partial_overlap() {
        let (bytes, _) = run(&[(1000, b"abcd"), (1000, b"abcd"), (1002, b"cdef")], false);
        assert_eq!(bytes, b"abcdef");
    }

    #[test]
    fn test_a_retransmission_of_delivered_bytes_is_compared() {
        let (_, evs) = run(&[(1000, b"GET /a"), (1000, b"GET /a")], false);
        assert!(!evs.iter().any(|e| matches!(e, Ev::F(_))), "same bytes");
        for copy in [&b"GET /b"[..], b"GET /a HTTP", b"xxGET /bxx"] {
            let at = if copy.starts_with(b"xx") { 998 } else { 1000 };
            let (bytes, evs) = run(&[(1000, b"GET /a"), (at, copy)], false);
            assert!(bytes.starts_with(b"GET /a"), "first copy wins");
            let flagged = evs.contains(&Ev::F(Anomalies::OVERLAP_MISMATCH));
            let differs = copy != b"GET /a HTTP";
            assert_eq!(flagged, differs, "{:?}", String::from_utf8_lossy(copy));
        }
    }

    #[test]
    fn test_first_copy_wins_and_mismatch_flagged() {
        let mut h = HalfStream::default();
        h.syn(SeqNum(0));
        let mut budget = 1 << 20;
        let mut out = Vec::new();
        let limits = ReassemblyLimits::default();
        h.segment(SeqNum(5), b"XYZ", &limits, &mut budget, &mut |_| {});
        h.segment(SeqNum(5), b"xyz", &limits, &mut budget, &mut |_| {});
        h.segment(SeqNum(1), b"abcd", &limits, &mut budget, &mut |e| {
            if let StreamEvent::Data(d) = e {
                out.extend_from_slice(d);
            }
        });
        assert_eq!(out, b"abcdXYZ");
        assert!(h.anomalies.contains(Anomalies::OVERLAP_MISMATCH));
    }

    #[test]
    fn test_gap_on_flush() {
        let (_, evs) = run(&[(1000, b"ab"), (1010, b"zz")], true);
        assert_eq!(
            evs,
            vec![Ev::D(b"ab".to_vec()), Ev::G(8), Ev::D(b"zz".to_vec())]
        );
    }

    #[test]
    fn test_sequence_wraparound() {
        let mut h = HalfStream::default();
        h.syn(SeqNum(u32::MAX - 2));
        let mut budget = 1 << 20;
        let mut out = Vec::new();
        let limits = ReassemblyLimits::default();
        for (seq, d) in [(1, &b"de"[..]), (u32::MAX - 1, b"abc")] {
            h.segment(SeqNum(seq), d, &limits, &mut budget, &mut |e| {
                if let StreamEvent::Data(d) = e {
                    out.extend_from_slice(d);
                }
            });
        }
        assert_eq!(out, b"abcde");
    }

    #[test]
    fn test_out_of_order_cap_declares_gap() {
        let mut h = HalfStream::default();
        h.syn(SeqNum(0));
        let limits = ReassemblyLimits {
            max_ooo_bytes: 10,
            max_ooo_segments: 4,
        };
        let mut budget = 1 << 20;
        let mut gaps = 0;
        for i in 0..100u32 {
            h.segment(
                SeqNum(100 + i * 8),
                b"12345678",
                &limits,
                &mut budget,
                &mut |e| {
                    if let StreamEvent::Gap(_) = e {
                        gaps += 1;
                    }
                },
            );
            assert!(h.buffered_bytes() <= 10);
        }
        assert_eq!(gaps, 1);
    }

    #[test]
    fn test_out_of_order_cap_holds_with_several_holes() {
        // Two holes buffered, then a segment bigger than the whole cap beyond them: the cap
        // must hold, and every byte is either delivered or declared a gap.
        let mut h = HalfStream::default();
        h.syn(SeqNum(0));
        let limits = ReassemblyLimits {
            max_ooo_bytes: 10,
            max_ooo_segments: 4,
        };
        let mut budget = 1 << 20;
        let (mut data, mut gap) = (0u64, 0u64);
        let big = [b'x'; 30];
        for (seq, payload) in [(1, &b"a"[..]), (5, b"bcd"), (20, b"efgh"), (40, &big[..])] {
            h.segment(
                SeqNum(seq),
                payload,
                &limits,
                &mut budget,
                &mut |e| match e {
                    StreamEvent::Data(d) => data += d.len() as u64,
                    StreamEvent::Gap(n) => gap += n,
                    StreamEvent::Flag(_) => {}
                },
            );
            assert!(
                h.buffered_bytes() <= 10,
                "{} bytes buffered",
                h.buffered_bytes()
            );
        }
        h.flush(&mut budget, &mut |e| match e {
            StreamEvent::Data(d) => data += d.len() as u64,
            StreamEvent::Gap(n) => gap += n,
            StreamEvent::Flag(_) => {}
        });
        assert_eq!(data, 1 + 3 + 4 + 30);
        assert_eq!(data + gap, 69);
    }

    #[test]
    fn test_ack_beyond_hole_declares_gap() {
        let mut h = HalfStream::default();
        h.syn(SeqNum(0));
        let mut budget = 1 << 20;
        let limits = ReassemblyLimits::default();
        h.segment(SeqNum(1), b"ab", &limits, &mut budget, &mut |_| {});
        h.segment(SeqNum(10), b"zz", &limits, &mut budget, &mut |_| {});
        let mut evs = Vec::new();
        h.acked(SeqNum(12), &mut budget, &mut |e| match e {
            StreamEvent::Data(d) => evs.push(Ev::D(d.to_vec())),
            StreamEvent::Gap(n) => evs.push(Ev::G(n)),
            StreamEvent::Flag(a) => evs.push(Ev::F(a)),
        });
        assert_eq!(evs, vec![Ev::G(7), Ev::D(b"zz".to_vec())]);
    }
}
