//! Inventory: every endpoint discovered, in a sortable, filterable table; the selected one's
//! parameters, schemas, authentication, data classes, findings and example transactions.

use super::app::Command;
use super::backend::{EndpointView, Inventory};
use super::case::Case;
use super::format;
use super::overview::loading;
use eframe::egui::{self, RichText};
use egui_extras::{Column, TableBuilder};
use std::collections::BTreeMap;
use tapline_analysis::profile::ParamStats;
use tapline_analysis::schema::SchemaNode;
use tapline_store::query::TxFilter;

/// Inventory columns that sort.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortBy {
    /// Transactions.
    #[default]
    Count,
    /// Method, host, path.
    Endpoint,
    /// Data classes carried.
    Classes,
    /// Findings about it.
    Findings,
    /// Last seen.
    LastSeen,
}

/// The view's state.
#[derive(Debug, Default)]
pub struct State {
    /// Text every shown endpoint contains (method, host or path; case-insensitive).
    pub filter: String,
    /// Sort column.
    pub sort: SortBy,
    /// Ascending instead of the column's natural order.
    pub ascending: bool,
    /// The selected endpoint's id.
    pub selected: Option<i64>,
    /// Scroll the table to the selection next frame.
    pub scroll_to_selected: bool,
    /// Put the keyboard in the filter box next frame.
    pub focus_filter: bool,
}

impl State {
    /// The endpoints shown, in order.
    pub fn visible<'a>(&self, inv: &'a Inventory) -> Vec<&'a EndpointView> {
        let needle = self.filter.to_lowercase();
        let mut rows: Vec<&EndpointView> = inv
            .endpoints
            .iter()
            .filter(|e| needle.is_empty() || e.label.to_lowercase().contains(&needle))
            .collect();
        let key = |e: &EndpointView| -> (i64, String) {
            match self.sort {
                SortBy::Count => (-(e.endpoint.count as i64), String::new()),
                SortBy::Endpoint => (0, e.label.clone()),
                SortBy::Classes => (-(e.profile.data_classes.len() as i64), String::new()),
                SortBy::Findings => (-(e.findings.len() as i64), String::new()),
                SortBy::LastSeen => (-e.endpoint.last_seen_ns, String::new()),
            }
        };
        rows.sort_by_cached_key(|e| (key(e), e.endpoint.id));
        if self.ascending {
            rows.reverse();
        }
        rows
    }
}

/// Draws the inventory.
pub fn ui(ui: &mut egui::Ui, state: &mut State, case: &mut Case, cmds: &mut Vec<Command>) {
    let Some(inv) = case.inventory.value.clone() else {
        loading(ui, case.inventory.error.as_deref());
        return;
    };
    let rows = state.visible(&inv);
    if ui.input(|i| i.key_pressed(egui::Key::Escape)) {
        state.selected = None;
    }
    keyboard_moves(ui, state, &rows);
    if let Some(sel) = state.selected.and_then(|id| inv.endpoint(id)) {
        // The pane never grows past three quarters of the view, whatever its content: what
        // is wider scrolls inside it instead of spreading over the list and the navigation.
        let width = ui.available_width();
        egui::Panel::right("endpoint-detail")
            .resizable(true)
            .default_size(width * 0.5)
            .max_size(width * 0.75)
            .show(ui, |ui| {
                egui::ScrollArea::both().show(ui, |ui| detail(ui, sel, &inv, cmds));
            });
    }
    // Everything beside the pane lives in its own clipped rect: a filter bar or table wider
    // than what the pane leaves must not spread under it and take the pane's clicks.
    let list_rect = ui.available_rect_before_wrap();
    ui.scope_builder(egui::UiBuilder::new().max_rect(list_rect), |ui| {
        ui.set_clip_rect(list_rect.intersect(ui.clip_rect()));
        list_ui(ui, state, &inv, &rows, cmds);
    });
}

/// The filter bar and the endpoint table.
fn list_ui(
    ui: &mut egui::Ui,
    state: &mut State,
    inv: &Inventory,
    rows: &[&EndpointView],
    cmds: &mut Vec<Command>,
) {
    ui.horizontal_wrapped(|ui| {
        ui.label("Filter");
        let r = ui
            .add(
                egui::TextEdit::singleline(&mut state.filter)
                    .hint_text("method, host or path  (Ctrl+F)")
                    .desired_width(260.0),
            )
            .accessible_name("Filter");
        if std::mem::take(&mut state.focus_filter) {
            r.request_focus();
        }
        ui.label(
            RichText::new(format!(
                "{} of {} endpoints",
                rows.len(),
                inv.endpoints.len()
            ))
            .weak(),
        );
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui.button("Export OpenAPI…").clicked() {
                cmds.push(Command::ExportOpenApi);
            }
        });
    });
    let selected_row = state
        .selected
        .and_then(|id| rows.iter().position(|e| e.endpoint.id == id));
    // The columns' minimum widths can exceed what the detail pane leaves: the table scrolls
    // sideways inside its own clip rect instead of spreading (and taking clicks) under the pane.
    egui::ScrollArea::horizontal()
        .id_salt("inventory-columns")
        .show(ui, |ui| {
            let mut table = TableBuilder::new(ui)
                .id_salt("inventory-table")
                .striped(true)
                .sense(egui::Sense::click())
                .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
                .column(Column::auto().at_least(60.0))
                .column(Column::remainder().at_least(200.0).clip(true))
                .column(Column::auto().at_least(70.0))
                .column(Column::auto().at_least(90.0))
                .column(Column::auto().at_least(70.0))
                .column(Column::auto().at_least(150.0));
            if std::mem::take(&mut state.scroll_to_selected)
                && let Some(r) = selected_row
            {
                table = table.scroll_to_row(r, Some(egui::Align::Center));
            }
            table
                .header(22.0, |mut h| {
                    for (label, by) in [
                        ("Method", SortBy::Endpoint),
                        ("Endpoint", SortBy::Endpoint),
                        ("Count", SortBy::Count),
                        ("Data classes", SortBy::Classes),
                        ("Findings", SortBy::Findings),
                        ("Last seen", SortBy::LastSeen),
                    ] {
                        h.col(|ui| sort_header(ui, label, by, state));
                    }
                })
                .body(|body| {
                    body.rows(22.0, rows.len(), |mut row| {
                        let e = rows[row.index()];
                        row.set_selected(state.selected == Some(e.endpoint.id));
                        row.col(|ui| {
                            ui.label(RichText::new(&e.endpoint.method).monospace().strong());
                        });
                        row.col(|ui| {
                            ui.label(format!("{}{}", e.endpoint.host, e.endpoint.template));
                        });
                        row.col(|ui| {
                            ui.label(format::count(e.endpoint.count));
                        });
                        row.col(|ui| {
                            let n = e.profile.data_classes.len();
                            if n > 0 {
                                ui.label(n.to_string()).on_hover_text(
                                    e.profile
                                        .data_classes
                                        .keys()
                                        .cloned()
                                        .collect::<Vec<_>>()
                                        .join(", "),
                                );
                            }
                        });
                        row.col(|ui| {
                            if let Some(worst) = e
                                .findings
                                .iter()
                                .filter_map(|&i| inv.findings.get(i))
                                .map(|f| f.severity)
                                .max()
                            {
                                ui.label(format::badge(
                                    &format!("{worst} {}", e.findings.len()),
                                    worst,
                                ));
                            }
                        });
                        row.col(|ui| {
                            ui.label(format::time(e.endpoint.last_seen_ns));
                        });
                        if row.response().clicked() {
                            state.selected = Some(e.endpoint.id);
                        }
                    });
                });
        });
}

fn keyboard_moves(ui: &egui::Ui, state: &mut State, rows: &[&EndpointView]) {
    if ui.memory(|m| m.focused().is_some()) {
        return; // typing in the filter box
    }
    let (down, up) = ui.input(|i| {
        (
            i.key_pressed(egui::Key::ArrowDown),
            i.key_pressed(egui::Key::ArrowUp),
        )
    });
    if !(down || up) || rows.is_empty() {
        return;
    }
    let at = state
        .selected
        .and_then(|id| rows.iter().position(|e| e.endpoint.id == id));
    let next = match (at, down) {
        (None, _) => 0,
        (Some(i), true) => (i + 1).min(rows.len() - 1),
        (Some(i), false) => i.saturating_sub(1),
    };
    state.selected = Some(rows[next].endpoint.id);
    state.scroll_to_selected = true;
}

fn sort_header(ui: &mut egui::Ui, label: &str, by: SortBy, state: &mut State) {
    let arrow = if state.sort == by {
        if state.ascending { " ^" } else { " v" }
    } else {
        ""
    };
    if ui
        .add(egui::Button::new(RichText::new(format!("{label}{arrow}")).strong()).frame(false))
        .clicked()
    {
        if state.sort == by {
            state.ascending = !state.ascending;
        } else {
            state.sort = by;
            state.ascending = false;
        }
    }
}

fn detail(ui: &mut egui::Ui, e: &EndpointView, inv: &Inventory, cmds: &mut Vec<Command>) {
    let p = &e.profile;
    ui.heading(RichText::new(&e.label).monospace());
    ui.label(format!(
        "{} transactions · first {} · last {}",
        format::count(e.endpoint.count),
        format::time(e.endpoint.first_seen_ns),
        format::time(e.endpoint.last_seen_ns)
    ));
    if let (Some(p50), Some(p99)) = (p.latency.quantile_us(0.5), p.latency.quantile_us(0.99)) {
        ui.label(format!(
            "latency p50 {} · p99 {}",
            format::duration_ns((p50 * 1e3) as i64),
            format::duration_ns((p99 * 1e3) as i64)
        ));
    }
    ui.horizontal_wrapped(|ui| {
        ui.label("statuses:");
        let dark = ui.visuals().dark_mode;
        for (s, n) in &p.statuses {
            ui.label(
                RichText::new(format!("{s} × {n}"))
                    .color(format::status_color(s.parse().ok(), dark)),
            );
        }
    });
    if !p.limits.is_empty() {
        let hits: Vec<String> = p.limits.iter().map(|(k, n)| format!("{k} × {n}")).collect();
        ui.label(
            RichText::new(format!("analysis caps hit: {}", hits.join(", ")))
                .color(ui.visuals().warn_fg_color),
        )
        .on_hover_text("traffic beyond a cap (path depth, parameters per request, distinct names) was not profiled");
    }
    ui.horizontal(|ui| {
        if ui.button("Show transactions").clicked() {
            cmds.push(Command::ShowTraffic(Box::new(endpoint_filter(e, inv))));
        }
        if ui
            .button("Generate tests")
            .on_hover_text(
                "Security tests for this endpoint, built from its captured requests (Tests view)",
            )
            .clicked()
        {
            cmds.push(Command::GenerateTests {
                endpoint: Some(format!("{} {}", e.endpoint.method, e.endpoint.template)),
                finding: None,
            });
        }
    });
    ui.separator();

    section(ui, "Findings", !e.findings.is_empty(), |ui| {
        for &i in &e.findings {
            let Some(f) = inv.findings.get(i) else {
                continue;
            };
            ui.horizontal_wrapped(|ui| {
                ui.label(format::severity_badge(f.severity));
                if ui.link(&f.title).clicked() {
                    cmds.push(Command::ShowFinding(f.id));
                }
            });
        }
    });
    section(ui, "Sensitive data", !p.data_classes.is_empty(), |ui| {
        egui::Grid::new("endpoint-classes")
            .striped(true)
            .show(ui, |ui| {
                for (class, locs) in &p.data_classes {
                    for (loc, seen) in locs {
                        if ui.link(class).clicked() {
                            cmds.push(Command::ShowDataClass(class.clone(), Some(e.endpoint.id)));
                        }
                        ui.label(RichText::new(loc).monospace());
                        ui.label(format!("{} tx", format::count(seen.count)));
                        if ui
                            .small_button("first")
                            .on_hover_text("the first transaction that carried it")
                            .clicked()
                        {
                            cmds.push(Command::ShowTransaction(seen.first_tx));
                        }
                        ui.end_row();
                    }
                }
            });
    });
    section(ui, "Authentication", !p.auth.is_empty(), |ui| {
        for (scheme, a) in &p.auth {
            let mut line = format!("{scheme}: {} requests", format::count(a.count));
            if !a.jwt_algs.is_empty() {
                line.push_str(&format!(
                    " · alg {} · claims {}",
                    a.jwt_algs.iter().cloned().collect::<Vec<_>>().join(", "),
                    a.jwt_claims.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            ui.label(line);
        }
    });
    let params: [(&str, &BTreeMap<String, ParamStats>); 5] = [
        ("path", &p.path_params),
        ("query", &p.query_params),
        ("header", &p.header_params),
        ("cookie", &p.cookie_params),
        ("form", &p.form_fields),
    ];
    let any_params = params.iter().any(|(_, m)| !m.is_empty());
    section(ui, "Parameters", any_params, |ui| {
        egui::Grid::new("endpoint-params")
            .striped(true)
            .show(ui, |ui| {
                ui.label(RichText::new("in").strong());
                ui.label(RichText::new("name").strong());
                ui.label(RichText::new("types").strong());
                ui.label(RichText::new("seen").strong());
                ui.label(RichText::new("length").strong());
                ui.end_row();
                for (place, map) in params {
                    for (name, s) in map {
                        ui.label(place);
                        ui.label(RichText::new(name).monospace());
                        ui.label(
                            s.types
                                .iter()
                                .map(|(t, n)| format!("{t} ({n})"))
                                .collect::<Vec<_>>()
                                .join(", "),
                        );
                        ui.label(format::count(s.count));
                        ui.label(format!("{}–{}", s.min_len, s.max_len));
                        ui.end_row();
                    }
                }
            });
    });
    section(
        ui,
        "Request body schema",
        p.request_schema.is_some(),
        |ui| {
            if let Some(s) = &p.request_schema {
                schema_tree(ui, "body", s, 0);
            }
        },
    );
    section(
        ui,
        "Response schemas",
        !p.response_schemas.is_empty(),
        |ui| {
            for (status, s) in &p.response_schemas {
                schema_tree(ui, status, s, 0);
            }
        },
    );
    if !p.merged_from.is_empty() {
        ui.label(RichText::new(format!("merged from {}", p.merged_from.join(", "))).weak());
    }
}

/// The transactions of endpoint `e`: its host, method and template, minus the paths of
/// more specific sibling endpoints (`/users/me` is not `/users/{id}`).
pub fn endpoint_filter(e: &EndpointView, inv: &Inventory) -> TxFilter {
    let ep = &e.endpoint;
    TxFilter {
        host: Some(ep.host.clone()),
        method: Some(ep.method.clone()),
        template: Some(ep.template.clone()),
        not_templates: inv
            .endpoints
            .iter()
            .map(|o| &o.endpoint)
            .filter(|o| o.host == ep.host && o.method == ep.method)
            .filter(|o| {
                o.template != ep.template
                    && tapline_store::template::covers(&ep.template, &o.template)
            })
            .map(|o| o.template.clone())
            .collect(),
        ..TxFilter::default()
    }
}

fn section(ui: &mut egui::Ui, title: &str, any: bool, body: impl FnOnce(&mut egui::Ui)) {
    let header = if any {
        RichText::new(title).strong()
    } else {
        RichText::new(format!("{title}: none")).weak()
    };
    egui::CollapsingHeader::new(header)
        .id_salt(title)
        .default_open(any)
        .enabled(any)
        .show(ui, body);
}

fn schema_tree(ui: &mut egui::Ui, name: &str, s: &SchemaNode, depth: usize) {
    let kinds: Vec<String> = [
        ("object", s.object),
        ("array", s.array),
        ("string", s.string),
        ("integer", s.integer),
        ("number", s.number),
        ("boolean", s.boolean),
        ("null", s.null),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(k, _)| k.to_owned())
    .chain(s.formats.keys().map(|f| format!("format {f}")))
    .collect();
    let line = format!("{name}: {}  ({} seen)", kinds.join(" | "), s.seen);
    let has_children = !s.properties.is_empty() || s.items.is_some();
    if !has_children || depth > 12 {
        ui.label(RichText::new(line).monospace());
        return;
    }
    egui::CollapsingHeader::new(RichText::new(line).monospace())
        .id_salt((name, depth, s.seen))
        .default_open(depth < 2)
        .show(ui, |ui| {
            for (k, child) in &s.properties {
                schema_tree(ui, k, child, depth + 1);
            }
            if let Some(items) = &s.items {
                schema_tree(ui, "[]", items, depth + 1);
            }
        });
}
