//! The llhttp parser vectors (Node's HTTP parser test suite) as parser tests.
//!
//! Each vector is raw HTTP bytes with llhttp's event log. For every message llhttp completes we
//! require the same method and URL (requests) or status (responses), the same header fields
//! and values, and the same body. Vectors where llhttp stops with an error are scored apart:
//! Tapline is lenient on purpose (it must see what lenient servers act on), so there the
//! question is whether the oddity is flagged as an anomaly, not whether parsing stops.

use super::SetResult;
use anyhow::{Context, Result};
use std::path::Path;
use tapline_decode::http::{Direction, HttpConfig, HttpConnection};
use tapline_record::{Anomalies, Transaction};

/// One message as llhttp's log describes it.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    method: String,
    url: String,
    status: Option<u16>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Headers seen after the body (chunked trailers); not compared.
    in_trailers: bool,
}

/// Reads `"..."` with C-style escapes as llhttp's test log writes them.
fn unquote(s: &str) -> Vec<u8> {
    let inner = s
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s);
    let b = inner.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            i += 1;
            match b[i] {
                b'r' => out.push(b'\r'),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'f' => out.push(0x0c),
                b'0' => out.push(0),
                b'x' if i + 2 < b.len() => {
                    let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                    out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                    i += 2;
                }
                other => out.push(other),
            }
        } else {
            out.push(b[i]);
        }
        i += 1;
    }
    out
}

/// The completed messages in a log, and whether the log ends in an error.
fn expected_messages(log: &[String]) -> (Vec<Expected>, bool) {
    let mut done = Vec::new();
    let mut cur = Expected::default();
    let mut field = String::new();
    let mut value = Vec::new();
    let mut in_value = false;
    let mut error = false;
    let flush_header = |cur: &mut Expected, field: &mut String, value: &mut Vec<u8>| {
        if !field.is_empty() {
            cur.headers.push((
                std::mem::take(field),
                String::from_utf8_lossy(&std::mem::take(value)).into_owned(),
            ));
        }
    };
    for ev in log {
        let rest = ev.split_once(' ').map_or("", |(_, r)| r);
        if let Some(span) = rest.strip_prefix("len=") {
            let Some((_, span)) = span.split_once(" span[") else {
                continue;
            };
            let Some((kind, val)) = span.split_once("]=") else {
                continue;
            };
            let bytes = unquote(val);
            match kind {
                "method" => cur.method.push_str(&String::from_utf8_lossy(&bytes)),
                "url" => cur.url.push_str(&String::from_utf8_lossy(&bytes)),
                "status" => {}
                "header_field" if cur.in_trailers => {}
                "header_value" if cur.in_trailers => {}
                "header_field" => {
                    if in_value {
                        flush_header(&mut cur, &mut field, &mut value);
                        in_value = false;
                    }
                    field.push_str(&String::from_utf8_lossy(&bytes));
                }
                "header_value" => {
                    in_value = true;
                    value.extend_from_slice(&bytes);
                }
                "body" => cur.body.extend_from_slice(&bytes),
                _ => {}
            }
        } else if let Some(h) = rest.strip_prefix("headers complete ") {
            flush_header(&mut cur, &mut field, &mut value);
            in_value = false;
            cur.in_trailers = true;
            if let Some(code) = h.strip_prefix("status=") {
                cur.status = code.split(' ').next().and_then(|c| c.parse().ok());
            }
        } else if rest == "message complete" {
            field.clear();
            value.clear();
            in_value = false;
            done.push(std::mem::take(&mut cur));
        } else if rest.starts_with("error ") {
            error = true;
            break;
        }
    }
    (done, error)
}

fn decode(input: &[u8], response: bool, requests: usize) -> Vec<Transaction> {
    let cfg = HttpConfig::default();
    let mut conn = HttpConnection::new(None, None, false);
    let mut out = Vec::new();
    if response {
        // Responses need requests to answer: plain GETs, one per expected message.
        for _ in 0..requests.max(1) {
            conn.data(
                Direction::FromClient,
                0,
                b"GET / HTTP/1.1\r\nHost: t\r\n\r\n",
                &cfg,
                &mut out,
            );
        }
        conn.data(Direction::FromServer, 1, input, &cfg, &mut out);
    } else {
        conn.data(Direction::FromClient, 0, input, &cfg, &mut out);
    }
    conn.close(Anomalies::NONE, &cfg, &mut out);
    out
}

/// Flags that say "this message was not clean HTTP".
fn flagged(t: &Transaction) -> bool {
    let benign = Anomalies::MISSING_RESPONSE | Anomalies::MISSING_REQUEST;
    t.anomalies.bits() & !benign.bits() != 0
}

fn matches(want: &Expected, got: &Transaction, response: bool) -> Result<(), String> {
    if response {
        if want.status != got.status {
            return Err(format!("status {:?} != {:?}", got.status, want.status));
        }
    } else if want.method != got.method || want.url != got.uri {
        return Err(format!(
            "request line {} {} != {} {}",
            got.method, got.uri, want.method, want.url
        ));
    }
    let headers = if response {
        &got.response_headers
    } else {
        &got.request_headers
    };
    // llhttp reports names and values as sent; Tapline trims them and joins folded lines
    // with one space (RFC 9110 §5.5, RFC 9112 §5.2). Compare modulo that whitespace.
    let norm = |s: &str| {
        s.split([' ', '\t'])
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let got_h: Vec<(String, String)> = headers.iter().map(|(n, v)| (norm(n), norm(v))).collect();
    let want_h: Vec<(String, String)> = want
        .headers
        .iter()
        .map(|(n, v)| (norm(n), norm(v)))
        .collect();
    if got_h != want_h {
        return Err(format!("headers {got_h:?} != {want_h:?}"));
    }
    let body = if response {
        &got.response_body.data
    } else {
        &got.request_body.data
    };
    // llhttp's log writes CR and LF inside bodies as the words "cr" and "lf".
    let body: Vec<u8> = body
        .iter()
        .flat_map(|&b| match b {
            b'\r' => b"cr".to_vec(),
            b'\n' => b"lf".to_vec(),
            b => vec![b],
        })
        .collect();
    if body != want.body {
        return Err(format!(
            "body {:?} != {:?}",
            String::from_utf8_lossy(&body),
            String::from_utf8_lossy(&want.body)
        ));
    }
    Ok(())
}

/// Scores every HTTP vector. Returns the message set and the error-flagging set.
pub fn run(path: &Path, verbose: bool) -> Result<(SetResult, SetResult)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the llhttp vectors at {}", path.display()))?;
    let mut msgs = SetResult::new(
        "llhttp vectors: messages llhttp completes, same request line/status, headers and body",
        "messages",
    );
    let mut errs = SetResult::new(
        "llhttp vectors llhttp rejects: Tapline (lenient) flags an anomaly",
        "rejections",
    );
    for (line_no, line) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), line_no + 1))?;
        let kind = v["meta"]["type"].as_str().unwrap_or("");
        if v["kind"] != "http" || v["has_js_template"] == true {
            continue;
        }
        let response = kind.starts_with("response");
        if !response && !kind.starts_with("request") {
            continue;
        }
        let input = v["input"].as_str().unwrap_or("").as_bytes();
        let log: Vec<String> = v["log"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        // Vectors that reset the parser between messages test llhttp's API, not HTTP.
        if log.iter().any(|e| e.ends_with(" reset")) {
            continue;
        }
        let (mut want, error) = expected_messages(&log);
        // Interim 1xx responses belong to the exchange, not a transaction of their own.
        want.retain(|w| {
            !w.status
                .is_some_and(|s| (100..200).contains(&s) && s != 101)
        });
        let got = decode(input, response, want.len());
        let name = format!(
            "{} / {}",
            v["file"].as_str().unwrap_or("?"),
            v["section"].as_str().unwrap_or("?")
        );
        msgs.captures += 1;
        msgs.expected += want.len();
        msgs.ours += got.len();
        for (i, w) in want.iter().enumerate() {
            match got.get(i).map(|g| matches(w, g, response)) {
                Some(Ok(())) => msgs.agreed += 1,
                Some(Err(why)) => msgs
                    .disagreements
                    .push(format!("{name} (message {}): {why}", i + 1)),
                None => msgs
                    .disagreements
                    .push(format!("{name} (message {}): not decoded", i + 1)),
            }
        }
        if error {
            errs.captures += 1;
            errs.expected += 1;
            // The message llhttp failed on is the one after those it completed.
            let flagged_any =
                got.iter().skip(want.len()).any(flagged) || got.get(want.len()).is_none();
            if flagged_any {
                errs.agreed += 1;
                errs.ours += 1;
            } else if verbose {
                errs.disagreements
                    .push(format!("{name}: accepted without a flag"));
            }
        }
    }
    if !verbose && msgs.disagreements.len() > 40 {
        let n = msgs.disagreements.len();
        msgs.disagreements.truncate(40);
        msgs.disagreements.push(format!("… {} more", n - 40));
    }
    Ok((msgs, errs))
}
