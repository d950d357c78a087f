//! Overview: the case at a glance — traffic over time, the status mix, the busiest
//! endpoints, findings by severity and the data classes seen. Every item leads on: an
//! endpoint to the inventory, a finding to its evidence, a class to where it flows.

use super::app::{Command, View};
use super::case::Case;
use super::format;
use eframe::egui::{self, Color32, RichText};
use egui_plot::{Bar, BarChart, Plot};

/// Draws the overview.
pub fn ui(ui: &mut egui::Ui, case: &mut Case, cmds: &mut Vec<Command>) {
    let Some(o) = case.overview.value.clone() else {
        loading(ui, case.overview.error.as_deref());
        return;
    };
    egui::ScrollArea::vertical().show(ui, |ui| {
        ui.horizontal_wrapped(|ui| {
            stat(
                ui,
                "transactions",
                &format::count(o.transactions),
                View::Traffic,
                cmds,
            );
            stat(
                ui,
                "endpoints",
                &format::count(o.endpoints as u64),
                View::Inventory,
                cmds,
            );
            let findings: u64 = o.severities.iter().map(|(_, n)| n).sum();
            stat(
                ui,
                "findings",
                &format::count(findings),
                View::Attacks,
                cmds,
            );
            let fresh = case.inventory.value.as_ref().map_or(0, |inv| {
                inv.findings
                    .iter()
                    .filter(|f| case.seen.is_new(f.id))
                    .count()
            });
            if fresh > 0 {
                stat(
                    ui,
                    "new since you last looked",
                    &format::count(fresh as u64),
                    View::Attacks,
                    cmds,
                );
            }
            stat(
                ui,
                "data classes",
                &o.data_classes.len().to_string(),
                View::Sensitive,
                cmds,
            );
            if let Some((lo, hi)) = o.span_ns {
                ui.vertical(|ui| {
                    ui.label(RichText::new("time span (UTC)").weak());
                    ui.label(format!("{} – {}", format::time(lo), format::time(hi)));
                    ui.label(RichText::new(format::duration_ns(hi - lo)).weak());
                });
            }
        });
        if !o.sources.is_empty() {
            ui.label(
                RichText::new(format!(
                    "from {}",
                    o.sources
                        .iter()
                        .map(|(n, t)| format!("{n} ({})", format::count(*t)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .weak(),
            );
        }
        ui.separator();
        ui.columns(2, |cols| {
            let ui = &mut cols[0];
            ui.label(RichText::new("Traffic over time").strong());
            traffic_plot(ui, &o.histogram, o.bucket_ns);
            ui.add_space(8.0);
            ui.label(RichText::new("Status mix").strong());
            status_mix(ui, &o.status_classes, cmds);

            let ui = &mut cols[1];
            ui.label(RichText::new("Findings by severity").strong());
            if o.severities.is_empty() {
                ui.label(RichText::new("none").weak());
            }
            ui.horizontal_wrapped(|ui| {
                for (sev, n) in &o.severities {
                    if ui
                        .button(format::badge(&format!("{sev} {n}"), *sev))
                        .on_hover_text(format!("the {sev} findings in the Attacks view"))
                        .clicked()
                    {
                        cmds.push(Command::ShowSeverity(*sev));
                    }
                }
            });
            for (id, sev, title) in &o.top_findings {
                ui.horizontal(|ui| {
                    ui.label(format::severity_badge(*sev));
                    if ui.link(title).clicked() {
                        cmds.push(Command::ShowFinding(*id));
                    }
                });
            }
            ui.add_space(8.0);
            ui.label(RichText::new("Busiest endpoints").strong());
            egui::Grid::new("top-endpoints")
                .striped(true)
                .show(ui, |ui| {
                    for (id, label, n) in &o.top_endpoints {
                        if ui.link(label).clicked() {
                            cmds.push(Command::ShowEndpoint(*id));
                        }
                        ui.label(format::count(*n));
                        ui.end_row();
                    }
                });
            ui.add_space(8.0);
            ui.label(RichText::new("Sensitive data").strong());
            if o.data_classes.is_empty() {
                ui.label(RichText::new("none seen").weak());
            }
            egui::Grid::new("data-classes")
                .striped(true)
                .show(ui, |ui| {
                    for (class, endpoints, n) in &o.data_classes {
                        if ui.link(class).clicked() {
                            cmds.push(Command::ShowDataClass(class.clone(), None));
                        }
                        ui.label(format!(
                            "{endpoints} endpoint{} · {} transactions",
                            if *endpoints == 1 { "" } else { "s" },
                            format::count(*n)
                        ));
                        ui.end_row();
                    }
                });
        });
    });
}

/// A spinner, or why there is nothing.
pub fn loading(ui: &mut egui::Ui, error: Option<&str>) {
    match error {
        Some(e) => {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        None => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("loading…");
            });
        }
    }
}

fn stat(ui: &mut egui::Ui, what: &str, value: &str, view: View, cmds: &mut Vec<Command>) {
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.set_min_width(120.0);
        ui.vertical(|ui| {
            ui.label(RichText::new(what).weak());
            if ui
                .add(
                    egui::Label::new(RichText::new(value).size(22.0).strong())
                        .sense(egui::Sense::click()),
                )
                .on_hover_text(format!("open {}", view.label()))
                .clicked()
            {
                cmds.push(Command::Show(view));
            }
        });
    });
}

fn traffic_plot(ui: &mut egui::Ui, histogram: &[(i64, u64)], bucket_ns: i64) {
    let Some(&(t0, _)) = histogram.first() else {
        ui.label(RichText::new("no transactions").weak());
        return;
    };
    // x in seconds from the first bucket: f64 keeps nanosecond epochs only to ~256 ns.
    let bars: Vec<Bar> = histogram
        .iter()
        .map(|&(t, n)| {
            Bar::new((t - t0) as f64 / 1e9, n as f64).width(bucket_ns as f64 / 1e9 * 0.9)
        })
        .collect();
    Plot::new("traffic-over-time")
        .height(180.0)
        .allow_scroll(false)
        .allow_drag(false)
        .allow_zoom(false)
        .allow_boxed_zoom(false)
        .x_axis_formatter(move |mark, _| {
            format::time(t0 + (mark.value * 1e9) as i64)[11..19].to_owned()
        })
        .label_formatter(move |hover| {
            let p = hover_point(hover);
            Some(format!(
                "{}\n{:.0} per {}",
                format::time(t0 + (p.x * 1e9) as i64),
                p.y,
                format::duration_ns(bucket_ns)
            ))
        })
        .show(ui, |p| {
            p.bar_chart(BarChart::new("transactions", bars).color(Color32::from_rgb(90, 150, 220)));
        });
}

/// Where the pointer is in plot coordinates.
pub fn hover_point(h: &egui_plot::HoverPosition<'_>) -> egui_plot::PlotPoint {
    match h {
        egui_plot::HoverPosition::NearDataPoint { position, .. }
        | egui_plot::HoverPosition::Elsewhere { position } => *position,
    }
}

fn status_mix(ui: &mut egui::Ui, classes: &[u64; 6], cmds: &mut Vec<Command>) {
    let total: u64 = classes.iter().sum();
    let dark = ui.visuals().dark_mode;
    egui::Grid::new("status-mix").show(ui, |ui| {
        for (i, &n) in classes.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let (label, range, sample) = match i {
                5 => ("no response".to_owned(), None, None),
                _ => {
                    let lo = (i as u16 + 1) * 100;
                    (format!("{}xx", i + 1), Some((lo, lo + 99)), Some(lo))
                }
            };
            let color = format::status_color(sample, dark);
            let text = RichText::new(&label).color(color);
            if range.is_none() {
                ui.label(text);
            } else if ui.link(text).clicked() {
                cmds.push(Command::ShowTraffic(Box::new(
                    tapline_store::query::TxFilter {
                        status: range,
                        ..Default::default()
                    },
                )));
            }
            let frac = n as f32 / total.max(1) as f32;
            ui.add(
                egui::ProgressBar::new(frac)
                    .desired_width(220.0)
                    .fill(color)
                    .text(format!("{} ({:.1}%)", format::count(n), frac * 100.0)),
            );
            ui.end_row();
        }
    });
}
