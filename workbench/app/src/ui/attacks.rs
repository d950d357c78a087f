//! Attacks: findings grouped by the actor behind them (address, principal, key, session),
//! the actor's timeline, and a finding's evidence down to the transactions.

use super::app::Command;
use super::case::Case;
use super::format;
use super::overview::loading;
use eframe::egui::{self, RichText};
use egui_plot::{Line, Plot, PlotPoints, Points};
use std::collections::BTreeMap;
use tapline_store::endpoints::{Finding, Severity};
use tapline_store::query::TxFilter;

/// The view's state.
#[derive(Debug, Default)]
pub struct State {
    /// Only findings of this severity.
    pub severity: Option<Severity>,
    /// Include `info` findings (new endpoints and the like).
    pub show_info: bool,
    /// The selected finding.
    pub selected: Option<i64>,
    /// The evidence of `selected` must be (re)loaded.
    load_pending: bool,
}

impl State {
    /// Selects a finding and asks for its evidence.
    pub fn select(&mut self, id: i64, case: Option<&mut Case>) {
        self.selected = Some(id);
        self.load_pending = true;
        if let Some(case) = case {
            self.load(case);
        }
    }

    fn load(&mut self, case: &mut Case) {
        if !self.load_pending {
            return;
        }
        let Some(inv) = case.inventory.value.clone() else {
            return; // once the inventory arrives
        };
        self.load_pending = false;
        if let Some(f) = self.selected.and_then(|id| inv.finding(id)) {
            if f.severity == Severity::Info {
                self.show_info = true;
            }
            case.load_evidence(&f.evidence);
        }
    }
}

/// Who a finding is about, as one line.
pub fn actor_label(f: &Finding) -> String {
    let mut parts = Vec::new();
    if let Some(u) = &f.actor_user {
        parts.push(format!("user {u}"));
    }
    if let Some(ip) = &f.actor_ip {
        parts.push(ip.clone());
    }
    if let Some(k) = &f.actor_key {
        parts.push(format!("key {k}"));
    }
    if let Some(s) = &f.actor_session {
        parts.push(format!("session {s}"));
    }
    if parts.is_empty() {
        "no single actor".to_owned()
    } else {
        parts.join(" · ")
    }
}

/// Draws the attacks view.
pub fn ui(ui: &mut egui::Ui, state: &mut State, case: &mut Case, cmds: &mut Vec<Command>) {
    let Some(inv) = case.inventory.value.clone() else {
        loading(ui, case.inventory.error.as_deref());
        return;
    };
    if ui.input(|i| i.key_pressed(egui::Key::Escape)) {
        state.selected = None;
    }
    ui.horizontal_wrapped(|ui| {
        ui.label("Severity:");
        if ui
            .selectable_label(state.severity.is_none(), "all")
            .clicked()
        {
            state.severity = None;
        }
        for s in Severity::MOST_SEVERE_FIRST {
            let n = inv.findings.iter().filter(|f| f.severity == s).count();
            if n > 0
                && ui
                    .selectable_label(state.severity == Some(s), format!("{s} ({n})"))
                    .clicked()
            {
                state.severity = Some(s);
            }
        }
        ui.checkbox(&mut state.show_info, "include info findings");
    });
    let shown: Vec<&Finding> = inv
        .findings
        .iter()
        .filter(|f| match state.severity {
            Some(s) => f.severity == s,
            None => state.show_info || f.severity != Severity::Info,
        })
        .collect();
    // Actor → findings; actors with the most severe findings first.
    let mut actors: BTreeMap<String, Vec<&Finding>> = BTreeMap::new();
    for f in &shown {
        actors.entry(actor_label(f)).or_default().push(f);
    }
    let mut actors: Vec<(String, Vec<&Finding>)> = actors.into_iter().collect();
    actors.sort_by_key(|(name, fs)| {
        (
            std::cmp::Reverse(fs.iter().map(|f| f.severity).max()),
            std::cmp::Reverse(fs.len()),
            name.clone(),
        )
    });
    let width = ui.available_width();
    egui::Panel::left("actors")
        .resizable(true)
        .default_size(width * 0.42)
        .max_size(width * 0.75)
        .show(ui, |ui| {
            ui.label(
                RichText::new(format!(
                    "{} findings from {} actors",
                    shown.len(),
                    actors.len()
                ))
                .weak(),
            );
            egui::ScrollArea::vertical()
                .id_salt("actor-list")
                .show(ui, |ui| {
                    for (actor, fs) in &actors {
                        let worst = fs
                            .iter()
                            .map(|f| f.severity)
                            .max()
                            .unwrap_or(Severity::Info);
                        let header = egui::CollapsingHeader::new(
                            RichText::new(format!("{actor}  ({})", fs.len()))
                                .strong()
                                .color(format::severity_color(worst)),
                        )
                        .id_salt(actor)
                        .default_open(true);
                        header.show(ui, |ui| {
                            for f in fs {
                                ui.horizontal(|ui| {
                                    ui.label(format::severity_badge(f.severity));
                                    if case.seen.is_new(f.id) {
                                        ui.label(
                                            RichText::new("NEW")
                                                .strong()
                                                .color(format::severity_color(Severity::Critical)),
                                        )
                                        .on_hover_text("found since you last left this view");
                                    }
                                    let chosen = state.selected == Some(f.id);
                                    if ui
                                        .selectable_label(
                                            chosen,
                                            format!("{} · {}", f.kind, f.count),
                                        )
                                        .on_hover_text(&f.title)
                                        .clicked()
                                    {
                                        state.selected = Some(f.id);
                                        state.load_pending = true;
                                    }
                                });
                            }
                        });
                    }
                });
        });
    state.load(case);
    egui::ScrollArea::vertical()
        .id_salt("finding-detail")
        .show(ui, |ui| {
            match state.selected.and_then(|id| inv.finding(id)) {
                None => {
                    ui.label(RichText::new("Select a finding to see its evidence.").weak());
                    if let Some((actor, fs)) = actors.first() {
                        ui.add_space(8.0);
                        ui.label(RichText::new(format!("Timeline of {actor}")).strong());
                        actor_timeline(ui, fs);
                    }
                }
                Some(f) => {
                    let same_actor: Vec<&Finding> = actors
                        .iter()
                        .find(|(a, _)| *a == actor_label(f))
                        .map(|(_, fs)| fs.clone())
                        .unwrap_or_default();
                    finding_detail(ui, f, &same_actor, case, &inv, cmds);
                }
            }
        });
}

fn actor_timeline(ui: &mut egui::Ui, fs: &[&Finding]) {
    let Some(t0) = fs.iter().map(|f| f.first_seen_ns).min() else {
        return;
    };
    let names: Vec<String> = fs.iter().map(|f| f.kind.to_string()).collect();
    Plot::new(("actor-timeline", fs.len(), t0))
        .height(40.0 + 24.0 * fs.len() as f32)
        .allow_scroll(false)
        .allow_drag(false)
        .allow_zoom(false)
        .show_y(false)
        .y_axis_formatter(move |m, _| {
            let i = m.value.round();
            if (m.value - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_axis_formatter(move |m, _| format::time(t0 + (m.value * 1e9) as i64)[11..19].to_owned())
        .show(ui, |p| {
            for (i, f) in fs.iter().enumerate() {
                let a = (f.first_seen_ns - t0) as f64 / 1e9;
                let b = (f.last_seen_ns - t0) as f64 / 1e9;
                let color = format::severity_color(f.severity);
                p.line(
                    Line::new(
                        f.kind.to_string(),
                        PlotPoints::from(vec![[a, i as f64], [b.max(a + 0.05), i as f64]]),
                    )
                    .width(8.0)
                    .color(color),
                );
            }
        });
}

fn finding_detail(
    ui: &mut egui::Ui,
    f: &Finding,
    same_actor: &[&Finding],
    case: &mut Case,
    inv: &super::backend::Inventory,
    cmds: &mut Vec<Command>,
) {
    ui.horizontal_wrapped(|ui| {
        ui.label(format::severity_badge(f.severity));
        ui.heading(&f.title);
    });
    egui::Grid::new("finding-facts").show(ui, |ui| {
        ui.label("kind");
        ui.label(RichText::new(f.kind.name()).monospace());
        ui.end_row();
        ui.label("confidence");
        ui.label(format!("{:.0}%", f.confidence * 100.0));
        ui.end_row();
        ui.label("actor");
        ui.label(actor_label(f));
        ui.end_row();
        ui.label("seen");
        ui.label(format!(
            "{} times, {} – {}",
            format::count(f.count),
            format::time(f.first_seen_ns),
            format::time(f.last_seen_ns)
        ));
        ui.end_row();
        if let Some(e) = f.endpoint_id.and_then(|id| inv.endpoint(id)) {
            ui.label("endpoint");
            if ui.link(&e.label).clicked() {
                cmds.push(Command::ShowEndpoint(e.endpoint.id));
            }
            ui.end_row();
        }
    });
    ui.horizontal(|ui| {
        if ui
            .button("Generate a test")
            .on_hover_text("A security test that checks whether the target allows what this finding shows (Tests view)")
            .clicked()
        {
            cmds.push(Command::GenerateTests {
                endpoint: None,
                finding: Some(f.id),
            });
        }
        if ui
            .button("Block…")
            .on_hover_text("A block rule for this actor (Block rules view: pick the identifier and duration, preview its effect, save)")
            .clicked()
        {
            cmds.push(Command::BlockDraft(Box::new(block_draft(f))));
        }
        if ui.button("Show evidence in Traffic").clicked() {
            cmds.push(Command::ShowTraffic(Box::new(TxFilter {
                ids: Some(f.evidence.clone()),
                ..TxFilter::default()
            })));
        }
        if let Some(ip) = &f.actor_ip
            && ui.button(format!("All traffic from {ip}")).clicked()
        {
            cmds.push(Command::ShowTraffic(Box::new(TxFilter {
                client_ip: Some(ip.clone()),
                ..TxFilter::default()
            })));
        }
    });
    if same_actor.len() > 1 {
        ui.label(RichText::new("This actor's findings over time").strong());
        actor_timeline(ui, same_actor);
    }
    if let Some(d) = &f.detail {
        egui::CollapsingHeader::new("Detail")
            .default_open(false)
            .show(ui, |ui| {
                let text = serde_json::to_string_pretty(d).unwrap_or_default();
                ui.add(egui::Label::new(RichText::new(text).monospace()).selectable(true));
            });
    }
    ui.separator();
    ui.label(RichText::new(format!("Evidence ({} transactions)", f.evidence.len())).strong());
    let Some(rows) = case.evidence.value.clone() else {
        loading(ui, case.evidence.error.as_deref());
        return;
    };
    if let Some(t0) = rows.iter().map(|r| r.ts_ns).min() {
        let pts: Vec<[f64; 2]> = rows
            .iter()
            .map(|r| {
                [
                    (r.ts_ns - t0) as f64 / 1e9,
                    f64::from(r.status.unwrap_or(0)),
                ]
            })
            .collect();
        Plot::new(("evidence-timeline", f.id))
            .height(140.0)
            .allow_scroll(false)
            .allow_drag(false)
            .allow_zoom(false)
            .include_y(0.0)
            .x_axis_formatter(move |m, _| {
                format::time(t0 + (m.value * 1e9) as i64)[11..23].to_owned()
            })
            .label_formatter(move |h| {
                let p = super::overview::hover_point(h);
                Some(format!(
                    "{}\nstatus {:.0}",
                    format::time(t0 + (p.x * 1e9) as i64),
                    p.y
                ))
            })
            .show(ui, |p| {
                p.points(
                    Points::new("status", PlotPoints::from(pts))
                        .radius(3.0)
                        .color(format::severity_color(f.severity)),
                );
            });
    }
    let dark = ui.visuals().dark_mode;
    egui::Grid::new("evidence-rows")
        .striped(true)
        .show(ui, |ui| {
            for r in rows.iter().take(500) {
                if ui.link(format!("#{}", r.id)).clicked() {
                    cmds.push(Command::ShowTransaction(r.id));
                }
                ui.label(RichText::new(format::time(r.ts_ns)).monospace());
                ui.label(r.client.map(|c| c.ip().to_string()).unwrap_or_default());
                ui.label(RichText::new(format!("{} {}", r.method, r.path)).monospace());
                ui.label(
                    RichText::new(r.status.map_or_else(|| "—".into(), |s| s.to_string()))
                        .color(format::status_color(r.status, dark)),
                );
                ui.end_row();
            }
        });
    if rows.len() > 500 {
        ui.label(RichText::new("first 500 shown; the rest in Traffic").weak());
    }
}

/// A draft rule for a finding's actor: the principal when the requests carried one (a user
/// moving between addresses is still blocked), else the address; 24 hours.
fn block_draft(f: &Finding) -> super::blocks::Draft {
    let (kind, value) = match (&f.actor_user, &f.actor_key, &f.actor_session, &f.actor_ip) {
        (Some(u), ..) => (tapline_store::blocks::MatchKind::User, u.clone()),
        (None, Some(k), ..) => (tapline_store::blocks::MatchKind::Key, k.clone()),
        (None, None, Some(s), _) => (tapline_store::blocks::MatchKind::Session, s.clone()),
        (None, None, None, ip) => (
            tapline_store::blocks::MatchKind::Ip,
            ip.clone().unwrap_or_default(),
        ),
    };
    super::blocks::Draft {
        kind,
        value,
        reason: format!("finding {}: {}", f.id, f.title),
        findings: vec![f.id],
        ..super::blocks::Draft::default()
    }
}
