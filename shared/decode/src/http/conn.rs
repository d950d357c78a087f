//! One TCP connection's HTTP/1.x exchanges: request and response streams parsed independently,
//! paired in order (keep-alive and pipelining), emitted as [`Transaction`]s.

use super::body::{BodyReader, BodySink, Framing};
use super::encoding::{self, Coding};
use super::head::{self, RequestHead, ResponseHead};
use std::collections::VecDeque;
use std::net::SocketAddr;
use tapline_record::{Anomalies, Body, Headers, HttpVersion, Transaction};

/// Limits for HTTP parsing. Every buffer Tapline keeps per connection is bounded by these.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Decoded body bytes kept per message; the full length is still counted.
    pub max_body: usize,
    /// Encoded (compressed) body bytes buffered per message for decoding.
    pub max_encoded_body: usize,
    /// Decompression output cap per message (bomb protection).
    pub max_decoded: u64,
    /// Longest message head (start line + headers).
    pub max_head: usize,
    /// Requests awaiting a response before the oldest is given up on.
    pub max_pending: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body: 1 << 20,
            max_encoded_body: 4 << 20,
            max_decoded: 64 << 20,
            max_head: 64 << 10,
            max_pending: 64,
        }
    }
}

/// Which way bytes travel on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to server: requests.
    FromClient,
    /// Server to client: responses.
    FromServer,
}

impl Direction {
    /// True for the client's side (the requests).
    pub fn is_request(self) -> bool {
        self == Direction::FromClient
    }
}

/// Methods we resynchronise on after a gap or a mid-stream start. Only well-known ones, so a
/// body that happens to contain `FOO bar` is not mistaken for a request.
const RESYNC_METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
    b"PROPFIND ",
    b"PROPPATCH ",
    b"MKCOL ",
    b"COPY ",
    b"MOVE ",
    b"LOCK ",
    b"UNLOCK ",
    b"SEARCH ",
    b"REPORT ",
];
/// Bytes kept between packets while resynchronising, so a message start split across
/// segments is still found.
const RESYNC_CARRY: usize = 16;

#[derive(Debug)]
struct Exchange {
    id: u64,
    tx: Transaction,
    req_done: bool,
    resp_done: bool,
    /// The request was HTTP/0.9: the response has no head.
    http09: bool,
}

#[derive(Debug)]
struct Message {
    exchange: u64,
    reader: BodyReader,
    sink: BodySink,
    codings: Vec<Coding>,
}

impl Message {
    /// A body about to be read; encoded bodies get the larger pre-decoding cap.
    fn new(exchange: u64, framing: Framing, codings: Vec<Coding>, cfg: &HttpConfig) -> Self {
        let cap = if codings.is_empty() {
            cfg.max_body
        } else {
            cfg.max_encoded_body
        };
        Message {
            exchange,
            reader: BodyReader::new(framing),
            sink: BodySink::with_expected(cap, framing.expected_len()),
            codings,
        }
    }
}

#[derive(Debug)]
enum State {
    /// Nothing seen yet on this stream.
    Start,
    /// Between messages, or inside a head (bytes in `Stream::head`).
    Head,
    /// Inside a body.
    Body(Message),
    /// Looking for the next message start after damage.
    Resync,
    /// Not parsed any more (not HTTP, tunnel, or closed).
    Stopped,
}

#[derive(Debug)]
struct Stream {
    state: State,
    head: Vec<u8>,
    head_ts: i64,
    carry: Vec<u8>,
    /// The first line of the head in `head` is complete (HTTP/0.9 check done).
    head_line_seen: bool,
    /// A gap or damage happened since the last message start: flag the next message.
    pending_anomalies: Anomalies,
}

impl Stream {
    /// Empties the head buffer, keeping its allocation for the next message.
    fn reset_head(&mut self) {
        self.head.clear();
        self.head_line_seen = false;
    }

    fn new(midstream: bool) -> Self {
        Stream {
            state: if midstream {
                State::Resync
            } else {
                State::Start
            },
            head: Vec::new(),
            head_ts: 0,
            carry: Vec::new(),
            head_line_seen: false,
            pending_anomalies: if midstream {
                Anomalies::MIDSTREAM
            } else {
                Anomalies::NONE
            },
        }
    }
}

/// The HTTP state of one connection.
#[derive(Debug)]
pub struct HttpConnection {
    client_addr: Option<SocketAddr>,
    server_addr: Option<SocketAddr>,
    requests: Stream,
    responses: Stream,
    pending: VecDeque<Exchange>,
    /// Index in `pending` of the exchange the next response belongs to.
    resp_cursor: usize,
    /// Responses still due to requests given up on at the pipelining cap (emitted already):
    /// the next this many responses are theirs, in order.
    owed: usize,
    next_id: u64,
    not_http: bool,
    /// The client sent bytes that were not a request; a response pairs with them.
    client_garbled: bool,
    /// A request said the connection ends after it: later requests are not read by servers.
    client_closing: bool,
}

impl HttpConnection {
    /// A connection from `client` to `server`. `midstream` when the capture missed its start.
    pub fn new(client: Option<SocketAddr>, server: Option<SocketAddr>, midstream: bool) -> Self {
        HttpConnection {
            client_addr: client,
            server_addr: server,
            requests: Stream::new(midstream),
            responses: Stream::new(midstream),
            pending: VecDeque::new(),
            resp_cursor: 0,
            owed: 0,
            next_id: 0,
            not_http: false,
            client_garbled: false,
            client_closing: false,
        }
    }

    /// The request stream (client side) or the response stream.
    fn stream_mut(&mut self, dir: Direction) -> &mut Stream {
        if dir.is_request() {
            &mut self.requests
        } else {
            &mut self.responses
        }
    }

    /// True once the connection was found not to carry HTTP; callers may stop feeding it.
    pub fn is_not_http(&self) -> bool {
        self.not_http
    }

    /// True when both directions stopped parsing (not HTTP, or switched protocols).
    pub fn is_stopped(&self) -> bool {
        matches!(self.requests.state, State::Stopped)
            && matches!(self.responses.state, State::Stopped)
            && self.pending.is_empty()
    }

    /// Bytes this connection holds in buffers (for memory accounting).
    pub fn buffered_bytes(&self) -> usize {
        let stream = |s: &Stream| {
            s.head.capacity()
                + s.carry.capacity()
                + match &s.state {
                    State::Body(m) => m.sink.kept.capacity(),
                    _ => 0,
                }
        };
        stream(&self.requests)
            + stream(&self.responses)
            + self
                .pending
                .iter()
                .map(|e| e.tx.request_body.data.len() + e.tx.response_body.data.len())
                .sum::<usize>()
    }

    /// Feeds in-order stream bytes from one side.
    pub fn data(
        &mut self,
        dir: Direction,
        ts_nanos: i64,
        mut data: &[u8],
        cfg: &HttpConfig,
        out: &mut Vec<Transaction>,
    ) {
        // Guard against a state machine that stops consuming: every step must make progress.
        let mut guard = data.len() + 64;
        while !data.is_empty() && !self.not_http && guard > 0 {
            guard -= 1;
            let used = if dir.is_request() {
                self.request_step(ts_nanos, data, cfg, out)
            } else {
                self.response_step(ts_nanos, data, cfg, out)
            };
            data = &data[used.min(data.len())..];
        }
        if guard == 0 && !data.is_empty() && !self.not_http {
            // A step stopped consuming (a bug, which fuzzing in debug builds stops at): the rest
            // of this segment is skipped as a gap, flagged, and parsing resynchronises.
            debug_assert!(
                false,
                "HTTP parser made no progress on {} bytes",
                data.len()
            );
            self.gap(dir, data.len() as u64, cfg, out);
        }
    }

    /// Flags `anomalies` on the message the bytes last delivered on `dir` belong to: the one
    /// being read, else the one that ended last while it awaits emission, else the next.
    pub fn flag(&mut self, dir: Direction, anomalies: Anomalies) {
        let resp_cursor = self.resp_cursor;
        let (stream, pending) = if dir.is_request() {
            (&mut self.requests, &mut self.pending)
        } else {
            (&mut self.responses, &mut self.pending)
        };
        if let State::Body(msg) = &mut stream.state {
            msg.reader.anomalies |= anomalies;
            return;
        }
        let ended_last = if !stream.head.is_empty() || !stream.carry.is_empty() {
            None // part of the next head is in: it is that message's
        } else if dir.is_request() {
            pending.back_mut().filter(|ex| ex.req_done)
        } else {
            resp_cursor.checked_sub(1).and_then(|i| pending.get_mut(i))
        };
        match ended_last {
            Some(ex) => ex.tx.anomalies |= anomalies,
            None => stream.pending_anomalies |= anomalies,
        }
    }

    /// `len` bytes from one side are missing from the capture.
    pub fn gap(&mut self, dir: Direction, len: u64, cfg: &HttpConfig, out: &mut Vec<Transaction>) {
        let stream = self.stream_mut(dir);
        stream.pending_anomalies.insert(Anomalies::GAP);
        stream.carry.clear();
        match std::mem::replace(&mut stream.state, State::Resync) {
            State::Body(mut msg) => {
                if msg.reader.gap(len, &mut msg.sink) {
                    if msg.reader.is_done() {
                        stream.state = State::Head;
                        self.finish_message(dir, msg, true, cfg, out);
                    } else {
                        stream.state = State::Body(msg);
                    }
                } else {
                    self.finish_message(dir, msg, false, cfg, out);
                }
            }
            State::Head if !stream.head.is_empty() => stream.reset_head(),
            State::Stopped => stream.state = State::Stopped,
            State::Start | State::Head | State::Resync => {}
        }
    }

    /// One side finished sending (FIN), or the connection ended for that side.
    pub fn end_of_stream(&mut self, dir: Direction, cfg: &HttpConfig, out: &mut Vec<Transaction>) {
        let stream = self.stream_mut(dir);
        let partial_head = matches!(stream.state, State::Head) && !stream.head.is_empty();
        let head = std::mem::take(&mut stream.head);
        let head_ts = stream.head_ts;
        match std::mem::replace(&mut stream.state, State::Stopped) {
            State::Body(mut msg) => {
                let complete = msg.reader.finish();
                self.finish_message(dir, msg, complete, cfg, out);
            }
            _ if partial_head && !self.not_http => {
                // A head that never completed: record what we can of it.
                let mut h = head;
                h.extend_from_slice(b"\r\n\r\n");
                self.head_complete(dir, head_ts, &h, Anomalies::TRUNCATED_MESSAGE, cfg, out);
                let stream = self.stream_mut(dir);
                if let State::Body(mut msg) = std::mem::replace(&mut stream.state, State::Stopped) {
                    let complete = msg.reader.finish();
                    self.finish_message(dir, msg, complete, cfg, out);
                }
            }
            _ => {}
        }
    }

    /// The connection is over (both sides closed, reset, timed out or evicted): emit everything
    /// still pending, marking what is incomplete.
    pub fn close(&mut self, extra: Anomalies, cfg: &HttpConfig, out: &mut Vec<Transaction>) {
        self.end_of_stream(Direction::FromClient, cfg, out);
        self.end_of_stream(Direction::FromServer, cfg, out);
        while let Some(mut ex) = self.pending.pop_front() {
            if !ex.resp_done && ex.tx.status.is_none() {
                ex.tx.anomalies.insert(Anomalies::MISSING_RESPONSE);
            }
            ex.tx.anomalies.insert(extra);
            out.push(ex.tx);
        }
        self.resp_cursor = 0;
        self.owed = 0;
    }

    fn request_step(
        &mut self,
        ts: i64,
        data: &[u8],
        cfg: &HttpConfig,
        out: &mut Vec<Transaction>,
    ) -> usize {
        match self.requests.state {
            State::Stopped => data.len(),
            State::Start => {
                // Decide from the first bytes whether this connection speaks HTTP at all.
                let probe_len = data.len().min(32);
                match classify_request_start(&data[..probe_len]) {
                    Some(false) => {
                        // Not a request line. Whether this is HTTP at all is for the server's
                        // answer to tell: a status line makes this an unparsable request.
                        self.client_garbled = true;
                        self.requests.state = State::Resync;
                        0
                    }
                    // A request start, or too few bytes to tell: the head parse decides.
                    Some(true) | None => {
                        self.requests.state = State::Head;
                        0
                    }
                }
            }
            State::Resync => self.resync(Direction::FromClient, data),
            State::Head => self.head_step(Direction::FromClient, ts, data, cfg, out),
            State::Body(_) => self.body_step(Direction::FromClient, data, cfg, out),
        }
    }

    fn response_step(
        &mut self,
        ts: i64,
        data: &[u8],
        cfg: &HttpConfig,
        out: &mut Vec<Transaction>,
    ) -> usize {
        match self.responses.state {
            State::Stopped => data.len(),
            State::Start => {
                // The server answers while the client's request head is still open (an
                // HTTP/0.9 `GET /` without line end): the answer means the request is over.
                if self.resp_cursor >= self.pending.len() {
                    self.flush_partial_request(cfg, out);
                }
                // An HTTP/0.9 response has no head: everything until close is the body.
                if self.pending.get(self.resp_cursor).is_some_and(|e| e.http09) {
                    self.responses.head_ts = ts;
                    self.start_http09_response(ts, cfg);
                    return 0;
                }
                let blank = data
                    .iter()
                    .position(|&b| !matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
                    .unwrap_or(data.len());
                if blank > 0 {
                    return blank;
                }
                let probe = &data[..data.len().min(5)];
                if probe.eq_ignore_ascii_case(&b"HTTP/"[..probe.len()]) {
                    self.responses.state = State::Head;
                    0
                } else if let Some(at) = status_line_after_junk(data) {
                    // Junk lines before the status line ("foobar\r\nHTTP/1.1 200"): browsers
                    // skip them, so the response starts at the status line.
                    self.responses
                        .pending_anomalies
                        .insert(Anomalies::JUNK_DATA);
                    self.responses.state = State::Head;
                    at
                } else if self.resp_cursor < self.pending.len() {
                    // A request is waiting and the answer has no status line: browsers show
                    // such a body as is (HTTP/0.9 style), so it is the response.
                    if let Some(ex) = self.pending.get_mut(self.resp_cursor) {
                        ex.http09 = true;
                        ex.tx.anomalies.insert(Anomalies::RESPONSE_PARSE_ERROR);
                    }
                    self.start_http09_response(ts, cfg);
                    0
                } else if self.next_id == 0 {
                    // The server speaks first, or answers garbage with garbage: not HTTP.
                    self.stop_not_http();
                    data.len()
                } else {
                    self.responses
                        .pending_anomalies
                        .insert(Anomalies::JUNK_DATA);
                    self.responses.state = State::Resync;
                    0
                }
            }
            State::Resync => self.resync(Direction::FromServer, data),
            State::Head => {
                if self.responses.head.is_empty()
                    && self.pending.get(self.resp_cursor).is_some_and(|e| e.http09)
                {
                    self.start_http09_response(ts, cfg);
                    return 0;
                }
                self.head_step(Direction::FromServer, ts, data, cfg, out)
            }
            State::Body(_) => self.body_step(Direction::FromServer, data, cfg, out),
        }
    }

    fn flush_partial_request(&mut self, cfg: &HttpConfig, out: &mut Vec<Transaction>) {
        if !matches!(self.requests.state, State::Head) || self.requests.head.is_empty() {
            return;
        }
        let mut h = std::mem::take(&mut self.requests.head);
        let line_end = memchr::memchr(b'\n', &h).unwrap_or(h.len());
        if !head::looks_like_request_line(
            h[..line_end].strip_suffix(b"\r").unwrap_or(&h[..line_end]),
        ) {
            self.requests.head = h;
            return;
        }
        h.extend_from_slice(b"\r\n\r\n");
        let ts = self.requests.head_ts;
        self.head_complete(Direction::FromClient, ts, &h, Anomalies::NONE, cfg, out);
        h.clear();
        if self.requests.head.is_empty() {
            self.requests.head = h;
        }
        self.requests.head_line_seen = false;
    }

    fn start_http09_response(&mut self, ts: i64, cfg: &HttpConfig) {
        let Some(ex) = self.pending.get_mut(self.resp_cursor) else {
            return;
        };
        ex.tx.response_ts_nanos = Some(ts);
        let id = ex.id;
        self.responses.state = State::Body(Message {
            exchange: id,
            reader: BodyReader::new(Framing::UntilClose),
            sink: BodySink::new(cfg.max_body),
            codings: Vec::new(),
        });
    }

    fn stop_not_http(&mut self) {
        self.not_http = true;
        self.requests.state = State::Stopped;
        self.responses.state = State::Stopped;
        self.requests.head = Vec::new();
        self.responses.head = Vec::new();
    }

    /// Skips bytes until something that starts a message at a line start.
    fn resync(&mut self, dir: Direction, data: &[u8]) -> usize {
        let stream = self.stream_mut(dir);
        let carry_len = stream.carry.len();
        if carry_len > 0 {
            // A start split across segments: search the carried tail plus a short prefix.
            let mut window = std::mem::take(&mut stream.carry);
            window.extend_from_slice(&data[..data.len().min(RESYNC_CARRY * 4)]);
            if let Some(at) = find_message_start(&window, dir, false)
                && at < carry_len
            {
                stream.state = State::Head;
                stream.reset_head();
                stream.head.extend_from_slice(&window[at..carry_len]);
                return 0;
            }
            window.clear();
            stream.carry = window;
        }
        match find_message_start(data, dir, carry_len == 0) {
            Some(at) => {
                stream.state = State::Head;
                stream.reset_head();
                at
            }
            None => {
                let keep_from = data.len().saturating_sub(RESYNC_CARRY);
                stream.carry.extend_from_slice(&data[keep_from..]);
                data.len()
            }
        }
    }

    fn head_step(
        &mut self,
        dir: Direction,
        ts: i64,
        data: &[u8],
        cfg: &HttpConfig,
        out: &mut Vec<Transaction>,
    ) -> usize {
        let stream = self.stream_mut(dir);
        if stream.head.is_empty() {
            // Tolerate empty lines between messages (RFC 9112 §2.2).
            let skip = data
                .iter()
                .position(|&b| b != b'\r' && b != b'\n')
                .unwrap_or(data.len());
            if skip > 0 {
                return skip;
            }
            stream.head_ts = ts;
            // Fastest path: a clean head, whole in this segment.
            let window = &data[..data.len().min(cfg.max_head)];
            if dir.is_request() {
                if let Some((h, len)) = head::parse_request_fast(window) {
                    self.request_head(ts, h, Anomalies::NONE, cfg, out);
                    return len;
                }
            } else if let Some((h, len)) = head::parse_response_fast(window) {
                self.response_head(ts, h, Anomalies::NONE, cfg, out);
                return len;
            }
            // Fast path: the whole head is in this segment, parse it in place.
            if let Some(end) = find_end(dir, window) {
                let head_ts = stream.head_ts;
                self.head_complete(dir, head_ts, &data[..end], Anomalies::NONE, cfg, out);
                return end;
            }
        }
        let before = stream.head.len();
        let room = cfg.max_head.saturating_sub(before);
        let take = data.len().min(room);
        stream.head.extend_from_slice(&data[..take]);
        // The terminator may straddle the previous segment: search a few bytes back.
        let search_from = before.saturating_sub(3);
        // An HTTP/0.9 request ends with its first line: check that line once, when its end
        // arrives (checking on every segment would be quadratic in the line's length).
        let first_nl = if dir.is_request() && !stream.head_line_seen {
            memchr::memchr(b'\n', &stream.head[before..]).map(|i| before + i)
        } else {
            None
        };
        if first_nl.is_some() {
            stream.head_line_seen = true;
        }
        let found = match first_nl.and_then(|nl| head::find_request_head_end(&stream.head[..=nl])) {
            Some(end) => Some(end - search_from),
            None => head::find_head_end(&stream.head[search_from..]),
        };
        if let Some(rel) = found {
            let end = search_from + rel;
            let used = end - before;
            let h = std::mem::take(&mut stream.head);
            let head_ts = stream.head_ts;
            self.head_complete(dir, head_ts, &h[..end], Anomalies::NONE, cfg, out);
            let stream = self.stream_mut(dir);
            stream.head = h;
            stream.reset_head();
            return used;
        }
        if stream.head.len() >= cfg.max_head {
            let mut h = std::mem::take(&mut stream.head);
            if dir.is_request() && memchr::memchr(b'\n', &h).is_none() {
                // The request line itself was cut (a huge URI): its version was never seen.
                // Read it as HTTP/1.1, not as a version-less HTTP/0.9 request whose answer
                // would be taken for a bare body.
                h.extend_from_slice(b" HTTP/1.1");
            }
            h.extend_from_slice(b"\r\n\r\n");
            let head_ts = stream.head_ts;
            self.head_complete(dir, head_ts, &h, Anomalies::HEADERS_TOO_LONG, cfg, out);
            let stream = self.stream_mut(dir);
            stream.state = State::Resync;
            stream.head = h;
            stream.reset_head();
            // A body state set by head_complete is meaningless after a cut head.
            return take;
        }
        take
    }

    fn body_step(
        &mut self,
        dir: Direction,
        data: &[u8],
        cfg: &HttpConfig,
        out: &mut Vec<Transaction>,
    ) -> usize {
        let stream = self.stream_mut(dir);
        let State::Body(msg) = &mut stream.state else {
            return 0;
        };
        let fed = msg.reader.feed(data, &mut msg.sink);
        if fed.done {
            let next = if fed.broken {
                State::Resync
            } else {
                State::Head
            };
            if let State::Body(msg) = std::mem::replace(&mut stream.state, next) {
                self.finish_message(dir, msg, !fed.broken, cfg, out);
            }
        }
        fed.consumed
    }

    /// A complete head was read on one side.
    fn head_complete(
        &mut self,
        dir: Direction,
        ts: i64,
        raw: &[u8],
        extra: Anomalies,
        cfg: &HttpConfig,
        out: &mut Vec<Transaction>,
    ) {
        if dir.is_request() {
            match head::parse_request_head(raw) {
                Some(h) => self.request_head(ts, h, extra, cfg, out),
                None => {
                    if self.next_id == 0 && !self.requests_midstream() {
                        self.client_garbled = true;
                    } else {
                        self.requests.pending_anomalies.insert(Anomalies::JUNK_DATA);
                    }
                    self.requests.state = State::Resync;
                }
            }
        } else {
            match head::parse_response_head(raw) {
                Some(h) => self.response_head(ts, h, extra, cfg, out),
                None => {
                    self.responses
                        .pending_anomalies
                        .insert(Anomalies::JUNK_DATA);
                    self.responses.state = State::Resync;
                }
            }
        }
    }

    fn requests_midstream(&self) -> bool {
        self.requests
            .pending_anomalies
            .contains(Anomalies::MIDSTREAM)
    }

    fn request_head(
        &mut self,
        ts: i64,
        h: RequestHead,
        extra: Anomalies,
        cfg: &HttpConfig,
        out: &mut Vec<Transaction>,
    ) {
        let (framing, framing_flags) = request_framing(&h);
        let codings = content_codings(&h.headers);
        let id = self.next_id;
        self.next_id += 1;
        let mut anomalies = h.anomalies | framing_flags | extra;
        anomalies |= std::mem::take(&mut self.requests.pending_anomalies);
        if self.client_closing {
            anomalies |= Anomalies::REQUEST_AFTER_CLOSE;
        }
        self.client_closing |= closes_connection(&h);
        let host = request_host(&h, &mut anomalies);
        let http09 = h.version == HttpVersion::Http09;
        let tx = Transaction {
            request_ts_nanos: ts,
            client: self.client_addr,
            server: self.server_addr,
            method: h.method,
            host,
            uri: h.target,
            version: h.version,
            request_headers: h.headers,
            anomalies,
            ..Transaction::default()
        };
        let upgrade = tx.method.eq_ignore_ascii_case("CONNECT");
        self.pending.push_back(Exchange {
            id,
            tx,
            req_done: false,
            resp_done: false,
            http09,
        });
        if self.pending.len() > cfg.max_pending {
            self.give_up_oldest(out);
        }
        let msg = Message::new(id, framing, codings, cfg);
        if msg.reader.is_done() {
            self.requests.state = if http09 || upgrade {
                // HTTP/0.9 is one request per connection; CONNECT waits for the tunnel.
                State::Stopped
            } else {
                State::Head
            };
            self.finish_message(Direction::FromClient, msg, true, cfg, out);
        } else {
            self.requests.state = State::Body(msg);
        }
    }

    fn response_head(
        &mut self,
        ts: i64,
        h: ResponseHead,
        extra: Anomalies,
        cfg: &HttpConfig,
        out: &mut Vec<Transaction>,
    ) {
        // 1xx other than 101 are interim: the final response follows on the same exchange.
        if (100..200).contains(&h.status) && h.status != 101 {
            self.responses.state = State::Head;
            return;
        }
        let mut anomalies = h.anomalies | extra;
        anomalies |= std::mem::take(&mut self.responses.pending_anomalies);
        if self.owed > 0 && self.resp_cursor == 0 {
            // The response owed to a request emitted at the pipelining cap.
            self.owed -= 1;
            let ex = self.response_only(ts, Anomalies::PIPELINE_OVERFLOW);
            self.pending.push_front(ex);
        } else if self.resp_cursor >= self.pending.len() {
            // A response with no request we saw: the client sent something we could not parse
            // as a request, or nothing.
            let why = if std::mem::take(&mut self.client_garbled) {
                Anomalies::REQUEST_PARSE_ERROR
            } else {
                Anomalies::MISSING_REQUEST
            };
            let ex = self.response_only(ts, why);
            self.pending.push_back(ex);
        }
        let codings = content_codings(&h.headers);
        let Some(ex) = self.pending.get_mut(self.resp_cursor) else {
            return;
        };
        let method: &str = &ex.tx.method;
        let switching = h.status == 101
            || (method.eq_ignore_ascii_case("CONNECT") && (200..300).contains(&h.status));
        let (framing, framing_flags) = if switching {
            (Framing::Empty, Anomalies::PROTOCOL_SWITCH)
        } else {
            response_framing(method, &h)
        };
        ex.tx.status = Some(h.status);
        ex.tx.reason = Some(h.reason);
        ex.tx.response_ts_nanos = Some(ts);
        ex.tx.response_headers = h.headers;
        ex.tx.anomalies |= anomalies | framing_flags;
        let msg = Message::new(ex.id, framing, codings, cfg);
        if switching {
            // The connection now carries another protocol: stop parsing both ways.
            self.requests.state = State::Stopped;
            self.responses.state = State::Stopped;
            if let Some(ex) = self.pending.get_mut(self.resp_cursor)
                && !ex.req_done
            {
                ex.req_done = true;
            }
            self.finish_message(Direction::FromServer, msg, true, cfg, out);
            return;
        }
        if msg.reader.is_done() {
            self.responses.state = State::Head;
            self.finish_message(Direction::FromServer, msg, true, cfg, out);
        } else {
            self.responses.state = State::Body(msg);
        }
    }

    /// More requests wait than `max_pending`: emit the oldest now. When its response has not
    /// begun, the next response is owed to it and becomes a record of its own, so the later
    /// ones still pair with their own requests.
    fn give_up_oldest(&mut self, out: &mut Vec<Transaction>) {
        if let Some(mut ex) = self.pending.pop_front() {
            if ex.tx.status.is_none() {
                ex.tx.anomalies.insert(Anomalies::PIPELINE_OVERFLOW);
                self.owed += 1;
            } else if !ex.resp_done {
                ex.tx.anomalies.insert(Anomalies::TRUNCATED_MESSAGE);
            }
            out.push(ex.tx);
            self.resp_cursor = self.resp_cursor.saturating_sub(1);
        }
    }

    /// A new exchange for a response without a request of its own, flagged `why`.
    fn response_only(&mut self, ts: i64, why: Anomalies) -> Exchange {
        let id = self.next_id;
        self.next_id += 1;
        Exchange {
            id,
            tx: Transaction {
                request_ts_nanos: ts,
                client: self.client_addr,
                server: self.server_addr,
                anomalies: why,
                ..Transaction::default()
            },
            req_done: true,
            resp_done: false,
            http09: false,
        }
    }

    fn finish_message(
        &mut self,
        dir: Direction,
        msg: Message,
        complete: bool,
        cfg: &HttpConfig,
        out: &mut Vec<Transaction>,
    ) {
        let Message {
            exchange,
            reader,
            sink,
            codings,
        } = msg;
        let mut anomalies = reader.anomalies;
        let body = if codings.is_empty() {
            Body {
                truncated: (sink.kept.len() as u64) < sink.len,
                data: sink.kept,
                len: sink.len,
            }
        } else {
            let input_complete =
                complete && sink.missing == 0 && sink.kept.len() as u64 == sink.len;
            let d = encoding::decode(
                &sink.kept,
                &codings,
                cfg.max_body,
                cfg.max_decoded,
                input_complete,
            );
            anomalies |= d.anomalies;
            Body {
                truncated: (d.data.len() as u64) < d.len || !input_complete,
                data: d.data,
                len: d.len,
            }
        };
        let Some(pos) = self.pending.iter().position(|e| e.id == exchange) else {
            return;
        };
        let ex = &mut self.pending[pos];
        ex.tx.anomalies |= anomalies;
        if dir.is_request() {
            ex.tx.request_body = body;
            ex.req_done = true;
        } else {
            ex.tx.response_body = body;
            ex.resp_done = true;
            if pos == self.resp_cursor {
                self.resp_cursor += 1;
            }
        }
        while self
            .pending
            .front()
            .is_some_and(|e| e.req_done && e.resp_done)
        {
            if let Some(ex) = self.pending.pop_front() {
                out.push(ex.tx);
                self.resp_cursor = self.resp_cursor.saturating_sub(1);
            }
        }
    }
}

/// Where a status line starts after a few junk lines at the start of a response, if one does
/// within the first lines.
fn status_line_after_junk(data: &[u8]) -> Option<usize> {
    const JUNK_WINDOW: usize = 256;
    let window = &data[..data.len().min(JUNK_WINDOW)];
    memchr::memmem::find_iter(window, b"\nHTTP/")
        .map(|i| i + 1)
        .find(|&at| head::looks_like_status_line(line_of(&data[at..]).unwrap_or(&data[at..])))
}

fn find_end(dir: Direction, buf: &[u8]) -> Option<usize> {
    if dir.is_request() {
        head::find_request_head_end(buf)
    } else {
        head::find_head_end(buf)
    }
}

/// `Some(true)`: looks like a request start; `Some(false)`: cannot be one; `None`: too short.
fn classify_request_start(probe: &[u8]) -> Option<bool> {
    let Some(sp) = memchr::memchr(b' ', probe) else {
        let plausible = probe
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-_".contains(&b) || b == b'\r' || b == b'\n');
        return if !plausible || probe.len() > 24 {
            Some(false)
        } else {
            None
        };
    };
    let method = trim_leading_newlines(&probe[..sp]);
    Some(head::is_method_token(method))
}

fn trim_leading_newlines(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|&c| c != b'\r' && c != b'\n')
        .unwrap_or(b.len());
    &b[start..]
}

/// Where the next message starts in `buf`, at a line start (or at 0 when `at_start`).
fn find_message_start(buf: &[u8], dir: Direction, at_start: bool) -> Option<usize> {
    let starts_message = |at: usize| -> bool {
        let rest = &buf[at..];
        if dir.is_request() {
            RESYNC_METHODS.iter().any(|m| rest.starts_with(m))
                && line_of(rest).is_none_or(head::looks_like_request_line)
        } else {
            rest.starts_with(b"HTTP/1.") && line_of(rest).is_none_or(head::looks_like_status_line)
        }
    };
    if at_start && starts_message(0) {
        return Some(0);
    }
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'\n', &buf[from..]) {
        let at = from + i + 1;
        if at < buf.len() && starts_message(at) {
            return Some(at);
        }
        from = at;
    }
    None
}

/// The line starting at `buf[0]` without its ending, if the line is complete.
fn line_of(buf: &[u8]) -> Option<&[u8]> {
    let nl = memchr::memchr(b'\n', buf)?;
    Some(buf[..nl].strip_suffix(b"\r").unwrap_or(&buf[..nl]))
}

/// The body framing of a message from its Transfer-Encoding and Content-Length headers
/// (RFC 9112 §6.3). Returns `None` framing decisions as anomalies.
fn length_framing(headers: &Headers, use_te: bool) -> (Option<Framing>, Anomalies) {
    let mut flags = Anomalies::NONE;
    let mut te = headers
        .get_all("transfer-encoding")
        .filter(|_| use_te)
        .peekable();
    let mut cl = headers.get_all("content-length").peekable();
    if te.peek().is_some() {
        if cl.peek().is_some() {
            flags.insert(Anomalies::TE_AND_CL);
        }
        // Lenient token reading, the union of what clients accept (a coding any of them
        // decodes is where an attacker hides a body): parameters dropped, stray punctuation
        // and control bytes trimmed, "chunked" anywhere makes the body chunked. Chromium is
        // stricter (`chunkedx`, `chunked;q=1` are not chunked to it): flagged as odd.
        // Chromium's reading, to flag where ours is more lenient.
        let chromium_chunked = headers
            .get_all("transfer-encoding")
            .flat_map(|v| v.split(','))
            .any(|c| c.trim_matches([' ', '\t']).eq_ignore_ascii_case("chunked"));
        let codings = te.flat_map(|v| v.split(',')).map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                // A CR is not trimmed: "\r chunked" is not chunked to browsers.
                .trim_matches(|ch: char| !ch.is_ascii_alphanumeric() && ch != '\r')
        });
        let (mut count, mut only_chunked, mut chunked) = (0, true, false);
        for c in codings.filter(|c| !c.is_empty()) {
            count += 1;
            // "chunkedx" reads as chunked to lenient clients, "chunked x" does not.
            let starts_chunked = c.len() >= 7 && c.as_bytes()[..7].eq_ignore_ascii_case(b"chunked");
            chunked |= starts_chunked && !c.contains(char::is_whitespace);
            only_chunked &= c.eq_ignore_ascii_case("chunked");
        }
        if count != 1 || !only_chunked || chunked != chromium_chunked {
            flags.insert(Anomalies::BAD_TRANSFER_ENCODING);
        }
        if chunked {
            return (Some(Framing::Chunked), flags);
        }
        // Not chunked: Content-Length decides, as if the field were not there (Chromium).
    }
    // The common case: one plain Content-Length.
    if let Some(first) = cl.next() {
        let single = cl.peek().is_none() && !first.contains(',');
        if single && let Some(n) = parse_decimal(first.trim()).filter(|&n| n <= i64::MAX as u64) {
            return (Some(Framing::Length(n)), flags);
        }
        // Repeated or listed lengths, even equal ones (`13, 13`), are refused by most servers
        // (nginx, Node, h11): read the value, flag the framing.
        flags.insert(Anomalies::BAD_CONTENT_LENGTH);
        let mut value: Option<u64> = None;
        let cl = std::iter::once(first).chain(cl);
        for v in cl.flat_map(|v| v.split(',')) {
            match parse_decimal(v.trim()) {
                // Beyond i64::MAX no server accepts it; overflow tricks are a smuggling sign.
                Some(n) if n <= i64::MAX as u64 => match value {
                    Some(prev) if prev != n => flags.insert(Anomalies::BAD_CONTENT_LENGTH),
                    Some(_) => {}
                    None => value = Some(n),
                },
                _ => flags.insert(Anomalies::BAD_CONTENT_LENGTH),
            }
        }
        return (value.map(Framing::Length), flags);
    }
    // Only an ambiguous field (whitespace before its name) asks for chunking: honour it, as
    // lenient clients do when nothing plain decides.
    let ambiguous_chunked = use_te
        && headers.iter().any(|(n, v)| {
            n.starts_with([' ', '\t'])
                && n.trim_start().eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
        });
    if ambiguous_chunked {
        flags.insert(Anomalies::BAD_TRANSFER_ENCODING);
        return (Some(Framing::Chunked), flags);
    }
    (None, flags)
}

/// Plain decimal digits only (no sign, no spaces), without overflow.
fn parse_decimal(v: &str) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.bytes().try_fold(0u64, |n, b| {
        b.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(u64::from(b - b'0')))
            .flatten()
    })
}

/// Whether the connection ends after this request: `Connection: close`, or HTTP/1.0 without
/// `Connection: keep-alive` (RFC 9112 §9.3).
fn closes_connection(h: &RequestHead) -> bool {
    let has = |token: &str| {
        h.headers
            .get_all("connection")
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    match h.version {
        HttpVersion::Http10 => !has("keep-alive"),
        _ => has("close"),
    }
}

fn request_framing(h: &RequestHead) -> (Framing, Anomalies) {
    if h.version == HttpVersion::Http09 {
        return (Framing::Empty, Anomalies::NONE);
    }
    let (framing, flags) = length_framing(&h.headers, true);
    (framing.unwrap_or(Framing::Empty), flags)
}

fn response_framing(method: &str, h: &ResponseHead) -> (Framing, Anomalies) {
    if method.eq_ignore_ascii_case("HEAD")
        || (100..200).contains(&h.status)
        || h.status == 204
        || h.status == 304
    {
        return (Framing::Empty, Anomalies::NONE);
    }
    if h.version == HttpVersion::Http10 && h.headers.get("transfer-encoding").is_some() {
        // HTTP/1.0 has no transfer codings: clients ignore the header (RFC 9112 §6.1).
        let (framing, flags) = length_framing(&h.headers, false);
        return (
            framing.unwrap_or(Framing::UntilClose),
            flags | Anomalies::BAD_TRANSFER_ENCODING,
        );
    }
    let (framing, flags) = length_framing(&h.headers, true);
    (framing.unwrap_or(Framing::UntilClose), flags)
}

fn content_codings(headers: &Headers) -> Vec<Coding> {
    let mut all = Vec::new();
    for v in headers.get_all("content-encoding") {
        all.extend(encoding::parse_codings(v));
    }
    all
}

fn request_host(h: &RequestHead, anomalies: &mut Anomalies) -> Option<String> {
    let mut hosts = h.headers.get_all("host");
    let header = hosts.next().map(str::to_owned);
    if hosts.next().is_some() {
        anomalies.insert(Anomalies::AMBIGUOUS_HOST);
    }
    // Absolute-form authority takes precedence (RFC 9112 §3.2.2).
    let authority = h.target.find("://").map(|i| {
        let after = &h.target[i + 3..];
        let end = after.find(['/', '?']).unwrap_or(after.len());
        after[..end].to_owned()
    });
    match (authority, header) {
        (Some(a), Some(hd)) => {
            if !a.eq_ignore_ascii_case(&hd) {
                anomalies.insert(Anomalies::AMBIGUOUS_HOST);
            }
            Some(a)
        }
        (Some(a), None) => Some(a),
        (None, hd) => hd,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapline_record::split_target;

    fn run(client: &[&[u8]], server: &[&[u8]]) -> Vec<Transaction> {
        let cfg = HttpConfig::default();
        let mut c = HttpConnection::new(None, None, false);
        let mut out = Vec::new();
        for (i, part) in client.iter().enumerate() {
            c.data(Direction::FromClient, i as i64, part, &cfg, &mut out);
        }
        for (i, part) in server.iter().enumerate() {
            c.data(Direction::FromServer, 100 + i as i64, part, &cfg, &mut out);
        }
        c.close(Anomalies::NONE, &cfg, &mut out);
        out
    }

    #[test]
    fn repeated_or_listed_content_lengths_are_read_and_flagged() {
        for cl in [
            "Content-Length: 3, 3",
            "Content-Length: 3\r\nContent-Length: 3",
        ] {
            let req = format!("POST / HTTP/1.1\r\n{cl}\r\n\r\nabc");
            let out = run(&[req.as_bytes()], &[]);
            assert_eq!(out.len(), 1, "{cl}");
            assert_eq!(out[0].request_body.data, b"abc");
            assert!(
                out[0].anomalies.contains(Anomalies::BAD_CONTENT_LENGTH),
                "{cl}"
            );
        }
    }

    #[test]
    fn a_request_after_one_that_closes_the_connection_is_flagged() {
        let flagged = |first: &[u8]| {
            let second: &[u8] = b"GET /second HTTP/1.1\r\nHost: h\r\n\r\n";
            let out = run(&[first, second], &[]);
            assert_eq!(out.len(), 2);
            assert!(!out[0].anomalies.contains(Anomalies::REQUEST_AFTER_CLOSE));
            out[1].anomalies.contains(Anomalies::REQUEST_AFTER_CLOSE)
        };
        assert!(flagged(b"GET / HTTP/1.0\r\nHost: h\r\n\r\n"));
        assert!(flagged(
            b"GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n"
        ));
        assert!(!flagged(
            b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"
        ));
        assert!(!flagged(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    }

    /// `n` pipelined GETs, all sent before the first response; each response's body names
    /// its request.
    fn pipeline(n: usize) -> Vec<Transaction> {
        let requests: String = (1..=n)
            .map(|i| format!("GET /p/{i} HTTP/1.1\r\nHost: h\r\n\r\n"))
            .collect();
        let responses: String = (1..=n)
            .map(|i| {
                let body = format!("r{i}");
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            })
            .collect();
        run(&[requests.as_bytes()], &[responses.as_bytes()])
    }

    #[test]
    fn test_deep_pipelines_pair_every_response_with_its_own_request() {
        for n in [64, 65, 200] {
            let out = pipeline(n);
            let paired: Vec<&Transaction> = out
                .iter()
                .filter(|t| !t.uri.is_empty() && t.status.is_some())
                .collect();
            for t in &paired {
                let i = t.uri.trim_start_matches("/p/");
                assert_eq!(
                    t.response_body.data,
                    format!("r{i}").as_bytes(),
                    "n={n}: {}",
                    t.uri
                );
                assert!(!t.anomalies.contains(Anomalies::PIPELINE_OVERFLOW));
            }
            // Beyond the cap the oldest requests and their responses are separate records,
            // flagged, and nothing is lost.
            let over = n.saturating_sub(HttpConfig::default().max_pending);
            let flagged = out
                .iter()
                .filter(|t| t.anomalies.contains(Anomalies::PIPELINE_OVERFLOW));
            assert_eq!(flagged.count(), 2 * over, "n={n}");
            assert_eq!(paired.len() + over, n, "n={n}");
            let orphans: Vec<&Transaction> = out.iter().filter(|t| t.uri.is_empty()).collect();
            for (k, t) in orphans.iter().enumerate() {
                assert_eq!(t.response_body.data, format!("r{}", k + 1).as_bytes());
            }
            assert!(
                out.iter()
                    .all(|t| !t.anomalies.contains(Anomalies::MISSING_RESPONSE))
            );
        }
    }

    #[test]
    fn test_keepalive_pipelining() {
        let out = run(
            &[b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"],
            &[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"],
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].path(), "/a");
        assert_eq!(out[0].status, Some(200));
        assert_eq!(out[0].response_body.data, b"ok");
        assert_eq!(out[1].method, "POST");
        assert_eq!(out[1].request_body.data, b"abc");
        assert_eq!(out[1].status, Some(201));
        assert_eq!(out[1].response_body.data, b"x");
        assert!(out.iter().all(|t| t.anomalies.is_empty()), "{out:?}");
    }

    #[test]
    fn test_head_split_across_segments() {
        let req: &[u8] = b"GET /split?x=1 HTTP/1.1\r\nHost: example\r\n\r\n";
        for cut in 1..req.len() {
            let out = run(
                &[&req[..cut], &req[cut..]],
                &[b"HTTP/1.1 204 No Content\r\n\r\n"],
            );
            assert_eq!(out.len(), 1, "cut {cut}");
            assert_eq!(out[0].query(), Some("x=1"));
            assert_eq!(out[0].host.as_deref(), Some("example"));
            assert_eq!(out[0].status, Some(204));
        }
    }

    #[test]
    fn test_head_response_has_no_body_and_100_continue() {
        let out = run(
            &[b"HEAD / HTTP/1.1\r\n\r\nPUT /u HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nz"],
            &[b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"],
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].response_body.len, 0);
        assert_eq!(out[1].status, Some(200));
        assert_eq!(out[1].request_body.data, b"z");
    }

    #[test]
    fn test_close_delimited_and_missing_response() {
        let out = run(
            &[b"GET /x HTTP/1.0\r\n\r\n"],
            &[b"HTTP/1.0 200 OK\r\n\r\nall of it"],
        );
        assert_eq!(out[0].response_body.data, b"all of it");
        let out = run(&[b"GET /y HTTP/1.1\r\n\r\n"], &[]);
        assert!(out[0].anomalies.contains(Anomalies::MISSING_RESPONSE));
    }

    #[test]
    fn test_smuggling_signs() {
        let out = run(
            &[b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"],
            &[b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"],
        );
        assert!(out[0].anomalies.contains(Anomalies::TE_AND_CL));
        let out = run(
            &[b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"],
            &[],
        );
        assert!(out[0].anomalies.contains(Anomalies::BAD_CONTENT_LENGTH));
    }

    #[test]
    fn test_not_http_is_ignored() {
        let cfg = HttpConfig::default();
        let mut c = HttpConnection::new(None, None, false);
        let mut out = Vec::new();
        c.data(
            Direction::FromClient,
            0,
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
            &cfg,
            &mut out,
        );
        c.data(
            Direction::FromServer,
            1,
            b"\x16\x03\x03\x00\x5d\x02\x00",
            &cfg,
            &mut out,
        );
        assert!(c.is_not_http());
        c.close(Anomalies::NONE, &cfg, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn test_unparsable_request_pairs_with_its_response() {
        let out = run(
            &[b"OPTIONSHTTP/1.1\nHost: www.example.com\n\n"],
            &[b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n"],
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status, Some(400));
        assert!(out[0].anomalies.contains(Anomalies::REQUEST_PARSE_ERROR));
        let out = run(&[b"SSH-2.0-OpenSSH_9.0\r\n"], &[b"SSH-2.0-OpenSSH_9.2\r\n"]);
        assert!(out.is_empty());
    }

    #[test]
    fn test_midstream_resync() {
        let cfg = HttpConfig::default();
        let mut c = HttpConnection::new(None, None, true);
        let mut out = Vec::new();
        c.data(
            Direction::FromClient,
            0,
            b"tail of a body\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n",
            &cfg,
            &mut out,
        );
        c.data(
            Direction::FromServer,
            1,
            b"dy>\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            &cfg,
            &mut out,
        );
        c.close(Anomalies::NONE, &cfg, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].path(), "/next");
        assert_eq!(out[0].status, Some(200));
        assert!(out[0].anomalies.contains(Anomalies::MIDSTREAM));
    }

    #[test]
    fn test_connect_stops_parsing() {
        let out = run(
            &[b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01binary"],
            &[b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03more binary"],
        );
        assert_eq!(out.len(), 1);
        assert!(out[0].anomalies.contains(Anomalies::PROTOCOL_SWITCH));
    }

    #[test]
    fn test_http09() {
        let out = run(&[b"GET /old\r\n"], &[b"<html>hi</html>"]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].version, HttpVersion::Http09);
        assert_eq!(out[0].response_body.data, b"<html>hi</html>");
    }

    #[test]
    fn test_non_ascii_transfer_coding_is_not_chunked() {
        // Found by the http_conn fuzz target: a multi-byte character across byte 7.
        let out = run(
            &[b"GET / HTTP/1.1\r\n\r\n"],
            &["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunkH\u{17e}D ed\r\n\r\nabc".as_bytes()],
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].response_body.data, b"abc");
        assert!(out[0].anomalies.contains(Anomalies::BAD_TRANSFER_ENCODING));
    }

    #[test]
    fn test_a_request_line_longer_than_the_head_limit_still_pairs_its_response() {
        let req = [
            &b"GET /q?"[..],
            &vec![b'a'; 100_000],
            b" HTTP/1.1\r\nHost: x\r\n\r\n",
        ]
        .concat();
        let out = run(
            &[&req],
            &[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
        );
        assert_eq!(out.len(), 1);
        let t = &out[0];
        assert_eq!(t.status, Some(200), "{t:?}");
        assert_eq!(t.response_body.data, b"ok");
        assert!(t.anomalies.contains(Anomalies::HEADERS_TOO_LONG));
        assert!(t.uri.starts_with("/q?aaa") && t.uri.len() > 60_000);
    }

    #[test]
    fn test_a_transfer_encoding_that_is_not_chunked_leaves_content_length_in_charge() {
        // Chromium, curl and Node frame this by its length (found by tests/framing).
        let out = run(
            &[b"GET / HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"],
            &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 204 No Content\r\n\r\n"],
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].response_body.data, b"abc");
        assert!(out[0].anomalies.contains(Anomalies::BAD_TRANSFER_ENCODING));
        assert_eq!(
            out[1].status,
            Some(204),
            "the next response is not swallowed"
        );
        // Lenient where Chromium is not: decoded, and said so.
        let out = run(
            &[b"GET / HTTP/1.1\r\n\r\n"],
            &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;q=1\r\n\r\n2\r\nok\r\n0\r\n\r\n"],
        );
        assert_eq!(out[0].response_body.data, b"ok");
        assert!(out[0].anomalies.contains(Anomalies::BAD_TRANSFER_ENCODING));
    }

    #[test]
    fn test_split_target() {
        assert_eq!(split_target("/a?b#c"), ("/a", Some("b")));
        assert_eq!(split_target("http://h:8/p?q"), ("/p", Some("q")));
        assert_eq!(split_target("http://h"), ("/", None));
    }
}
