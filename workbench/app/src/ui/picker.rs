//! File dialogs. The system's (rfd over the XDG desktop portal) when the desktop has one, else
//! a built-in picker drawn with egui: a desktop without xdg-desktop-portal makes rfd return at
//! once with nothing, which used to leave Open, New case and Export silently doing nothing.
//! The choice is made at run time: a system dialog that "returns" faster than a person could
//! dismiss it is taken to be missing, the app says so once, and uses the built-in picker from
//! then on (`TAPLINE_FILE_DIALOG=builtin` chooses it from the start).

use eframe::egui::{self, RichText};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Which file dialogs the app shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dialogs {
    /// The desktop's, through rfd.
    #[default]
    System,
    /// The built-in picker.
    BuiltIn,
}

impl Dialogs {
    /// From `TAPLINE_FILE_DIALOG` (`builtin` or `system`); the system's by default.
    pub fn from_env() -> Dialogs {
        match std::env::var("TAPLINE_FILE_DIALOG").as_deref() {
            Ok("builtin") => Dialogs::BuiltIn,
            _ => Dialogs::System,
        }
    }
}

/// What a dialog asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The window title.
    pub title: String,
    /// Extensions offered (empty: any file).
    pub extensions: Vec<&'static str>,
    /// Several files may be chosen.
    pub multiple: bool,
    /// A file to create, with this suggested name (else an existing file to open).
    pub save_as: Option<String>,
}

/// The system dialog could not be shown.
#[derive(Debug)]
pub struct Unavailable;

/// Shows the system dialog for `req`: the chosen files (empty when the user cancelled), or
/// `Unavailable` when it came back too fast for a person to have seen it.
pub fn system(req: &Request) -> Result<Vec<PathBuf>, Unavailable> {
    let started = Instant::now();
    let mut d = rfd::FileDialog::new().set_title(&req.title);
    if !req.extensions.is_empty() {
        d = d.add_filter(req.extensions.join(", "), &req.extensions);
    }
    let chosen: Vec<PathBuf> = match (&req.save_as, req.multiple) {
        (Some(name), _) => d.set_file_name(name).save_file().into_iter().collect(),
        (None, true) => d.pick_files().unwrap_or_default(),
        (None, false) => d.pick_file().into_iter().collect(),
    };
    if chosen.is_empty() && started.elapsed() < Duration::from_millis(150) {
        return Err(Unavailable);
    }
    Ok(chosen)
}

/// What the built-in picker did this frame.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Still open.
    Open,
    /// These paths were chosen.
    Chosen(Vec<PathBuf>),
    /// Closed without a choice.
    Cancelled,
}

/// The built-in picker: one folder at a time, a file-name box, Open/Save and Cancel.
#[derive(Debug)]
pub struct Picker {
    req: Request,
    dir: PathBuf,
    /// The folder's entries: (name, is a folder), folders first.
    entries: Vec<(String, bool)>,
    /// The file name (or a whole path) typed or clicked.
    name: String,
    error: Option<String>,
}

impl Picker {
    /// A picker for `req`, starting in `dir`.
    pub fn new(req: Request, dir: PathBuf) -> Picker {
        let mut p = Picker {
            name: req.save_as.clone().unwrap_or_default(),
            req,
            dir,
            entries: Vec::new(),
            error: None,
        };
        p.read_dir();
        p
    }

    fn read_dir(&mut self) {
        self.entries.clear();
        self.error = None;
        match std::fs::read_dir(&self.dir) {
            Ok(rd) => {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                    if name.starts_with('.') || !(is_dir || self.offers(&name)) {
                        continue;
                    }
                    self.entries.push((name, is_dir));
                }
                self.entries
                    .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            }
            Err(e) => self.error = Some(format!("cannot list {}: {e}", self.dir.display())),
        }
    }

    fn offers(&self, name: &str) -> bool {
        self.req.extensions.is_empty()
            || Path::new(name)
                .extension()
                .is_some_and(|x| self.req.extensions.iter().any(|e| x == *e))
    }

    /// The path the file-name box means: absolute as typed, else in the current folder.
    fn target(&self) -> PathBuf {
        let typed = Path::new(self.name.trim());
        if typed.is_absolute() {
            typed.to_path_buf()
        } else {
            self.dir.join(typed)
        }
    }

    fn enter(&mut self, dir: PathBuf) {
        self.dir = dir;
        self.read_dir();
    }

    /// Draws the picker.
    pub fn ui(&mut self, ctx: &egui::Context) -> Outcome {
        let mut outcome = Outcome::Open;
        let mut open = true;
        egui::Window::new(self.req.title.clone())
            .collapsible(false)
            .default_size([520.0, 420.0])
            .open(&mut open)
            .show(ctx, |ui| outcome = self.contents_ui(ui));
        if !open {
            return Outcome::Cancelled;
        }
        outcome
    }

    fn contents_ui(&mut self, ui: &mut egui::Ui) -> Outcome {
        ui.horizontal(|ui| {
            if ui.button("Up").clicked()
                && let Some(parent) = self.dir.parent().map(Path::to_path_buf)
            {
                self.enter(parent);
            }
            ui.label(RichText::new(self.dir.display().to_string()).monospace());
        });
        if let Some(e) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        let mut go_into = None;
        egui::ScrollArea::vertical()
            .max_height(260.0)
            .show(ui, |ui| {
                for (name, is_dir) in &self.entries {
                    let label = if *is_dir {
                        format!("{name}/")
                    } else {
                        name.clone()
                    };
                    if ui.selectable_label(self.name == *name, label).clicked() {
                        if *is_dir {
                            go_into = Some(self.dir.join(name));
                        } else {
                            self.name = name.clone();
                        }
                    }
                }
            });
        if let Some(d) = go_into {
            self.enter(d);
        }
        ui.horizontal(|ui| {
            ui.label("File");
            ui.add(egui::TextEdit::singleline(&mut self.name).desired_width(360.0))
                .accessible_name("File name");
        });
        let verb = if self.req.save_as.is_some() {
            "Save"
        } else {
            "Open"
        };
        let mut outcome = Outcome::Open;
        ui.horizontal(|ui| {
            if ui.button(verb).clicked() && !self.name.trim().is_empty() {
                let target = self.target();
                if target.is_dir() {
                    self.enter(target);
                    self.name.clear();
                } else if self.req.save_as.is_none() && !target.is_file() {
                    self.error = Some(format!("{}: no such file", target.display()));
                } else {
                    outcome = Outcome::Chosen(vec![target]);
                }
            }
            if ui.button("Cancel").clicked() {
                outcome = Outcome::Cancelled;
            }
        });
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ext: &[&'static str]) -> Request {
        Request {
            title: "t".into(),
            extensions: ext.to_vec(),
            multiple: false,
            save_as: None,
        }
    }

    #[test]
    fn the_folder_lists_folders_first_then_offered_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        for f in ["b.pcap", "a.har", "notes.txt", ".hidden.pcap"] {
            std::fs::write(dir.path().join(f), b"").unwrap();
        }
        let p = Picker::new(req(&["pcap", "har"]), dir.path().to_path_buf());
        let names: Vec<&str> = p.entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["sub", "a.har", "b.pcap"]);
        assert!(p.error.is_none());
    }

    #[test]
    fn a_typed_name_is_relative_to_the_folder_unless_absolute() {
        let mut p = Picker::new(req(&[]), PathBuf::from("/tmp"));
        p.name = "x.pcap".into();
        assert_eq!(p.target(), PathBuf::from("/tmp/x.pcap"));
        p.name = "/srv/y.pcap".into();
        assert_eq!(p.target(), PathBuf::from("/srv/y.pcap"));
    }

    #[test]
    fn an_unreadable_folder_is_said() {
        let p = Picker::new(req(&[]), PathBuf::from("/no/such/folder"));
        assert!(
            p.error
                .as_deref()
                .is_some_and(|e| e.contains("/no/such/folder"))
        );
    }
}
