//! Wire messages on a QUIC stream: each a length-delimited postcard frame
//! ([`tapline_record::wire::frame`]), read back with [`tapline_record::wire::FrameReader`] so any
//! split of the byte stream works and every size is bounded before allocation.

use crate::LinkError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tapline_record::wire::{FrameReader, frame};

/// Writes one message.
pub async fn send<T: Serialize>(s: &mut quinn::SendStream, msg: &T) -> Result<(), LinkError> {
    let mut buf = Vec::new();
    frame(msg, &mut buf)?;
    s.write_all(&buf).await?;
    Ok(())
}

/// Reads messages from a stream.
pub struct MessageReader {
    stream: quinn::RecvStream,
    frames: FrameReader,
}

impl MessageReader {
    /// Reads from `stream`.
    pub fn new(stream: quinn::RecvStream) -> Self {
        MessageReader {
            stream,
            frames: FrameReader::default(),
        }
    }

    /// The next message; `None` when the peer finished the stream cleanly between messages.
    /// Cancel-safe: bytes read are kept in the frame reader.
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<Option<T>, LinkError> {
        loop {
            if let Some(m) = self.frames.next_message()? {
                return Ok(Some(m));
            }
            match self.stream.read_chunk(1 << 20, true).await? {
                Some(chunk) => self.frames.push(&chunk.bytes),
                None if self.frames.is_empty() => return Ok(None),
                None => {
                    return Err(LinkError::Wire(tapline_record::wire::WireError::Truncated));
                }
            }
        }
    }
}
