//! The desktop workbench (eframe/egui): open a capture or a case, listen for sensors, and go
//! from the overview to the evidence in a few clicks.
//!
//! Threads: the UI thread only draws and handles [`app::Command`]s. Database work runs on the
//! case's query worker ([`backend`]), imports on an import thread, the sensor hub on its own
//! runtime; each reports through a channel and wakes the UI with `request_repaint`.
//!
//! Modules: [`app`] (state, commands, frame), [`case`] (what is loaded), [`backend`] (the
//! query worker), [`format`] (how values read), and one module per view.

pub mod app;
pub mod attacks;
pub mod backend;
pub mod blocks;
pub mod case;
pub mod format;
pub mod inventory;
pub mod lifecycle;
pub mod overview;
pub mod picker;
pub mod sensitive;
pub mod sensors;
pub mod tests;
pub mod traffic;
pub mod welcome;

pub use app::{Command, Launch, View, Workbench};

/// Runs the desktop app until its window closes.
pub fn run(launch: Launch) -> anyhow::Result<()> {
    let options = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default()
            .with_title("Tapline")
            .with_inner_size([1440.0, 900.0])
            .with_min_inner_size([800.0, 500.0])
            .with_app_id("tapline"),
        // Software GL (Mesa llvmpipe) is common where there is no GPU: no multisampling.
        multisampling: 0,
        ..Default::default()
    };
    eframe::run_native(
        "tapline",
        options,
        Box::new(move |cc| Ok(Box::new(Workbench::new(cc, launch)))),
    )
    .map_err(|e| anyhow::anyhow!("the desktop app failed: {e}"))
}
