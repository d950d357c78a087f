//! The on-disk spool: every batch of records waits here until the hub acknowledges it, so a
//! closed or slow workbench costs disk, not memory and not data.
//!
//! Layout: a directory of segment files named by their first sequence number
//! (`00000000000000000001.spool`), each a run of entries `[u32 length][u32 crc32][postcard
//! Batch]`, and a file `acked` holding the highest sequence number the hub has stored. A
//! crash can tear the last entry; opening the spool cuts a segment at its first entry that is
//! short or fails its checksum and says how much it cut. Acknowledged segments are deleted
//! whole.
//!
//! The spool is bounded ([`Spool::open`]'s `max_bytes`). When a batch does not fit, the policy
//! decides: drop the oldest unacknowledged segment or refuse the new batch. Either way the
//! records lost are counted ([`SpoolStats::lost_records`]) and reported in the sensor's stats,
//! never silently. Dropping the oldest leaves a gap in the sequence; the hub takes gaps (it
//! stores each sequence number at most once, in any order).

use anyhow::{Context, Result, bail};
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use tapline_record::Transaction;
use tapline_record::wire::Batch;

/// A segment is closed and a new one started past this size.
const SEGMENT_BYTES: u64 = 8 << 20;
/// Entry header: length and checksum.
const HEADER: u64 = 8;

/// What to do with a batch that does not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FullPolicy {
    /// Delete the oldest unacknowledged segment (keep the newest traffic).
    DropOldest,
    /// Refuse the new batch (keep the oldest traffic).
    DropNewest,
}

/// Where a spool stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Batches waiting for an acknowledgement.
    pub batches: u64,
    /// Their records.
    pub records: u64,
    /// Bytes on disk.
    pub bytes: u64,
    /// Records lost to the full policy since the spool was created, kept across restarts
    /// (file `lost`) so a loss is reported even when the sensor restarts before its next
    /// heartbeat.
    pub lost_records: u64,
    /// Batches lost to the full policy.
    pub lost_batches: u64,
    /// Bytes cut from torn or corrupt entries when the spool was opened.
    pub recovered_cut_bytes: u64,
}

// `offset`/`len` are read by `pending`, which the uplink (in progress) drains with.
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Debug)]
struct Entry {
    seq: u64,
    records: u32,
    offset: u64,
    len: u32,
}

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    bytes: u64,
    entries: Vec<Entry>,
}

/// The spool of one sensor.
#[cfg_attr(not(test), allow(dead_code))] // `acked`: read by the uplink's resume (in progress)
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    policy: FullPolicy,
    segments: VecDeque<Segment>,
    /// This spool's identity (file `id`): sequence numbers count within it.
    id: u64,
    next_seq: u64,
    acked: u64,
    stats: SpoolStats,
    /// The spool's lock file, held (flock, exclusive) while this spool is open: one sensor per
    /// spool.
    _lock: fs::File,
}

/// Takes the spool's lock, or says who holds it.
fn lock(dir: &Path) -> Result<fs::File> {
    let path = dir.join("lock");
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        let holder = fs::read_to_string(&path).unwrap_or_default();
        anyhow::bail!(
            "the spool {} is in use by another tapline-sensor (pid {}): give each sensor its own --spool",
            dir.display(),
            holder.trim()
        );
    }
    use std::io::Write as _;
    file.set_len(0)
        .and_then(|()| write!(file, "{}", std::process::id()))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(file)
}

/// What identifies one replay of a file: its content's hash and the filter applied.
pub fn replay_key(path: &Path, filter: Option<&str>) -> Result<String> {
    let mut hasher = blake3::Hasher::new();
    let file = fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    hasher
        .update_reader(file)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(format!(
        "{} {}",
        hasher.finalize().to_hex(),
        filter.unwrap_or("")
    ))
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.spool"))
}

/// Reads a segment's entries, cutting it at the first torn or corrupt one.
fn load_segment(path: &Path, cut: &mut u64) -> Result<Segment> {
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .with_context(|| format!("reading spool segment {}", path.display()))?;
    let mut entries = Vec::new();
    let mut at = 0usize;
    while let Some(head) = data.get(at..at + HEADER as usize) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let crc = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        let start = at + HEADER as usize;
        let Some(body) = data.get(start..start + len as usize) else {
            break;
        };
        if crc32fast::hash(body) != crc {
            break;
        }
        let Ok(batch) = postcard::from_bytes::<Batch>(body) else {
            break;
        };
        entries.push(Entry {
            seq: batch.seq,
            records: batch.records,
            offset: at as u64,
            len,
        });
        at = start + len as usize;
    }
    if at < data.len() {
        *cut += (data.len() - at) as u64;
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(at as u64))
            .with_context(|| format!("cutting the torn tail of {}", path.display()))?;
    }
    Ok(Segment {
        path: path.to_owned(),
        bytes: at as u64,
        entries,
    })
}

/// A fresh identity: random per process (std's hasher seed) mixed with the time, so two spools
/// created anywhere, any time, differ.
fn new_spool_id() -> u64 {
    use std::hash::BuildHasher;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::collections::hash_map::RandomState::new().hash_one((now, std::process::id()))
}

impl Spool {
    /// Writes the loss counters (`lost`: batches and records) so they survive a restart.
    fn save_losses(&self) -> Result<()> {
        let path = self.dir.join("lost");
        let tmp = self.dir.join("lost.tmp");
        fs::write(
            &tmp,
            format!("{} {}\n", self.stats.lost_batches, self.stats.lost_records),
        )
        .and_then(|()| fs::rename(&tmp, &path))
        .with_context(|| format!("writing {}", path.display()))
    }

    /// Whether a replay with `key` ([`replay_key`]) already went into this spool.
    pub fn replayed(&self, key: &str) -> bool {
        fs::read_to_string(self.dir.join("replayed"))
            .is_ok_and(|text| text.lines().any(|l| l == key))
    }

    /// Notes a finished replay with `key`, so the same file is not sent twice by mistake.
    pub fn mark_replayed(&self, key: &str) -> Result<()> {
        use std::io::Write as _;
        let path = self.dir.join("replayed");
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{key}"))
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Opens (or creates) the spool in `dir`, recovering what a crash left.
    pub fn open(dir: &Path, max_bytes: u64, policy: FullPolicy) -> Result<Spool> {
        fs::create_dir_all(dir).with_context(|| format!("creating spool {}", dir.display()))?;
        let lock = lock(dir)?;
        let acked = match fs::read_to_string(dir.join("acked")) {
            Ok(s) => s
                .trim()
                .parse()
                .with_context(|| format!("{}/acked is not a number", dir.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e).with_context(|| format!("reading {}/acked", dir.display())),
        };
        let id = match fs::read_to_string(dir.join("id")) {
            Ok(s) => u64::from_str_radix(s.trim(), 16)
                .with_context(|| format!("{}/id is not a spool identity", dir.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = new_spool_id();
                let tmp = dir.join("id.tmp");
                fs::write(&tmp, format!("{id:016x}\n"))
                    .and_then(|()| fs::rename(&tmp, dir.join("id")))
                    .with_context(|| format!("writing {}/id", dir.display()))?;
                id
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}/id", dir.display())),
        };
        let mut paths: Vec<PathBuf> = fs::read_dir(dir)
            .with_context(|| format!("listing spool {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "spool"))
            .collect();
        paths.sort();
        let mut spool = Spool {
            dir: dir.to_owned(),
            max_bytes,
            policy,
            segments: VecDeque::new(),
            id,
            next_seq: acked + 1,
            acked,
            stats: SpoolStats::default(),
            _lock: lock,
        };
        if let Ok(text) = fs::read_to_string(dir.join("lost")) {
            let mut n = text.split_whitespace().map(str::parse::<u64>);
            if let (Some(Ok(b)), Some(Ok(r))) = (n.next(), n.next()) {
                (spool.stats.lost_batches, spool.stats.lost_records) = (b, r);
            }
        }
        for path in paths {
            let mut seg = load_segment(&path, &mut spool.stats.recovered_cut_bytes)?;
            if let Some(last) = seg.entries.last() {
                spool.next_seq = spool.next_seq.max(last.seq + 1);
            }
            seg.entries.retain(|e| e.seq > acked);
            if seg.entries.is_empty() {
                fs::remove_file(&path)
                    .with_context(|| format!("removing acknowledged {}", path.display()))?;
            } else {
                spool.segments.push_back(seg);
            }
        }
        spool.recount();
        Ok(spool)
    }

    fn recount(&mut self) {
        let entries = self.segments.iter().flat_map(|s| &s.entries);
        self.stats.batches = entries.clone().count() as u64;
        self.stats.records = entries.map(|e| u64::from(e.records)).sum();
        self.stats.bytes = self.segments.iter().map(|s| s.bytes).sum();
    }

    /// This spool's identity, sent in the hello: the hub keeps sequence numbers per spool.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Where the spool stands.
    pub fn stats(&self) -> SpoolStats {
        self.stats
    }

    #[cfg_attr(not(test), allow(dead_code))] // drained by the uplink (in progress)
    /// The highest sequence number the hub has acknowledged.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Stores `records` as the next batch and returns its sequence number, or `None` when the
    /// spool is full and the policy refused it (the loss is counted).
    pub fn push(&mut self, records: &[Transaction]) -> Result<Option<u64>> {
        let seq = self.next_seq;
        let batch = Batch::encode(seq, records)?;
        let body = postcard::to_stdvec(&batch)?;
        let need = HEADER + body.len() as u64;
        if need > self.max_bytes {
            bail!(
                "a batch of {} bytes cannot fit a spool of {} bytes; raise the spool size or lower the batch size",
                need,
                self.max_bytes
            );
        }
        while self.stats.bytes + need > self.max_bytes {
            match self.policy {
                FullPolicy::DropNewest => {
                    self.stats.lost_batches += 1;
                    self.stats.lost_records += records.len() as u64;
                    self.save_losses()?;
                    return Ok(None);
                }
                FullPolicy::DropOldest => {
                    let Some(old) = self.segments.pop_front() else {
                        break;
                    };
                    self.stats.lost_batches += old.entries.len() as u64;
                    self.stats.lost_records += old
                        .entries
                        .iter()
                        .map(|e| u64::from(e.records))
                        .sum::<u64>();
                    fs::remove_file(&old.path)
                        .with_context(|| format!("dropping {}", old.path.display()))?;
                    self.save_losses()?;
                    self.recount();
                }
            }
        }
        if self
            .segments
            .back()
            .is_none_or(|s| s.bytes >= SEGMENT_BYTES)
        {
            self.segments.push_back(Segment {
                path: segment_path(&self.dir, seq),
                bytes: 0,
                entries: Vec::new(),
            });
        }
        let Some(seg) = self.segments.back_mut() else {
            bail!("spool {} has no segment to write", self.dir.display());
        };
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&seg.path)
            .with_context(|| format!("opening {}", seg.path.display()))?;
        let mut entry = Vec::with_capacity(need as usize);
        entry.extend_from_slice(&(body.len() as u32).to_be_bytes());
        entry.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
        entry.extend_from_slice(&body);
        f.write_all(&entry)
            .and_then(|()| f.sync_data())
            .with_context(|| format!("writing {} (disk full?)", seg.path.display()))?;
        seg.entries.push(Entry {
            seq,
            records: batch.records,
            offset: seg.bytes,
            len: body.len() as u32,
        });
        seg.bytes += need;
        self.next_seq += 1;
        self.recount();
        Ok(Some(seq))
    }

    #[cfg_attr(not(test), allow(dead_code))] // drained by the uplink (in progress)
    /// Up to `max` waiting batches with sequence numbers above `after`, oldest first.
    pub fn pending(&self, after: u64, max: usize) -> Result<Vec<Batch>> {
        let mut out = Vec::new();
        for seg in &self.segments {
            let wanted: Vec<&Entry> = seg
                .entries
                .iter()
                .filter(|e| e.seq > after)
                .take(max - out.len())
                .collect();
            if wanted.is_empty() {
                continue;
            }
            let mut f =
                File::open(&seg.path).with_context(|| format!("opening {}", seg.path.display()))?;
            for e in wanted {
                let mut body = vec![0; e.len as usize];
                f.seek(SeekFrom::Start(e.offset + HEADER))
                    .and_then(|_| f.read_exact(&mut body))
                    .with_context(|| {
                        format!("reading batch {} from {}", e.seq, seg.path.display())
                    })?;
                out.push(postcard::from_bytes(&body).with_context(|| {
                    format!("batch {} in {} is corrupt", e.seq, seg.path.display())
                })?);
            }
            if out.len() >= max {
                break;
            }
        }
        Ok(out)
    }

    #[cfg_attr(not(test), allow(dead_code))] // drained by the uplink (in progress)
    /// The hub stored everything up to `through`: forget it.
    pub fn ack(&mut self, through: u64) -> Result<()> {
        if through <= self.acked {
            return Ok(());
        }
        self.acked = through;
        let tmp = self.dir.join("acked.tmp");
        fs::write(&tmp, format!("{through}\n"))
            .and_then(|()| fs::rename(&tmp, self.dir.join("acked")))
            .with_context(|| format!("recording the acknowledgement in {}", self.dir.display()))?;
        while let Some(seg) = self.segments.front_mut() {
            seg.entries.retain(|e| e.seq > through);
            if !seg.entries.is_empty() {
                break;
            }
            fs::remove_file(&seg.path)
                .with_context(|| format!("removing acknowledged {}", seg.path.display()))?;
            self.segments.pop_front();
        }
        self.recount();
        Ok(())
    }
}

/// The spool shared by the record sink (which pushes) and the uplink (which drains and acks).
#[derive(Debug)]
pub struct SharedSpool {
    spool: std::sync::Mutex<Spool>,
    /// Woken on every push, so an idle uplink sends at once instead of polling.
    pub pushed: tokio::sync::Notify,
}

impl SharedSpool {
    /// Shares `spool`.
    pub fn new(spool: Spool) -> Self {
        SharedSpool {
            spool: std::sync::Mutex::new(spool),
            pushed: tokio::sync::Notify::new(),
        }
    }

    /// Runs `f` on the spool. A panic elsewhere while holding the lock cannot leave the spool
    /// half-written in memory in a way that matters (every change is written to disk first),
    /// so a poisoned lock is taken over.
    pub fn with<T>(&self, f: impl FnOnce(&mut Spool) -> T) -> T {
        let mut guard = self
            .spool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    /// Pushes a batch and wakes the uplink.
    pub fn push(&self, records: &[Transaction]) -> Result<Option<u64>> {
        let seq = self.with(|s| s.push(records))?;
        self.pushed.notify_one();
        Ok(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: usize, tag: usize) -> Vec<Transaction> {
        (0..n)
            .map(|i| Transaction {
                method: "GET".into(),
                uri: format!("/r/{tag}/{i}"),
                ..Transaction::default()
            })
            .collect()
    }

    fn open(dir: &Path, max: u64, policy: FullPolicy) -> Spool {
        Spool::open(dir, max, policy).unwrap_or_else(|e| panic!("{e:#}"))
    }

    #[test]
    fn one_sensor_per_spool() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let first = open(dir.path(), 1 << 20, FullPolicy::DropNewest);
        let second = Spool::open(dir.path(), 1 << 20, FullPolicy::DropNewest);
        let err = format!(
            "{:#}",
            second.err().unwrap_or_else(|| panic!("two on one spool"))
        );
        assert!(err.contains("in use by another tapline-sensor"), "{err}");
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        drop(first);
        open(dir.path(), 1 << 20, FullPolicy::DropNewest);
    }

    #[test]
    fn batches_survive_a_restart_until_acknowledged() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut s = open(dir.path(), 1 << 20, FullPolicy::DropNewest);
        for b in 0..5 {
            assert_eq!(s.push(&records(3, b)).ok().flatten(), Some(b as u64 + 1));
        }
        s.ack(2).unwrap_or_else(|e| panic!("{e:#}"));
        let id = s.id();
        drop(s);
        let s = open(dir.path(), 1 << 20, FullPolicy::DropNewest);
        assert_eq!(s.id(), id, "the identity survives restarts");
        let other = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(open(other.path(), 1 << 20, FullPolicy::DropNewest).id(), id);
        assert_eq!(s.acked(), 2);
        assert_eq!((s.stats().batches, s.stats().records), (3, 9));
        let waiting = s.pending(0, 10).unwrap_or_default();
        assert_eq!(waiting.iter().map(|b| b.seq).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(waiting[0].decode().unwrap_or_default(), records(3, 2));
        // Numbering continues after the restart.
        let mut s = s;
        assert_eq!(s.push(&records(1, 9)).ok().flatten(), Some(6));
    }

    #[test]
    fn a_torn_tail_is_cut_and_reported() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut s = open(dir.path(), 1 << 20, FullPolicy::DropNewest);
        for b in 0..3 {
            s.push(&records(2, b)).unwrap_or_else(|e| panic!("{e:#}"));
        }
        let path = segment_path(dir.path(), 1);
        drop(s);
        // A crash mid-write: half an entry at the end.
        let mut f = OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{e}"));
        f.write_all(&[0, 0, 1, 0, 9, 9])
            .unwrap_or_else(|e| panic!("{e}"));
        drop(f);
        let s = open(dir.path(), 1 << 20, FullPolicy::DropNewest);
        assert_eq!(s.stats().batches, 3);
        assert_eq!(s.stats().recovered_cut_bytes, 6);
        // A flipped bit in the last entry: its checksum fails, it is cut, the rest stays.
        drop(s);
        let mut data = fs::read(&path).unwrap_or_default();
        let last = data.len() - 3;
        data[last] ^= 0x40;
        fs::write(&path, &data).unwrap_or_else(|e| panic!("{e}"));
        let s = open(dir.path(), 1 << 20, FullPolicy::DropNewest);
        assert_eq!(s.stats().batches, 2);
        assert!(s.stats().recovered_cut_bytes > 0);
    }

    #[test]
    fn a_full_spool_applies_its_policy_and_counts_the_loss() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let one = {
            let mut s = open(&dir.path().join("probe"), 1 << 20, FullPolicy::DropNewest);
            s.push(&records(10, 0)).unwrap_or_else(|e| panic!("{e:#}"));
            s.stats().bytes
        };
        // Room for three batches.
        let mut newest = open(&dir.path().join("n"), one * 3 + 1, FullPolicy::DropNewest);
        for b in 0..5 {
            newest
                .push(&records(10, b))
                .unwrap_or_else(|e| panic!("{e:#}"));
        }
        assert_eq!(newest.stats().batches, 3);
        assert_eq!(
            (newest.stats().lost_batches, newest.stats().lost_records),
            (2, 20)
        );
        assert!(newest.stats().bytes <= one * 3 + 1);
        // The loss is still known after a restart (the sensor may not have reported it yet).
        drop(newest);
        let reopened = open(&dir.path().join("n"), one * 3 + 1, FullPolicy::DropNewest);
        assert_eq!(
            (reopened.stats().lost_batches, reopened.stats().lost_records),
            (2, 20)
        );
    }

    #[test]
    fn drop_oldest_deletes_whole_old_segments() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        // One segment per batch: batches bigger than a segment.
        let big: Vec<Transaction> = (0..2)
            .map(|i| {
                let mut t = records(1, i).remove(0);
                // Incompressible: a xorshift stream.
                let mut x: u64 = 0x9E37_79B9_7F4A_7C15 + i as u64;
                t.response_body.data = (0..SEGMENT_BYTES as usize)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        (x >> 24) as u8
                    })
                    .collect();
                t
            })
            .collect();
        // Room for two of them.
        let max = SEGMENT_BYTES * 5 / 2;
        let mut s = open(dir.path(), max, FullPolicy::DropOldest);
        for b in 0..4 {
            s.push(&big[b % 2..b % 2 + 1])
                .unwrap_or_else(|e| panic!("{e:#}"));
        }
        assert_eq!(
            (s.stats().lost_batches, s.stats().lost_records),
            (2, 2),
            "{:?}",
            s.stats()
        );
        assert!(s.stats().bytes <= max);
        let waiting = s.pending(0, 10).unwrap_or_default();
        assert_eq!(waiting.last().map(|b| b.seq), Some(4), "the newest is kept");
    }
}
