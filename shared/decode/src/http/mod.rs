//! HTTP/1.x over reassembled TCP streams: heads, body framing, content decoding, and the
//! per-connection pairing of requests with responses.

pub mod body;
pub mod conn;
pub mod encoding;
pub mod head;

pub use conn::{Direction, HttpConfig, HttpConnection};
