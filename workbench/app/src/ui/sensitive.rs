//! Sensitive data: which endpoints carry which data classes (a class × endpoint matrix of
//! transaction counts), and for a chosen cell where the values sit and examples of them,
//! masked unless the analyst reveals them.

use super::app::Command;
use super::backend::{EndpointView, Inventory};
use super::case::Case;
use super::format::{self, Masking};
use super::overview::loading;
use eframe::egui::{self, RichText};
use egui_extras::{Column, TableBuilder};

/// The view's state.
#[derive(Debug, Default)]
pub struct State {
    /// Only this class (a column), if chosen.
    pub class: Option<String>,
    /// The chosen cell: (class, endpoint id).
    pub cell: Option<(String, i64)>,
    /// Show values in clear for the chosen cell.
    pub reveal: bool,
    /// Examples must be (re)loaded for the chosen cell.
    load_pending: bool,
}

impl State {
    /// Focuses a class, and an endpoint's cell of it when given.
    pub fn focus(&mut self, class: String, endpoint: Option<i64>) {
        self.cell = endpoint.map(|e| (class.clone(), e));
        self.class = Some(class);
        self.reveal = false;
        self.load_pending = self.cell.is_some();
    }

    fn choose(&mut self, class: &str, endpoint: i64) {
        self.cell = Some((class.to_owned(), endpoint));
        self.reveal = false;
        self.load_pending = true;
    }
}

/// Draws the sensitive-data view; `mask` is the app-wide setting.
pub fn ui(
    ui: &mut egui::Ui,
    state: &mut State,
    case: &mut Case,
    mask: Masking,
    cmds: &mut Vec<Command>,
) {
    let Some(inv) = case.inventory.value.clone() else {
        loading(ui, case.inventory.error.as_deref());
        return;
    };
    if inv.classes.is_empty() {
        ui.label("No sensitive data seen in this case.");
        return;
    }
    if state.load_pending
        && let Some((class, id)) = state.cell.clone()
        && let Some(e) = inv.endpoint(id)
    {
        state.load_pending = false;
        let ids = e
            .profile
            .data_classes
            .get(&class)
            .map(|locs| locs.values().map(|d| d.first_tx).collect())
            .unwrap_or_default();
        let filter = super::inventory::endpoint_filter(e, &inv);
        case.load_examples(ids, filter, class, None);
    }
    if ui.input(|i| i.key_pressed(egui::Key::Escape)) {
        state.cell = None;
    }
    ui.horizontal_wrapped(|ui| {
        ui.label("Class:");
        if ui.selectable_label(state.class.is_none(), "all").clicked() {
            state.class = None;
        }
        for c in &inv.classes {
            if ui
                .selectable_label(state.class.as_ref() == Some(c), c)
                .clicked()
            {
                state.class = Some(c.clone());
            }
        }
    });
    let classes: Vec<&String> = inv
        .classes
        .iter()
        .filter(|c| state.class.as_ref().is_none_or(|s| s == *c))
        .collect();
    let rows: Vec<&EndpointView> = inv
        .endpoints
        .iter()
        .filter(|e| {
            classes
                .iter()
                .any(|c| e.profile.data_classes.contains_key(*c))
        })
        .collect();
    if state.cell.is_some() {
        egui::Panel::bottom("class-examples")
            .resizable(true)
            .default_size(ui.available_height() * 0.45)
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("examples")
                    .show(ui, |ui| cell_detail(ui, state, case, &inv, mask, cmds));
            });
    }
    ui.label(
        RichText::new(format!(
            "{} endpoints carry {}; cells count transactions — click one for where and examples",
            rows.len(),
            if classes.len() == 1 {
                classes[0].clone()
            } else {
                format!("{} classes", classes.len())
            }
        ))
        .weak(),
    );
    egui::ScrollArea::horizontal().show(ui, |ui| {
        TableBuilder::new(ui)
            .id_salt("class-matrix")
            .striped(true)
            .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
            .column(Column::auto().at_least(280.0).clip(true))
            .columns(Column::auto().at_least(80.0), classes.len())
            .header(22.0, |mut h| {
                h.col(|ui| {
                    ui.label(RichText::new("Endpoint").strong());
                });
                for c in &classes {
                    h.col(|ui| {
                        ui.label(RichText::new(*c).strong());
                    });
                }
            })
            .body(|body| {
                body.rows(22.0, rows.len(), |mut row| {
                    let e = rows[row.index()];
                    row.col(|ui| {
                        if ui
                            .link(&e.label)
                            .on_hover_text("open in the inventory")
                            .clicked()
                        {
                            cmds.push(Command::ShowEndpoint(e.endpoint.id));
                        }
                    });
                    for c in &classes {
                        row.col(|ui| {
                            let n = e.class_count(c);
                            if n == 0 {
                                return;
                            }
                            let chosen = state
                                .cell
                                .as_ref()
                                .is_some_and(|(cc, id)| cc == *c && *id == e.endpoint.id);
                            if ui
                                .selectable_label(chosen, format::count(n))
                                .on_hover_text(format!("{c} on {}", e.label))
                                .clicked()
                            {
                                state.choose(c, e.endpoint.id);
                            }
                        });
                    }
                });
            });
    });
}

fn cell_detail(
    ui: &mut egui::Ui,
    state: &mut State,
    case: &Case,
    inv: &Inventory,
    mask: Masking,
    cmds: &mut Vec<Command>,
) {
    let Some((class, id)) = state.cell.clone() else {
        return;
    };
    let Some(e) = inv.endpoint(id) else { return };
    ui.horizontal(|ui| {
        ui.heading(format!("{class} on {}", e.label));
        if mask == Masking::Masked {
            ui.checkbox(&mut state.reveal, "Reveal values")
                .on_hover_text(
                    "values are masked by default (View ▸ Mask sensitive values, Ctrl+M)",
                );
        }
    });
    let masked = mask == Masking::Masked && !state.reveal;
    if let Some(locs) = e.profile.data_classes.get(&class) {
        egui::Grid::new("class-locations")
            .striped(true)
            .show(ui, |ui| {
                for h in ["location", "transactions", "first seen", "last seen", ""] {
                    ui.label(RichText::new(h).strong());
                }
                ui.end_row();
                for (loc, seen) in locs {
                    ui.label(RichText::new(loc).monospace());
                    ui.label(format::count(seen.count));
                    ui.label(format::time(seen.first_seen_ns));
                    ui.label(format::time(seen.last_seen_ns));
                    if ui.link(format!("first: #{}", seen.first_tx)).clicked() {
                        cmds.push(Command::ShowTransaction(seen.first_tx));
                    }
                    ui.end_row();
                }
            });
    }
    ui.separator();
    ui.label(RichText::new("Examples").strong());
    match &case.examples.value {
        None => loading(ui, case.examples.error.as_deref()),
        Some(ex) if ex.is_empty() => {
            ui.label("no example found in the transactions rescanned");
        }
        Some(ex) => {
            egui::Grid::new("class-examples-grid")
                .striped(true)
                .show(ui, |ui| {
                    for x in ex.iter() {
                        if ui.link(format!("#{}", x.tx)).clicked() {
                            cmds.push(Command::ShowTransaction(x.tx));
                        }
                        ui.label(RichText::new(&x.location).monospace());
                        let shown = if masked {
                            format::mask(&x.value, x.span)
                        } else {
                            x.value.clone()
                        };
                        let shown: String = shown.chars().take(200).collect();
                        ui.label(RichText::new(shown).monospace());
                        ui.label(RichText::new(&x.confidence).weak());
                        ui.end_row();
                    }
                });
        }
    }
}
