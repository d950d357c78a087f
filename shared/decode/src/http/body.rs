//! Body framing: Content-Length, chunked (extensions, trailers) and close-delimited bodies,
//! fed incrementally from a reassembled stream.

use tapline_record::Anomalies;

/// Longest chunk-size or trailer line we buffer before calling the framing broken.
const MAX_CHUNK_LINE: usize = 4096;

/// How a message body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the connection closes.
    UntilClose,
}

impl Framing {
    /// The body length the head announced, if it did.
    pub fn expected_len(self) -> Option<u64> {
        match self {
            Framing::Length(n) => Some(n),
            _ => None,
        }
    }
}

/// Collects the de-chunked body: keeps at most `keep_cap` bytes, counts all of them.
#[derive(Debug, Default)]
pub struct BodySink {
    /// Bytes kept.
    pub kept: Vec<u8>,
    /// Bytes seen, including dropped and missing ones.
    pub len: u64,
    /// Bytes missing because of capture gaps.
    pub missing: u64,
    /// The cap on `kept`.
    pub keep_cap: usize,
}

impl BodySink {
    /// A sink that keeps up to `keep_cap` bytes.
    pub fn new(keep_cap: usize) -> Self {
        BodySink {
            kept: Vec::new(),
            len: 0,
            missing: 0,
            keep_cap,
        }
    }

    /// A sink for a body announced as `expected` bytes: room for them is reserved up front
    /// (bounded, since the announcement comes from the peer), so typical bodies are copied
    /// once into one allocation.
    pub fn with_expected(keep_cap: usize, expected: Option<u64>) -> Self {
        const MAX_RESERVE: usize = 64 * 1024;
        let reserve = expected.map_or(0, |n| n.min(keep_cap.min(MAX_RESERVE) as u64) as usize);
        BodySink {
            kept: Vec::with_capacity(reserve),
            ..BodySink::new(keep_cap)
        }
    }

    fn push(&mut self, data: &[u8]) {
        self.len += data.len() as u64;
        let room = self.keep_cap.saturating_sub(self.kept.len());
        if room > 0 {
            self.kept.extend_from_slice(&data[..data.len().min(room)]);
        }
    }

    fn gap(&mut self, len: u64) {
        self.len += len;
        self.missing += len;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// Reading a chunk-size line.
    Size,
    /// Inside chunk data, this many bytes left.
    Data(u64),
    /// After chunk data: expecting CRLF (or LF).
    DataEnd,
    /// Reading trailer lines until an empty one.
    Trailer,
}

/// Incremental body reader.
#[derive(Debug)]
pub struct BodyReader {
    framing: Framing,
    remaining: u64,
    chunk: Chunk,
    line: Vec<u8>,
    done: bool,
    /// Anomalies found while framing.
    pub anomalies: Anomalies,
}

/// Result of feeding bytes to a [`BodyReader`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fed {
    /// Bytes of the input that belong to this body.
    pub consumed: usize,
    /// The body is complete.
    pub done: bool,
    /// Framing broke; the rest of the stream cannot be trusted to be aligned.
    pub broken: bool,
}

impl BodyReader {
    /// A reader for the given framing.
    pub fn new(framing: Framing) -> Self {
        BodyReader {
            framing,
            remaining: match framing {
                Framing::Length(n) => n,
                _ => 0,
            },
            chunk: Chunk::Size,
            line: Vec::new(),
            done: matches!(framing, Framing::Empty | Framing::Length(0)),
            anomalies: Anomalies::NONE,
        }
    }

    /// The framing this reader follows.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// True once the body is complete.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Feeds stream bytes; body bytes go to `sink`.
    pub fn feed(&mut self, data: &[u8], sink: &mut BodySink) -> Fed {
        if self.done {
            return Fed {
                consumed: 0,
                done: true,
                broken: false,
            };
        }
        match self.framing {
            Framing::Empty => Fed {
                consumed: 0,
                done: true,
                broken: false,
            },
            Framing::Length(_) => {
                let take = (self.remaining.min(data.len() as u64)) as usize;
                sink.push(&data[..take]);
                self.remaining -= take as u64;
                self.done = self.remaining == 0;
                Fed {
                    consumed: take,
                    done: self.done,
                    broken: false,
                }
            }
            Framing::UntilClose => {
                sink.push(data);
                Fed {
                    consumed: data.len(),
                    done: false,
                    broken: false,
                }
            }
            Framing::Chunked => self.feed_chunked(data, sink),
        }
    }

    fn feed_chunked(&mut self, data: &[u8], sink: &mut BodySink) -> Fed {
        let mut pos = 0;
        while pos < data.len() && !self.done {
            match self.chunk {
                Chunk::Data(left) => {
                    let take = left.min((data.len() - pos) as u64) as usize;
                    sink.push(&data[pos..pos + take]);
                    pos += take;
                    let left = left - take as u64;
                    self.chunk = if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    };
                }
                Chunk::DataEnd => {
                    // Accept CRLF or bare LF; anything else is broken framing.
                    match data[pos] {
                        b'\r' if self.line.is_empty() => {
                            self.line.push(b'\r');
                            pos += 1;
                        }
                        b'\n' => {
                            self.line.clear();
                            pos += 1;
                            self.chunk = Chunk::Size;
                        }
                        _ => return self.broken(pos),
                    }
                }
                Chunk::Size | Chunk::Trailer => {
                    let Some(nl) = memchr::memchr(b'\n', &data[pos..]) else {
                        self.line.extend_from_slice(&data[pos..]);
                        if self.line.len() > MAX_CHUNK_LINE {
                            return self.broken(data.len());
                        }
                        return Fed {
                            consumed: data.len(),
                            done: false,
                            broken: false,
                        };
                    };
                    self.line.extend_from_slice(&data[pos..pos + nl]);
                    pos += nl + 1;
                    if self.line.len() > MAX_CHUNK_LINE {
                        return self.broken(pos);
                    }
                    let line = std::mem::take(&mut self.line);
                    let trimmed = line.strip_suffix(b"\r").unwrap_or(&line);
                    if trimmed.len() == line.len() {
                        // A chunk line ended by a bare LF: Node and h11 refuse it, nginx reads it.
                        self.anomalies.insert(Anomalies::BARE_LF);
                    }
                    if self.chunk == Chunk::Trailer {
                        if trimmed.is_empty() {
                            self.done = true;
                        }
                    } else if trimmed.iter().all(|b| b.is_ascii_whitespace()) {
                        // Blank line where a size belongs: browsers skip it.
                        self.anomalies.insert(Anomalies::BAD_CHUNK);
                    } else {
                        match parse_chunk_size(trimmed) {
                            Some((size, clean)) => {
                                if !clean {
                                    self.anomalies.insert(Anomalies::BAD_CHUNK);
                                }
                                self.chunk = if size == 0 {
                                    Chunk::Trailer
                                } else {
                                    Chunk::Data(size)
                                };
                            }
                            None => return self.broken(pos),
                        }
                    }
                    self.line = line;
                    self.line.clear();
                }
            }
        }
        Fed {
            consumed: pos,
            done: self.done,
            broken: false,
        }
    }

    fn broken(&mut self, consumed: usize) -> Fed {
        self.anomalies.insert(Anomalies::BAD_CHUNK);
        self.done = true;
        Fed {
            consumed,
            done: true,
            broken: true,
        }
    }

    /// Bytes missing from the capture inside this body. Returns false when the framing cannot
    /// survive the gap (chunked: chunk boundaries are lost).
    pub fn gap(&mut self, len: u64, sink: &mut BodySink) -> bool {
        self.anomalies.insert(Anomalies::GAP);
        match self.framing {
            Framing::Length(_) => {
                let lost = len.min(self.remaining);
                sink.gap(lost);
                self.remaining -= lost;
                self.done = self.remaining == 0;
                // Gap bytes beyond this body belong to what followed it: resync needed.
                lost == len
            }
            Framing::UntilClose => {
                sink.gap(len);
                true
            }
            Framing::Chunked => {
                if let Chunk::Data(left) = self.chunk
                    && len < left
                {
                    sink.gap(len);
                    self.chunk = Chunk::Data(left - len);
                    return true;
                }
                sink.gap(len);
                self.done = true;
                false
            }
            Framing::Empty => false,
        }
    }

    /// The stream ended. Returns true when the body was complete.
    pub fn finish(&mut self) -> bool {
        if self.done {
            return true;
        }
        self.done = true;
        match self.framing {
            Framing::UntilClose | Framing::Empty => true,
            _ => {
                self.anomalies.insert(Anomalies::TRUNCATED_MESSAGE);
                false
            }
        }
    }
}

/// Parses a chunk-size line the way lenient clients do: optional leading whitespace, hex
/// digits, then anything (extensions, or junk that strtol-style parsers ignore). Returns the
/// size and whether the line was clean (RFC 9112: digits, optional whitespace, `;ext`).
fn parse_chunk_size(line: &[u8]) -> Option<(u64, bool)> {
    // Browsers skip spaces, tabs and stray CRs before the size (http-evader cr-size).
    let lead = line
        .iter()
        .position(|&b| !matches!(b, b' ' | b'\t' | b'\r'))
        .unwrap_or(line.len());
    let digits = &line[lead..];
    let digits_end = digits
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(digits.len());
    if digits_end == 0 || digits_end > 16 {
        return None;
    }
    let rest = &digits[digits_end..];
    // RFC 9112 §7.1.1: the size, then extensions `BWS ; BWS name`. The whitespace is allowed
    // there but Node refuses it while nginx and h11 read it: clean only without it.
    let ws = |b: &u8| *b == b' ' || *b == b'\t';
    let clean =
        lead == 0 && (rest.is_empty() || (rest[0] == b';' && rest.get(1).is_some_and(|b| !ws(b))));
    let mut n: u64 = 0;
    for &b in &digits[..digits_end] {
        let d = (b as char).to_digit(16)?;
        n = n.checked_mul(16)?.checked_add(u64::from(d))?;
    }
    Some((n, clean))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(framing: Framing, parts: &[&[u8]]) -> (Vec<u8>, usize, Fed) {
        let mut r = BodyReader::new(framing);
        let mut sink = BodySink::new(1 << 20);
        let mut consumed = 0;
        let mut last = Fed {
            consumed: 0,
            done: false,
            broken: false,
        };
        for p in parts {
            last = r.feed(p, &mut sink);
            consumed += last.consumed;
        }
        (sink.kept, consumed, last)
    }

    #[test]
    fn test_chunked_with_extensions_and_trailers() {
        let body = b"4;name=v\r\nWiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let (data, consumed, fed) = read_all(Framing::Chunked, &[body]);
        assert_eq!(data, b"Wikipedia");
        assert!(fed.done);
        assert_eq!(consumed, body.len() - 4);
    }

    #[test]
    fn test_chunked_split_everywhere() {
        let body = b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n";
        for split in 1..body.len() {
            let (data, consumed, fed) =
                read_all(Framing::Chunked, &[&body[..split], &body[split..]]);
            assert_eq!(data, b"Wikipedia", "split at {split}");
            assert!(fed.done);
            assert_eq!(consumed, body.len());
        }
    }

    #[test]
    fn test_chunked_bare_lf() {
        let mut r = BodyReader::new(Framing::Chunked);
        let mut sink = BodySink::new(1 << 20);
        let fed = r.feed(b"3\nabc\n0\n\n", &mut sink);
        assert_eq!(sink.kept, b"abc");
        assert!(fed.done);
        assert!(
            r.anomalies.contains(Anomalies::BARE_LF),
            "read, and flagged"
        );
    }

    #[test]
    fn test_bad_chunk_size() {
        let (_, _, fed) = read_all(Framing::Chunked, &[b"zz\r\nabc"]);
        assert!(fed.broken);
        assert_eq!(parse_chunk_size(b"ffffffffffffffffff"), None);
        // Whitespace before an extension: allowed by RFC 9112, refused by Node.
        assert_eq!(parse_chunk_size(b"1A ; x=y"), Some((26, false)));
        assert_eq!(parse_chunk_size(b"1A;x=y"), Some((26, true)));
        assert_eq!(parse_chunk_size(b"1A; x=y"), Some((26, false)));
        assert_eq!(parse_chunk_size(b" fx"), Some((15, false)));
    }

    #[test]
    fn test_length_and_gap() {
        let mut r = BodyReader::new(Framing::Length(10));
        let mut sink = BodySink::new(4);
        assert_eq!(r.feed(b"abc", &mut sink).consumed, 3);
        assert!(r.gap(4, &mut sink));
        let fed = r.feed(b"xyzMORE", &mut sink);
        assert_eq!(fed.consumed, 3);
        assert!(fed.done);
        assert_eq!(sink.len, 10);
        assert_eq!(sink.missing, 4);
        assert_eq!(sink.kept, b"abcx");
    }
}
