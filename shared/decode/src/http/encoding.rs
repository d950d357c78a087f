//! Content-Encoding decoding (gzip, x-gzip, deflate as zlib or raw, br, stacked), with a cap on
//! decoded output so a decompression bomb costs at most `max_decoded` bytes of work.

use std::io::Read;
use tapline_record::Anomalies;

/// One content coding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    /// gzip / x-gzip.
    Gzip,
    /// deflate: zlib-wrapped per RFC, raw in practice from some servers.
    Deflate,
    /// Brotli.
    Brotli,
    /// identity (no-op).
    Identity,
}

/// Parses a `Content-Encoding` value into the known codings, in the order the sender applied
/// them. Read leniently, as browsers do: tokens split on commas and whitespace, stray
/// punctuation and control bytes trimmed, unknown tokens skipped.
pub fn parse_codings(value: &str) -> Vec<Coding> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter_map(|token| {
            let token = coding_token(token);
            let token = token.as_str();
            if token.eq_ignore_ascii_case("gzip") || token.eq_ignore_ascii_case("x-gzip") {
                Some(Coding::Gzip)
            } else if token.eq_ignore_ascii_case("deflate")
                || token.eq_ignore_ascii_case("x-deflate")
            {
                // `x-deflate`: Firefox's spelling, as `x-gzip` is everyone's.
                Some(Coding::Deflate)
            } else if token.eq_ignore_ascii_case("br") {
                Some(Coding::Brotli)
            } else {
                None
            }
        })
        .collect()
}

/// A coding token as lenient clients read it: NUL and other control bytes inside it dropped
/// (`def\0late` is deflate), stray punctuation and non-ASCII bytes around it ignored
/// (`deflate\xa0`, where the invalid byte arrives escaped as the text `\xa0`).
fn coding_token(raw: &str) -> String {
    let mut t = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek() == Some(&'x') {
            // An escaped invalid byte (`\xNN`): not part of the token.
            chars.next();
            chars.next();
            chars.next();
        } else if c.is_ascii_alphanumeric() || c == '-' {
            t.push(c);
        } else if !c.is_ascii_control() && !t.is_empty() && c != ' ' {
            // Punctuation inside a token ends it.
            break;
        }
    }
    t
}

/// Result of decoding a body.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Decoded bytes kept (at most `keep` bytes).
    pub data: Vec<u8>,
    /// Decoded length produced (stops at the bomb cap).
    pub len: u64,
    /// Problems met.
    pub anomalies: Anomalies,
}

/// Undoes `codings` (sender order) on `raw`. `input_complete` says whether `raw` is the whole
/// encoded body; a cut-short stream is then not a decoding error, just short output.
pub fn decode(
    raw: &[u8],
    codings: &[Coding],
    keep: usize,
    max_decoded: u64,
    input_complete: bool,
) -> Decoded {
    let mut current: Vec<u8> = Vec::new();
    let mut input: &[u8] = raw;
    let mut anomalies = Anomalies::NONE;
    let mut len = raw.len() as u64;
    let mut nothing_decoded = false;
    for (i, coding) in codings.iter().rev().enumerate() {
        let last = i + 1 == codings.len();
        // Intermediate stages must be kept whole (up to the cap) to feed the next one.
        let stage_keep = if last { keep as u64 } else { max_decoded };
        let (out, produced, flags) =
            decode_one(input, *coding, stage_keep, max_decoded, input_complete);
        anomalies |= flags;
        len = produced;
        current = out;
        input = &current;
        if anomalies.contains(Anomalies::DECOMPRESSION_ERROR) && produced == 0 {
            nothing_decoded = true;
            break;
        }
    }
    if codings.is_empty() {
        current = raw[..raw.len().min(keep)].to_vec();
    }
    if anomalies.contains(Anomalies::DECOMPRESSION_ERROR) && codings.len() > 1 {
        // A stack that does not decode: senders mislabel; try each coding alone.
        for coding in codings {
            let (out, produced, flags) =
                decode_one(raw, *coding, keep as u64, max_decoded, input_complete);
            if !flags.contains(Anomalies::DECOMPRESSION_ERROR) && produced > 0 {
                return Decoded {
                    data: out,
                    len: produced,
                    anomalies: anomalies | flags,
                };
            }
        }
    }
    if nothing_decoded {
        // Not actually encoded as declared: keep the body as sent.
        return Decoded {
            data: raw[..raw.len().min(keep)].to_vec(),
            len: raw.len() as u64,
            anomalies,
        };
    }
    Decoded {
        data: current,
        len,
        anomalies,
    }
}

fn decode_one(
    input: &[u8],
    coding: Coding,
    keep: u64,
    max_decoded: u64,
    input_complete: bool,
) -> (Vec<u8>, u64, Anomalies) {
    match coding {
        Coding::Identity => (
            input[..input.len().min(keep as usize)].to_vec(),
            input.len() as u64,
            Anomalies::NONE,
        ),
        Coding::Gzip if input.len() > 3 && input[..2] == [0x1f, 0x8b] && input[3] & 0xe0 != 0 => {
            // Reserved flag bits set: browsers ignore them, flate2 refuses; clear them.
            let mut fixed = input.to_vec();
            fixed[3] &= 0x1f;
            drain(
                flate2::read::MultiGzDecoder::new(&fixed[..]),
                keep,
                max_decoded,
                input_complete,
            )
        }
        Coding::Gzip => drain(
            flate2::read::MultiGzDecoder::new(input),
            keep,
            max_decoded,
            input_complete,
        ),
        Coding::Deflate => {
            // RFC 9110 deflate is zlib-wrapped; many servers send raw deflate. A zlib header
            // is two bytes whose big-endian value is a multiple of 31 with method 8.
            let zlib = input.len() >= 2
                && input[0] & 0x0f == 8
                && (u16::from(input[0]) << 8 | u16::from(input[1])) % 31 == 0;
            if zlib {
                drain(
                    flate2::read::ZlibDecoder::new(input),
                    keep,
                    max_decoded,
                    input_complete,
                )
            } else {
                drain(
                    flate2::read::DeflateDecoder::new(input),
                    keep,
                    max_decoded,
                    input_complete,
                )
            }
        }
        Coding::Brotli => drain(
            brotli::Decompressor::new(input, 4096),
            keep,
            max_decoded,
            input_complete,
        ),
    }
}

/// Reads a decoder to the end or the cap, keeping `keep` bytes and counting all.
fn drain<R: Read>(
    mut reader: R,
    keep: u64,
    max_decoded: u64,
    input_complete: bool,
) -> (Vec<u8>, u64, Anomalies) {
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let mut produced: u64 = 0;
    let mut anomalies = Anomalies::NONE;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let room = keep.saturating_sub(out.len() as u64) as usize;
                out.extend_from_slice(&buf[..n.min(room)]);
                produced += n as u64;
                if produced >= max_decoded {
                    anomalies.insert(Anomalies::DECOMPRESSION_LIMIT);
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let cut_short = e.kind() == std::io::ErrorKind::UnexpectedEof;
                if !cut_short || input_complete {
                    anomalies.insert(Anomalies::DECOMPRESSION_ERROR);
                }
                break;
            }
        }
    }
    (out, produced, anomalies)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn br(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            w.write_all(data).unwrap();
        }
        out
    }

    #[test]
    fn test_each_coding() {
        let text = b"hello hello hello hello";
        for (raw, codings) in [
            (gzip(text), "gzip"),
            (gzip(text), "x-gzip"),
            (zlib(text), "deflate"),
            (raw_deflate(text), "deflate"),
            (zlib(text), "x-deflate"),
            (raw_deflate(text), "X-Deflate"),
            (br(text), "br"),
        ] {
            let codings_v = parse_codings(codings);
            let d = decode(&raw, &codings_v, 1 << 20, 1 << 30, true);
            assert_eq!(d.data, text, "{codings}");
            assert!(d.anomalies.is_empty(), "{codings}: {:?}", d.anomalies);
        }
    }

    #[test]
    fn test_stacked() {
        let text = b"stacked body";
        let raw = br(&gzip(text));
        let d = decode(&raw, &parse_codings("gzip, br"), 100, 1 << 20, true);
        assert_eq!(d.data, text);
    }

    #[test]
    fn test_bomb_is_capped() {
        let zeros = vec![0u8; 10 << 20];
        let raw = gzip(&zeros);
        let d = decode(&raw, &[Coding::Gzip], 1024, 1 << 20, true);
        assert_eq!(d.data.len(), 1024);
        assert!(d.len <= (1 << 20) + 16 * 1024);
        assert!(d.anomalies.contains(Anomalies::DECOMPRESSION_LIMIT));
    }

    #[test]
    fn test_not_really_gzip_keeps_raw() {
        let d = decode(b"plain text", &[Coding::Gzip], 100, 1 << 20, true);
        assert_eq!(d.data, b"plain text");
        assert!(d.anomalies.contains(Anomalies::DECOMPRESSION_ERROR));
    }

    #[test]
    fn test_truncated_input_is_not_an_error() {
        let raw = gzip(&vec![b'a'; 100_000]);
        let d = decode(
            &raw[..raw.len() / 2],
            &[Coding::Gzip],
            1 << 20,
            1 << 30,
            false,
        );
        assert!(!d.data.is_empty());
        assert!(!d.anomalies.contains(Anomalies::DECOMPRESSION_ERROR));
    }

    #[test]
    fn test_lenient_coding_tokens() {
        assert_eq!(parse_codings("compress"), vec![]);
        assert_eq!(parse_codings("identity"), vec![]);
        assert_eq!(parse_codings("gzip x"), vec![Coding::Gzip]);
        assert_eq!(parse_codings("\u{0}deflate\u{a0}"), vec![Coding::Deflate]);
    }
}
