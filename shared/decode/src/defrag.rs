//! IPv4 fragment reassembly, bounded in datagrams in progress, bytes per datagram and time.

use crate::packet::Ipv4Fragment;
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// Limits for fragment reassembly.
#[derive(Clone, Copy, Debug)]
pub struct DefragLimits {
    /// Datagrams being reassembled at once; beyond this, new fragments are dropped.
    pub max_datagrams: usize,
    /// Largest reassembled datagram (IPv4 allows 65,535 bytes).
    pub max_datagram_bytes: usize,
    /// A datagram not completed within this time is dropped.
    pub timeout_nanos: i64,
}

impl Default for DefragLimits {
    fn default() -> Self {
        DefragLimits {
            max_datagrams: 4096,
            max_datagram_bytes: 65_535,
            timeout_nanos: 30_000_000_000,
        }
    }
}

type Key = (Ipv4Addr, Ipv4Addr, u16, u8);

#[derive(Debug)]
struct Pending {
    first_ts: i64,
    pieces: Vec<(u32, Vec<u8>)>,
    bytes: usize,
    total: Option<u32>,
}

/// Reassembles IPv4 datagrams from fragments.
#[derive(Debug, Default)]
pub struct Defragmenter {
    limits: DefragLimits,
    pending: HashMap<Key, Pending>,
    /// Fragments dropped because a limit was hit.
    pub dropped: u64,
}

impl Defragmenter {
    /// A defragmenter with these limits.
    pub fn new(limits: DefragLimits) -> Self {
        Defragmenter {
            limits,
            pending: HashMap::new(),
            dropped: 0,
        }
    }

    /// Adds a fragment. Returns the reassembled payload (the IP payload, transport header
    /// first) once every piece has arrived. Overlaps: first copy wins.
    pub fn add(&mut self, ts: i64, frag: &Ipv4Fragment<'_>) -> Option<Vec<u8>> {
        if self.pending.len() >= self.limits.max_datagrams {
            self.expire(ts);
        }
        let key = (frag.src, frag.dst, frag.id, frag.protocol);
        if !self.pending.contains_key(&key) && self.pending.len() >= self.limits.max_datagrams {
            self.dropped += 1;
            return None;
        }
        let end = frag.offset as usize + frag.payload.len();
        if end > self.limits.max_datagram_bytes {
            self.pending.remove(&key);
            self.dropped += 1;
            return None;
        }
        let entry = self.pending.entry(key).or_insert_with(|| Pending {
            first_ts: ts,
            pieces: Vec::new(),
            bytes: 0,
            total: None,
        });
        if !frag.more {
            entry.total = Some(end as u32);
        }
        entry.bytes += frag.payload.len();
        entry.pieces.push((frag.offset, frag.payload.to_vec()));
        let total = entry.total? as usize;
        // Complete when the pieces cover [0, total) without holes.
        entry.pieces.sort_by_key(|(o, _)| *o);
        let mut covered = 0usize;
        for (o, d) in &entry.pieces {
            if *o as usize > covered {
                return None;
            }
            covered = covered.max(*o as usize + d.len());
        }
        if covered < total {
            return None;
        }
        let entry = self.pending.remove(&key)?;
        let mut out = vec![0u8; total];
        let mut filled = vec![false; total];
        for (o, d) in &entry.pieces {
            for (i, b) in d.iter().enumerate() {
                let at = *o as usize + i;
                if at < total && !filled[at] {
                    out[at] = *b;
                    filled[at] = true;
                }
            }
        }
        Some(out)
    }

    /// Drops datagrams older than the timeout.
    pub fn expire(&mut self, now: i64) {
        let timeout = self.limits.timeout_nanos;
        let before = self.pending.len();
        self.pending.retain(|_, p| now - p.first_ts <= timeout);
        self.dropped += (before - self.pending.len()) as u64;
    }

    /// Datagrams in progress.
    pub fn in_progress(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(offset: u32, more: bool, payload: &[u8]) -> Ipv4Fragment<'_> {
        Ipv4Fragment {
            src: Ipv4Addr::new(1, 2, 3, 4),
            dst: Ipv4Addr::new(5, 6, 7, 8),
            id: 42,
            protocol: 6,
            offset,
            more,
            payload,
        }
    }

    #[test]
    fn test_reassemble_out_of_order() {
        let mut d = Defragmenter::new(DefragLimits::default());
        assert!(d.add(0, &frag(8, false, b"world")).is_none());
        let whole = d.add(1, &frag(0, true, b"hello, w")).unwrap();
        assert_eq!(whole, b"hello, wworld");
        assert_eq!(d.in_progress(), 0);
    }

    #[test]
    fn test_limits() {
        let mut d = Defragmenter::new(DefragLimits {
            max_datagrams: 1,
            ..DefragLimits::default()
        });
        assert!(d.add(0, &frag(0, true, b"a")).is_none());
        let mut other = frag(0, true, b"b");
        other.id = 7;
        assert!(d.add(1, &other).is_none());
        assert_eq!(d.dropped, 1);
        assert!(d.add(0, &frag(65_530, false, b"too far")).is_none());
    }
}
