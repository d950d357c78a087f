//! `tapline classify [FILE|-]`: the data classes (with character spans) and the attack families
//! (with the rule and why) in each input value, so
//! any labelled corpus can be scored from the command line.
//!
//! Input: one value a line — a JSON string, a JSON object `{"text": ..., "key": ...}` (`key`
//! is the field name the value came from, optional), or any other line taken as raw text.
//! Output: one JSON object a line, `{"data":[{"class","start","end","confidence"}],
//! "attacks":[{"family","rule","why"}]}`; spans count Unicode scalar values (characters), end
//! exclusive.

use crate::cli::{ClassifyArgs, MinConfidence};
use anyhow::{Context, Result};
use serde::Serialize;
use std::io::{BufRead, BufWriter, Write};
use tapline_detect::classify::{Confidence, Hit, classify_into};

#[derive(Serialize)]
struct Line {
    data: Vec<DataHit>,
    attacks: Vec<AttackLine>,
    /// Why the line was read with replacements (invalid UTF-8), when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct AttackLine {
    family: &'static str,
    rule: &'static str,
    why: String,
}

#[derive(Serialize)]
struct DataHit {
    class: &'static str,
    start: usize,
    end: usize,
    confidence: Confidence,
}

/// One input value: its text and the field name it came from.
pub fn parse_line(line: &str) -> (String, Option<String>) {
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(serde_json::Value::String(s)) => (s, None),
        Ok(serde_json::Value::Object(o)) if o.get("text").is_some_and(|t| t.is_string()) => {
            let text = o.get("text").and_then(|t| t.as_str()).unwrap_or_default();
            let key = o.get("key").and_then(|k| k.as_str()).map(str::to_owned);
            (text.to_owned(), key)
        }
        _ => (line.to_owned(), None),
    }
}

/// Converts byte spans to character spans, keeping hits of at least `min` confidence.
pub fn char_spans(text: &str, hits: &[Hit], min: Confidence) -> Vec<(Hit, usize, usize)> {
    hits.iter()
        .filter(|h| h.confidence >= min)
        .map(|h| {
            let start = text[..h.start].chars().count();
            let len = text[h.start..h.end].chars().count();
            (*h, start, start + len)
        })
        .collect()
}

/// Runs the command.
pub fn run(args: &ClassifyArgs, out: &mut dyn Write) -> Result<()> {
    let input: Box<dyn BufRead> = match args.file.as_deref() {
        None => Box::new(std::io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => Box::new(std::io::stdin().lock()),
        Some(p) => Box::new(std::io::BufReader::new(
            std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
        )),
    };
    let min = match args.min_confidence {
        MinConfidence::Low => Confidence::Low,
        MinConfidence::Medium => Confidence::Medium,
        MinConfidence::High => Confidence::High,
    };
    let mut out = BufWriter::new(out);
    let mut hits = Vec::new();
    let mut raw = Vec::new();
    let mut input = input;
    for n in 1.. {
        raw.clear();
        if input
            .read_until(b'\n', &mut raw)
            .with_context(|| format!("cannot read line {n}"))?
            == 0
        {
            break;
        }
        let bytes = raw.strip_suffix(b"\n").unwrap_or(&raw);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        // A line that is not UTF-8 is read with replacement characters and said so; the
        // lines after it are classified as usual.
        let line = String::from_utf8_lossy(bytes);
        let error = matches!(line, std::borrow::Cow::Owned(_)).then(|| {
            let msg = format!("line {n} is not UTF-8 text: read with replacement characters");
            tracing::warn!("{msg}");
            msg
        });
        let (text, key) = parse_line(&line);
        classify_into(&text, key.as_deref(), &mut hits);
        let data = char_spans(&text, &hits, min)
            .into_iter()
            .map(|(h, start, end)| DataHit {
                class: h.class.name(),
                start,
                end,
                confidence: h.confidence,
            })
            .collect();
        let attacks = tapline_detect::attack::detect(&text, key.as_deref())
            .into_iter()
            .map(|h| AttackLine {
                family: h.family.name(),
                rule: h.rule,
                why: h.why,
            })
            .collect();
        serde_json::to_writer(
            &mut out,
            &Line {
                data,
                attacks,
                error,
            },
        )?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
