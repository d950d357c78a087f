//! The welcome screen: shown while no case is open.

use super::app::{Command, Settings};
use eframe::egui::{self, RichText};

/// Draws the welcome screen.
pub fn ui(ui: &mut egui::Ui, settings: &Settings, cmds: &mut Vec<Command>) {
    ui.vertical_centered(|ui| {
        ui.add_space(ui.available_height() * 0.12);
        ui.heading(RichText::new("Tapline").size(32.0).strong());
        ui.label("API security from your own traffic, on your own machine.");
        ui.add_space(24.0);
        let big = |t: &str| egui::Button::new(RichText::new(t).size(16.0)).min_size(egui::vec2(260.0, 36.0));
        if ui
            .add(big("Open capture…"))
            .on_hover_text("pcap, pcapng or HAR: decoded, stored in a new case and analysed (Ctrl+O)")
            .clicked()
        {
            cmds.push(Command::OpenCaptureDialog);
        }
        if ui
            .add(big("Open case…"))
            .on_hover_text("a .duckdb case file (Ctrl+Shift+O)")
            .clicked()
        {
            cmds.push(Command::OpenCaseDialog);
        }
        if ui
            .add(big("New case…"))
            .on_hover_text("an empty case, e.g. to collect what sensors send (Ctrl+N)")
            .clicked()
        {
            cmds.push(Command::NewCaseDialog);
        }
        ui.add_space(8.0);
        ui.label(
            RichText::new(
                "To listen for sensors, open or create a case, then start the hub in the Sensors view.",
            )
            .weak(),
        );
        if !settings.recent.is_empty() {
            ui.add_space(24.0);
            ui.label(RichText::new("Recent cases").strong());
            for p in &settings.recent {
                let name = p
                    .file_name()
                    .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned());
                if ui
                    .link(name)
                    .on_hover_text(p.display().to_string())
                    .clicked()
                {
                    cmds.push(Command::Open(vec![p.clone()]));
                }
            }
        }
    });
}
