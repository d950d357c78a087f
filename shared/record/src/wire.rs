//! The sensor ⇄ workbench wire protocol: the messages, how a batch of records is encoded, and
//! how messages are framed on a long-lived QUIC stream. No I/O: the sensor and the hub own
//! their sockets, this module owns the bytes.
//!
//! A frame is a 4-byte big-endian length and a postcard-encoded message. A batch carries
//! records as one LZ4 block (size-prepended) of a postcard `Vec<Transaction>`, numbered by a
//! per-sensor sequence so the hub can acknowledge and de-duplicate: a batch is stored exactly
//! once however often it is sent.
//!
//! Every decode is bounded: frames above [`MAX_FRAME`] and batches that claim to decompress
//! above [`MAX_BATCH_BYTES`] are refused before anything is allocated for them.

use crate::{RECORD_VERSION, Transaction};
use serde::{Deserialize, Serialize};

/// Version of the messages below. Bumped on any change to their serialised form.
pub const PROTOCOL_VERSION: u16 = 2;
/// Largest frame accepted, bytes.
pub const MAX_FRAME: usize = 32 << 20;
/// Largest decompressed batch accepted, bytes.
pub const MAX_BATCH_BYTES: usize = 256 << 20;

/// What can go wrong turning bytes into messages.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// A frame announced more than [`MAX_FRAME`] bytes.
    #[error(
        "frame of {0} bytes is over the {MAX_FRAME}-byte limit; the peer is not a Tapline peer or is broken"
    )]
    FrameTooLarge(usize),
    /// A batch claimed to decompress to more than [`MAX_BATCH_BYTES`].
    #[error("batch {seq} claims {size} bytes decompressed, over the {MAX_BATCH_BYTES}-byte limit")]
    BatchTooLarge {
        /// The batch.
        seq: u64,
        /// Its claimed size.
        size: usize,
    },
    /// The compressed block did not decompress.
    #[error("batch {seq} does not decompress: {why}")]
    Decompress {
        /// The batch.
        seq: u64,
        /// The decompressor's reason.
        why: String,
    },
    /// The records did not decode, or decoded to a different count than announced.
    #[error("batch {seq}: {why}")]
    Records {
        /// The batch.
        seq: u64,
        /// What was wrong.
        why: String,
    },
    /// A message did not decode (postcard).
    #[error("malformed message: {0}")]
    Message(#[from] postcard::Error),
    /// The stream ended inside a frame.
    #[error("the stream ended in the middle of a message")]
    Truncated,
}

/// Sensor → hub.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SensorMessage {
    /// First message on a connection.
    Hello {
        /// The sensor's enrolled name.
        sensor: String,
        /// Its software version.
        version: String,
        /// [`PROTOCOL_VERSION`] it speaks.
        protocol: u16,
        /// [`RECORD_VERSION`] of its records.
        record_version: u16,
        /// Identifies the sensor's spool: sequence numbers count within one spool, so a spool
        /// created anew (a reinstall, a wiped disk) starts a new series instead of having its
        /// batches mistaken for ones already stored.
        spool: u64,
    },
    /// Records.
    Batch(Batch),
    /// Counters, sent periodically (also a heartbeat).
    Stats(SensorStats),
}

impl SensorMessage {
    /// The hello this build sends.
    pub fn hello(sensor: &str, version: &str, spool: u64) -> SensorMessage {
        SensorMessage::Hello {
            sensor: sensor.to_owned(),
            version: version.to_owned(),
            protocol: PROTOCOL_VERSION,
            record_version: RECORD_VERSION,
            spool,
        }
    }
}

/// Hub → sensor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum HubMessage {
    /// The hello was accepted; the hub already holds every batch up to `stored_through`
    /// (0: none), so the sensor resumes after it.
    Welcome {
        /// Highest sequence number stored for this sensor.
        stored_through: u64,
    },
    /// Every batch up to and including `through` is stored (committed) at the hub.
    Ack {
        /// Highest stored sequence number.
        through: u64,
    },
    /// The hub will not talk to this sensor; the reason is for its log.
    Refused {
        /// Why.
        reason: String,
    },
}

/// Records in transit: numbered, counted, compressed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// Per-sensor sequence number, from 1, without gaps.
    pub seq: u64,
    /// Records inside.
    pub records: u32,
    /// LZ4 block with its decompressed size prepended (u32, little-endian), of a postcard
    /// `Vec<Transaction>`.
    pub compressed: Vec<u8>,
}

impl Batch {
    /// Encodes `records` as batch `seq`.
    pub fn encode(seq: u64, records: &[Transaction]) -> Result<Batch, WireError> {
        let raw = postcard::to_stdvec(records)?;
        Ok(Batch {
            seq,
            records: records.len() as u32,
            compressed: lz4_flex::block::compress_prepend_size(&raw),
        })
    }

    /// The decompressed size the batch announces (what decoding it will hold, roughly).
    pub fn raw_size(&self) -> usize {
        self.compressed
            .get(..4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    /// The records, checked against the announced count and the size limits.
    pub fn decode(&self) -> Result<Vec<Transaction>, WireError> {
        let seq = self.seq;
        let size = self
            .compressed
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| WireError::Decompress {
                seq,
                why: "shorter than its size prefix".into(),
            })?;
        if size > MAX_BATCH_BYTES {
            return Err(WireError::BatchTooLarge { seq, size });
        }
        let raw = lz4_flex::block::decompress(&self.compressed[4..], size).map_err(|e| {
            WireError::Decompress {
                seq,
                why: e.to_string(),
            }
        })?;
        let records: Vec<Transaction> =
            postcard::from_bytes(&raw).map_err(|e| WireError::Records {
                seq,
                why: format!("records do not decode: {e}"),
            })?;
        if records.len() != self.records as usize {
            return Err(WireError::Records {
                seq,
                why: format!(
                    "announced {} records, holds {}",
                    self.records,
                    records.len()
                ),
            });
        }
        Ok(records)
    }
}

/// A sensor's counters since it started (spool figures: now).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SensorStats {
    /// Software version.
    pub version: String,
    /// Packets captured.
    pub packets: u64,
    /// Bytes captured.
    pub bytes: u64,
    /// Packets the kernel dropped (pcap `ps_drop`).
    pub kernel_drops: u64,
    /// Packets the interface dropped (pcap `ps_ifdrop`).
    pub interface_drops: u64,
    /// Records produced.
    pub records: u64,
    /// Batches waiting in the spool.
    pub spool_batches: u64,
    /// Bytes in the spool.
    pub spool_bytes: u64,
    /// Records lost to a full spool (by its policy), never silently.
    pub lost_records: u64,
    /// `connected`, `connecting`, `refused: …`.
    pub uplink: String,
}

/// Appends `msg` to `out` as one frame.
pub fn frame<T: Serialize>(msg: &T, out: &mut Vec<u8>) -> Result<(), WireError> {
    let body = postcard::to_stdvec(msg)?;
    if body.len() > MAX_FRAME {
        return Err(WireError::FrameTooLarge(body.len()));
    }
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(())
}

/// Reassembles frames from a byte stream delivered in arbitrary pieces.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
}

impl FrameReader {
    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Whether no bytes of an unfinished frame are held.
    pub fn is_empty(&self) -> bool {
        self.start == self.buf.len()
    }

    /// The next whole message, `Ok(None)` when more bytes are needed. An error leaves the
    /// stream unusable: the caller closes the connection.
    pub fn next_message<T: for<'de> Deserialize<'de>>(&mut self) -> Result<Option<T>, WireError> {
        let pending = &self.buf[self.start..];
        let Some(head) = pending.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if len > MAX_FRAME {
            return Err(WireError::FrameTooLarge(len));
        }
        let Some(body) = pending.get(4..4 + len) else {
            return Ok(None);
        };
        let msg = postcard::from_bytes(body)?;
        self.start += 4 + len;
        if self.start > (1 << 20) && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Ok(Some(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(i: usize) -> Transaction {
        let mut t = Transaction {
            request_ts_nanos: 1_700_000_000_000_000_000 + i as i64,
            client: "10.0.0.1:40000".parse().ok(),
            method: "GET".into(),
            uri: format!("/users/{i}?x=é"),
            status: Some(200),
            ..Transaction::default()
        };
        t.request_headers.push("Host", "api.test");
        t.response_body.data = format!("{{\"id\":{i}}}").into_bytes();
        t.response_body.len = t.response_body.data.len() as u64;
        t
    }

    #[test]
    fn batches_round_trip_and_compress() {
        let records: Vec<Transaction> = (0..500).map(tx).collect();
        let b = Batch::encode(7, &records).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((b.seq, b.records), (7, 500));
        let raw = postcard::to_stdvec(&records).unwrap_or_default();
        assert!(
            b.compressed.len() * 3 < raw.len(),
            "{} vs {}",
            b.compressed.len(),
            raw.len()
        );
        assert_eq!(b.decode().unwrap_or_default(), records);
    }

    #[test]
    fn frames_reassemble_from_any_split() {
        let msgs = vec![
            SensorMessage::hello("edge-1", "0.1.0", 7),
            SensorMessage::Batch(
                Batch::encode(1, &[tx(1), tx(2)]).unwrap_or_else(|e| panic!("{e}")),
            ),
            SensorMessage::Stats(SensorStats {
                packets: 9,
                uplink: "connected".into(),
                ..SensorStats::default()
            }),
        ];
        let mut bytes = Vec::new();
        for m in &msgs {
            frame(m, &mut bytes).unwrap_or_else(|e| panic!("{e}"));
        }
        for piece in [1, 3, 7, 64, bytes.len()] {
            let mut r = FrameReader::default();
            let mut got = Vec::new();
            for chunk in bytes.chunks(piece) {
                r.push(chunk);
                while let Some(m) = r
                    .next_message::<SensorMessage>()
                    .unwrap_or_else(|e| panic!("{e}"))
                {
                    got.push(m);
                }
            }
            assert_eq!(got, msgs, "pieces of {piece}");
        }
    }

    #[test]
    fn lies_about_sizes_are_refused_before_allocating() {
        let mut r = FrameReader::default();
        r.push(&u32::MAX.to_be_bytes());
        assert!(matches!(
            r.next_message::<HubMessage>(),
            Err(WireError::FrameTooLarge(_))
        ));
        let mut b = Batch::encode(3, &[tx(1)]).unwrap_or_else(|e| panic!("{e}"));
        b.compressed[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            b.decode(),
            Err(WireError::BatchTooLarge { seq: 3, .. })
        ));
        let mut b = Batch::encode(4, &[tx(1), tx(2)]).unwrap_or_else(|e| panic!("{e}"));
        b.records = 3;
        assert!(matches!(b.decode(), Err(WireError::Records { seq: 4, .. })));
        b.compressed.truncate(6);
        assert!(b.decode().is_err());
    }
}
