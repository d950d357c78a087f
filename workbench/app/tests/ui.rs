//! The desktop app, driven headlessly with egui_kittest: the real app on the sample
//! captures (imported in the background, queried on the worker thread), clicked through the
//! way an analyst would. The acceptance bar: the endpoints, the sensitive data and the
//! attacks the sample-captures README lists are each reached in at most three clicks from
//! the overview.

// Test helpers: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use common::sample_captures;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tapline::ui::{Launch, View, Workbench};

struct App {
    harness: Harness<'static, Workbench>,
    clicks: usize,
    _dir: tempfile::TempDir,
}

impl App {
    /// The app as `tapline open FILES…` starts it, with its data directory in a temporary
    /// folder, after the import and the first queries have finished.
    fn open(files: &[&str]) -> App {
        App::open_sized(files, eframe::egui::vec2(1440.0, 900.0))
    }

    /// [`App::open`] in a window of `size`.
    fn open_sized(files: &[&str], size: eframe::egui::Vec2) -> App {
        App::launch(size, |dir| Launch {
            open: files.iter().map(|f| sample_captures().join(f)).collect(),
            data_dir: dir.join("data"),
            identity_dir: dir.join("identity"),
            ..Launch::default()
        })
    }

    /// The app as `launch` (given a temporary folder) starts it, once settled.
    fn launch(size: eframe::egui::Vec2, launch: impl FnOnce(&std::path::Path) -> Launch) -> App {
        let dir = tempfile::tempdir().unwrap();
        let launch = launch(dir.path());
        let harness = Harness::builder()
            .with_size(size)
            .build_eframe(move |cc| Workbench::new(cc, launch));
        let mut app = App {
            harness,
            clicks: 0,
            _dir: dir,
        };
        app.settle();
        app
    }

    /// Steps frames until no import runs and no query is on its way (the workers live on
    /// real threads: wait for them in real time).
    fn settle(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut idle = 0;
        while idle < 3 {
            self.harness.step();
            let s = self.harness.state();
            let busy = s.busy() || s.case.as_ref().is_some_and(|c| c.busy());
            idle = if busy { 0 } else { idle + 1 };
            assert!(
                Instant::now() < deadline,
                "the app did not settle in 2 minutes"
            );
            if busy {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        self.harness.run_steps(2);
    }

    fn has(&self, text: &str) -> bool {
        self.harness
            .query_all_by_label_contains(text)
            .next()
            .is_some()
    }

    fn count(&self, text: &str) -> usize {
        self.harness.query_all_by_label_contains(text).count()
    }

    #[track_caller]
    fn expect(&self, text: &str) {
        assert!(self.has(text), "nothing on screen says {text:?}");
    }

    #[track_caller]
    fn expect_all(&self, texts: &[&str]) {
        for t in texts {
            self.expect(t);
        }
    }

    /// Clicks the first widget whose label contains `text`, and lets the app settle.
    #[track_caller]
    fn click(&mut self, text: &str) {
        let node = self
            .harness
            .query_all_by_label_contains(text)
            .next()
            .unwrap_or_else(|| panic!("nothing to click says {text:?}"));
        node.click();
        self.clicks += 1;
        self.settle();
    }

    /// Clicks the navigation entry of a view (labelled with its name and a count).
    #[track_caller]
    fn nav(&mut self, view: View) {
        let node = self
            .harness
            .query_all_by_label_contains(view.label())
            .find(|n| {
                let n = n.accesskit_node();
                n.role() != eframe::egui::accesskit::Role::Label
                    && n.label().is_some_and(|l| l.starts_with(view.label()))
            })
            .unwrap_or_else(|| panic!("no navigation entry for {view:?}"));
        node.click();
        self.clicks += 1;
        self.settle();
        assert_eq!(self.view(), view);
    }

    /// Clicks the widget labelled exactly `text`.
    #[track_caller]
    fn click_exact(&mut self, text: &str) {
        self.harness.get_by_label(text).click();
        self.clicks += 1;
        self.settle();
    }

    /// The text box labelled `label`.
    #[track_caller]
    fn input<'a>(&'a self, label: &'a str) -> egui_kittest::Node<'a> {
        self.harness
            .get_by_role_and_label(eframe::egui::accesskit::Role::TextInput, label)
    }

    /// Types `text` into the text box labelled `label`.
    #[track_caller]
    fn type_into(&mut self, label: &str, text: &str) {
        self.input(label).focus();
        self.harness.run_steps(1);
        assert!(
            self.input(label).is_focused(),
            "{label} did not take the keyboard"
        );
        self.input(label).type_text(text);
        self.settle();
    }

    fn view(&self) -> View {
        self.harness.state().settings.view
    }
}

#[test]
fn the_overview_shows_the_case_at_a_glance() {
    let app = App::open(&["shop-api.pcap"]);
    assert_eq!(app.view(), View::Overview);
    let case = app.harness.state().case.as_ref().unwrap();
    let o = case.overview.value.as_ref().unwrap();
    assert_eq!(o.transactions, 83);
    assert_eq!(
        o.status_classes[1] + o.status_classes[3],
        83,
        "2xx and 4xx only"
    );
    app.expect("imported 83 transactions from 537 packets");
    app.expect_all(&[
        "Traffic over time",
        "Status mix",
        "Busiest endpoints",
        "POST 127.0.0.1:18088/api/v1/login",
        "Findings by severity",
        "Brute force: 24 failed logins for alice",
        "Sensitive data",
        "us_ssn",
    ]);
}

#[test]
fn endpoints_are_one_click_away_and_their_detail_two() {
    let mut app = App::open(&["shop-api.pcap"]);
    app.nav(View::Inventory);
    assert_eq!(app.view(), View::Inventory);
    for path in [
        "/api/v1/users/{userId}",
        "/api/v1/users/me",
        "/api/v1/login",
        "/api/v1/orders",
        "/api/v1/products",
        "/api/v1/search",
        "/api/v1/files",
        "/admin/stats",
    ] {
        app.expect(&format!("127.0.0.1:18088{path}"));
    }
    app.click_exact("127.0.0.1:18088/api/v1/users/{userId}");
    assert!(app.clicks <= 3);
    // The endpoint's detail: its parameter, schema, auth, data classes and findings.
    app.expect_all(&[
        "GET 127.0.0.1:18088/api/v1/users/{userId}",
        "23 transactions",
        "userId",
        "Response schemas",
        "bearer_jwt",
        "response.body.ssn",
        "Broken object-level authorisation",
    ]);

    // The filter box narrows the table.
    app.type_into("Filter", "login");
    app.settle();
    app.expect("1 of 11 endpoints");
}

#[test]
fn sensitive_data_is_reached_in_three_clicks_and_masked_until_revealed() {
    let mut app = App::open(&["shop-api.pcap"]);
    app.nav(View::Sensitive);
    assert_eq!(app.view(), View::Sensitive);
    app.expect_all(&[
        "us_ssn",
        "credit_card",
        "email",
        "phone_number",
        "password",
        "jwt",
    ]);
    // From the overview's class list straight to the class: the endpoints carrying it.
    let mut app = App::open(&["shop-api.pcap"]);
    app.click_exact("us_ssn");
    assert_eq!(app.view(), View::Sensitive);
    app.expect("GET 127.0.0.1:18088/api/v1/users/{userId}");
    app.expect("GET 127.0.0.1:18088/api/v1/users/me");
    // The cell: where it sits and examples, masked.
    app.click_exact("23");
    app.expect("us_ssn on GET 127.0.0.1:18088/api/v1/users/{userId}");
    app.expect("response.body.ssn");
    let sensitive = |app: &App| app.count("-45-67");
    assert_eq!(sensitive(&app), 0, "values are masked by default");
    assert!(app.has("••-••-•••"), "masked SSNs keep their shape");
    app.click("Reveal values");
    assert_eq!(app.clicks, 3);
    assert!(sensitive(&app) > 0, "revealed on request");
}

#[test]
fn attacks_are_grouped_by_actor_with_their_evidence_in_two_clicks() {
    let mut app = App::open(&["shop-api.pcap", "abuse-api.pcap"]);
    app.nav(View::Attacks);
    assert_eq!(app.view(), View::Attacks);
    // Every attack the README lists, under its actor.
    app.expect_all(&[
        "127.0.0.99",
        "credential_stuffing",
        "127.0.0.88",
        "scraping",
        "user 7 · 127.0.0.89",
        "enumeration",
        "127.0.0.55",
        "broken_authentication",
        "user 8 · 127.0.0.44",
        "error_spike",
        "127.0.0.77",
        "brute_force",
        "user 11 · 127.0.0.66",
        "bola",
        "sqli",
        "xss",
        "path_traversal",
    ]);
    app.click("bola · 19");
    assert_eq!(app.clicks, 2);
    app.expect("Broken object-level authorisation: user 11 (127.0.0.66)");
    app.expect("Evidence (19 transactions)");
    let case = app.harness.state().case.as_ref().unwrap();
    let rows = case.evidence.value.as_ref().unwrap();
    assert_eq!(rows.len(), 19);
    assert!(
        rows.iter()
            .all(|r| r.path.starts_with("/api/v1/users/") && r.status == Some(200))
    );
    // One more click: a piece of evidence, whole, in the traffic view.
    let first = format!("#{}", rows[0].id);
    app.click_exact(&first);
    assert_eq!(app.view(), View::Traffic);
    app.expect("Copy as curl");
    app.expect("Authorization");
}

#[test]
fn a_finding_on_the_overview_opens_its_evidence_in_one_click() {
    let mut app = App::open(&["shop-api.pcap", "abuse-api.pcap"]);
    app.click("Credential stuffing: 28 failed logins");
    assert_eq!(app.view(), View::Attacks);
    app.expect("Evidence (");
    let case = app.harness.state().case.as_ref().unwrap();
    assert!(case.evidence.value.as_ref().is_some_and(|r| r.len() >= 28));
}

#[test]
fn traffic_filters_and_shows_a_transaction_with_curl() {
    let mut app = App::open(&["shop-api.pcap"]);
    app.nav(View::Traffic);
    app.expect("83 transactions");
    app.type_into("Status", "4xx");
    app.click_exact("Apply");
    app.expect("27 transactions");
    let case = app.harness.state().case.as_ref().unwrap();
    let row = case.tx.row(0).cloned().unwrap();
    assert!(row.status.is_some_and(|s| (400..500).contains(&s)));
    // Select the first row by keyboard, then copy it as curl.
    app.harness.key_press(eframe::egui::Key::ArrowDown);
    app.settle();
    app.expect("Copy as curl");
    // The copy lands in the output of the frame that handles the click.
    app.harness.get_by_label("Copy as curl").click();
    app.harness.step();
    let copied = app
        .harness
        .output()
        .platform_output
        .commands
        .iter()
        .find_map(|c| match c {
            eframe::egui::OutputCommand::CopyText(t) => Some(t.clone()),
            _ => None,
        });
    let curl = copied.expect("copy as curl puts text on the clipboard");
    assert!(
        curl.starts_with(&format!("curl -X {} 'http://127.0.0.1:18088", row.method)),
        "{curl}"
    );

    // A time range nothing falls in.
    app.click_exact("Clear");
    app.type_into("From", "2001-01-01 00:00");
    app.type_into("To", "2001-01-02");
    app.click_exact("Apply");
    app.expect("0 transactions");
}

#[test]
fn masking_hides_passwords_in_the_traffic_view_and_ctrl_m_reveals_them() {
    let mut app = App::open(&["shop-api.pcap"]);
    app.nav(View::Traffic);
    app.type_into("Path", "/api/v1/login");
    app.click_exact("Apply");
    app.harness.key_press(eframe::egui::Key::ArrowDown);
    app.settle();
    app.expect("POST /api/v1/login");
    assert_eq!(
        app.count("-2024"),
        0,
        "a password is on screen while masked"
    );
    app.harness
        .key_press_modifiers(eframe::egui::Modifiers::COMMAND, eframe::egui::Key::M);
    app.settle();
    assert!(app.count("-2024") > 0, "Ctrl+M reveals the password");
}

#[test]
fn a_pointer_click_on_the_detail_pane_reaches_the_pane_not_the_table_under_it() {
    // Narrow enough that the pane's content (long finding titles) is wider than the view.
    let mut app = App::open_sized(&["shop-api.pcap"], eframe::egui::vec2(700.0, 1000.0));
    app.nav(View::Inventory);
    app.click("/api/v1/users/{userId}");
    assert!(app.harness.state().views.inventory.selected.is_some());
    // A pointer click at the button (not an accessibility action, which finds its widget
    // whatever covers it): before the pane was bounded it spread over the list and the
    // navigation, and the click landed elsewhere.
    app.harness.get_by_label("Show transactions").click();
    app.settle();
    assert_eq!(app.view(), View::Traffic, "the click went to the table");
}

#[test]
fn the_inventory_leads_to_matching_traffic() {
    let mut app = App::open(&["shop-api.pcap"]);
    app.harness
        .state_mut()
        .push(tapline::ui::Command::Show(View::Inventory));
    app.settle();
    app.click_exact("127.0.0.1:18088/api/v1/users/{userId}");
    app.click_exact("Show transactions");
    assert_eq!(app.view(), View::Traffic);
    app.expect("23 transactions");
    app.expect("matching /api/v1/users/{userId}");
}

#[test]
fn the_sensors_view_enrols_nothing_without_a_name_and_starts_the_hub() {
    let mut app = App::open(&["shop-api.pcap"]);
    app.nav(View::Sensors);
    app.expect("Enrolled sensors");
    app.expect("None yet");
    let enrol = app.harness.get_by_label("Enrol…");
    assert!(
        enrol.accesskit_node().is_disabled(),
        "no name, no enrolment"
    );
    app.harness.state_mut().settings.listen = "127.0.0.1:0".into();
    app.click_exact("Listen for sensors");
    app.expect("listening on 127.0.0.1:");
    app.click_exact("Stop");
    app.expect("Listen for sensors");
}

#[test]
fn alert_destinations_are_added_and_removed_in_the_sensors_view() {
    let mut app = App::open(&["shop-api.pcap"]);
    app.nav(View::Sensors);
    app.expect("No destinations");
    // The kind defaults to syslog, whose targets are URLs.
    app.type_into("to", "udp:/");
    assert!(
        app.harness
            .get_by_label("Add")
            .accesskit_node()
            .is_disabled()
    );
    app.type_into("to", "/127.0.0.1:5514");
    app.click_exact("Add");
    app.expect("alert destination 1: syslog udp://127.0.0.1:5514");
    // The notice comes with the action's answer; the list with the refresh it starts.
    app.settle();
    let case = app.harness.state().case.as_ref().unwrap();
    assert_eq!(case.alert_sinks.len(), 1);
    app.expect("high and above");
    app.click_exact("Remove");
    app.expect("removed alert destination 1");
    app.expect("No destinations");
}

#[test]
fn without_a_case_the_welcome_screen_offers_the_ways_in() {
    let dir = tempfile::tempdir().unwrap();
    let launch = Launch {
        data_dir: dir.path().to_owned(),
        ..Launch::default()
    };
    let mut harness = Harness::builder()
        .with_size(eframe::egui::vec2(1200.0, 800.0))
        .build_eframe(move |cc| Workbench::new(cc, launch));
    harness.run_steps(3);
    for text in ["Open capture…", "Open case…", "New case…"] {
        assert!(harness.query_by_label(text).is_some(), "{text}");
    }
    assert!(harness.state().case.is_none());
}

#[test]
fn without_a_desktop_file_dialog_the_built_in_picker_opens_a_capture() {
    let mut app = App::launch(eframe::egui::vec2(1200.0, 800.0), |dir| Launch {
        data_dir: dir.to_owned(),
        file_dialogs: tapline::ui::picker::Dialogs::BuiltIn,
        ..Launch::default()
    });
    app.click("Open capture…");
    app.expect("Open captures");
    let capture = sample_captures().join("shop-api.pcap");
    app.type_into("File name", &capture.display().to_string());
    app.click_exact("Open");
    assert!(!app.has("Open captures"), "the picker closed");
    app.expect("83 transactions from");
    assert!(app.harness.state().case.is_some());
}

#[test]
fn a_large_import_shows_progress_and_cancels() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.pcap");
    write_repeated_capture(&sample_captures().join("shop-api.pcap"), &big, 1500);
    let launch = Launch {
        open: vec![big],
        data_dir: dir.path().join("data"),
        ..Launch::default()
    };
    let mut harness = Harness::builder()
        .with_size(eframe::egui::vec2(1440.0, 900.0))
        .build_eframe(move |cc| Workbench::new(cc, launch));
    // Wait for a progress report: bytes, transactions, rate and time left.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        harness.step();
        if harness.query_by_label_contains("transactions ·").is_some()
            && harness.query_by_label_contains("left").is_some()
        {
            break;
        }
        assert!(
            harness.state().busy(),
            "the import ended before reporting progress"
        );
        assert!(
            Instant::now() < deadline,
            "no progress shown within a minute"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    harness.get_by_label("Cancel import").click();
    let deadline = Instant::now() + Duration::from_secs(60);
    while harness.state().importing() {
        harness.step();
        assert!(Instant::now() < deadline, "cancel did not stop the import");
        std::thread::sleep(Duration::from_millis(10));
    }
    while harness.state().case.as_ref().is_some_and(|c| c.busy()) {
        harness.step();
        assert!(Instant::now() < deadline, "the case did not refresh");
        std::thread::sleep(Duration::from_millis(10));
    }
    harness.run_steps(3);
    assert!(
        harness
            .query_by_label_contains("import cancelled; nothing was kept")
            .is_some(),
        "{:?}",
        harness.state().notices.last()
    );
    let case = harness.state().case.as_ref().unwrap();
    assert_eq!(
        case.overview.value.as_ref().map(|o| o.transactions),
        Some(0),
        "a cancelled import leaves the case as it was"
    );
}

/// Writes `copies` of a classic pcap's packets, each copy's IPv4 addresses moved to their own
/// 127.a.b.x range so every copy is a new set of connections.
fn write_repeated_capture(src: &std::path::Path, dst: &PathBuf, copies: u32) {
    let data = std::fs::read(src).unwrap();
    let mut out = Vec::with_capacity(data.len() * copies as usize);
    out.extend_from_slice(&data[..24]);
    for k in 0..copies {
        let (a, b) = ((k / 250 + 1) as u8, (k % 250) as u8);
        let mut at = 24;
        while at + 16 <= data.len() {
            let caplen = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
            let mut rec = data[at..at + 16 + caplen].to_vec();
            // Linux loopback capture with Ethernet framing: IPv4 at 14, addresses at +12/+16.
            if rec.len() >= 16 + 34 && rec[16 + 12] == 0x08 && rec[16 + 13] == 0x00 {
                for off in [16 + 14 + 12, 16 + 14 + 16] {
                    rec[off + 1] = a;
                    rec[off + 2] = b;
                }
            }
            // Later copies later in time, so the timeline is not one stack.
            let secs = u32::from_le_bytes(rec[0..4].try_into().unwrap()) + k * 4;
            rec[0..4].copy_from_slice(&secs.to_le_bytes());
            out.extend_from_slice(&rec);
            at += 16 + caplen;
        }
    }
    std::fs::write(dst, out).unwrap();
}

#[test]
fn commands_of_other_processes_run_on_the_case_the_app_holds() {
    let mut app = App::open(&["shop-api.pcap"]);
    let case = app.harness.state().case.as_ref().unwrap().path.clone();
    let tapline = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tapline"))
            .args(args)
            .arg("--db")
            .arg(&case)
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        assert!(
            out.status.success(),
            "tapline {args:?} while the app holds the case: {}",
            text(&out.stderr)
        );
        (text(&out.stdout), text(&out.stderr))
    };
    // Before the control socket, every one of these failed on DuckDB's lock.
    let (endpoints, _) = tapline(&["endpoints"]);
    assert!(endpoints.contains("/api/v1/users/{userId}"), "{endpoints}");
    let (_, said) = tapline(&[
        "import",
        &sample_captures().join("catalog-api.pcap").to_string_lossy(),
    ]);
    assert!(said.contains("imported 494 transactions"), "{said}");
    // The app sees what the other process did without being told to reload.
    app.settle();
    let o = app
        .harness
        .state()
        .case
        .as_ref()
        .unwrap()
        .overview
        .value
        .clone()
        .unwrap();
    assert_eq!(o.transactions, 83 + 494);
}

/// The shop server (vulnerable build) on a free port, killed when dropped.
struct ShopServer(std::process::Child, u16);

impl Drop for ShopServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn shop_server() -> ShopServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("python3")
        .arg(sample_captures().join("recorder/shop_server.py"))
        .args(["127.0.0.1", &port.to_string()])
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the shop server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    ShopServer(child, port)
}

#[test]
fn a_test_is_generated_from_a_finding_checked_as_it_is_edited_and_run_with_its_evidence() {
    let mut app = App::open(&["shop-api.pcap", "abuse-api.pcap"]);
    app.nav(View::Attacks);
    app.click("bola · 19");
    app.click_exact("Generate a test");
    assert_eq!(app.view(), View::Tests);
    app.expect("wrote 1 test(s)");
    app.click("bola--get-api-v1-users-userid.yaml");
    app.expect("valid: 2 step(s), at most 2 request(s)");
    // A broken edit is named with its line and column as it is typed.
    let multiline = eframe::egui::accesskit::Role::MultilineTextInput;
    app.harness.get_by_role_and_label(multiline, "YAML").focus();
    app.harness.run_steps(1);
    app.harness
        .get_by_role_and_label(multiline, "YAML")
        .type_text("steps: [");
    app.settle();
    app.expect("bola--get-api-v1-users-userid.yaml:");
    assert!(app.has("Save"));

    let server = shop_server();
    let dir = app
        .harness
        .state()
        .case
        .as_ref()
        .unwrap()
        .path
        .parent()
        .unwrap()
        .to_owned();
    let env = dir.join("shop.env");
    std::fs::write(
        &env,
        "BOB_PASSWORD=pw-bob-2024\nCAROL_PASSWORD=pw-carol-2024\n",
    )
    .unwrap();
    app.click("bola--get-api-v1-users-userid.yaml"); // read again: the broken edit is dropped
    app.type_into("Target", &format!("http://127.0.0.1:{}", server.1));
    app.type_into("Env file", &env.display().to_string());
    app.click_exact("Run all");
    app.expect("Last run against");
    app.expect("1 failed");
    app.expect("FAIL");
    // The verdict's evidence: the other identity's request beside the record it got.
    app.expect("GET /api/v1/users/2");
    app.expect("\"ssn\"");
    // Kept in the case, listed as history.
    app.settle();
    let case = app.harness.state().case.as_ref().unwrap();
    let (runs, latest) = case.test_runs.value.as_ref().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(latest[0].verdict, "fail");
    app.expect("#1");
}

#[test]
fn a_finding_becomes_a_block_rule_after_its_effect_is_previewed() {
    let mut app = App::open(&["abuse-api.pcap"]);
    app.nav(View::Attacks);
    app.click("credential_stuffing");
    app.click("Block…");
    assert_eq!(app.view(), View::Blocks);
    // The actor's address is the draft's value; saving waits for the preview.
    let draft = app.harness.state().views.blocks.draft.clone();
    assert_eq!(draft.value, "127.0.0.99");
    assert!(!draft.findings.is_empty());
    app.click("Preview effect");
    app.expect("Would have blocked 30 recorded request(s) from 1 actor(s).");
    // Which requests: the traffic view shows exactly them.
    app.click("Show these requests in Traffic");
    assert_eq!(app.view(), View::Traffic);
    let case = app.harness.state().case.as_ref().unwrap();
    assert_eq!(case.tx.count.value, Some(30));
    app.nav(View::Blocks);
    app.click("Save rule");
    let case = app.harness.state().case.as_ref().unwrap();
    let blocks = case.blocks.value.as_ref().unwrap();
    let rule = blocks
        .rules
        .iter()
        .find(|r| r.value == "127.0.0.99/32")
        .unwrap();
    assert_eq!(rule.origin, "finding");
    assert_eq!(blocks.effects[&rule.id].would_block, 30);
    // The capture is older than the rule: nothing "since made".
    app.expect("30 (0 since made)");
}
