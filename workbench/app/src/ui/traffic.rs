//! Traffic: every transaction of the case in one virtual table (pages are fetched as they
//! scroll into view), a filter bar, and the selected transaction's headers and bodies.

use super::app::Command;
use super::case::Case;
use super::format::{self, BodyKind, Masking};
use eframe::egui::{self, RichText};
use egui_extras::{Column, TableBuilder};
use tapline_detect::classify::Confidence;
use tapline_record::Transaction;
use tapline_store::query::{SortKey, TxFilter};

/// Rows one table window holds. egui lays rows out in f32 points: beyond a few hundred
/// thousand rows of 20 points, positions lose whole pixels, so longer results are shown a
/// window at a time (with a row navigator) rather than in one ever-taller table.
pub const WINDOW_ROWS: u64 = 100_000;

const ROW_HEIGHT: f32 = 20.0;

/// The filter bar as typed (applied on Enter or "Apply").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilterInputs {
    /// Host.
    pub host: String,
    /// Method.
    pub method: String,
    /// Path contains.
    pub path: String,
    /// `200`, `4xx`, `400-499`.
    pub status: String,
    /// Client IP.
    pub client: String,
    /// From (UTC).
    pub from: String,
    /// To (UTC).
    pub to: String,
    /// Free text.
    pub text: String,
}

/// The view's state.
#[derive(Debug, Default)]
pub struct State {
    /// What the filter bar holds.
    pub inputs: FilterInputs,
    /// What the inputs could not mean, shown beside the bar.
    pub input_error: Option<String>,
    /// Filters the bar cannot show (an endpoint template, a finding's evidence).
    pub hidden: TxFilter,
    /// First row of the shown window.
    pub window_start: u64,
    /// Put the keyboard in the filter bar next frame.
    pub focus_filter: bool,
    body_tab: BodyTab,
    scroll_to: Option<usize>,
    jump_to: String,
    /// The sensitive values of the shown transaction (by its id), found once per selection.
    secrets: Option<(i64, Vec<String>)>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum BodyTab {
    #[default]
    Request,
    Response,
}

impl State {
    /// Shows `f` in the bar (its template and ids stay as hidden conditions).
    pub fn set_filter(&mut self, f: &TxFilter) {
        let s = |o: &Option<String>| o.clone().unwrap_or_default();
        self.inputs = FilterInputs {
            host: s(&f.host),
            method: s(&f.method),
            path: s(&f.path_contains),
            status: match f.status {
                Some((lo, hi)) if lo == hi => lo.to_string(),
                Some((lo, hi)) if lo % 100 == 0 && hi == lo + 99 => format!("{}xx", lo / 100),
                Some((lo, hi)) => format!("{lo}-{hi}"),
                None => String::new(),
            },
            client: s(&f.client_ip),
            from: f.from_ns.map(format::time).unwrap_or_default(),
            to: f.to_ns.map(format::time).unwrap_or_default(),
            text: s(&f.text),
        };
        self.hidden = TxFilter {
            template: f.template.clone(),
            not_templates: f.not_templates.clone(),
            ids: f.ids.clone(),
            source_id: f.source_id,
            sensor: f.sensor.clone(),
            ..TxFilter::default()
        };
        self.window_start = 0;
        self.input_error = None;
    }

    /// The filter the bar means, or what is wrong with it.
    pub fn parse(&self) -> Result<TxFilter, String> {
        let i = &self.inputs;
        let opt = |s: &str| {
            let s = s.trim();
            (!s.is_empty()).then(|| s.to_owned())
        };
        let time = |s: &str, what: &str| -> Result<Option<i64>, String> {
            match opt(s) {
                None => Ok(None),
                Some(t) => format::parse_time(&t).map(Some).ok_or_else(|| {
                    format!("{what} {t:?}: write a UTC time like 2026-11-23 10:04:05")
                }),
            }
        };
        Ok(TxFilter {
            host: opt(&i.host),
            method: opt(&i.method),
            path_contains: opt(&i.path),
            status: match opt(&i.status) {
                None => None,
                Some(s) => Some(
                    parse_status(&s)
                        .ok_or_else(|| format!("status {s:?}: write 200, 4xx or 400-499"))?,
                ),
            },
            client_ip: opt(&i.client),
            from_ns: time(&i.from, "from")?,
            to_ns: time(&i.to, "to")?,
            text: opt(&i.text),
            ..self.hidden.clone()
        })
    }
}

/// `200` → (200, 200); `4xx` → (400, 499); `400-404` → (400, 404).
pub fn parse_status(s: &str) -> Option<(u16, u16)> {
    let s = s.trim().to_ascii_lowercase();
    if let Some(c) = s.strip_suffix("xx") {
        let c: u16 = c.parse().ok()?;
        return (1..=5).contains(&c).then_some((c * 100, c * 100 + 99));
    }
    if let Some((lo, hi)) = s.split_once('-') {
        let (lo, hi): (u16, u16) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
        return (lo <= hi).then_some((lo, hi));
    }
    let n: u16 = s.parse().ok()?;
    Some((n, n))
}

/// Draws the traffic view.
pub fn ui(
    ui: &mut egui::Ui,
    state: &mut State,
    case: &mut Case,
    mask: Masking,
    cmds: &mut Vec<Command>,
) {
    filter_bar(ui, state, case);
    let total = case.tx.count.value.unwrap_or(0);
    if state.window_start >= total {
        state.window_start = 0;
    }
    let window = (total - state.window_start).min(WINDOW_ROWS);
    if total > WINDOW_ROWS {
        window_bar(ui, state, total);
    }
    if ui.input(|i| i.key_pressed(egui::Key::Escape)) {
        case.transaction.value = None;
    }
    keyboard_moves(ui, state, case, window);
    if case.transaction.value.is_some() {
        egui::Panel::bottom("transaction-detail")
            .resizable(true)
            .default_size(ui.available_height() * 0.5)
            .show(ui, |ui| detail(ui, state, case, mask, cmds));
    }
    table(ui, state, case, window);
}

fn filter_bar(ui: &mut egui::Ui, state: &mut State, case: &mut Case) {
    let mut apply = false;
    ui.horizontal_wrapped(|ui| {
        let mut field =
            |ui: &mut egui::Ui, label: &str, value: &mut String, hint: &str, width: f32| {
                ui.label(label);
                let r = ui
                    .add(
                        egui::TextEdit::singleline(value)
                            .hint_text(hint)
                            .desired_width(width),
                    )
                    .accessible_name(label);
                if r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                    apply = true;
                }
                r
            };
        let i = &mut state.inputs;
        let text = field(
            ui,
            "Search",
            &mut i.text,
            "host, URI, headers  (Ctrl+F)",
            180.0,
        );
        if std::mem::take(&mut state.focus_filter) {
            text.request_focus();
        }
        field(ui, "Host", &mut i.host, "api.example", 120.0);
        field(ui, "Method", &mut i.method, "GET", 60.0);
        field(ui, "Path", &mut i.path, "/users", 120.0);
        field(ui, "Status", &mut i.status, "4xx", 60.0);
        field(ui, "Client", &mut i.client, "10.0.0.5", 100.0);
        field(ui, "From", &mut i.from, "2026-11-23 10:00", 130.0);
        field(ui, "To", &mut i.to, "UTC", 130.0);
        if ui.button("Apply").clicked() {
            apply = true;
        }
        if ui.button("Clear").clicked() {
            state.inputs = FilterInputs::default();
            state.hidden = TxFilter::default();
            apply = true;
        }
    });
    if apply {
        match state.parse() {
            Ok(f) => {
                state.input_error = None;
                state.window_start = 0;
                let (sort, desc) = (case.tx.sort, case.tx.descending);
                case.set_traffic(f, sort, desc);
            }
            Err(e) => state.input_error = Some(e),
        }
    }
    ui.horizontal(|ui| {
        match (&case.tx.count.value, case.tx.count.is_loading()) {
            (_, true) => {
                ui.spinner();
                ui.label("counting…");
            }
            (Some(n), false) => {
                ui.label(format!("{} transactions", format::count(*n)));
            }
            (None, false) => {}
        }
        if let Some(t) = &state.hidden.template {
            ui.label(RichText::new(format!("matching {t}")).weak());
        }
        if let Some(s) = &state.hidden.sensor {
            ui.label(RichText::new(format!("from sensor {s}")).weak());
        }
        if let Some(ids) = &state.hidden.ids {
            ui.label(RichText::new(format!("{} evidence transactions", ids.len())).weak());
        }
        if let Some(e) = state.input_error.as_ref().or(case.tx.count.error.as_ref()) {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        if let Some(t) = case.tx.last_page_took {
            ui.label(
                RichText::new(format!(
                    "page in {}",
                    format::duration_ns(t.as_nanos() as i64)
                ))
                .weak(),
            );
        }
    });
}

fn window_bar(ui: &mut egui::Ui, state: &mut State, total: u64) {
    ui.horizontal(|ui| {
        let end = (state.window_start + WINDOW_ROWS).min(total);
        if ui
            .add_enabled(state.window_start > 0, egui::Button::new("< previous"))
            .clicked()
        {
            state.window_start = state.window_start.saturating_sub(WINDOW_ROWS);
        }
        ui.label(format!(
            "rows {}–{} of {}",
            format::count(state.window_start + 1),
            format::count(end),
            format::count(total)
        ));
        if ui
            .add_enabled(end < total, egui::Button::new("next >"))
            .clicked()
        {
            state.window_start += WINDOW_ROWS;
        }
        ui.label("go to row");
        let r = ui
            .add(egui::TextEdit::singleline(&mut state.jump_to).desired_width(90.0))
            .accessible_name("go to row");
        if r.lost_focus()
            && ui.input(|i| i.key_pressed(egui::Key::Enter))
            && let Ok(n) = state.jump_to.replace(',', "").trim().parse::<u64>()
        {
            let row = n.clamp(1, total) - 1;
            state.window_start = row / WINDOW_ROWS * WINDOW_ROWS;
            state.scroll_to = Some((row - state.window_start) as usize);
        }
    });
}

fn keyboard_moves(ui: &egui::Ui, state: &mut State, case: &mut Case, window: u64) {
    if ui.memory(|m| m.focused().is_some()) {
        return;
    }
    let (down, up) = ui.input(|i| {
        (
            i.key_pressed(egui::Key::ArrowDown),
            i.key_pressed(egui::Key::ArrowUp),
        )
    });
    if !(down || up) || window == 0 {
        return;
    }
    let current = case.transaction.value.as_ref().map(|(id, _)| *id);
    let rows = state.window_start..state.window_start + window;
    let at = current.and_then(|id| {
        rows.clone()
            .find(|&r| case.tx.row(r).is_some_and(|t| t.id == id))
    });
    let next = match (at, down) {
        (None, _) => rows.start,
        (Some(r), true) => (r + 1).min(rows.end - 1),
        (Some(r), false) => r.saturating_sub(1).max(rows.start),
    };
    if let Some(id) = case.traffic_row(next).map(|t| t.id) {
        case.select_transaction(id);
        state.scroll_to = Some((next - state.window_start) as usize);
    }
}

fn sort_header(ui: &mut egui::Ui, label: &str, key: SortKey, case: &mut Case) {
    let arrow = match (case.tx.sort == key, case.tx.descending) {
        (true, true) => " v",
        (true, false) => " ^",
        _ => "",
    };
    if ui
        .add(egui::Button::new(RichText::new(format!("{label}{arrow}")).strong()).frame(false))
        .clicked()
    {
        let desc = if case.tx.sort == key {
            !case.tx.descending
        } else {
            key != SortKey::Time
                && key != SortKey::Host
                && key != SortKey::Path
                && key != SortKey::Method
        };
        let f = case.tx.filter.clone();
        case.set_traffic(f, key, desc);
    }
}

fn table(ui: &mut egui::Ui, state: &mut State, case: &mut Case, window: u64) {
    let dark = ui.visuals().dark_mode;
    let selected = case.transaction.value.as_ref().map(|(id, _)| *id);
    let mut clicked = None;
    // The rows drawn this frame: (lowest, one past the highest).
    let mut visible = (u64::MAX, 0);
    let mut t = TableBuilder::new(ui)
        .id_salt("traffic-table")
        .striped(true)
        .sense(egui::Sense::click())
        .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
        .column(Column::auto().at_least(170.0))
        .column(Column::auto().at_least(130.0))
        .column(Column::auto().at_least(60.0))
        .column(Column::auto().at_least(140.0).clip(true))
        .column(Column::remainder().at_least(200.0).clip(true))
        .column(Column::auto().at_least(50.0))
        .column(Column::auto().at_least(70.0))
        .column(Column::auto().at_least(70.0));
    if let Some(r) = state.scroll_to.take() {
        t = t.scroll_to_row(r, None);
    }
    t.header(22.0, |mut h| {
        h.col(|ui| sort_header(ui, "Time (UTC)", SortKey::Time, case));
        h.col(|ui| {
            ui.label(RichText::new("Client").strong());
        });
        h.col(|ui| sort_header(ui, "Method", SortKey::Method, case));
        h.col(|ui| sort_header(ui, "Host", SortKey::Host, case));
        h.col(|ui| sort_header(ui, "Path", SortKey::Path, case));
        h.col(|ui| sort_header(ui, "Status", SortKey::Status, case));
        h.col(|ui| sort_header(ui, "Latency", SortKey::Latency, case));
        h.col(|ui| sort_header(ui, "Size", SortKey::ResponseSize, case));
    })
    .body(|body| {
        body.rows(ROW_HEIGHT, window as usize, |mut row| {
            let r = state.window_start + row.index() as u64;
            visible.0 = visible.0.min(r);
            visible.1 = visible.1.max(r + 1);
            let Some(tx) = case.traffic_row(r).cloned() else {
                row.col(|ui| {
                    ui.label(RichText::new("…").weak());
                });
                return;
            };
            row.set_selected(selected == Some(tx.id));
            row.col(|ui| {
                ui.label(RichText::new(format::time(tx.ts_ns)).monospace());
            });
            row.col(|ui| {
                ui.label(tx.client.map(|c| c.ip().to_string()).unwrap_or_default());
            });
            row.col(|ui| {
                ui.label(RichText::new(&tx.method).monospace());
            });
            row.col(|ui| {
                ui.label(tx.host.as_deref().unwrap_or(""));
            });
            row.col(|ui| {
                let mut t = RichText::new(&tx.path);
                if tx.anomalies != 0 {
                    t = t.color(ui.visuals().warn_fg_color);
                }
                ui.label(t);
            });
            row.col(|ui| {
                let s = tx.status.map_or_else(|| "—".to_owned(), |s| s.to_string());
                ui.label(
                    RichText::new(s)
                        .color(format::status_color(tx.status, dark))
                        .strong(),
                );
            });
            row.col(|ui| {
                ui.label(tx.latency_ns.map(format::duration_ns).unwrap_or_default());
            });
            row.col(|ui| {
                ui.label(format::bytes(tx.response_len));
            });
            if row.response().clicked() {
                clicked = Some(tx.id);
            }
        });
    });
    if visible.0 < visible.1 {
        case.trim_pages(visible.0..visible.1);
    }
    if let Some(id) = clicked {
        case.select_transaction(id);
    }
}

fn detail(
    ui: &mut egui::Ui,
    state: &mut State,
    case: &mut Case,
    mask: Masking,
    cmds: &mut Vec<Command>,
) {
    let Some((id, tx)) = case.transaction.value.clone() else {
        return;
    };
    let Some(tx) = tx else {
        match &case.transaction.error {
            Some(e) => ui.colored_label(ui.visuals().error_fg_color, e),
            None if case.transaction.is_loading() => ui.spinner(),
            None => ui.label(format!("transaction {id} is not in this case")),
        };
        return;
    };
    if mask == Masking::Masked && state.secrets.as_ref().is_none_or(|(shown, _)| *shown != id) {
        state.secrets = Some((id, sensitive_values(&tx)));
    }
    let secrets: &[String] = match (mask, &state.secrets) {
        (Masking::Masked, Some((_, s))) => s,
        _ => &[],
    };
    let curl_pressed = ui.input_mut(|i| {
        i.consume_shortcut(&egui::KeyboardShortcut::new(
            egui::Modifiers::COMMAND | egui::Modifiers::SHIFT,
            egui::Key::C,
        ))
    });
    ui.horizontal_wrapped(|ui| {
        let dark = ui.visuals().dark_mode;
        ui.label(RichText::new(format!("#{id}")).weak());
        ui.label(
            RichText::new(format!(
                "{} {}",
                tx.method,
                format::mask_all(&tx.uri, secrets)
            ))
            .monospace()
            .strong(),
        );
        if let Some(s) = tx.status {
            ui.label(
                RichText::new(format!("{s} {}", tx.reason.as_deref().unwrap_or("")))
                    .color(format::status_color(Some(s), dark))
                    .strong(),
            );
        } else {
            ui.label(RichText::new("no response").weak());
        }
        if ui
            .button("Copy as curl")
            .on_hover_text("Ctrl+Shift+C")
            .clicked()
            || curl_pressed
        {
            cmds.push(Command::Copy(format::curl(&tx)));
        }
    });
    ui.label(
        RichText::new(format!(
            "{}  {} to {}{}",
            format::time(tx.request_ts_nanos),
            tx.client
                .map(|c| c.to_string())
                .unwrap_or_else(|| "?".into()),
            tx.server
                .map(|c| c.to_string())
                .unwrap_or_else(|| "?".into()),
            tx.sensor_id
                .as_deref()
                .map(|s| format!("  · sensor {s}"))
                .unwrap_or_default()
        ))
        .weak(),
    );
    if !tx.anomalies.is_empty() {
        ui.colored_label(
            ui.visuals().warn_fg_color,
            format!(
                "anomalies: {}",
                tx.anomalies.names().collect::<Vec<_>>().join(", ")
            ),
        );
    }
    if !tx.redactions.is_empty() {
        ui.label(format!(
            "{} value(s) redacted at the sensor",
            tx.redactions.len()
        ));
    }
    ui.horizontal(|ui| {
        ui.selectable_value(&mut state.body_tab, BodyTab::Request, "Request");
        ui.selectable_value(&mut state.body_tab, BodyTab::Response, "Response");
    });
    ui.separator();
    egui::ScrollArea::vertical()
        .id_salt("tx-detail")
        .show(ui, |ui| match state.body_tab {
            BodyTab::Request => message(ui, &tx, true, secrets),
            BodyTab::Response => message(ui, &tx, false, secrets),
        });
}

/// The values in `tx` the sensitive-data scanner is at least fairly sure of (the parts of them
/// it classified), to be masked wherever they are shown.
fn sensitive_values(tx: &Transaction) -> Vec<String> {
    let mut scanner = tapline_detect::sensitive::scan::Scanner::default();
    let mut out: Vec<String> = Vec::new();
    scanner.scan(tx, &mut |f| {
        if f.hit.confidence >= Confidence::Medium
            && let Some(v) = f.value.get(f.hit.start..f.hit.end)
            && !out.iter().any(|o| o == v)
        {
            out.push(v.to_owned());
        }
    });
    out
}

fn message(ui: &mut egui::Ui, tx: &Transaction, request: bool, secrets: &[String]) {
    let (headers, body, ct) = if request {
        (
            &tx.request_headers,
            &tx.request_body,
            tx.request_content_type(),
        )
    } else {
        (
            &tx.response_headers,
            &tx.response_body,
            tx.response_content_type(),
        )
    };
    egui::Grid::new(("headers", request))
        .striped(true)
        .show(ui, |ui| {
            for (name, value) in headers.iter() {
                ui.label(RichText::new(name).monospace().strong());
                ui.label(RichText::new(format::mask_all(value, secrets)).monospace());
                ui.end_row();
            }
        });
    ui.separator();
    let (text, kind) = format::body_text(&body.data, ct);
    let text = format::mask_all(&text, secrets);
    let what = match kind {
        BodyKind::Empty => "no body".to_owned(),
        BodyKind::Json => "JSON".to_owned(),
        BodyKind::Text => "text".to_owned(),
        BodyKind::Binary => "binary (hex)".to_owned(),
    };
    ui.label(
        RichText::new(format!(
            "{what} · {}{}",
            format::bytes(body.len),
            if body.truncated {
                format!(" (kept {})", format::bytes(body.data.len() as u64))
            } else {
                String::new()
            }
        ))
        .weak(),
    );
    if kind != BodyKind::Empty {
        ui.add(
            egui::Label::new(RichText::new(text).monospace())
                .selectable(true)
                .wrap_mode(egui::TextWrapMode::Wrap),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_filters_read_like_people_write_them() {
        assert_eq!(parse_status("404"), Some((404, 404)));
        assert_eq!(parse_status("4xx"), Some((400, 499)));
        assert_eq!(parse_status(" 5XX "), Some((500, 599)));
        assert_eq!(parse_status("400-403"), Some((400, 403)));
        assert_eq!(parse_status("403-400"), None);
        assert_eq!(parse_status("9xx"), None);
        assert_eq!(parse_status("ok"), None);
    }

    #[test]
    fn the_bar_round_trips_a_filter_and_keeps_hidden_conditions() {
        let f = TxFilter {
            host: Some("api".into()),
            status: Some((400, 499)),
            template: Some("/u/{id}".into()),
            from_ns: Some(1_700_000_000_000_000_000),
            ..TxFilter::default()
        };
        let mut s = State::default();
        s.set_filter(&f);
        assert_eq!(s.inputs.status, "4xx");
        assert_eq!(s.parse(), Ok(f));
        s.inputs.from = "noon".into();
        assert!(s.parse().is_err_and(|e| e.contains("from")));
    }
}
