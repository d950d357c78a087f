//! Undoing the encodings attackers hide payloads behind, before any detector looks.
//!
//! Up to four rounds of: percent-decoding (`%2e`, `%u002e`, and `%%32%65`-style nesting),
//! HTML character references (`&#47;`, `&#x2f;`, `&sol;`), JavaScript/JSON escapes (`\x2f`,
//! `\u002f`); then overlong UTF-8 (`%c0%ae` is `.`) and look-alike characters (fullwidth forms,
//! division and set-minus slashes) fold to ASCII, and everything is lowercased.

/// The decoded, folded, lowercased form of a value.
pub fn normalize(input: &str) -> std::borrow::Cow<'_, str> {
    let b = input.as_bytes();
    // Most values: plain ASCII with nothing to decode.
    if b.iter()
        .all(|&c| c.is_ascii() && !matches!(c, b'%' | b'&' | b'\\'))
    {
        return if b.iter().any(u8::is_ascii_uppercase) {
            input.to_ascii_lowercase().into()
        } else {
            input.into()
        };
    }
    let mut cur: Vec<u8> = b.to_vec();
    for _ in 0..4 {
        let next = decode_once(&cur);
        if next == cur {
            break;
        }
        cur = next;
    }
    fold(&cur).into()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Two hex digits at `b[i..i + 2]` as a byte.
fn hex2(b: &[u8], i: usize) -> Option<u8> {
    Some(hex(*b.get(i)?)? * 16 + hex(*b.get(i + 1)?)?)
}

/// Four hex digits at `b[i..i + 4]` as a code point (`%uXXXX`, `\uXXXX`).
fn hex4(b: &[u8], i: usize) -> Option<u32> {
    (i..i + 4).try_fold(0u32, |acc, k| Some(acc * 16 + u32::from(hex(*b.get(k)?)?)))
}

fn push_char(out: &mut Vec<u8>, cp: u32) {
    match char::from_u32(cp) {
        Some(c) => {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
        None => out.push(b'?'),
    }
}

/// One round of every decoding.
fn decode_once(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'%' => {
                let unicode = matches!(b.get(i + 1), Some(b'u' | b'U'));
                if let Some(cp) = hex4(b, i + 2).filter(|_| unicode) {
                    push_char(&mut out, cp);
                    i += 6;
                } else if let Some(v) = hex2(b, i + 1) {
                    out.push(v);
                    i += 3;
                } else {
                    out.push(b'%');
                    i += 1;
                }
            }
            b'&' => {
                if let Some((cp, len)) = entity(&b[i..]) {
                    push_char(&mut out, cp);
                    i += len;
                } else {
                    out.push(c);
                    i += 1;
                }
            }
            b'\\' => match b.get(i + 1) {
                Some(b'x' | b'X') => match hex2(b, i + 2) {
                    Some(v) => {
                        out.push(v);
                        i += 4;
                    }
                    None => {
                        out.push(c);
                        i += 1;
                    }
                },
                // (`\0` followed by hex is a CSS escape like `\0075`, left for the CSS reading.)
                Some(&e @ (b'n' | b'r' | b't' | b'0'))
                    if e != b'0' || !b.get(i + 2).is_some_and(u8::is_ascii_hexdigit) =>
                {
                    out.push(match e {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        _ => 0,
                    });
                    i += 2;
                }
                Some(b'u' | b'U') => match hex4(b, i + 2) {
                    Some(cp) => {
                        push_char(&mut out, cp);
                        i += 6;
                    }
                    None => {
                        out.push(c);
                        i += 1;
                    }
                },
                _ => {
                    out.push(c);
                    i += 1;
                }
            },
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// An HTML character reference at the start of `b`: (code point, bytes used).
fn entity(b: &[u8]) -> Option<(u32, usize)> {
    let end = b.iter().take(12).position(|&c| c == b';');
    if b.get(1) == Some(&b'#') {
        // Numeric; the `;` is optional in browsers.
        let (radix, start) = if matches!(b.get(2), Some(b'x' | b'X')) {
            (16, 3)
        } else {
            (10, 2)
        };
        let digits = b[start..]
            .iter()
            .take(8)
            .take_while(|c| (**c as char).is_digit(radix))
            .count();
        if digits == 0 {
            return None;
        }
        let text = std::str::from_utf8(&b[start..start + digits]).ok()?;
        let cp = u32::from_str_radix(text, radix).ok()?;
        let used = start + digits + usize::from(b.get(start + digits) == Some(&b';'));
        return Some((cp, used));
    }
    let end = end?;
    let name = b[1..end].to_ascii_lowercase();
    let cp = match name.as_slice() {
        b"lt" => '<',
        b"gt" => '>',
        b"amp" => '&',
        b"quot" => '"',
        b"apos" => '\'',
        b"sol" => '/',
        b"bsol" => '\\',
        b"period" => '.',
        b"colon" => ':',
        b"lpar" => '(',
        b"rpar" => ')',
        b"semi" => ';',
        b"equals" => '=',
        b"tab" => '\t',
        b"newline" => '\n',
        b"nbsp" => ' ',
        _ => return None,
    };
    Some((cp as u32, end + 1))
}

/// Bytes to lowercase text: valid UTF-8 as is, overlong encodings to what they encode,
/// look-alikes to ASCII, stray bytes to `?`.
fn fold(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c < 0x80 {
            out.push(c.to_ascii_lowercase() as char);
            i += 1;
            continue;
        }
        // Overlong forms: a lead byte with all payload bits zero, then continuation bytes.
        let overlong_len = match c {
            0xc0 | 0xc1 => 2,
            0xe0 if b.get(i + 1).is_some_and(|&x| x & 0xe0 == 0x80) => 3,
            0xf0 if b.get(i + 1).is_some_and(|&x| x & 0xf0 == 0x80) => 4,
            0xf8 => 5,
            0xfc => 6,
            _ => 0,
        };
        if overlong_len > 0 && i + overlong_len <= b.len() {
            let lead_bits = match overlong_len {
                2 => u32::from(c & 0x1f),
                3 => u32::from(c & 0x0f),
                4 => u32::from(c & 0x07),
                5 => u32::from(c & 0x03),
                _ => u32::from(c & 0x01),
            };
            let cp = b[i + 1..i + overlong_len]
                .iter()
                .fold(lead_bits, |acc, &x| (acc << 6) | u32::from(x & 0x3f));
            out.push(lookalike(char::from_u32(cp).unwrap_or('?')));
            i += overlong_len;
            continue;
        }
        let width = match c {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => 1,
        };
        match b
            .get(i..i + width)
            .and_then(|s| std::str::from_utf8(s).ok())
        {
            Some(s) => {
                for ch in s.chars() {
                    for l in lookalike(ch).to_lowercase() {
                        out.push(l);
                    }
                }
                i += width;
            }
            None => {
                out.push('?');
                i += 1;
            }
        }
    }
    out
}

/// Characters that browsers, servers or filesystems treat like an ASCII one.
fn lookalike(c: char) -> char {
    match c as u32 {
        0xff01..=0xff5e => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
        0x2215 | 0x2044 | 0x29f8 => '/',
        0x2216 | 0x29f5 | 0xfe68 => '\\',
        0x2024 | 0xfe52 => '.',
        0x02bc | 0x2018 | 0x2019 | 0x2032 => '\'',
        0x201c | 0x201d | 0x2033 => '"',
        0x3008 | 0x2039 | 0xfe64 => '<',
        0x3009 | 0x203a | 0xfe65 => '>',
        // Enclosed alphanumerics (`①②⑦.⓪.⓪.①`): URL parsers fold them (IDNA maps them by
        // compatibility) into the digits and letters they enclose.
        0x2460..=0x2468 => char::from(b'1' + (c as u32 - 0x2460) as u8),
        0x2474..=0x247c => char::from(b'1' + (c as u32 - 0x2474) as u8),
        0x2488..=0x2490 => char::from(b'1' + (c as u32 - 0x2488) as u8),
        0x2776..=0x277e => char::from(b'1' + (c as u32 - 0x2776) as u8),
        0x2780..=0x2788 => char::from(b'1' + (c as u32 - 0x2780) as u8),
        0x278a..=0x2792 => char::from(b'1' + (c as u32 - 0x278a) as u8),
        0x24ea | 0x24ff | 0x1f10b | 0x1f10c => '0',
        0x249c..=0x24b5 => char::from(b'a' + (c as u32 - 0x249c) as u8),
        0x24b6..=0x24cf => char::from(b'a' + (c as u32 - 0x24b6) as u8),
        0x24d0..=0x24e9 => char::from(b'a' + (c as u32 - 0x24d0) as u8),
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn undoes_layers() {
        assert_eq!(normalize("%252e%252e%252fetc"), "../etc");
        assert_eq!(normalize("%c0%ae%c0%ae%c0%afboot.ini"), "../boot.ini");
        assert_eq!(normalize("%uff0e%uff0e%u2215x"), "../x");
        assert_eq!(normalize("&#x3C;SCRIPT&#62;"), "<script>");
        assert_eq!(normalize("\\x3cimg\\u0020src"), "<img src");
        assert_eq!(normalize("%%32%66"), "/");
        assert_eq!(normalize("plain"), "plain");
        assert_eq!(normalize("%e0%80%ae"), ".");
    }

    #[test]
    fn never_panics() {
        for s in [
            "%",
            "%u",
            "%u12",
            "&#",
            "&#x;",
            "\\x",
            "\\u12",
            "\u{ffff}%ff%fe",
            "&#99999999999;",
        ] {
            let _ = normalize(s);
        }
    }
}
