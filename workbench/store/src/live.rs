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
use duckdb::arrow::array::{ArrayRef, BooleanArray, Int64Array, StringArray, UInt16Array};
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::params;
use std::ops::Range;
use std::sync::Arc;

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
            .select("SELECT max(analysed_below) FROM live_analysis", &[], |r| {
                r.get::<_, Option<i64>>(0)
            })?
            .into_iter()
            .flatten()
            .next()
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
        let events = self.select(
            "SELECT transaction_id, ts_ns, endpoint, actor_ip, actor_user, actor_key, \
             actor_session, status, credentials, object, username \
             FROM behaviour_events WHERE ts_ns >= ? AND ts_ns < ? ORDER BY transaction_id",
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
        tx.execute("DELETE FROM behaviour_events WHERE ts_ns < ?", [before])?;
    }
    Ok(())
}

fn append_events(
    tx: &duckdb::Transaction<'_>,
    events: &[BehaviourEvent],
) -> Result<(), duckdb::Error> {
    let mut app = tx.appender("behaviour_events")?;
    // Arrow batches rather than bound rows: one event per analysed record, and binding eleven
    // values a row was a tenth of the live hub's analysis-thread time.
    for chunk in events.chunks(crate::transactions::ARROW_ROWS) {
        let batch =
            events_batch(chunk).map_err(|e| duckdb::Error::ToSqlConversionFailure(Box::new(e)))?;
        app.append_record_batch(batch)?;
    }
    app.flush()
}

/// Events as an Arrow record batch in `behaviour_events`' column order.
fn events_batch(
    events: &[BehaviourEvent],
) -> Result<RecordBatch, duckdb::arrow::error::ArrowError> {
    let strings = |f: &dyn Fn(&BehaviourEvent) -> Option<&str>| -> ArrayRef {
        Arc::new(StringArray::from_iter(events.iter().map(f)))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(
            events.iter().map(|e| e.transaction_id),
        )),
        Arc::new(Int64Array::from_iter_values(events.iter().map(|e| e.ts_ns))),
        strings(&|e| e.endpoint.as_deref()),
        strings(&|e| e.actor.ip.as_deref()),
        strings(&|e| e.actor.user.as_deref()),
        strings(&|e| e.actor.key.as_deref()),
        strings(&|e| e.actor.session.as_deref()),
        Arc::new(UInt16Array::from_iter_values(
            events.iter().map(|e| e.status),
        )),
        Arc::new(BooleanArray::from_iter(
            events.iter().map(|e| Some(e.credentials)),
        )),
        strings(&|e| e.object.as_deref()),
        strings(&|e| e.username.as_deref()),
    ];
    crate::transactions::arrow_batch(columns)
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

    /// Events go in as Arrow batches (more than one of them) and come back as they were.
    #[test]
    fn behaviour_events_come_back_from_the_case_as_written() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut store =
            CaseStore::open(&dir.path().join("c.duckdb")).unwrap_or_else(|e| panic!("{e}"));
        let events: Vec<BehaviourEvent> = (0..5_000).map(event).collect();
        let progress = LiveProgress {
            analysed_below: 5_000,
            stream: StreamSave {
                events: &events,
                ..StreamSave::default()
            },
        };
        store
            .commit_live(&Derived::default(), &progress)
            .unwrap_or_else(|e| panic!("{e}"));
        let state = store.live_state().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(state.analysed_below, 5_000);
        assert_eq!(state.events, events);
    }
}
