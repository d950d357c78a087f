//! Read side for the GUI and the CLI: paged, sorted, filtered transaction lists, counts and
//! time histograms, evaluated by DuckDB over only the columns a view shows.

use crate::{CaseStore, StoreError};
use duckdb::ToSql;
use tapline_record::Transaction;

/// Which transactions a view shows. Every field narrows; `None` means any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxFilter {
    /// Host, exact (case-insensitive).
    pub host: Option<String>,
    /// Method, exact (case-insensitive).
    pub method: Option<String>,
    /// Substring of the path.
    pub path_contains: Option<String>,
    /// Status codes in this inclusive range.
    pub status: Option<(u16, u16)>,
    /// Client IP address, exactly (`10.0.0.5`, `::1`).
    pub client_ip: Option<String>,
    /// Request time at or after, ns since the epoch.
    pub from_ns: Option<i64>,
    /// Request time before, ns since the epoch.
    pub to_ns: Option<i64>,
    /// Free text: matched case-insensitively in host, URI and request headers.
    pub text: Option<String>,
    /// Only transactions from this source.
    pub source_id: Option<i64>,
    /// Path matching an inventory template (`/users/{id}`: each `{…}` one non-empty segment).
    pub template: Option<String>,
    /// Paths matching none of these templates (the literal siblings of `template`:
    /// `/users/me` beside `/users/{id}`).
    pub not_templates: Vec<String>,
    /// Only these transactions (a finding's evidence).
    pub ids: Option<Vec<i64>>,
    /// Only ids in this half-open range (records read back in order).
    pub id_range: Option<std::ops::Range<i64>>,
    /// Only records from the sensor of this name.
    pub sensor: Option<String>,
}

/// Sort orders for transaction lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortKey {
    /// Request time.
    #[default]
    Time,
    /// Status code.
    Status,
    /// Method.
    Method,
    /// Host.
    Host,
    /// Path.
    Path,
    /// Response time minus request time.
    Latency,
    /// Decoded response body length.
    ResponseSize,
}

impl SortKey {
    fn column(self) -> &'static str {
        match self {
            SortKey::Time => "request_ts_ns",
            SortKey::Status => "status",
            SortKey::Method => "method",
            SortKey::Host => "host",
            SortKey::Path => "path",
            SortKey::Latency => "(response_ts_ns - request_ts_ns)",
            SortKey::ResponseSize => "response_body_len",
        }
    }
}

/// One page of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// Rows to skip.
    pub offset: u64,
    /// Rows to return.
    pub limit: u64,
    /// Sort column.
    pub sort: SortKey,
    /// Largest first.
    pub descending: bool,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            offset: 0,
            limit: 100,
            sort: SortKey::Time,
            descending: false,
        }
    }
}

/// A transaction as a list row: what a table shows, not the bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxRow {
    /// Transaction id.
    pub id: i64,
    /// Request time, ns.
    pub ts_ns: i64,
    /// Client address.
    pub client: Option<std::net::SocketAddr>,
    /// Server address.
    pub server: Option<std::net::SocketAddr>,
    /// Method.
    pub method: String,
    /// Host.
    pub host: Option<String>,
    /// Path.
    pub path: String,
    /// Status.
    pub status: Option<u16>,
    /// Response minus request time, ns.
    pub latency_ns: Option<i64>,
    /// Decoded response body length.
    pub response_len: u64,
    /// Anomaly bits.
    pub anomalies: u32,
}

/// Readers see sensor records and completed imports only: the rows of an import still running,
/// killed or failed are invisible until it completes (or is redone).
pub(crate) const VISIBLE: &str =
    "(source_id IS NULL OR source_id IN (SELECT id FROM sources WHERE status = 'complete'))";

/// Whether a query must hide rows of unfinished imports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Visibility {
    /// Every source in the snapshot is complete: every row is visible, no predicate needed.
    All,
    /// Some import is unfinished: [`VISIBLE`] filters its rows out.
    Checked,
}

/// Where a snapshot's transactions are read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rows {
    /// No live segments in the snapshot: the table holds every row. Read directly, DuckDB
    /// skips row groups by their statistics while it finds a page, which it cannot do through
    /// the view's UNION (a page deep in 1.6 M transactions by time: 25 ms against 125 ms).
    Table,
    /// The table and the live segments, through the connection's `transactions` view.
    WithSegments,
}

impl Rows {
    fn relation(self) -> &'static str {
        match self {
            Rows::Table => "main.stored_transactions",
            Rows::WithSegments => "transactions",
        }
    }
}

fn where_clause(f: &TxFilter, visibility: Visibility) -> (String, Vec<Box<dyn ToSql>>) {
    let mut conds: Vec<&str> = match visibility {
        Visibility::All => Vec::new(),
        Visibility::Checked => vec![VISIBLE],
    };
    let mut params: Vec<Box<dyn ToSql>> = Vec::new();
    if let Some(h) = &f.host {
        conds.push("lower(host) = lower(?)");
        params.push(Box::new(h.clone()));
    }
    if let Some(m) = &f.method {
        conds.push("upper(method) = upper(?)");
        params.push(Box::new(m.clone()));
    }
    if let Some(p) = &f.path_contains {
        conds.push("contains(path, ?)");
        params.push(Box::new(p.clone()));
    }
    if let Some((lo, hi)) = f.status {
        conds.push("status BETWEEN ? AND ?");
        params.push(Box::new(lo));
        params.push(Box::new(hi));
    }
    if let Some(ip) = &f.client_ip {
        conds.push("client_ip = ?");
        params.push(Box::new(ip.clone()));
    }
    if let Some(t) = f.from_ns {
        conds.push("request_ts_ns >= ?");
        params.push(Box::new(t));
    }
    if let Some(t) = f.to_ns {
        conds.push("request_ts_ns < ?");
        params.push(Box::new(t));
    }
    if let Some(text) = &f.text {
        // contains(lower(…)) is about twice as fast as ILIKE '%…%' in DuckDB over the headers.
        conds.push(
            "(contains(lower(host), ?) OR contains(lower(uri), ?) OR contains(lower(request_headers), ?))",
        );
        let needle = text.to_lowercase();
        for _ in 0..3 {
            params.push(Box::new(needle.clone()));
        }
    }
    if let Some(s) = f.source_id {
        conds.push("source_id = ?");
        params.push(Box::new(s));
    }
    if let Some(sensor) = &f.sensor {
        conds.push("sensor_id = ?");
        params.push(Box::new(sensor.clone()));
    }
    if let Some(t) = &f.template {
        conds.push("regexp_full_match(path, ?)");
        params.push(Box::new(crate::template::regex(t)));
    }
    for t in &f.not_templates {
        conds.push("NOT regexp_full_match(path, ?)");
        params.push(Box::new(crate::template::regex(t)));
    }
    let ids_cond;
    if let Some(ids) = &f.ids {
        // Ids are numbers: inlined, they cannot inject anything.
        let list: Vec<String> = ids.iter().map(i64::to_string).collect();
        ids_cond = if list.is_empty() {
            "FALSE".to_owned()
        } else {
            format!("id IN ({})", list.join(","))
        };
        conds.push(&ids_cond);
    }
    if let Some(r) = &f.id_range {
        conds.push("id >= ? AND id < ?");
        params.push(Box::new(r.start));
        params.push(Box::new(r.end));
    }
    if conds.is_empty() {
        return (String::new(), params);
    }
    (format!("WHERE {}", conds.join(" AND ")), params)
}

fn refs(p: &[Box<dyn ToSql>]) -> Vec<&dyn ToSql> {
    p.iter().map(|b| b.as_ref()).collect()
}

impl CaseStore {
    /// Runs `read` in one snapshot of the case, told whether rows need hiding. Usually every
    /// import is complete, and then no predicate is needed — any predicate at all keeps DuckDB
    /// from skipping row groups while it finds a page (a page at 90% of 1.8 M transactions by
    /// time: 23 ms without, 107 ms with). One snapshot, so an import that starts between the
    /// look at the sources and the read cannot show its rows.
    ///
    /// The same snapshot says whether live segments hold rows ([`Rows`]).
    fn in_snapshot<T>(
        &self,
        read: impl FnOnce(Visibility, Rows) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let snapshot = self
            .conn()
            .unchecked_transaction()
            .map_err(|e| self.db_err(e))?;
        // One query for both: each adds a round trip to every reading of the GUI.
        let (unfinished, live): (i64, i64) = snapshot
            .query_row(
                "SELECT (SELECT count(*) FROM sources WHERE status IS DISTINCT FROM 'complete'), \
                        (SELECT count(*) FROM segments WHERE NOT compacted)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.db_err(e))?;
        let visibility = if unfinished == 0 {
            Visibility::All
        } else {
            Visibility::Checked
        };
        let rows = if live == 0 {
            Rows::Table
        } else {
            Rows::WithSegments
        };
        let out = read(visibility, rows)?;
        snapshot.commit().map_err(|e| self.db_err(e))?;
        Ok(out)
    }

    /// One page of transactions matching `f`.
    pub fn query_transactions(&self, f: &TxFilter, page: &Page) -> Result<Vec<TxRow>, StoreError> {
        self.in_snapshot(|visibility, rows| self.query_page(f, page, visibility, rows))
    }

    fn query_page(
        &self,
        f: &TxFilter,
        page: &Page,
        visibility: Visibility,
        rows: Rows,
    ) -> Result<Vec<TxRow>, StoreError> {
        let (cond, params) = where_clause(f, visibility);
        let from = rows.relation();
        // The page is found on the sort key alone and only its rows are read whole: sorting
        // every column of the rows before a deep offset took 2–3× as long (285 ms against
        // 118 ms at 90% of 1.8 M transactions by time, rows hidden by a predicate).
        let order = format!(
            "ORDER BY {} {} NULLS LAST, id",
            page.sort.column(),
            if page.descending { "DESC" } else { "ASC" },
        );
        let sql = format!(
            "SELECT id, request_ts_ns, client_ip, client_port, server_ip, server_port, method, host, path, status, \
             response_ts_ns - request_ts_ns, response_body_len, anomalies \
             FROM {from} WHERE id IN \
             (SELECT id FROM {from} {cond} {order} LIMIT {} OFFSET {}) {order}",
            page.limit, page.offset
        );
        self.select(&sql, refs(&params).as_slice(), |r| {
            Ok(TxRow {
                id: r.get(0)?,
                ts_ns: r.get(1)?,
                client: crate::transactions::socket_addr(r.get(2)?, r.get(3)?),
                server: crate::transactions::socket_addr(r.get(4)?, r.get(5)?),
                method: r.get(6)?,
                host: r.get(7)?,
                path: r.get(8)?,
                status: r.get(9)?,
                latency_ns: r.get(10)?,
                response_len: r.get(11)?,
                anomalies: r.get(12)?,
            })
        })
    }

    /// How many transactions match `f`.
    pub fn count_transactions(&self, f: &TxFilter) -> Result<u64, StoreError> {
        self.in_snapshot(|visibility, rows| {
            let (cond, params) = where_clause(f, visibility);
            let from = rows.relation();
            self.conn()
                .query_row(
                    &format!("SELECT count(*) FROM {from} {cond}"),
                    refs(&params).as_slice(),
                    |r| r.get(0),
                )
                .map_err(|e| self.db_err(e))
        })
    }

    /// Transactions matching `f` per time bucket of `bucket_ns`: `(bucket start, count)`.
    pub fn time_histogram(
        &self,
        f: &TxFilter,
        bucket_ns: i64,
    ) -> Result<Vec<(i64, u64)>, StoreError> {
        self.in_snapshot(|visibility, rows| {
            let (cond, mut params) = where_clause(f, visibility);
            let from = rows.relation();
            let bucket = bucket_ns.max(1);
            params.insert(0, Box::new(bucket));
            params.insert(1, Box::new(bucket));
            let sql = format!(
                "SELECT (request_ts_ns // ?) * ? AS b, count(*) FROM {from} {cond} GROUP BY b ORDER BY b"
            );
            self.select(&sql, refs(&params).as_slice(), |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
        })
    }

    /// The earliest and latest request time, ns; `None` for an empty case.
    pub fn time_span(&self) -> Result<Option<(i64, i64)>, StoreError> {
        self.conn()
            .query_row(
                &format!("SELECT min(request_ts_ns), max(request_ts_ns) FROM transactions WHERE {VISIBLE}"),
                [],
                |r| Ok(r.get::<_, Option<i64>>(0)?.zip(r.get::<_, Option<i64>>(1)?)),
            )
            .map_err(|e| self.db_err(e))
    }

    /// Count per status code (`None` = no response) among transactions matching `f`.
    pub fn status_mix(&self, f: &TxFilter) -> Result<Vec<(Option<u16>, u64)>, StoreError> {
        self.in_snapshot(|visibility, rows| {
            let (cond, params) = where_clause(f, visibility);
            let from = rows.relation();
            let sql = format!(
                "SELECT status, count(*) FROM {from} {cond} GROUP BY status ORDER BY status NULLS LAST"
            );
            self.select(&sql, refs(&params).as_slice(), |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
        })
    }

    /// One whole transaction by id.
    pub fn transaction(&self, id: i64) -> Result<Option<Transaction>, StoreError> {
        use duckdb::OptionalExt;
        self.conn()
            .query_row(
                &format!(
                    "SELECT {} FROM transactions WHERE id = ? AND {VISIBLE}",
                    crate::transactions::COLUMNS
                ),
                [id],
                crate::transactions::from_row,
            )
            .optional()
            .map(|o| o.map(|(_, t)| t))
            .map_err(|e| self.db_err(e))
    }

    /// Calls `f` with every transaction matching `filter` in id order (exports, re-analysis).
    pub fn for_each_transaction(
        &self,
        filter: &TxFilter,
        mut f: impl FnMut(i64, Transaction) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        // Checked always: `f` may use this connection, which a snapshot would hold open.
        let (cond, params) = where_clause(filter, Visibility::Checked);
        let sql = format!(
            "SELECT {} FROM transactions {cond} ORDER BY id",
            crate::transactions::COLUMNS
        );
        let mut stmt = self.conn().prepare(&sql).map_err(|e| self.db_err(e))?;
        let mut rows = stmt
            .query(refs(&params).as_slice())
            .map_err(|e| self.db_err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.db_err(e))? {
            let (id, tx) = crate::transactions::from_row(row).map_err(|e| self.db_err(e))?;
            f(id, tx)?;
        }
        Ok(())
    }

    /// Writes every transaction (without bodies' bytes beyond those stored) to a Parquet file,
    /// for engines beyond one machine (DuckDB, Spark, Trino read it as is).
    pub fn export_parquet(&self, out: &std::path::Path) -> Result<u64, StoreError> {
        let target = out.display().to_string().replace('\'', "''");
        let n = self
            .conn()
            .execute(
                &format!(
                    "COPY (SELECT id, make_timestamp_ns(request_ts_ns) AS request_ts, \
                     make_timestamp_ns(response_ts_ns) AS response_ts, * EXCLUDE (id) \
                     FROM transactions WHERE {VISIBLE} ORDER BY id) TO '{target}' (FORMAT PARQUET, COMPRESSION ZSTD)"
                ),
                [],
            )
            .map_err(|e| self.db_err(e))?;
        Ok(n as u64)
    }
}

/// Rows in a Parquet file, as DuckDB reads it (checks an export end to end).
pub fn parquet_row_count(path: &std::path::Path) -> Result<u64, StoreError> {
    let conn = duckdb::Connection::open_in_memory().map_err(|source| StoreError::Db {
        path: path.to_path_buf(),
        error: source,
    })?;
    let target = path.display().to_string().replace('\'', "''");
    let n: i64 = conn
        .query_row(
            &format!("SELECT count(*) FROM read_parquet('{target}')"),
            [],
            |r| r.get(0),
        )
        .map_err(|source| StoreError::Db {
            path: path.to_path_buf(),
            error: source,
        })?;
    Ok(n.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapline_record::Transaction;

    #[test]
    fn rows_of_an_unfinished_import_are_hidden_from_every_reading_until_it_completes() {
        use crate::sources::{Derived, NewSource, SourceCounts};
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut store =
            CaseStore::open(&dir.path().join("c.duckdb")).unwrap_or_else(|e| panic!("{e}"));
        let tx = |uri: &str, status| Transaction {
            method: "GET".into(),
            uri: uri.into(),
            status: Some(status),
            ..Transaction::default()
        };
        store
            .append(&[tx("/live", 200)])
            .unwrap_or_else(|e| panic!("{e}"));
        let source = store
            .begin_source(&NewSource {
                kind: "pcap",
                name: "a.pcap",
                path: None,
                content_hash: None,
                size_bytes: None,
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let rows = [tx("/imported", 404), tx("/imported", 500)];
        let first = store.transaction_ids().reserve(rows.len()).start;
        store
            .atomically_appending(|t| crate::transactions::append(t, Some(source), first, &rows))
            .unwrap_or_else(|e| panic!("{e}"));
        let readings = |store: &CaseStore| {
            let all = TxFilter::default();
            let page: Vec<String> = store
                .query_transactions(&all, &Page::default())
                .unwrap_or_else(|e| panic!("{e}"))
                .into_iter()
                .map(|r| r.path)
                .collect();
            let count = store
                .count_transactions(&all)
                .unwrap_or_else(|e| panic!("{e}"));
            let mix = store.status_mix(&all).unwrap_or_else(|e| panic!("{e}"));
            let histogram: u64 = store
                .time_histogram(&all, 1_000_000_000)
                .unwrap_or_else(|e| panic!("{e}"))
                .iter()
                .map(|b| b.1)
                .sum();
            (page, count, mix.len(), histogram)
        };
        assert_eq!(readings(&store), (vec!["/live".to_owned()], 1, 1, 1));
        store
            .complete_source(
                source,
                SourceCounts::default(),
                &Derived::default(),
                &Default::default(),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let (page, count, statuses, histogram) = readings(&store);
        assert_eq!(page, ["/live", "/imported", "/imported"]);
        assert_eq!((count, statuses, histogram), (3, 3, 3));
    }

    #[test]
    fn a_page_is_the_ordered_rows_at_its_offset_whatever_the_sort() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut store =
            CaseStore::open(&dir.path().join("c.duckdb")).unwrap_or_else(|e| panic!("{e}"));
        // Ties, missing responses (NULL status and latency) and unordered times.
        let txs: Vec<Transaction> = (0..57i64)
            .map(|i| Transaction {
                request_ts_nanos: 1_700_000_000_000_000_000 + (i * 7919) % 23,
                response_ts_nanos: (i % 5 != 0)
                    .then_some(1_700_000_000_000_000_000 + (i * 7919) % 23 + i % 4),
                method: ["GET", "POST", "PUT"][(i % 3) as usize].into(),
                host: (i % 4 != 0).then(|| format!("h{}.test", i % 3)),
                uri: format!("/p/{}", (i * 31) % 11),
                status: (i % 5 != 0).then_some(200 + (i % 3) as u16 * 100),
                ..Transaction::default()
            })
            .collect();
        store.append(&txs).unwrap_or_else(|e| panic!("{e}"));
        let sorts = [
            SortKey::Time,
            SortKey::Status,
            SortKey::Method,
            SortKey::Host,
            SortKey::Path,
            SortKey::Latency,
            SortKey::ResponseSize,
        ];
        for sort in sorts {
            for descending in [false, true] {
                let dir = if descending { "DESC" } else { "ASC" };
                // The plain reading: every column sorted, then the offset.
                let all: Vec<i64> = store
                    .select(
                        &format!(
                            "SELECT id FROM transactions ORDER BY {} {dir} NULLS LAST, id",
                            sort.column()
                        ),
                        &[],
                        |r| r.get(0),
                    )
                    .unwrap_or_else(|e| panic!("{e}"));
                for (offset, limit) in [(0, 10), (13, 20), (50, 10), (57, 5)] {
                    let page = Page {
                        offset,
                        limit,
                        sort,
                        descending,
                    };
                    let got: Vec<i64> = store
                        .query_transactions(&TxFilter::default(), &page)
                        .unwrap_or_else(|e| panic!("{e}"))
                        .into_iter()
                        .map(|r| r.id)
                        .collect();
                    let want: Vec<i64> = all
                        .iter()
                        .copied()
                        .skip(offset as usize)
                        .take(limit as usize)
                        .collect();
                    assert_eq!(got, want, "{sort:?} {dir} offset {offset}");
                }
            }
        }
    }

    #[test]
    fn filters_by_template_and_by_ids() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut store =
            CaseStore::open(&dir.path().join("c.duckdb")).unwrap_or_else(|e| panic!("{e}"));
        let uris = [
            "/users/1",
            "/users/22",
            "/users/1/orders",
            "/users/",
            "/usersX/3",
            "/users/7/",
        ];
        let txs: Vec<Transaction> = uris
            .iter()
            .map(|u| Transaction {
                method: "GET".into(),
                uri: (*u).into(),
                ..Transaction::default()
            })
            .collect();
        store.append(&txs).unwrap_or_else(|e| panic!("{e}"));
        let paths = |f: &TxFilter| -> Vec<String> {
            store
                .query_transactions(f, &Page::default())
                .unwrap_or_else(|e| panic!("{e}"))
                .into_iter()
                .map(|r| r.path)
                .collect()
        };
        let by_template = TxFilter {
            template: Some("/users/{id}".into()),
            ..TxFilter::default()
        };
        // Discovery templates `/users/7/` as `/users/{userId}`: the query agrees.
        assert_eq!(paths(&by_template), ["/users/1", "/users/22", "/users/7/"]);
        let without_sibling = TxFilter {
            not_templates: vec!["/users/22".into()],
            ..by_template.clone()
        };
        assert_eq!(paths(&without_sibling), ["/users/1", "/users/7/"]);
        let by_ids = TxFilter {
            ids: Some(vec![2, 5]),
            ..TxFilter::default()
        };
        assert_eq!(paths(&by_ids), ["/users/22", "/usersX/3"]);
        let none = TxFilter {
            ids: Some(vec![]),
            ..TxFilter::default()
        };
        assert_eq!(store.count_transactions(&none).ok(), Some(0));
    }
}
