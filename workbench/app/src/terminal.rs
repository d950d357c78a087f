//! Output a terminal shows: traffic is hostile, and a Host header or a path can carry escape
//! sequences that rewrite the screen, retitle the window or worse when printed raw. Everything
//! the CLI writes to stdout goes through [`Sanitized`], which spells out control characters.

use std::io::{self, Write};

/// A writer that passes text through with every control character spelled out as a JSON-style
/// `\u00XX` escape: C0 controls other than the newline, DEL, and the C1 controls (U+0080 to
/// U+009F, which some terminals obey as escape sequences). JSON stays valid and means the same,
/// because inside JSON strings those escapes are exactly what the characters are.
pub struct Sanitized<W: Write> {
    inner: W,
    /// A UTF-8 lead byte 0xC2 at the end of the last write, whose follower decides.
    held: bool,
}

impl<W: Write> Sanitized<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Sanitized { inner, held: false }
    }

    fn escape(&mut self, c: u32) -> io::Result<()> {
        write!(self.inner, "\\u{c:04x}")
    }
}

impl<W: Write> Write for Sanitized<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut i = 0;
        let mut safe_from = 0;
        if self.held {
            self.held = false;
            match buf.first() {
                Some(&b @ 0x80..=0x9f) => {
                    self.escape(u32::from(b))?;
                    i = 1;
                    safe_from = 1;
                }
                Some(_) => self.inner.write_all(&[0xc2])?,
                None => {
                    self.held = true;
                    return Ok(0);
                }
            }
        }
        while i < buf.len() {
            let b = buf[i];
            let control = (b < 0x20 && b != b'\n') || b == 0x7f;
            let c1_lead = b == 0xc2;
            if !control && !c1_lead {
                i += 1;
                continue;
            }
            self.inner.write_all(&buf[safe_from..i])?;
            if control {
                self.escape(u32::from(b))?;
                i += 1;
            } else {
                match buf.get(i + 1) {
                    Some(&n @ 0x80..=0x9f) => {
                        self.escape(u32::from(n))?;
                        i += 2;
                    }
                    Some(_) => {
                        self.inner.write_all(&[b])?;
                        i += 1;
                    }
                    None => {
                        self.held = true;
                        i += 1;
                    }
                }
            }
            safe_from = i;
        }
        self.inner.write_all(&buf[safe_from..])?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.held) {
            self.inner.write_all(&[0xc2])?;
        }
        self.inner.flush()
    }
}

impl<W: Write> Drop for Sanitized<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through(parts: &[&[u8]]) -> String {
        let mut out = Vec::new();
        {
            let mut w = Sanitized::new(&mut out);
            for p in parts {
                w.write_all(p).unwrap_or_else(|e| panic!("{e}"));
            }
        }
        String::from_utf8(out).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn control_characters_are_spelled_out() {
        assert_eq!(
            through(&[b"GET /\x1b]0;pwned\x07x\r\n"]),
            "GET /\\u001b]0;pwned\\u0007x\\u000d\n"
        );
        assert_eq!(
            through(&["a\u{9b}31mb\u{7f}".as_bytes()]),
            "a\\u009b31mb\\u007f"
        );
        // The C1 control split across two writes, and UTF-8 that only starts like one.
        assert_eq!(through(&[b"x\xc2", b"\x9by"]), "x\\u009by");
        assert_eq!(through(&["é ©".as_bytes()]), "é ©");
        assert_eq!(through(&[b"\xc2", b"\xa9"]), "©");
    }

    #[test]
    fn json_stays_valid_and_equal() {
        let v = serde_json::json!({"uri": "/\u{1b}[2J\u{9b}x\u{7f}"});
        let text = through(&[serde_json::to_string(&v).unwrap_or_default().as_bytes()]);
        assert!(!text.contains('\u{9b}') && !text.contains('\u{7f}'));
        let back: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(back, v);
    }
}
