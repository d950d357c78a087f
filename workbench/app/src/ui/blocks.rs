//! The Block rules view: author a rule (from an actor or finding in the attacks view, or by
//! hand), see what it would have blocked in the recorded traffic before saving it, and review
//! the rules in force with their measured effect, agents' refusals, the allowlist, automatic
//! rules and the audit log.

use super::app::Command;
use super::case::Case;
use super::format;
use eframe::egui::{self, RichText};
use tapline_store::blocks::{Action, MatchKind, NewRule};

/// How long a new rule lasts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lasts {
    /// One hour.
    Hour,
    /// A day.
    #[default]
    Day,
    /// A week.
    Week,
    /// Until removed.
    Permanent,
}

impl Lasts {
    const ALL: [Lasts; 4] = [Lasts::Hour, Lasts::Day, Lasts::Week, Lasts::Permanent];

    fn label(self) -> &'static str {
        match self {
            Lasts::Hour => "1 hour",
            Lasts::Day => "24 hours",
            Lasts::Week => "7 days",
            Lasts::Permanent => "until removed",
        }
    }

    fn seconds(self) -> Option<i64> {
        match self {
            Lasts::Hour => Some(3600),
            Lasts::Day => Some(86_400),
            Lasts::Week => Some(7 * 86_400),
            Lasts::Permanent => None,
        }
    }
}

/// A rule being written.
#[derive(Clone, Debug, PartialEq)]
pub struct Draft {
    /// What it matches on.
    pub kind: MatchKind,
    /// The value.
    pub value: String,
    /// For header rules: the header's name.
    pub header: String,
    /// Path globs, comma-separated.
    pub paths: String,
    /// How long.
    pub lasts: Lasts,
    /// Monitor only.
    pub monitor: bool,
    /// Why.
    pub reason: String,
    /// The findings behind it.
    pub findings: Vec<i64>,
}

impl Default for Draft {
    fn default() -> Self {
        Draft {
            kind: MatchKind::Ip,
            value: String::new(),
            header: String::new(),
            paths: String::new(),
            lasts: Lasts::Day,
            monitor: false,
            reason: String::new(),
            findings: Vec::new(),
        }
    }
}

impl Draft {
    /// The rule to store, or why it cannot be one.
    pub fn rule(&self) -> Result<NewRule, String> {
        let value = self.value.trim();
        if value.is_empty() {
            return Err("give the value to match".into());
        }
        let value = if self.kind == MatchKind::Ip {
            tapline_enforce::effective::parse_net(value)
                .map_err(|e| e.to_string())?
                .to_string()
        } else {
            value.to_owned()
        };
        let header = (self.kind == MatchKind::Header)
            .then(|| self.header.trim().to_owned())
            .filter(|h| !h.is_empty());
        if self.kind == MatchKind::Header && header.is_none() {
            return Err("give the header's name".into());
        }
        let now = tapline_record::time::now_nanos();
        Ok(NewRule {
            kind: self.kind,
            value,
            header,
            paths: self
                .paths
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
            methods: Vec::new(),
            action: if self.monitor {
                Action::Monitor
            } else {
                Action::Block
            },
            expires_ns: self.lasts.seconds().map(|s| now + s * 1_000_000_000),
            origin: if self.findings.is_empty() {
                "manual".into()
            } else {
                "finding".into()
            },
            reason: if self.reason.trim().is_empty() {
                "added in the workbench".into()
            } else {
                self.reason.trim().to_owned()
            },
            findings: self.findings.clone(),
            created_by: std::env::var("USER").unwrap_or_else(|_| "analyst".into()),
        })
    }
}

/// The view's state.
#[derive(Debug, Default)]
pub struct State {
    /// The rule being written.
    pub draft: Draft,
    /// The draft the shown preview is for (saving needs a preview of this very draft).
    previewed: Option<NewRule>,
    /// A value to allowlist.
    allow_value: String,
    allow_kind: Option<MatchKind>,
    message: Option<Result<String, String>>,
}

impl State {
    /// Starts a draft (from the attacks view).
    pub fn start(&mut self, draft: Draft) {
        self.draft = draft;
        self.previewed = None;
        self.message = None;
    }
}

const KINDS: [MatchKind; 5] = [
    MatchKind::Ip,
    MatchKind::User,
    MatchKind::Key,
    MatchKind::Session,
    MatchKind::Header,
];

/// Draws the view.
pub fn ui(ui: &mut egui::Ui, state: &mut State, case: &mut Case, cmds: &mut Vec<Command>) {
    egui::ScrollArea::vertical().show(ui, |ui| {
        draft(ui, state, case, cmds);
        ui.separator();
        rules(ui, case, cmds);
        ui.separator();
        allowlist(ui, state, case);
        egui::CollapsingHeader::new("Agents, automatic rules and the audit log")
            .default_open(false)
            .show(ui, |ui| more(ui, case));
    });
}

fn draft(ui: &mut egui::Ui, state: &mut State, case: &mut Case, cmds: &mut Vec<Command>) {
    ui.heading("New rule");
    let d = &mut state.draft;
    egui::Grid::new("block-draft")
        .num_columns(2)
        .show(ui, |ui| {
            ui.label("match");
            ui.horizontal(|ui| {
                for k in KINDS {
                    ui.selectable_value(&mut d.kind, k, k.name());
                }
            });
            ui.end_row();
            if d.kind == MatchKind::Header {
                ui.label("header");
                ui.text_edit_singleline(&mut d.header);
                ui.end_row();
            }
            ui.label("value");
            ui.text_edit_singleline(&mut d.value);
            ui.end_row();
            ui.label("paths");
            ui.add(egui::TextEdit::singleline(&mut d.paths).hint_text("all; or /api/*, /admin/*"));
            ui.end_row();
            ui.label("for");
            ui.horizontal(|ui| {
                for l in Lasts::ALL {
                    ui.selectable_value(&mut d.lasts, l, l.label());
                }
            });
            ui.end_row();
            ui.label("action");
            ui.horizontal(|ui| {
                ui.selectable_value(&mut d.monitor, false, "block");
                ui.selectable_value(&mut d.monitor, true, "monitor (count only)");
            });
            ui.end_row();
            ui.label("reason");
            ui.text_edit_singleline(&mut d.reason);
            ui.end_row();
        });
    let rule = state.draft.rule();
    ui.horizontal(|ui| {
        let preview = ui.add_enabled(rule.is_ok(), egui::Button::new("Preview effect"));
        if preview.clicked()
            && let Ok(r) = &rule
        {
            state.previewed = Some(r.clone());
            case.preview_rule(r.clone());
        }
        let fresh = matches!((&rule, &state.previewed), (Ok(r), Some(p)) if r.kind == p.kind && r.value == p.value && r.paths == p.paths && r.header == p.header)
            && case.preview.value.is_some();
        let save = ui
            .add_enabled(fresh, egui::Button::new("Save rule"))
            .on_disabled_hover_text("Preview the rule's effect first");
        if save.clicked()
            && let Ok(r) = rule.clone()
        {
            state.message = Some(Ok(format!("saving: {} {} {}", r.action.name(), r.kind.name(), r.value)));
            case.act(super::backend::Query::AddRule(Box::new(r)));
            state.previewed = None;
            case.preview.value = None;
        }
        if let Err(e) = &rule
            && !state.draft.value.is_empty()
        {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
    });
    if state.previewed.is_some() {
        match (&case.preview.value, &case.preview.error) {
            (Some(e), _) => {
                ui.label(format!(
                    "Would have blocked {} recorded request(s) from {} actor(s).",
                    format::count(e.would_block),
                    e.actors
                ));
                if !e.examples.is_empty()
                    && ui
                        .button("Show these requests in Traffic")
                        .on_hover_text(
                            "The recorded requests the rule would have refused (up to 500)",
                        )
                        .clicked()
                {
                    cmds.push(Command::ShowTraffic(Box::new(
                        tapline_store::query::TxFilter {
                            ids: Some(e.examples.clone()),
                            ..Default::default()
                        },
                    )));
                }
                for (who, n) in &e.false_positive_candidates {
                    ui.colored_label(
                        ui.visuals().warn_fg_color,
                        format!("possible false positive: {who} ({n} request(s); allowlisted or no finding names it)"),
                    );
                }
            }
            (None, Some(err)) => {
                ui.colored_label(ui.visuals().error_fg_color, err);
            }
            (None, None) => {
                ui.label("replaying the recorded traffic…");
            }
        }
    }
    if let Some(m) = &state.message {
        match m {
            Ok(t) => ui.label(t),
            Err(e) => ui.colored_label(ui.visuals().error_fg_color, e),
        };
    }
}

fn rules(ui: &mut egui::Ui, case: &mut Case, cmds: &mut Vec<Command>) {
    ui.heading("Rules");
    let Some(b) = case.blocks.value.clone() else {
        ui.label(case.blocks.error.as_deref().unwrap_or("loading…"));
        return;
    };
    let now = tapline_record::time::now_nanos();
    let mut remove = None;
    egui::Grid::new("block-rules").striped(true).show(ui, |ui| {
        for h in [
            "id",
            "state",
            "match",
            "value",
            "scope",
            "until",
            "would block",
            "refused by agents",
            "false-positive candidates",
            "reason",
            "",
        ] {
            ui.label(RichText::new(h).strong());
        }
        ui.end_row();
        for r in &b.rules {
            let live = r.active_at(now);
            ui.label(r.id.to_string());
            ui.label(if live { r.action.name() } else { "ended" });
            ui.label(r.kind.name());
            let value = match &r.header {
                Some(h) => format!("{h}: {}", r.value),
                None => r.value.clone(),
            };
            ui.label(RichText::new(value).monospace());
            ui.label(if r.paths.is_empty() {
                "all".to_owned()
            } else {
                r.paths.join(", ")
            });
            ui.label(
                r.expires_ns
                    .map_or_else(|| "removed by hand".into(), format::time),
            );
            let e = b.effects.get(&r.id);
            ui.label(e.map_or_else(
                || if live { "0".into() } else { String::new() },
                |e| {
                    format!(
                        "{} ({} since made)",
                        format::count(e.would_block),
                        format::count(e.since_created)
                    )
                },
            ));
            let (blocked, monitored) = b.hits.get(&r.id).copied().unwrap_or_default();
            ui.label(if monitored > 0 {
                format!("{blocked} (+{monitored} monitored)")
            } else {
                blocked.to_string()
            });
            let fp: Vec<String> = e
                .map(|e| {
                    e.false_positive_candidates
                        .iter()
                        .map(|(w, n)| format!("{w} ×{n}"))
                        .collect()
                })
                .unwrap_or_default();
            ui.label(fp.join(", "));
            ui.label(&r.reason);
            if live && ui.button("Remove").clicked() {
                remove = Some(r.id);
            }
            ui.end_row();
        }
    });
    if let Some(id) = remove {
        case.act(super::backend::Query::RemoveRule(id));
        cmds.push(Command::Refresh);
    }
}

fn allowlist(ui: &mut egui::Ui, state: &mut State, case: &mut Case) {
    ui.heading("Allowlist (always wins)");
    if let Some(b) = case.blocks.value.clone() {
        for a in &b.allow {
            ui.label(format!(
                "{} {} — {} ({})",
                a.kind.name(),
                a.value,
                a.note,
                a.created_by
            ));
        }
    }
    ui.horizontal(|ui| {
        let kind = state.allow_kind.get_or_insert(MatchKind::Ip);
        for k in [MatchKind::Ip, MatchKind::User, MatchKind::Key] {
            ui.selectable_value(kind, k, k.name());
        }
        ui.text_edit_singleline(&mut state.allow_value);
        if ui.button("Allow").clicked() && !state.allow_value.trim().is_empty() {
            let value = state.allow_value.trim().to_owned();
            let value = if *kind == MatchKind::Ip {
                match tapline_enforce::effective::parse_net(&value) {
                    Ok(n) => n.to_string(),
                    Err(e) => {
                        state.message = Some(Err(e.to_string()));
                        return;
                    }
                }
            } else {
                value
            };
            case.act(super::backend::Query::Allow(*kind, value));
            state.allow_value.clear();
        }
    });
}

fn more(ui: &mut egui::Ui, case: &Case) {
    let Some(b) = case.blocks.value.clone() else {
        return;
    };
    ui.label(RichText::new("Agents").strong());
    for a in &b.agents {
        ui.label(format!(
            "{} — {}, last asked {}",
            a.name,
            if a.revoked_ns.is_some() {
                "revoked"
            } else {
                "live"
            },
            a.last_seen_ns.map_or_else(|| "never".into(), format::time)
        ));
    }
    ui.label(RichText::new("Automatic rules").strong());
    for (id, name, spec) in &b.auto {
        ui.label(RichText::new(format!("{id} {name}: {spec}")).monospace());
    }
    ui.label(RichText::new("Audit log (newest first)").strong());
    for e in &b.audit {
        ui.label(format!(
            "{}  {}  {}  {}",
            format::time(e.at_ns),
            e.who,
            e.event,
            e.note
        ));
    }
}
