//! What an alert looks like on the wire: an RFC 5424 syslog message, an ECS document, a
//! webhook's JSON body.

use std::time::{SystemTime, UNIX_EPOCH};
use tapline_store::alerts::{AlertEvent, PendingAlert};
use tapline_store::endpoints::Severity;

/// Private enterprise number in the structured data's id (`tapline@32473`: 32473 is the
/// number RFC 5612 reserves for documentation; a site may map it).
const SD_ID: &str = "tapline@32473";
/// Syslog facility 10, security/authorization (authpriv).
const FACILITY: u8 = 10;

/// The syslog severity of a finding's severity.
fn syslog_severity(s: Severity) -> u8 {
    match s {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
        Severity::Info => 6,
    }
}

/// ECS `event.severity` (numeric, higher is worse; the scale of Elastic's detection rules).
fn ecs_severity(s: Severity) -> u8 {
    match s {
        Severity::Critical => 99,
        Severity::High => 73,
        Severity::Medium => 47,
        Severity::Low => 21,
        Severity::Info => 1,
    }
}

fn event_name(e: AlertEvent) -> &'static str {
    match e {
        AlertEvent::New => "new",
        AlertEvent::Updated => "updated",
    }
}

/// An RFC 5424 message (without transport framing): `<PRI>1 TIMESTAMP HOST tapline - MSGID
/// [tapline@32473 …] title`.
pub fn rfc5424(a: &PendingAlert, hostname: &str, now: SystemTime) -> String {
    let f = &a.finding;
    let pri = FACILITY * 8 + syslog_severity(f.severity);
    let mut sd = format!(
        "[{SD_ID} event=\"{}\" finding=\"{}\" kind=\"{}\" severity=\"{}\" count=\"{}\"",
        event_name(a.event),
        f.id,
        f.kind.name(),
        f.severity.name(),
        f.count
    );
    let params = [
        ("endpoint", a.endpoint.as_deref()),
        ("actor_ip", f.actor_ip.as_deref()),
        ("actor_user", f.actor_user.as_deref()),
    ];
    for (name, value) in params {
        if let Some(v) = value {
            sd.push_str(&format!(" {name}=\"{}\"", sd_escape(v)));
        }
    }
    sd.push(']');
    format!(
        "<{pri}>1 {} {} tapline - {} {sd} {}",
        rfc3339(now),
        header_token(hostname, 255),
        header_token(f.kind.name(), 32),
        f.title.replace(['\r', '\n'], " ")
    )
}

/// A header field: printable ASCII without spaces, at most `max` characters, `-` when empty.
fn header_token(s: &str, max: usize) -> String {
    let t: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if t.is_empty() { "-".into() } else { t }
}

/// A structured-data value: `"`, `\` and `]` escaped (RFC 5424 §6.3.3).
fn sd_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        if !c.is_control() {
            out.push(c);
        }
    }
    out
}

/// One ECS document for the alert (a line of the JSON-lines file).
pub fn ecs(a: &PendingAlert, now: SystemTime) -> serde_json::Value {
    let f = &a.finding;
    let mut doc = serde_json::json!({
        "@timestamp": rfc3339(now),
        "ecs": {"version": "8.11.0"},
        "message": f.title,
        "event": {
            "kind": "alert",
            "category": ["intrusion_detection"],
            "type": ["info"],
            "action": event_name(a.event),
            "severity": ecs_severity(f.severity),
            "id": delivery_id(a),
            "start": rfc3339(at_ns(f.first_seen_ns)),
            "end": rfc3339(at_ns(f.last_seen_ns)),
            "count": f.count,
        },
        "rule": {"name": f.kind.name()},
        "observer": {"vendor": "Tapline", "product": "Tapline", "type": "ids"},
        "tapline": {
            "finding_id": f.id,
            "severity": f.severity.name(),
            "confidence": f.confidence,
            "endpoint": a.endpoint,
            "evidence": f.evidence,
        },
    });
    if let Some(ip) = &f.actor_ip {
        doc["source"] = serde_json::json!({"ip": ip});
    }
    if let Some(user) = &f.actor_user {
        doc["user"] = serde_json::json!({"name": user});
    }
    doc
}

/// A webhook's JSON body: the event, the finding as the case holds it, its endpoint.
pub fn webhook_body(a: &PendingAlert, now: SystemTime) -> Vec<u8> {
    let body = serde_json::json!({
        "event": event_name(a.event),
        "delivery": delivery_id(a),
        "sent_at": rfc3339(now),
        "endpoint": a.endpoint,
        "finding": a.finding,
    });
    body.to_string().into_bytes()
}

/// Names one delivery of one finding at one count: receivers de-duplicate retries by it.
pub fn delivery_id(a: &PendingAlert) -> String {
    format!("tapline-finding-{}-{}", a.finding.id, a.finding.count)
}

fn at_ns(ns: i64) -> SystemTime {
    UNIX_EPOCH + std::time::Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

/// `2026-11-30T05:20:00.123456Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// Year, month, day of a count of days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapline_store::endpoints::{Finding, FindingKind};

    fn alert() -> PendingAlert {
        PendingAlert {
            event: AlertEvent::New,
            endpoint: Some("POST api.test/login".into()),
            finding: Finding {
                id: 7,
                kind: FindingKind::CredentialStuffing,
                severity: Severity::Critical,
                confidence: 0.9,
                endpoint_id: Some(1),
                actor_ip: Some("10.0.0.9".into()),
                actor_user: Some("a\"b]c".into()),
                actor_key: None,
                actor_session: None,
                first_seen_ns: 1_795_421_288_327_626_000,
                last_seen_ns: 1_795_421_290_000_000_000,
                count: 28,
                title: "Credential stuffing\nfrom 10.0.0.9".into(),
                evidence: vec![1, 2],
                detail: None,
            },
        }
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let t = UNIX_EPOCH + std::time::Duration::from_micros(951_782_400_000_001);
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.000001Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn a_syslog_message_follows_rfc5424() {
        let m = rfc5424(&alert(), "sensor host", UNIX_EPOCH);
        assert_eq!(
            m,
            "<82>1 1970-01-01T00:00:00.000000Z sensorhost tapline - credential_stuffing \
             [tapline@32473 event=\"new\" finding=\"7\" kind=\"credential_stuffing\" \
             severity=\"critical\" count=\"28\" endpoint=\"POST api.test/login\" \
             actor_ip=\"10.0.0.9\" actor_user=\"a\\\"b\\]c\"] Credential stuffing from 10.0.0.9"
        );
    }

    #[test]
    fn an_ecs_document_names_the_rule_source_and_event() {
        let d = ecs(&alert(), UNIX_EPOCH);
        assert_eq!(d["event"]["kind"], "alert");
        assert_eq!(d["event"]["severity"], 99);
        assert_eq!(d["rule"]["name"], "credential_stuffing");
        assert_eq!(d["source"]["ip"], "10.0.0.9");
        assert_eq!(d["event"]["id"], "tapline-finding-7-28");
        assert!(
            d["event"]["start"]
                .as_str()
                .unwrap()
                .starts_with("2026-11-23T")
        );
    }
}
