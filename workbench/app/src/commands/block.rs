//! `tapline block …` and `tapline blocklist export`: block rules, the allowlist, the audit log,
//! and the rules in force written for enforcement points.

use crate::cli::{BlockBy, BlockCommand, BlocklistCommand, ListFormat, MatchArgs};
use crate::commands::Cases;
use anyhow::{Context, Result, bail};
use std::io::Write;
use tapline_enforce::effective::parse_net;
use tapline_record::time::now_nanos as now_ns;
use tapline_store::blocks::{Action, MatchKind, NewRule};

/// Runs a `block` subcommand.
pub fn run(cmd: &BlockCommand, cases: &Cases, out: &mut dyn Write) -> Result<()> {
    match cmd {
        BlockCommand::Add(a) => {
            let (kind, value, header) = matched(&a.what)?;
            let rule = NewRule {
                kind,
                value,
                header,
                paths: a.path.clone(),
                methods: a.method.iter().map(|m| m.to_ascii_uppercase()).collect(),
                action: if a.monitor {
                    Action::Monitor
                } else {
                    Action::Block
                },
                expires_ns: a.duration.as_deref().map(expiry).transpose()?,
                origin: "manual".into(),
                reason: a.reason.clone(),
                findings: Vec::new(),
                created_by: who(a.who.as_deref()),
            };
            if a.dry_run {
                return preview(cases, &a.db, &rule, out);
            }
            add(cases, &a.db, &rule, out)
        }
        BlockCommand::List(a) => list(cases, a, out),
        BlockCommand::Remove(a) => {
            let mut case = cases.open_existing(&a.db)?;
            if !case.remove_block_rule(a.id, &who(a.who.as_deref()), &a.note)? {
                bail!(
                    "no rule {} in force in {} (see `tapline block list --all`)",
                    a.id,
                    a.db.display()
                );
            }
            writeln!(out, "removed rule {}", a.id)?;
            Ok(())
        }
        BlockCommand::Allow(a) => {
            let (kind, value, _) = matched(&a.what)?;
            if !matches!(kind, MatchKind::Ip | MatchKind::User | MatchKind::Key) {
                bail!("the allowlist holds addresses, users and API keys (--ip, --user, --key)");
            }
            let id = cases
                .open(&a.db)?
                .allow(kind, &value, &a.note, &who(a.who.as_deref()))?;
            writeln!(
                out,
                "allowlist entry {id}: {} {value} is never blocked",
                kind.name()
            )?;
            Ok(())
        }
        BlockCommand::Audit(a) => {
            let mut case = cases.open_existing(&a.db)?;
            case.audit_expiries(now_ns())?;
            let log = case.block_audit()?;
            if a.format == ListFormat::Json {
                writeln!(out, "{}", serde_json::to_string_pretty(&log)?)?;
                return Ok(());
            }
            for e in log {
                let what = match (e.rule_id, e.allow_id) {
                    (Some(r), _) => format!("rule {r}"),
                    (_, Some(a)) => format!("allow {a}"),
                    _ => String::new(),
                };
                writeln!(
                    out,
                    "{}  {:<8} {:<10} {what:<10} {}",
                    time(e.at_ns),
                    e.who,
                    e.event,
                    e.note
                )?;
            }
            Ok(())
        }
        BlockCommand::Hits(a) => hits(cases, a, out),
        BlockCommand::Auto(cmd) => auto(cmd, cases, out),
        BlockCommand::FromFinding(a) => {
            let case = cases.open_existing(&a.db)?;
            let f = case
                .findings()?
                .into_iter()
                .find(|f| f.id == a.id)
                .with_context(|| {
                    format!(
                        "no finding {} in {} (see `tapline findings`)",
                        a.id,
                        a.db.display()
                    )
                })?;
            drop(case);
            let by = a.by.unwrap_or(if f.actor_user.is_some() {
                BlockBy::User
            } else {
                BlockBy::Ip
            });
            let (kind, value) = match by {
                BlockBy::Ip => (MatchKind::Ip, f.actor_ip.clone()),
                BlockBy::User => (MatchKind::User, f.actor_user.clone()),
                BlockBy::Key => bail!(
                    "cases keep API keys shortened (never whole): block the key with `tapline block add --key`"
                ),
                BlockBy::Session => bail!(
                    "cases keep sessions shortened (never whole): block it with `tapline block add --session`"
                ),
            };
            let value = value.with_context(|| {
                format!("finding {} names no {} for its actor", a.id, kind.name())
            })?;
            let value = if kind == MatchKind::Ip {
                parse_net(&value)?.to_string()
            } else {
                value
            };
            let rule = NewRule {
                kind,
                value,
                header: None,
                paths: Vec::new(),
                methods: Vec::new(),
                action: if a.monitor {
                    Action::Monitor
                } else {
                    Action::Block
                },
                expires_ns: Some(expiry(&a.duration)?),
                origin: "finding".into(),
                reason: format!("finding {}: {}", f.id, f.title),
                findings: vec![f.id],
                created_by: who(a.who.as_deref()),
            };
            add(cases, &a.db, &rule, out)
        }
    }
}

fn add(cases: &Cases, db: &std::path::Path, rule: &NewRule, out: &mut dyn Write) -> Result<()> {
    let mut case = cases.open(db)?;
    let id = case.add_block_rule(rule)?;
    let verb = if rule.action == Action::Monitor {
        "monitors"
    } else {
        "blocks"
    };
    writeln!(out, "rule {id} {verb} {} {}", rule.kind.name(), rule.value)?;
    // The allowlist wins: say so now rather than let the export drop it silently.
    let e = tapline_enforce::effective(&case.block_rules()?, &case.allowlist()?, now_ns());
    for (_, spared) in e.spared.iter().filter(|(r, _)| *r == id) {
        writeln!(
            out,
            "warning: {spared} is allowlisted: rule {id} will not block it"
        )?;
    }
    Ok(())
}

fn auto(cmd: &crate::cli::BlockAutoCommand, cases: &Cases, out: &mut dyn Write) -> Result<()> {
    use crate::cli::BlockAutoCommand as A;
    match cmd {
        A::Add(a) => {
            let secs = |d: &str| -> Result<u64> {
                Ok(((expiry(d)? - now_ns()) / 1_000_000_000).max(1) as u64)
            };
            let spec = tapline_enforce::auto::AutoSpec {
                kinds: a.kinds.clone(),
                min_severity: tapline_store::endpoints::Severity::from_name(&a.min_severity)
                    .with_context(|| {
                        format!(
                            "--min-severity {:?}: low, medium, high or critical",
                            a.min_severity
                        )
                    })?,
                threshold: a.threshold.max(1),
                window_s: secs(&a.window)?,
                by: match a.by {
                    BlockBy::Ip => MatchKind::Ip,
                    BlockBy::User => MatchKind::User,
                    BlockBy::Key => MatchKind::Key,
                    BlockBy::Session => MatchKind::Session,
                },
                duration_s: secs(&a.duration)?,
                paths: a.path.clone(),
                methods: a.method.iter().map(|m| m.to_ascii_uppercase()).collect(),
                except: a.except.clone(),
                action: if a.monitor {
                    Action::Monitor
                } else {
                    Action::Block
                },
                cooldown_s: secs(&a.cooldown)?,
                max_active: a.max_active,
            };
            for k in &spec.kinds {
                if k != "attack"
                    && k != "behaviour"
                    && tapline_store::endpoints::FindingKind::from_name(k).is_none()
                {
                    bail!(
                        "--kind {k:?} is not a finding kind (tapline findings) nor a family (attack, behaviour)"
                    );
                }
            }
            let mut case = cases.open(&a.db)?;
            let id = case.add_auto_rule(&a.name, &serde_json::to_string(&spec)?, &who(None))?;
            writeln!(out, "automatic rule {id} ({}) added", a.name)?;
            // The findings already in the case count at once.
            let done = tapline_enforce::auto::apply(&mut case, now_ns())?;
            writeln!(
                out,
                "{} block(s) added, {} extended from the findings in the case",
                done.added.len(),
                done.extended.len()
            )?;
            Ok(())
        }
        A::List(a) => {
            let autos = cases.open_existing(&a.db)?.auto_rules()?;
            if a.format == ListFormat::Json {
                let list: Vec<serde_json::Value> = autos
                    .iter()
                    .map(|(id, name, spec)| serde_json::json!({ "id": id, "name": name, "spec": serde_json::from_str::<serde_json::Value>(spec).unwrap_or_default() }))
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
                return Ok(());
            }
            for (id, name, spec) in autos {
                writeln!(out, "{id:>4}  {name:<24} {spec}")?;
            }
            Ok(())
        }
        A::Remove(a) => {
            if !cases
                .open_existing(&a.db)?
                .remove_auto_rule(a.id, &who(a.who.as_deref()))?
            {
                bail!(
                    "no automatic rule {} in {} (tapline block auto list)",
                    a.id,
                    a.db.display()
                );
            }
            writeln!(
                out,
                "automatic rule {} removed; the blocks it made stay until they end",
                a.id
            )?;
            Ok(())
        }
    }
}

fn hits(cases: &Cases, a: &crate::cli::ListArgs, out: &mut dyn Write) -> Result<()> {
    let case = cases.open_existing(&a.db)?;
    let counts = case.block_hit_counts()?;
    let latest = case.block_hits(50)?;
    if a.format == ListFormat::Json {
        let doc = serde_json::json!({ "per_rule": counts, "latest": latest });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:>4}  {:<8} {:>8}  LAST",
        "RULE", "ACTION", "REQUESTS"
    )?;
    for c in &counts {
        writeln!(
            out,
            "{:>4}  {:<8} {:>8}  {}",
            c.rule_id,
            c.action,
            c.count,
            time(c.last_ns)
        )?;
    }
    writeln!(out)?;
    for h in latest {
        writeln!(
            out,
            "{}  rule {:<4} {:<8} {:<12} {:<16} {} {}",
            time(h.at_ns),
            h.rule_id,
            h.action,
            h.agent,
            h.client.as_deref().unwrap_or("-"),
            h.method,
            h.path
        )?;
    }
    Ok(())
}

/// What a draft rule would have blocked in the recorded traffic.
fn preview(cases: &Cases, db: &std::path::Path, rule: &NewRule, out: &mut dyn Write) -> Result<()> {
    let case = cases.open_existing(db)?;
    let draft = rule.stored_as(0, now_ns());
    let effects = tapline_enforce::replay::replay(&case, &[draft], &case.allowlist()?, now_ns())?;
    let e = effects.into_iter().next().unwrap_or_default();
    writeln!(
        out,
        "dry run (nothing saved): would have blocked {} recorded request(s) from {} actor(s)",
        e.would_block, e.actors
    )?;
    for (who, n) in &e.false_positive_candidates {
        writeln!(
            out,
            "  possible false positive: {who} ({n} request(s); allowlisted or no finding names it)"
        )?;
    }
    if !e.examples.is_empty() {
        let first: Vec<i64> = e.examples.iter().take(5).copied().collect();
        writeln!(out, "  e.g. transactions {first:?}")?;
    }
    Ok(())
}

fn list(cases: &Cases, a: &crate::cli::BlockListArgs, out: &mut dyn Write) -> Result<()> {
    let now = now_ns();
    let case = cases.open_existing(&a.list.db)?;
    let rules: Vec<_> = case
        .block_rules()?
        .into_iter()
        .filter(|r| a.all || r.active_at(now))
        .collect();
    let effects: std::collections::BTreeMap<i64, tapline_enforce::replay::Effect> = if a.effect {
        tapline_enforce::replay::replay(&case, &rules, &case.allowlist()?, now)?
            .into_iter()
            .map(|e| (e.rule_id, e))
            .collect()
    } else {
        Default::default()
    };
    if a.list.format == ListFormat::Json {
        let doc: Vec<serde_json::Value> = rules
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                if a.effect {
                    v["effect"] =
                        serde_json::to_value(effects.get(&r.id).cloned().unwrap_or_default())
                            .unwrap_or_default();
                }
                v
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:>4}  {:<8} {:<7} {:<30} {:<20} {:<18} REASON",
        "ID", "ACTION", "MATCH", "VALUE", "SCOPE", "UNTIL"
    )?;
    for r in rules {
        let state = if r.active_at(now) {
            r.action.name()
        } else {
            "ended"
        };
        let scope = if r.paths.is_empty() && r.methods.is_empty() {
            "all".to_owned()
        } else {
            format!("{} {}", r.methods.join(","), r.paths.join(","))
        };
        let until = r.expires_ns.map_or_else(|| "removed by hand".into(), time);
        let value = match &r.header {
            Some(h) => format!("{h}: {}", r.value),
            None => r.value.clone(),
        };
        writeln!(
            out,
            "{:>4}  {state:<8} {:<7} {value:<30} {scope:<20} {until:<18} {}",
            r.id,
            r.kind.name(),
            r.reason
        )?;
        if let Some(e) = effects.get(&r.id) {
            writeln!(
                out,
                "      would block {} recorded request(s) ({} since made) from {} actor(s){}",
                e.would_block,
                e.since_created,
                e.actors,
                if e.false_positive_candidates.is_empty() {
                    String::new()
                } else {
                    let fp: Vec<String> = e
                        .false_positive_candidates
                        .iter()
                        .map(|(w, n)| format!("{w} ×{n}"))
                        .collect();
                    format!("; possible false positives: {}", fp.join(", "))
                }
            )?;
        }
    }
    Ok(())
}

/// Runs a `blocklist` subcommand.
pub fn export(cmd: &BlocklistCommand, cases: &Cases, out: &mut dyn Write) -> Result<()> {
    let a = match cmd {
        BlocklistCommand::Export(a) => a,
        BlocklistCommand::Verify(v) => return verify(v, out),
    };
    let format = tapline_enforce::Format::parse(&a.format).with_context(|| {
        let known: Vec<&str> = tapline_enforce::Format::ALL
            .iter()
            .map(|f| f.name())
            .collect();
        format!("--format {:?} is not one of {}", a.format, known.join(", "))
    })?;
    let case = cases.open_existing(&a.db)?;
    let e = tapline_enforce::effective(&case.block_rules()?, &case.allowlist()?, now_ns());
    let text = tapline_enforce::export(&e, format);
    let Some(path) = &a.output else {
        return Ok(out.write_all(text.as_bytes())?);
    };
    std::fs::write(path, &text).with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(
        out,
        "wrote {} rule(s) in force to {}",
        e.block.len(),
        path.display()
    )?;
    if a.sign {
        let key = signing_key(&crate::commands::sensors::identity_dir(&a.identity)?)?;
        let sig = tapline_enforce::sign::sign(&key, text.as_bytes())?;
        let sig_path = signature_path(path);
        std::fs::write(&sig_path, sig)
            .with_context(|| format!("cannot write {}", sig_path.display()))?;
        writeln!(out, "signed: {}", sig_path.display())?;
    }
    Ok(())
}

fn signature_path(file: &std::path::Path) -> std::path::PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(".sig");
    p.into()
}

/// The block-list signing key in the identity directory, made (with its public key file) on
/// first use.
fn signing_key(dir: &std::path::Path) -> Result<Vec<u8>> {
    let key_path = dir.join("blocklist-signing.key");
    if let Ok(k) = std::fs::read(&key_path) {
        return Ok(k);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let key = tapline_enforce::sign::new_key()?;
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_path)
            .and_then(|mut f| f.write_all(&key))
            .with_context(|| format!("cannot write {}", key_path.display()))?;
    }
    let public = dir.join("blocklist-signing.pub");
    std::fs::write(&public, tapline_enforce::sign::public_key(&key)? + "\n")
        .with_context(|| format!("cannot write {}", public.display()))?;
    Ok(key)
}

fn verify(v: &crate::cli::BlocklistVerifyArgs, out: &mut dyn Write) -> Result<()> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
    };
    let data = read(&v.file)?;
    let sig_path = signature_path(&v.file);
    let sig = String::from_utf8_lossy(&read(&sig_path)?).into_owned();
    let public = String::from_utf8_lossy(&read(&v.public_key)?).into_owned();
    tapline_enforce::sign::verify(&public, &data, &sig)
        .with_context(|| format!("{} does not verify", v.file.display()))?;
    writeln!(out, "{}: signature good", v.file.display())?;
    Ok(())
}

/// The one value the arguments name.
fn matched(m: &MatchArgs) -> Result<(MatchKind, String, Option<String>)> {
    let non_empty = |v: &str, what: &'static str| -> Result<String> {
        let v = v.trim();
        if v.is_empty() {
            bail!("--{what} needs a value");
        }
        Ok(v.to_owned())
    };
    Ok(match m {
        MatchArgs { ip: Some(v), .. } => (MatchKind::Ip, parse_net(v)?.to_string(), None),
        MatchArgs { user: Some(v), .. } => (MatchKind::User, non_empty(v, "user")?, None),
        MatchArgs {
            session: Some(v), ..
        } => (MatchKind::Session, non_empty(v, "session")?, None),
        MatchArgs { key: Some(v), .. } => (MatchKind::Key, non_empty(v, "key")?, None),
        MatchArgs {
            header: Some(v), ..
        } => {
            let (name, value) = v
                .split_once(':')
                .with_context(|| format!("--header {v:?}: write 'Name: value'"))?;
            let name = name.trim();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                bail!("--header {v:?}: {name:?} is not a header name");
            }
            (
                MatchKind::Header,
                non_empty(value, "header")?,
                Some(name.to_owned()),
            )
        }
        _ => bail!("say what to match: --ip, --user, --session, --key or --header"),
    })
}

/// `24h` from now, in ns since the epoch.
fn expiry(d: &str) -> Result<i64> {
    let d = d.trim();
    let (n, unit) = d.split_at(d.find(|c: char| !c.is_ascii_digit()).unwrap_or(d.len()));
    let n: i64 = n
        .parse()
        .with_context(|| format!("--for {d:?}: write 90s, 30m, 24h or 7d"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" | "" => n * 3600,
        "d" => n * 86_400,
        _ => bail!("--for {d:?}: the unit is s, m, h or d"),
    };
    if secs <= 0 {
        bail!("--for {d:?}: a rule lasts some time; remove it instead");
    }
    Ok(now_ns().saturating_add(secs.saturating_mul(1_000_000_000)))
}

fn who(given: Option<&str>) -> String {
    given
        .map(str::to_owned)
        .or_else(|| std::env::var("USER").ok())
        .filter(|w| !w.trim().is_empty())
        .unwrap_or_else(|| "analyst".into())
}

fn time(ns: i64) -> String {
    crate::ui::format::time(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_expiry_times() {
        let now = now_ns();
        let h = expiry("24h").unwrap() - now;
        assert!((h - 86_400_000_000_000).abs() < 5_000_000_000, "{h}");
        assert!(expiry("3x").is_err() && expiry("0s").is_err() && expiry("h").is_err());
    }
}
