//! Live analysis's state in the case: how far the hub's analysis has got through the records
//! sensors delivered, and the behaviour detectors' events of the recent stream — so that a
//! hub restarted (or killed) resumes its windows without losing or double-counting anything.
//!
//! Everything here is written in the same DuckDB transaction as the results it stands for
//! ([`CaseStore::commit_live`]): after a crash the case holds either a flush's results with
//! its events and position, or neither.

use crate::endpoints::Actor;
use crate::sources::Derived;
use crate::{CaseStore, StoreError};
use duckdb::params;
use std::ops::Range;

/// One request as the behaviour detectors keep it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BehaviourEvent {
    /// The transaction's id in the case.
    pub transaction_id: i64,
    /// Request time, ns since the epoch.
    pub ts_ns: i64,
    /// Endpoint key `host \0 method \0 template`, when discovery resolved one.
    pub endpoint: Option<String>,
    /// Who sent it.
    pub actor: Actor,
    /// Response status (0 without a response).
    pub status: u16,
    /// Whether the request carried credentials.
    pub credentials: bool,
    /// The object its last path parameter addresses.
    pub object: Option<String>,
    /// The account a login request names.
    pub username: Option<String>,
}

/// An object a principal's request created (owners of objects, for BOLA).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BehaviourCreation {
    /// Endpoint key of the collection it was created in.
    pub endpoint: String,
    /// A key the object may be addressed by.
    pub value: String,
    /// The principal that created it.
    pub principal: String,
    /// When, ns.
    pub ts_ns: i64,
}

/// What a flush of live analysis writes besides its results.
#[derive(Debug, Default)]
pub struct LiveProgress<'a> {
    /// Every sensor record with a smaller id has been analysed.
    pub analysed_below: i64,
    /// How the behaviour stream changed.
    pub stream: StreamSave<'a>,
}

/// How the behaviour stream the case retains changed, written with the results judged on it
/// (a live flush's, or an import's that joined the stream).
#[derive(Debug, Default)]
pub struct StreamSave<'a> {
    /// Behaviour events new since the last write.
    pub events: &'a [BehaviourEvent],
    /// Creations new since the last write.
    pub creations: &'a [BehaviourCreation],
    /// Events older than this (ns) have left the stream's horizon: delete them.
    pub forget_before_ns: Option<i64>,
}

/// Live analysis's state as the case holds it.
#[derive(Debug, Default)]
pub struct LiveState {
    /// Every sensor record with a smaller id has been analysed.
    pub analysed_below: i64,
    /// Retained behaviour events, in id order.
    pub events: Vec<BehaviourEvent>,
    /// Retained creations.
    pub creations: Vec<BehaviourCreation>,
}

impl CaseStore {
    /// Live analysis's saved state (analysed nothing, no events, in a case it never ran on).
    pub fn live_state(&self) -> Result<LiveState, StoreError> {
        let analysed_below = self
            .select_max("SELECT max(analysed_below) FROM live_analysis")?
            .unwrap_or(0);
        let (events, creations) = self.stream_events(i64::MIN..i64::MAX)?;
        Ok(LiveState {
            analysed_below,
            events,
            creations,
        })
    }

    /// The behaviour stream's events with record times in `times`, in id order, and every
    /// creation: what an import joins (events further away share no window with it).
    pub fn stream_events(
        &self,
        times: Range<i64>,
    ) -> Result<(Vec<BehaviourEvent>, Vec<BehaviourCreation>), StoreError> {
        let forgotten = self
            .select_max("SELECT max(before_ns) FROM behaviour_forgotten")?
            .unwrap_or(i64::MIN);
        let times = times.start.max(forgotten)..times.end;
        let mut events = self.select(
            "SELECT transaction_id, ts_ns, endpoint, actor_ip, actor_user, actor_key, \
             actor_session, status, credentials, object, username \
             FROM behaviour_events WHERE ts_ns >= ? AND ts_ns < ?",
            &[&times.start, &times.end],
            |r| {
                Ok(BehaviourEvent {
                    transaction_id: r.get(0)?,
                    ts_ns: r.get(1)?,
                    endpoint: r.get(2)?,
                    actor: Actor {
                        ip: r.get(3)?,
                        user: r.get(4)?,
                        key: r.get(5)?,
                        session: r.get(6)?,
                    },
                    status: r.get(7)?,
                    credentials: r.get(8)?,
                    object: r.get(9)?,
                    username: r.get(10)?,
                })
            },
        )?;
        let chunks = self.select(
            "SELECT first_id, data FROM behaviour_event_chunks \
             WHERE max_ts_ns >= ? AND min_ts_ns < ? ORDER BY first_id",
            &[&times.start, &times.end],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
        )?;
        for (first_id, data) in chunks {
            let decoded = chunk::decode(&data).map_err(|error| StoreError::EventChunk {
                path: self.path().to_owned(),
                first_id,
                error,
            })?;
            events.extend(decoded.into_iter().filter(|e| times.contains(&e.ts_ns)));
        }
        events.sort_by_key(|e| e.transaction_id);
        let creations = self.select(
            "SELECT endpoint, value, principal, ts_ns FROM behaviour_creations ORDER BY ts_ns",
            &[],
            |r| {
                Ok(BehaviourCreation {
                    endpoint: r.get(0)?,
                    value: r.get(1)?,
                    principal: r.get(2)?,
                    ts_ns: r.get(3)?,
                })
            },
        )?;
        Ok((events, creations))
    }

    /// Id ranges of sensor batches at or above `analysed_below`, in id order: records stored
    /// but not yet analysed (the hub stopped between the two).
    pub fn unanalysed_sensor_records(
        &self,
        analysed_below: i64,
    ) -> Result<Vec<Range<i64>>, StoreError> {
        self.select(
            "SELECT greatest(first_transaction, ?), first_transaction + records \
             FROM sensor_batches WHERE first_transaction + records > ? \
             ORDER BY first_transaction",
            &[&analysed_below, &analysed_below],
            |r| Ok(r.get::<_, i64>(0)?..r.get::<_, i64>(1)?),
        )
    }

    /// Writes a live flush in one transaction: its results merged into the case's (see
    /// [`crate::endpoints::merge_derived`]), its behaviour events and its position. Returns
    /// (findings new, findings updated).
    pub fn commit_live(
        &mut self,
        derived: &Derived,
        progress: &LiveProgress<'_>,
    ) -> Result<(usize, usize), StoreError> {
        self.atomically(|tx| {
            let merged = crate::endpoints::merge_derived(tx, derived)?;
            save_stream(tx, &progress.stream)?;
            tx.execute("DELETE FROM live_analysis", [])?;
            tx.execute(
                "INSERT INTO live_analysis (analysed_below) VALUES (?)",
                [progress.analysed_below],
            )?;
            Ok(merged)
        })
    }
}

/// Writes how the behaviour stream changed inside the caller's transaction.
pub(crate) fn save_stream(
    tx: &duckdb::Transaction<'_>,
    stream: &StreamSave<'_>,
) -> Result<(), duckdb::Error> {
    append_events(tx, stream.events)?;
    let mut app = tx.appender("behaviour_creations")?;
    for c in stream.creations {
        app.append_row(params![c.endpoint, c.value, c.principal, c.ts_ns])?;
    }
    app.flush()?;
    drop(app);
    if let Some(before) = stream.forget_before_ns {
        // Rows a case saved before schema v13, then whole chunks behind the cut; what is left
        // of a chunk straddling it is filtered by the cut when read.
        tx.execute("DELETE FROM behaviour_events WHERE ts_ns < ?", [before])?;
        tx.execute(
            "DELETE FROM behaviour_event_chunks WHERE max_ts_ns < ?",
            [before],
        )?;
        tx.execute(
            "INSERT INTO behaviour_forgotten \
             SELECT greatest(?, coalesce(max(before_ns), ?)) FROM behaviour_forgotten",
            [before, before],
        )?;
        tx.execute(
            "DELETE FROM behaviour_forgotten \
             WHERE before_ns < (SELECT max(before_ns) FROM behaviour_forgotten)",
            [],
        )?;
    }
    Ok(())
}

/// Events a chunk holds at most: what forgetting drops whole, and what one read decodes.
const CHUNK_EVENTS: usize = 65_536;

/// Events saved as compressed chunks, one row each: a row per event cost DuckDB ~2.5 µs of
/// CPU an event (string statistics and compression at commit) — the live hub's analysis
/// thread spent most of its time there.
fn append_events(
    tx: &duckdb::Transaction<'_>,
    events: &[BehaviourEvent],
) -> Result<(), duckdb::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let mut insert = tx.prepare(
        "INSERT INTO behaviour_event_chunks (first_id, min_ts_ns, max_ts_ns, events, data) \
         VALUES (?, ?, ?, ?, ?)",
    )?;
    for chunk in events.chunks(CHUNK_EVENTS) {
        let data =
            chunk::encode(chunk).map_err(|e| duckdb::Error::ToSqlConversionFailure(Box::new(e)))?;
        let ts = chunk.iter().map(|e| e.ts_ns);
        let (min, max) = (ts.clone().min(), ts.max());
        let first = chunk.iter().map(|e| e.transaction_id).min();
        insert.execute(params![first, min, max, chunk.len() as u32, data])?;
    }
    Ok(())
}

pub use chunk::ChunkError;

/// The on-disk form of a chunk of behaviour events: a format byte, then LZ4 (its size in
/// front) of the events by column as postcard — each distinct string once, events pointing
/// at them, ids and times as differences. A chunk is a few bytes an event: what DuckDB hashes
/// and checks as it stores the value is small.
mod chunk {
    use super::BehaviourEvent;
    use crate::endpoints::Actor;
    use serde::{Deserialize, Serialize};
    use std::collections::HashMap;

    const FORMAT: u8 = 1;
    /// A chunk decodes to at most this many bytes (a corrupt size must not allocate
    /// unbounded memory): ~16 KB an event is far beyond any real one.
    const MAX_DECODED: usize = super::CHUNK_EVENTS * 16 * 1024;

    /// Why a saved chunk cannot be read.
    #[derive(Debug, thiserror::Error)]
    pub enum ChunkError {
        /// A format byte this build does not know.
        #[error("unknown format {0} (written by a newer Tapline?)")]
        Format(u8),
        /// No bytes at all.
        #[error("empty")]
        Empty,
        /// A size beyond any chunk this build writes.
        #[error("says it holds {0} bytes uncompressed, more than a chunk can")]
        TooLarge(usize),
        /// The compressed bytes are damaged.
        #[error("does not decompress: {0}")]
        Lz4(#[from] lz4_flex::block::DecompressError),
        /// The decompressed bytes are not events.
        #[error("does not decode: {0}")]
        Postcard(#[from] postcard::Error),
        /// The columns disagree (lengths, or a string that is not there).
        #[error("its columns do not fit together: {0}")]
        Inconsistent(&'static str),
    }

    /// One event's optional strings, each an index into the strings plus one (0: none).
    type Refs = [u32; 7];

    #[derive(Serialize, Deserialize)]
    struct Columns<S> {
        strings: Vec<S>,
        /// Transaction ids, each the difference from the one before.
        ids: Vec<i64>,
        /// Record times, each the difference from the one before.
        ts: Vec<i64>,
        refs: Vec<Refs>,
        status: Vec<u16>,
        credentials: Vec<bool>,
    }

    fn optional(e: &BehaviourEvent) -> [Option<&str>; 7] {
        [
            e.endpoint.as_deref(),
            e.actor.ip.as_deref(),
            e.actor.user.as_deref(),
            e.actor.key.as_deref(),
            e.actor.session.as_deref(),
            e.object.as_deref(),
            e.username.as_deref(),
        ]
    }

    fn deltas(values: impl Iterator<Item = i64>) -> Vec<i64> {
        let mut last = 0i64;
        values
            .map(|v| {
                let d = v.wrapping_sub(last);
                last = v;
                d
            })
            .collect()
    }

    pub fn encode(events: &[BehaviourEvent]) -> Result<Vec<u8>, postcard::Error> {
        let mut index: HashMap<&str, u32, foldhash::fast::RandomState> = HashMap::default();
        let mut strings: Vec<&str> = Vec::new();
        let refs = events
            .iter()
            .map(|e| {
                optional(e).map(|s| {
                    s.map_or(0, |s| {
                        *index.entry(s).or_insert_with(|| {
                            strings.push(s);
                            strings.len() as u32
                        })
                    })
                })
            })
            .collect();
        let columns = Columns {
            strings,
            ids: deltas(events.iter().map(|e| e.transaction_id)),
            ts: deltas(events.iter().map(|e| e.ts_ns)),
            refs,
            status: events.iter().map(|e| e.status).collect(),
            credentials: events.iter().map(|e| e.credentials).collect(),
        };
        let plain = postcard::to_stdvec(&columns)?;
        let mut out = vec![FORMAT];
        out.extend_from_slice(&lz4_flex::block::compress_prepend_size(&plain));
        Ok(out)
    }

    pub fn decode(data: &[u8]) -> Result<Vec<BehaviourEvent>, ChunkError> {
        let (&format, body) = data.split_first().ok_or(ChunkError::Empty)?;
        if format != FORMAT {
            return Err(ChunkError::Format(format));
        }
        let size = body
            .get(..4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
        if size > MAX_DECODED {
            return Err(ChunkError::TooLarge(size));
        }
        let plain = lz4_flex::block::decompress_size_prepended(body)?;
        let c: Columns<String> = postcard::from_bytes(&plain)?;
        let n = c.ids.len();
        if [
            c.ts.len(),
            c.refs.len(),
            c.status.len(),
            c.credentials.len(),
        ] != [n; 4]
        {
            return Err(ChunkError::Inconsistent("columns of different lengths"));
        }
        let string = |r: u32| -> Result<Option<String>, ChunkError> {
            match r {
                0 => Ok(None),
                r => c
                    .strings
                    .get(r as usize - 1)
                    .map(|s| Some(s.clone()))
                    .ok_or(ChunkError::Inconsistent(
                        "a string index beyond the strings",
                    )),
            }
        };
        let (mut id, mut ts) = (0i64, 0i64);
        let mut events = Vec::with_capacity(n);
        for i in 0..n {
            id = id.wrapping_add(c.ids[i]);
            ts = ts.wrapping_add(c.ts[i]);
            let [endpoint, ip, user, key, session, object, username] = c.refs[i];
            events.push(BehaviourEvent {
                transaction_id: id,
                ts_ns: ts,
                endpoint: string(endpoint)?,
                actor: Actor {
                    ip: string(ip)?,
                    user: string(user)?,
                    key: string(key)?,
                    session: string(session)?,
                },
                status: c.status[i],
                credentials: c.credentials[i],
                object: string(object)?,
                username: string(username)?,
            });
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(i: i64) -> BehaviourEvent {
        let some = |s: String| (i % 3 != 0).then_some(s);
        BehaviourEvent {
            transaction_id: i,
            ts_ns: 1_700_000_000_000_000_000 + i,
            endpoint: Some(format!("api.test\0GET\0/users/{{id}}/{i}")),
            actor: Actor {
                ip: Some(format!("10.0.{}.{}", i / 256, i % 256)),
                user: some(format!("üser-{i}")),
                key: some(format!("key-{i}")),
                session: None,
            },
            status: (i % 600) as u16,
            credentials: i % 2 == 0,
            object: some(i.to_string()),
            username: None,
        }
    }

    fn case() -> (tempfile::TempDir, CaseStore) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = CaseStore::open(&dir.path().join("c.duckdb")).unwrap_or_else(|e| panic!("{e}"));
        (dir, store)
    }

    fn save(store: &mut CaseStore, events: &[BehaviourEvent], forget_before_ns: Option<i64>) {
        let progress = LiveProgress {
            analysed_below: events.last().map_or(0, |e| e.transaction_id + 1),
            stream: StreamSave {
                events,
                creations: &[],
                forget_before_ns,
            },
        };
        store
            .commit_live(&Derived::default(), &progress)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    fn chunks(store: &CaseStore) -> i64 {
        store
            .conn()
            .query_row("SELECT count(*) FROM behaviour_event_chunks", [], |r| {
                r.get(0)
            })
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Events go in as chunks (more than one of them) and come back as they were, in id
    /// order, with the rows a case saved before chunks existed.
    #[test]
    fn behaviour_events_come_back_from_the_case_as_written() {
        let (_dir, mut store) = case();
        let n = CHUNK_EVENTS as i64 + 5_000;
        let events: Vec<BehaviourEvent> = (0..n).map(event).collect();
        // The first thousand even ones as a schema-v12 case saved them, a row each.
        let old = |e: &BehaviourEvent| e.transaction_id % 2 == 0 && e.transaction_id < 2_000;
        let legacy: Vec<&BehaviourEvent> = events.iter().filter(|e| old(e)).collect();
        for e in &legacy {
            store
                .conn()
                .execute(
                    "INSERT INTO behaviour_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    params![
                        e.transaction_id,
                        e.ts_ns,
                        e.endpoint,
                        e.actor.ip,
                        e.actor.user,
                        e.actor.key,
                        e.actor.session,
                        e.status,
                        e.credentials,
                        e.object,
                        e.username
                    ],
                )
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let new: Vec<BehaviourEvent> = events.iter().filter(|e| !old(e)).cloned().collect();
        save(&mut store, &new, None);
        assert_eq!(
            chunks(&store),
            2,
            "a save beyond a chunk's worth is two chunks"
        );
        let rest: Vec<BehaviourEvent> = (n..n + CHUNK_EVENTS as i64 + 1).map(event).collect();
        save(&mut store, &rest, None);
        assert_eq!(chunks(&store), 4);
        let state = store.live_state().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(state.analysed_below, rest.len() as i64 + n);
        let mut expected = events;
        expected.extend(rest);
        assert_eq!(state.events.len(), expected.len());
        assert!(state.events == expected, "events differ from those saved");
    }

    /// Forgetting drops what is behind the cut — whole chunks from the case, and the part of a
    /// chunk that straddles it when read — and the cut holds for saves after it.
    #[test]
    fn forgotten_events_stay_forgotten() {
        let (_dir, mut store) = case();
        let old: Vec<BehaviourEvent> = (0..100).map(event).collect();
        let straddling: Vec<BehaviourEvent> = (100..200).map(event).collect();
        save(&mut store, &old, None);
        save(&mut store, &straddling, None);
        let cut = event(150).ts_ns;
        save(&mut store, &[event(200)], Some(cut));
        assert_eq!(chunks(&store), 2, "the chunk wholly behind the cut is gone");
        // A later, smaller cut does not bring anything back.
        save(&mut store, &[], Some(cut - 1_000));
        let ids: Vec<i64> = store
            .live_state()
            .unwrap_or_else(|e| panic!("{e}"))
            .events
            .iter()
            .map(|e| e.transaction_id)
            .collect();
        assert_eq!(ids, (150..=200).collect::<Vec<_>>());
        // An import's window reads the same.
        let (events, _) = store
            .stream_events(i64::MIN..event(160).ts_ns)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(events.len(), 10);
    }

    /// A damaged chunk is an error that names it, never a panic or a huge allocation.
    #[test]
    fn a_damaged_chunk_is_named() {
        let (_dir, mut store) = case();
        save(&mut store, &[event(7), event(8)], None);
        let data: Vec<u8> = store
            .conn()
            .query_row("SELECT data FROM behaviour_event_chunks", [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{e}"));
        for (i, damaged) in [
            vec![],
            vec![9u8],
            vec![1, 0xff, 0xff, 0xff, 0x7f, 0],
            data[..data.len() / 2].to_vec(),
        ]
        .into_iter()
        .enumerate()
        {
            store
                .conn()
                .execute("UPDATE behaviour_event_chunks SET data = ?", [&damaged])
                .unwrap_or_else(|e| panic!("{e}"));
            match store.live_state() {
                Err(StoreError::EventChunk { first_id: 7, .. }) => {}
                other => panic!("case {i}: {other:?}"),
            }
        }
    }

    proptest::proptest! {
        /// Whatever bytes a chunk holds, decoding ends in events or an error.
        #[test]
        fn decoding_any_bytes_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = chunk::decode(&data);
            let mut framed = vec![1u8];
            framed.extend_from_slice(&data);
            let _ = chunk::decode(&framed);
        }

        /// Events come back from their chunk as they went in.
        #[test]
        fn a_chunk_round_trips(ids in proptest::collection::vec(-1_000i64..1_000_000, 0..64)) {
            let events: Vec<BehaviourEvent> = ids.into_iter().map(event).collect();
            let data = chunk::encode(&events).unwrap_or_else(|e| panic!("{e}"));
            let back = chunk::decode(&data).unwrap_or_else(|e| panic!("{e}"));
            proptest::prop_assert_eq!(back, events);
        }
    }
}
