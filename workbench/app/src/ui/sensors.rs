//! Sensors: the hub (listen, stop), the enrolled sensors with their last heartbeat's
//! counters and health, enrolment and revocation, where alerts go, and the hub's recent
//! events.

use super::app::{Command, HubState, Settings};
use super::case::Case;
use super::format;
use super::overview::loading;
use eframe::egui::{self, RichText};
use tapline_store::alerts::SinkKind;
use tapline_store::endpoints::Severity;
use tapline_store::query::TxFilter;
use tapline_store::sensors::SensorRow;

/// The view's state.
#[derive(Debug, Default)]
pub struct State {
    /// Name typed for a new sensor.
    pub new_name: String,
    /// The alert destination being added.
    pub sink: NewSink,
}

/// The form for a new alert destination.
#[derive(Debug)]
pub struct NewSink {
    kind: SinkKind,
    target: String,
    min: Severity,
}

impl Default for NewSink {
    fn default() -> Self {
        NewSink {
            kind: SinkKind::Syslog,
            target: String::new(),
            min: Severity::High,
        }
    }
}

/// Draws the sensors view.
pub fn ui(
    ui: &mut egui::Ui,
    state: &mut State,
    case: &mut Case,
    hub: Option<&HubState>,
    settings: &mut Settings,
    cmds: &mut Vec<Command>,
) {
    ui.heading("Hub");
    hub_controls(ui, hub, settings, cmds);
    if let Some(h) = hub {
        analysis_line(ui, h);
    }
    ui.separator();
    ui.heading("Enrolled sensors");
    match &case.sensors.value {
        None => loading(ui, case.sensors.error.as_deref()),
        Some(list) if list.is_empty() => {
            ui.label("None yet: enrol one below.");
        }
        Some(list) => {
            let list = list.clone();
            egui::Grid::new("sensors").striped(true).show(ui, |ui| {
                for h in [
                    "name",
                    "state",
                    "last seen (UTC)",
                    "version",
                    "transactions",
                    "packets",
                    "drops",
                    "spool",
                    "",
                    "",
                ] {
                    ui.label(RichText::new(h).strong());
                }
                ui.end_row();
                for s in list.iter() {
                    sensor_row(ui, s, hub, cmds);
                    ui.end_row();
                }
            });
        }
    }
    ui.separator();
    ui.heading("Enrol a sensor");
    enrol_form(ui, state, settings, cmds);
    ui.separator();
    ui.heading("Alerts");
    alert_sinks(ui, &mut state.sink, case, cmds);
    if let Some(h) = hub {
        hub_events(ui, h);
    }
}

/// The hub's address and CA when it listens; where to listen and the button when not.
fn hub_controls(
    ui: &mut egui::Ui,
    hub: Option<&HubState>,
    settings: &mut Settings,
    cmds: &mut Vec<Command>,
) {
    match hub {
        Some(h) => {
            ui.horizontal(|ui| {
                ui.label(
                    RichText::new(format!("listening on {} (UDP, QUIC + mutual TLS)", h.addr))
                        .strong(),
                );
                if ui.button("Stop").clicked() {
                    cmds.push(Command::StopHub);
                }
            });
            ui.label(
                RichText::new(format!("workbench CA sha256 {}", h.ca_fingerprint))
                    .monospace()
                    .weak(),
            );
        }
        None => {
            ui.horizontal(|ui| {
                ui.label("Listen on");
                ui.add(egui::TextEdit::singleline(&mut settings.listen).desired_width(160.0));
                if ui.button("Listen for sensors").clicked() {
                    cmds.push(Command::StartHub);
                }
            });
            ui.label(
                RichText::new("Sensors deliver into this case while the hub runs; they spool to disk while it does not.")
                    .weak(),
            );
        }
    }
}

/// One enrolled sensor: its state, last heartbeat's counters and health, and actions.
fn sensor_row(ui: &mut egui::Ui, s: &SensorRow, hub: Option<&HubState>, cmds: &mut Vec<Command>) {
    let stat = |k: &str| {
        s.stats
            .as_ref()
            .and_then(|v| v.get(k))
            .and_then(|v| v.as_u64())
    };
    ui.label(RichText::new(&s.name).strong());
    let live = hub.and_then(|h| h.connected.get(&s.name));
    let state_text = if s.revoked_at.is_some() {
        RichText::new("revoked").color(ui.visuals().error_fg_color)
    } else if let Some((peer, batches, records)) = live {
        let flow = hub.and_then(|h| h.flow.get(&s.name));
        let rate = flow.map_or(0.0, |f| f.rate());
        let lag = flow
            .and_then(|f| f.stored_lag())
            .map(|d| format!(" · capture → stored {:.1} s", d.as_secs_f64()))
            .unwrap_or_default();
        RichText::new(format!(
            "connected from {peer} · {batches} batches, {records} records now · {rate:.0} records/s{lag}"
        ))
        .color(format::status_color(Some(200), ui.visuals().dark_mode))
    } else {
        RichText::new("not connected").weak()
    };
    ui.label(state_text);
    ui.label(s.last_seen_at.as_deref().unwrap_or("never"));
    ui.label(s.version.as_deref().unwrap_or(""));
    ui.label(format::count(s.transactions));
    ui.label(stat("packets").map(format::count).unwrap_or_default());
    let drops = stat("kernel_drops").unwrap_or(0) + stat("interface_drops").unwrap_or(0);
    let lost = stat("lost_records").unwrap_or(0);
    let health = if drops + lost > 0 {
        RichText::new(format!(
            "{} dropped, {} lost",
            format::count(drops),
            format::count(lost)
        ))
        .color(ui.visuals().warn_fg_color)
    } else {
        RichText::new("0")
    };
    ui.label(health);
    ui.label(match (stat("spool_batches"), stat("spool_bytes")) {
        (Some(b), Some(by)) => format!("{b} batches, {}", format::bytes(by)),
        _ => String::new(),
    })
    .on_hover_text(
        s.stats
            .as_ref()
            .and_then(|v| serde_json::to_string_pretty(v).ok())
            .unwrap_or_else(|| "no heartbeat yet".into()),
    );
    if ui.small_button("traffic").clicked() {
        cmds.push(Command::ShowTraffic(Box::new(TxFilter {
            sensor: Some(s.name.clone()),
            ..TxFilter::default()
        })));
    }
    if s.revoked_at.is_none() && ui.small_button("revoke").clicked() {
        cmds.push(Command::RevokeSensor(s.name.clone()));
    }
}

/// Name, the address sensors dial, and the enrol button.
fn enrol_form(
    ui: &mut egui::Ui,
    state: &mut State,
    settings: &mut Settings,
    cmds: &mut Vec<Command>,
) {
    ui.horizontal(|ui| {
        ui.label("Name");
        ui.add(
            egui::TextEdit::singleline(&mut state.new_name)
                .hint_text("edge-1")
                .desired_width(140.0),
        );
        ui.label("sensors dial");
        ui.add(egui::TextEdit::singleline(&mut settings.hub_address).desired_width(200.0))
            .on_hover_text(
                "the address (host:port) this workbench is reachable at from the sensor",
            );
        let name = state.new_name.trim().to_owned();
        if ui
            .add_enabled(!name.is_empty(), egui::Button::new("Enrol…"))
            .on_hover_text(
                "signs a certificate for it and saves its configuration file (keep it secret)",
            )
            .clicked()
        {
            cmds.push(Command::EnrolSensor(name));
            state.new_name.clear();
        }
    });
    ui.label(
        RichText::new("Then on the sensor: tapline-sensor --config NAME.toml --interface IF")
            .weak(),
    );
}

/// How far live analysis has got: records analysed, waiting, and capture → analysed.
fn analysis_line(ui: &mut egui::Ui, h: &HubState) {
    let Some((at, a)) = &h.analysis else {
        return;
    };
    let lag = a.latest_ns.and_then(|ns| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_nanos() as i64;
        Some((now.saturating_sub(ns).max(0)) as f64 / 1e9)
    });
    let mut text = format!(
        "Live analysis: {} records analysed, {} waiting",
        format::count(a.records),
        format::count(a.waiting)
    );
    if let Some(l) = lag {
        text.push_str(&format!(" · capture → analysed {l:.1} s (newest record)"));
    }
    text.push_str(&format!(
        " · last write {:.0} s ago",
        at.elapsed().as_secs_f64()
    ));
    if a.skewed > 0 {
        text.push_str(&format!(
            " · {} records from a sensor clock ahead of this machine's",
            format::count(a.skewed)
        ));
    }
    let behind = a.waiting > 0;
    let rich = RichText::new(text);
    ui.label(if behind {
        rich.color(ui.visuals().warn_fg_color)
    } else {
        rich.weak()
    });
}

/// Where findings go as the hub finds them: the destinations, a form to add one.
fn alert_sinks(ui: &mut egui::Ui, form: &mut NewSink, case: &Case, cmds: &mut Vec<Command>) {
    if case.alert_sinks.is_empty() {
        ui.label(RichText::new("No destinations: findings stay in the case.").weak());
    }
    egui::Grid::new("alert-sinks").striped(true).show(ui, |ui| {
        for s in case.alert_sinks.iter() {
            ui.label(s.kind.name());
            ui.label(&s.target);
            ui.label(format!("{} and above", s.min_severity));
            ui.label(if s.secret.is_some() { "signed" } else { "" });
            if ui.button("Remove").clicked() {
                cmds.push(Command::RemoveAlertSink(s.id));
            }
            ui.end_row();
        }
    });
    ui.horizontal(|ui| {
        egui::ComboBox::from_id_salt("sink-kind")
            .selected_text(form.kind.name())
            .show_ui(ui, |ui| {
                for k in [SinkKind::Syslog, SinkKind::Webhook, SinkKind::Ecs] {
                    ui.selectable_value(&mut form.kind, k, k.name());
                }
            });
        let hint = match form.kind {
            SinkKind::Syslog => "udp://host:514, tcp://host:514, unix:///dev/log",
            SinkKind::Webhook => "https://siem.example/hook",
            SinkKind::Ecs => "/var/log/tapline/alerts.jsonl",
        };
        let label = ui.label("to");
        ui.add(egui::TextEdit::singleline(&mut form.target).hint_text(hint))
            .labelled_by(label.id);
        egui::ComboBox::from_id_salt("sink-severity")
            .selected_text(format!("{}+", form.min))
            .show_ui(ui, |ui| {
                for s in Severity::MOST_SEVERE_FIRST {
                    ui.selectable_value(&mut form.min, s, format!("{s} and above"));
                }
            });
        let ok = tapline_alerts::check_target(form.kind, form.target.trim());
        let add = ui.add_enabled(
            ok.is_ok() && !form.target.trim().is_empty(),
            egui::Button::new("Add"),
        );
        let add = match &ok {
            Err(why) if !form.target.trim().is_empty() => add.on_disabled_hover_text(why),
            _ => add,
        };
        if add.clicked() {
            cmds.push(Command::AddAlertSink(
                form.kind,
                form.target.trim().to_owned(),
                form.min,
            ));
            form.target.clear();
        }
    });
    ui.label(
        RichText::new("Each finding is sent once, then updated at most once a minute while it grows. Signed webhooks: tapline alerts add webhook URL --secret-env VAR.")
            .weak(),
    );
}

/// The hub's recent events, newest at the bottom.
fn hub_events(ui: &mut egui::Ui, h: &HubState) {
    if !h.log.is_empty() {
        ui.separator();
        ui.heading("Hub events");
        egui::ScrollArea::vertical()
            .id_salt("hub-log")
            .max_height(200.0)
            .stick_to_bottom(true)
            .show(ui, |ui| {
                for line in &h.log {
                    ui.label(RichText::new(line).monospace());
                }
            });
    }
}
