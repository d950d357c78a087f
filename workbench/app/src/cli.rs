//! The command line, per the contract in DESIGN.md. Subcommands appear as their features land.

use clap::{Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Tapline: API security from your own traffic, on your own machine.
#[derive(Debug, Parser)]
#[command(name = "tapline", version, about, long_about = None)]
pub struct Cli {
    /// How much to say.
    #[command(flatten)]
    pub verbosity: Verbosity,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `-v`/`-q`, for every subcommand. `RUST_LOG` (e.g. `tapline_ingest=debug`) overrides the
/// log level they choose.
#[derive(Clone, Copy, Debug, Default, clap::Args, Serialize, Deserialize)]
pub struct Verbosity {
    /// Say more: -v logs what the jobs do (and `serve` every batch), -vv debug, -vvv trace.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Say only errors: no warnings, no progress bars.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

impl Verbosity {
    /// The log filter these flags choose when `RUST_LOG` is not set.
    pub fn default_filter(self) -> &'static str {
        match (self.quiet, self.verbose) {
            (true, _) => "error",
            (false, 0) => "warn",
            (false, 1) => "info",
            (false, 2) => "debug",
            (false, _) => "trace",
        }
    }
}

/// Subcommands.
#[derive(Debug, Subcommand, Serialize, Deserialize)]
pub enum Command {
    /// Open the desktop workbench on a case (.duckdb) or on captures (pcap, pcapng, HAR:
    /// imported into a case in the background). `tapline` alone opens the last case.
    Open(OpenArgs),
    /// Print the HTTP transactions in a capture, one JSON object a line; nothing is stored.
    /// Exits 3 when the capture is damaged part way (what came before the damage is printed).
    Decode(DecodeArgs),
    /// Decode pcap, pcapng or HAR files and store them in a case file (progress on stderr).
    Import(ImportArgs),
    /// Export the case: transactions as ECS JSON lines, HAR or Parquet; the inventory as OpenAPI.
    Export(ExportArgs),
    /// List the API endpoints discovered in a case.
    Endpoints(ListArgs),
    /// List the findings in a case (`--by-actor`: grouped into attacks per actor).
    Findings(FindingsArgs),
    /// Compare the team's OpenAPI document with the discovered inventory: shadow and zombie
    /// endpoints, drift. Exits 1 when there are differences.
    Diff(DiffArgs),
    /// Classify values, one a line (a JSON string, {"text": ..., "key": ...}, or raw text):
    /// prints the data classes found in each with their character spans.
    Classify(ClassifyArgs),
    /// Headless sensor hub: accept enrolled sensors over QUIC and store their records in the
    /// case (what the desktop app does while it is open). Ctrl-C stops it.
    Serve(ServeArgs),
    /// Enrol, list and revoke sensors.
    #[command(subcommand)]
    Sensors(SensorsCommand),
    /// Where findings are sent as they are found (syslog, webhook, ECS file): add, list,
    /// remove destinations; send what is pending now.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Security tests (YAML): run them against a target (exit 0 pass, 1 vulnerable, 2 the run
    /// failed), or check files without sending anything.
    #[command(subcommand)]
    Test(TestCommand),
    /// Block rules: add, list, remove; the allowlist that always wins; the audit log.
    #[command(subcommand)]
    Block(BlockCommand),
    /// The rules in force, for enforcement points (nginx, nftables, HAProxy, JSON).
    #[command(subcommand)]
    Blocklist(BlocklistCommand),
    /// Enforcement agents (CrowdSec bouncers, proxies asking for decisions) and their keys:
    /// add (prints the key once), list, revoke.
    #[command(subcommand)]
    Agents(AgentsCommand),
}

/// `tapline agents …`.
#[derive(Debug, Subcommand, Serialize, Deserialize)]
pub enum AgentsCommand {
    /// Add an agent; prints its key (once) and how to point a bouncer or proxy at the hub.
    Add(AgentsAddArgs),
    /// The agents, when each last asked, revoked ones too.
    List(ListArgs),
    /// Revoke an agent's key: its next request is refused.
    Revoke(AgentsRevokeArgs),
}

/// Arguments of `tapline agents add`.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
pub struct AgentsAddArgs {
    /// The agent's name (`edge-nginx`, `fw-1`).
    pub name: String,
    /// The case file.
    #[arg(long)]
    pub db: PathBuf,
}

/// Arguments of `tapline agents revoke`.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
pub struct AgentsRevokeArgs {
    /// The agent's name.
    pub name: String,
    /// The case file.
    #[arg(long)]
    pub db: PathBuf,
}

/// `tapline block …`.
#[derive(Debug, Subcommand, Serialize, Deserialize)]
pub enum BlockCommand {
    /// Add a rule: one of --ip/--user/--session/--key/--header, optionally scoped.
    Add(BlockAddArgs),
    /// The rules (in force; --all: removed and expired too).
    List(BlockListArgs),
    /// Remove a rule (it stays in the audit log).
    Remove(BlockRemoveArgs),
    /// Allowlist an address or network, user or API key: never blocked, whatever a rule says.
    Allow(BlockAllowArgs),
    /// Every change to rules and the allowlist, oldest first.
    Audit(ListArgs),
    /// A rule from a finding's actor.
    FromFinding(BlockFromFindingArgs),
    /// Requests agents refused (and monitor rules counted): per rule, then the latest.
    Hits(ListArgs),
    /// Automatic rules: findings over a threshold per actor become blocks.
    #[command(subcommand)]
    Auto(BlockAutoCommand),
}

/// `tapline block auto …`.
#[derive(Debug, Subcommand, Serialize, Deserialize)]
pub enum BlockAutoCommand {
    /// Add an automatic rule; it is evaluated after every import and live-analysis write.
    Add(BlockAutoAddArgs),
    /// The automatic rules in force.
    List(ListArgs),
    /// Remove an automatic rule (blocks it made stay until they end).
    Remove(BlockRemoveArgs),
}

/// Arguments of `tapline block auto add`.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
pub struct BlockAutoAddArgs {
    /// A name for people.
    pub name: String,
    /// The case file.
    #[arg(long)]
    pub db: PathBuf,
    /// Finding kinds or families (attack, behaviour) that count; repeat. Default: any.
    #[arg(long = "kind")]
    pub kinds: Vec<String>,
    /// The least severity that counts: low, medium, high, critical.
    #[arg(long, default_value = "high")]
    pub min_severity: String,
    /// Incidents (findings) for one actor within the window.
    #[arg(long, default_value_t = 1)]
    pub threshold: u32,
    /// The window: 90s, 30m, 24h, 7d.
    #[arg(long, default_value = "1h")]
    pub window: String,
    /// Which identifier to block (and group incidents by).
    #[arg(long, value_enum, default_value_t = BlockBy::Ip)]
    pub by: BlockBy,
    /// How long each block lasts.
    #[arg(long = "for", default_value = "24h")]
    pub duration: String,
    /// Only these path globs (repeat).
    #[arg(long)]
    pub path: Vec<String>,
    /// Only these methods (repeat).
    #[arg(long)]
    pub method: Vec<String>,
    /// Values never blocked by this rule (repeat).
    #[arg(long)]
    pub except: Vec<String>,
    /// Only count what the blocks would refuse; enforce nothing.
    #[arg(long)]
    pub monitor: bool,
    /// After a block ends (or is removed), wait this long before blocking the actor again.
    #[arg(long, default_value = "1h")]
    pub cooldown: String,
    /// Most blocks this rule keeps active at once.
    #[arg(long, default_value_t = 1000)]
    pub max_active: usize,
}

/// What a rule or allowlist entry matches (exactly one).
#[derive(Debug, Clone, clap::Args, Serialize, Deserialize)]
#[group(required = true, multiple = false)]
pub struct MatchArgs {
    /// A client address or network: 203.0.113.7, 198.51.100.0/24, 2001:db8::/48.
    #[arg(long)]
    pub ip: Option<String>,
    /// A principal (JWT subject, Basic user).
    #[arg(long)]
    pub user: Option<String>,
    /// A session cookie's value.
    #[arg(long)]
    pub session: Option<String>,
    /// An API key.
    #[arg(long)]
    pub key: Option<String>,
    /// A header and its value: 'X-Client: scanner'.
    #[arg(long)]
    pub header: Option<String>,
}

/// Arguments of `tapline block add`.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
pub struct BlockAddArgs {
    /// The case file.
    #[arg(long)]
    pub db: PathBuf,
    /// What to match.
    #[command(flatten)]
    pub what: MatchArgs,
    /// Only these paths (globs: /api/*); repeat for more. Default: every path.
    #[arg(long)]
    pub path: Vec<String>,
    /// Only these methods; repeat for more. Default: every method.
    #[arg(long)]
    pub method: Vec<String>,
    /// Count what it would block instead of blocking.
    #[arg(long)]
    pub monitor: bool,
    /// How long: 90s, 30m, 24h, 7d. Default: until removed.
    #[arg(long = "for")]
    pub duration: Option<String>,
    /// Why (kept with the rule and in the audit log).
    #[arg(long, default_value = "added by hand")]
    pub reason: String,
    /// Who (default: $USER).
    #[arg(long)]
    pub who: Option<String>,
    /// Show what the rule would have blocked in the recorded traffic; save nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Arguments of `tapline block list`.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
pub struct BlockListArgs {
    /// The case and the output format.
    #[command(flatten)]
    pub list: ListArgs,
    /// Removed and expired rules too.
    #[arg(long)]
    pub all: bool,
    /// Replay the recorded traffic through the rules: requests each would block (all, and
    /// since it was made — monitor rules measured) and its false-positive candidates.
    #[arg(long)]
    pub effect: bool,
}

/// Arguments of `tapline block remove`.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
pub struct BlockRemoveArgs {
    /// The rule's id (`tapline block list`).
    pub id: i64,
    /// The case file.
    #[arg(long)]
    pub db: PathBuf,
    /// Why (kept in the audit log).
    #[arg(long, default_value = "removed by hand")]
    pub note: String,
    /// Who (default: $USER).
    #[arg(long)]
    pub who: Option<String>,
}

/// Arguments of `tapline block allow`.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
pub struct BlockAllowArgs {
    /// The case file.
    #[arg(long)]
    pub db: PathBuf,
    /// What never to block (--ip, --user or --key).
    #[command(flatten)]
    pub what: MatchArgs,
    /// Why (kept in the audit log).
    #[arg(long, default_value = "allowlisted by hand")]
    pub note: String,
    /// Who (default: $USER).
    #[arg(long)]
    pub who: Option<String>,
}

/// What of a finding's actor a rule blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum BlockBy {
    /// The client address.
    Ip,
    /// The principal.
    User,
    /// The API key (only when the finding knows it whole; cases keep keys shortened).
    Key,
    /// The session.
    Session,
}

/// Arguments of `tapline block from-finding`.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
pub struct BlockFromFindingArgs {
    /// The finding's id (`tapline findings`).
    pub id: i64,
    /// The case file.
    #[arg(long)]
    pub db: PathBuf,
    /// What of the actor to block. Default: the principal when known, else the address.
    #[arg(long, value_enum)]
    pub by: Option<BlockBy>,
    /// How long: 90s, 30m, 24h, 7d. Default: 24h.
    #[arg(long = "for", default_value = "24h")]
    pub duration: String,
    /// Count instead of block.
    #[arg(long)]
    pub monitor: bool,
    /// Who (default: $USER).
    #[arg(long)]
    pub who: Option<String>,
}

/// `tapline blocklist …`.
#[derive(Debug, Subcommand, Serialize, Deserialize)]
pub enum BlocklistCommand {
    /// Write the rules in force for an enforcement point.
    Export(BlocklistExportArgs),
    /// Check a signed bundle (FILE and FILE.sig) against the workbench's public key.
    Verify(BlocklistVerifyArgs),
}

/// Arguments of `tapline blocklist verify`.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
pub struct BlocklistVerifyArgs {
    /// The exported file; its signature is FILE.sig.
    pub file: PathBuf,
    /// The public key file (`blocklist-signing.pub` in the workbench identity directory).
    #[arg(long)]
    pub public_key: PathBuf,
}

/// Arguments of `tapline blocklist export`.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
pub struct BlocklistExportArgs {
    /// The case file.
    #[arg(long)]
    pub db: PathBuf,
    /// json, nginx (an include for the http context), nftables (nft -f), haproxy (an ACL
    /// file), haproxy-runtime (runtime-API commands), modsecurity (rules), envoy (RBAC filter
    /// config), aws-waf (IP sets), cloudflare (list items).
    #[arg(long)]
    pub format: String,
    /// Write here instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Sign the file (Ed25519) with the workbench's block-list key, writing OUTPUT.sig; agents
    /// check it with the public key `blocklist-signing.pub` beside the key.
    #[arg(long, requires = "output")]
    pub sign: bool,
    /// The workbench identity (where the signing key is kept).
    #[command(flatten)]
    pub identity: IdentityArg,
}

/// `tapline test …`.
#[derive(Debug, Subcommand, Serialize, Deserialize)]
pub enum TestCommand {
    /// Run tests against a target. Exit 0: every test passed (or failed below --fail-on);
    /// 1: a test at or above --fail-on found a vulnerability; 2: the run itself failed (bad
    /// files, the target did not answer, a budget ran out).
    Run(TestRunArgs),
    /// Check test files (ours, `tapline-test/1`, and Metlo's) without sending anything.
    Validate(TestValidateArgs),
    /// Build tests from a case's traffic: captured requests replayed with mutations, one file
    /// per endpoint and kind, an identities file with placeholders for the secrets.
    Generate(TestGenerateArgs),
}

/// Arguments of `tapline test generate`.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
pub struct TestGenerateArgs {
    /// The case file.
    #[arg(long)]
    pub db: PathBuf,
    /// Only this endpoint: `'GET /books/{id}'` (method and path template, any host).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Only these kinds (comma-separated): bola, bfla, auth, injection, mass-assignment,
    /// data-exposure, rate-limit, user-enumeration, headers. Default: all.
    #[arg(long, value_delimiter = ',')]
    pub kind: Vec<String>,
    /// Build what this finding suggests, for its endpoint (`tapline findings` lists ids).
    #[arg(long)]
    pub finding: Option<i64>,
    /// The directory to write the tests, `identities.yaml` and `identities.env.example` to.
    #[arg(short, long)]
    pub output: PathBuf,
}

/// Arguments of `tapline test run`.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
pub struct TestRunArgs {
    /// Test files, or directories searched for *.yaml / *.yml.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Where requests go (`http://host:port[/base]`): tests' paths are joined to it, and
    /// nothing is ever sent elsewhere (redirects off it are not followed).
    #[arg(long)]
    pub target: String,
    /// KEY=VALUE lines for `{{env.KEY}}` (over the process environment): secrets stay here.
    #[arg(long)]
    pub env_file: Option<PathBuf>,
    /// The identities file (`tapline-identities/1`); default: `identities.yaml` beside the
    /// tests.
    #[arg(long)]
    pub identities: Option<PathBuf>,
    /// Write a JUnit XML report here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write a SARIF 2.1.0 report here.
    #[arg(long)]
    pub sarif: Option<PathBuf>,
    /// Failed tests below this severity do not fail the run (exit 0).
    #[arg(long, value_enum, default_value_t = SeverityArg::Low)]
    pub fail_on: SeverityArg,
    /// At most this many requests a second.
    #[arg(long)]
    pub rate: Option<f64>,
    /// At most this many requests in the whole run.
    #[arg(long)]
    pub max_requests: Option<u32>,
    /// Each request's time limit, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Print the requests the tests would send (variables not known before the run shown
    /// as `<name>`); send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the results as JSON (with evidence) instead of a table.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Keep the run in this case (verdicts and evidence) and say what changed since the
    /// previous run against the same target.
    #[arg(long)]
    pub db: Option<PathBuf>,
}

/// Arguments of `tapline test validate`.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
pub struct TestValidateArgs {
    /// Test files, or directories searched for *.yaml / *.yml.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

/// `tapline alerts …`.
#[derive(Debug, Subcommand, Serialize, Deserialize)]
pub enum AlertsCommand {
    /// Add a destination. The hub sends it every finding at or above the severity once, then
    /// updates while an attack goes on (at most one a minute per finding).
    Add(AlertsAddArgs),
    /// The case's destinations.
    List(ListArgs),
    /// Remove a destination by id.
    Remove(AlertsRemoveArgs),
    /// Send every destination what it has not been sent yet, now.
    Send(AlertsSendArgs),
}

/// Kinds of alert destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum AlertKindArg {
    /// RFC 5424: `udp://HOST:PORT`, `tcp://HOST:PORT` (octet-counted), `unix:///dev/log` (the
    /// local journal or syslog daemon).
    Syslog,
    /// JSON POSTed to an http(s) URL, signed (`X-Tapline-Signature: sha256=HMAC`) when a
    /// secret is given; retried with backoff.
    Webhook,
    /// ECS JSON lines appended to a file (for Filebeat, Elastic Agent, Vector …).
    Ecs,
}

/// Finding severities, for thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum SeverityArg {
    /// Everything.
    Info,
    /// Low and above.
    Low,
    /// Medium and above.
    Medium,
    /// High and above.
    High,
    /// Critical only.
    Critical,
}

/// Arguments of `tapline alerts add`.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
pub struct AlertsAddArgs {
    /// What kind of destination.
    #[arg(value_enum)]
    pub kind: AlertKindArg,
    /// Where: a syslog URL, a webhook URL, or a file.
    pub target: String,
    /// The case file.
    #[arg(long)]
    pub db: PathBuf,
    /// Findings below this severity are not sent.
    #[arg(long, value_enum, default_value_t = SeverityArg::High)]
    pub min_severity: SeverityArg,
    /// Webhook: read the HMAC secret from this environment variable (kept in the case file,
    /// never printed).
    #[arg(long, conflicts_with = "secret_file")]
    pub secret_env: Option<String>,
    /// Webhook: read the HMAC secret from this file.
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// The secret read from either (filled before the command runs, so a hub running it
    /// reads this process's environment, not its own).
    #[arg(skip)]
    pub secret: Option<String>,
}

/// Arguments of `tapline alerts remove`.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
pub struct AlertsRemoveArgs {
    /// The destination's id (`tapline alerts list`).
    pub id: i64,
    /// The case file.
    #[arg(long)]
    pub db: PathBuf,
}

/// Arguments of `tapline alerts send`.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
pub struct AlertsSendArgs {
    /// The case file.
    #[arg(long)]
    pub db: PathBuf,
}

/// Arguments of `tapline serve`.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
pub struct ServeArgs {
    /// Address to listen on (UDP), e.g. `0.0.0.0:4433`.
    #[arg(long, default_value = "0.0.0.0:4433")]
    pub listen: std::net::SocketAddr,
    /// The case file (created if missing).
    #[arg(long)]
    pub db: PathBuf,
    /// The workbench identity.
    #[command(flatten)]
    pub identity: IdentityArg,
    /// Store sensor records without analysing them as they arrive (by default the hub runs
    /// discovery, sensitive data, attacks and behaviour on them and merges the results into
    /// the case every few seconds; behaviour windows span those writes and hub restarts).
    #[arg(long)]
    pub store_only: bool,
    /// How often live analysis writes its results, in milliseconds (lower: findings sooner,
    /// more work per record).
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(100..=600_000), conflicts_with = "store_only")]
    pub analysis_every_ms: u64,
    /// Serve decisions to enforcement agents over HTTPS on this address (TCP), e.g.
    /// `0.0.0.0:8443`: the CrowdSec Local API for bouncers and `/v1/authz` for proxies.
    #[arg(long)]
    pub agents_listen: Option<std::net::SocketAddr>,
    /// Names the agents reach the hub by (host names or addresses), put in its HTTPS
    /// certificate; default: the listen address, `localhost` and `127.0.0.1`.
    #[arg(long, value_name = "NAME")]
    pub agents_name: Vec<String>,
    /// How often rule changes are picked up, in milliseconds.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub agents_reload_ms: u64,
}

/// Arguments of `tapline open`.
#[derive(Debug, Default, clap::Args, Serialize, Deserialize)]
pub struct OpenArgs {
    /// A case file, or captures to import.
    pub files: Vec<PathBuf>,
    /// The case captures go into. Default: one named after the first capture in
    /// `$XDG_DATA_HOME/tapline/cases` (`~/.local/share/…`).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Listen for sensors at once, on this address (UDP), e.g. `0.0.0.0:4433`.
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// The workbench identity (for the hub).
    #[command(flatten)]
    pub identity: IdentityArg,
    /// Save a PNG of the window once everything is loaded, then quit (CI, documentation).
    #[arg(long, value_name = "PNG")]
    pub screenshot: Option<PathBuf>,
}

/// Where the workbench keeps its certificate authority.
#[derive(Debug, Default, clap::Args, Serialize, Deserialize)]
pub struct IdentityArg {
    /// Directory of the workbench's CA and hub certificate (created on first use). Default:
    /// `$TAPLINE_IDENTITY`, else `$XDG_DATA_HOME/tapline/identity` (`~/.local/share/…`).
    #[arg(long, env = "TAPLINE_IDENTITY")]
    pub identity: Option<PathBuf>,
}

/// `tapline sensors …`.
#[derive(Debug, Subcommand, Serialize, Deserialize)]
pub enum SensorsCommand {
    /// Enrol a sensor: sign its certificate and write its configuration (name, hub address,
    /// credentials). Copy that file to the sensor and run `tapline-sensor --config FILE`.
    Add(SensorsAddArgs),
    /// The case's sensors with their last heartbeat: packets, drops, records, spool, uplink.
    List(ListArgs),
    /// Revoke a sensor: the hub refuses its certificate from now on.
    Revoke(SensorsRevokeArgs),
}

/// Arguments of `tapline sensors add`.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
pub struct SensorsAddArgs {
    /// The sensor's name (stamped on its records).
    pub name: String,
    /// The case file (created if missing).
    #[arg(long)]
    pub db: PathBuf,
    /// The address sensors reach the hub at, `HOST:PORT`.
    #[arg(long)]
    pub hub: String,
    /// Where to write the sensor's configuration (mode 0600: it holds the sensor's key).
    #[arg(long, short)]
    pub output: PathBuf,
    /// The workbench identity.
    #[command(flatten)]
    pub identity: IdentityArg,
}

/// Arguments of `tapline sensors revoke`.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
pub struct SensorsRevokeArgs {
    /// The sensor's name.
    pub name: String,
    /// The case file.
    #[arg(long)]
    pub db: PathBuf,
}

/// Arguments of `tapline classify`.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
pub struct ClassifyArgs {
    /// Input file; `-` or nothing reads standard input.
    pub file: Option<PathBuf>,
    /// Print hits of at least this confidence (`low` includes bare numbers that only fit a
    /// class's shape and check digits).
    #[arg(long, value_enum, default_value_t = MinConfidence::Low)]
    pub min_confidence: MinConfidence,
}

/// Confidence threshold of `tapline classify`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum MinConfidence {
    /// Everything.
    Low,
    /// Strict formats and validators.
    Medium,
    /// Exact token formats, or validators with naming context.
    High,
}

/// Arguments of `tapline diff`.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
pub struct DiffArgs {
    /// The OpenAPI 3.0/3.1 document (JSON or YAML).
    pub spec: PathBuf,
    /// The case file.
    #[arg(long)]
    pub db: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
}

/// Arguments of `tapline import`.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
pub struct ImportArgs {
    /// pcap, pcapng or HAR files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The case file (created if missing).
    #[arg(long)]
    pub db: PathBuf,
    /// Decoded body bytes kept per message.
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_body: usize,
    /// Decoder threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Transactions each decoder thread commits at once (from 122,880, DuckDB's row group,
    /// rows bypass the write-ahead log).
    #[arg(long, default_value_t = 2 * 122_880)]
    pub batch: usize,
    /// Skip sensitive-data classification (endpoints get no data classes).
    #[arg(long)]
    pub no_sensitive: bool,
    /// Skip the attack detectors (no payload findings).
    #[arg(long)]
    pub no_attacks: bool,
    /// Skip the behaviour detectors (no BOLA, brute force, scraping… findings).
    #[arg(long)]
    pub no_behaviour: bool,
}

/// What `tapline export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum ExportKind {
    /// OpenAPI 3.1 document of the discovered inventory.
    Openapi,
    /// HAR 1.2 with every transaction.
    Har,
    /// One Elastic Common Schema JSON document per transaction per line.
    Jsonl,
    /// Every transaction as a Parquet file (needs -o).
    Parquet,
}

/// Arguments of `tapline export`.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
pub struct ExportArgs {
    /// What to export.
    #[arg(value_enum)]
    pub kind: ExportKind,
    /// The case file.
    #[arg(long)]
    pub db: PathBuf,
    /// Output file (default: standard output).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// Output formats of list commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum ListFormat {
    /// A JSON array.
    Json,
    /// Aligned columns for people.
    Table,
}

/// Arguments of `tapline endpoints` and `tapline findings`.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
pub struct ListArgs {
    /// The case file.
    #[arg(long)]
    pub db: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
}

/// Arguments of `tapline findings`.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
pub struct FindingsArgs {
    /// The case and the output format.
    #[command(flatten)]
    pub list: ListArgs,
    /// One row per actor (principal, else address): what they did, how much, when.
    #[arg(long)]
    pub by_actor: bool,
}

/// Output formats of `decode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum DecodeFormat {
    /// One JSON object per transaction per line.
    Jsonl,
    /// One human-readable line per transaction.
    Table,
}

/// Arguments of `tapline decode`.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
pub struct DecodeArgs {
    /// A pcap or pcapng file.
    pub file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DecodeFormat::Jsonl)]
    pub format: DecodeFormat,
    /// Bytes of each decoded body to print (base64) and keep.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body: usize,
}

impl Command {
    /// The case a command works on when another process holding that case may run it for
    /// this one (see [`crate::control`]). `serve` and `open` hold a case themselves; `decode`
    /// and `classify` need none.
    pub fn served_case(&self) -> Option<&std::path::Path> {
        match self {
            Command::Import(a) => Some(&a.db),
            Command::Export(a) => Some(&a.db),
            Command::Endpoints(a) => Some(&a.db),
            Command::Findings(a) => Some(&a.list.db),
            Command::Diff(a) => Some(&a.db),
            Command::Sensors(SensorsCommand::Add(a)) => Some(&a.db),
            Command::Sensors(SensorsCommand::List(a)) => Some(&a.db),
            Command::Sensors(SensorsCommand::Revoke(a)) => Some(&a.db),
            Command::Alerts(AlertsCommand::Add(a)) => Some(&a.db),
            Command::Alerts(AlertsCommand::List(a)) => Some(&a.db),
            Command::Alerts(AlertsCommand::Remove(a)) => Some(&a.db),
            Command::Alerts(AlertsCommand::Send(a)) => Some(&a.db),
            Command::Test(TestCommand::Generate(a)) => Some(&a.db),
            Command::Block(BlockCommand::Add(a)) => Some(&a.db),
            Command::Block(BlockCommand::List(a)) => Some(&a.list.db),
            Command::Block(BlockCommand::Remove(a)) => Some(&a.db),
            Command::Block(BlockCommand::Allow(a)) => Some(&a.db),
            Command::Block(BlockCommand::Audit(a)) => Some(&a.db),
            Command::Block(BlockCommand::FromFinding(a)) => Some(&a.db),
            Command::Block(BlockCommand::Hits(a)) => Some(&a.db),
            Command::Block(BlockCommand::Auto(BlockAutoCommand::Add(a))) => Some(&a.db),
            Command::Block(BlockCommand::Auto(BlockAutoCommand::List(a))) => Some(&a.db),
            Command::Block(BlockCommand::Auto(BlockAutoCommand::Remove(a))) => Some(&a.db),
            Command::Blocklist(BlocklistCommand::Export(a)) => Some(&a.db),
            Command::Blocklist(BlocklistCommand::Verify(_)) => None,
            Command::Agents(AgentsCommand::Add(a)) => Some(&a.db),
            Command::Agents(AgentsCommand::List(a)) => Some(&a.db),
            Command::Agents(AgentsCommand::Revoke(a)) => Some(&a.db),
            Command::Open(_)
            | Command::Decode(_)
            | Command::Classify(_)
            | Command::Serve(_)
            | Command::Test(_) => None,
        }
    }

    /// Makes every path in the command absolute against `cwd`, so another process (with its
    /// own working directory) reads and writes the files this one meant.
    pub fn anchor_paths(&mut self, cwd: &std::path::Path) {
        let at = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = cwd.join(&*p);
            }
        };
        match self {
            Command::Import(a) => {
                a.files.iter_mut().for_each(at);
                at(&mut a.db);
            }
            Command::Export(a) => {
                at(&mut a.db);
                if let Some(p) = &mut a.output {
                    at(p);
                }
            }
            Command::Endpoints(a) => at(&mut a.db),
            Command::Findings(a) => at(&mut a.list.db),
            Command::Diff(a) => {
                at(&mut a.spec);
                at(&mut a.db);
            }
            Command::Sensors(SensorsCommand::Add(a)) => {
                at(&mut a.db);
                at(&mut a.output);
                if let Some(p) = &mut a.identity.identity {
                    at(p);
                }
            }
            Command::Sensors(SensorsCommand::List(a)) => at(&mut a.db),
            Command::Sensors(SensorsCommand::Revoke(a)) => at(&mut a.db),
            Command::Alerts(AlertsCommand::Add(a)) => {
                at(&mut a.db);
                if let Some(p) = &mut a.secret_file {
                    at(p);
                }
                if a.kind == AlertKindArg::Ecs && !a.target.is_empty() {
                    let mut p = PathBuf::from(&a.target);
                    at(&mut p);
                    a.target = p.display().to_string();
                }
            }
            Command::Alerts(AlertsCommand::List(a)) => at(&mut a.db),
            Command::Alerts(AlertsCommand::Remove(a)) => at(&mut a.db),
            Command::Alerts(AlertsCommand::Send(a)) => at(&mut a.db),
            Command::Test(TestCommand::Generate(a)) => {
                at(&mut a.db);
                at(&mut a.output);
            }
            Command::Block(BlockCommand::Add(a)) => at(&mut a.db),
            Command::Block(BlockCommand::List(a)) => at(&mut a.list.db),
            Command::Block(BlockCommand::Remove(a)) => at(&mut a.db),
            Command::Block(BlockCommand::Allow(a)) => at(&mut a.db),
            Command::Block(BlockCommand::Audit(a)) => at(&mut a.db),
            Command::Block(BlockCommand::FromFinding(a)) => at(&mut a.db),
            Command::Block(BlockCommand::Hits(a)) => at(&mut a.db),
            Command::Block(BlockCommand::Auto(BlockAutoCommand::Add(a))) => at(&mut a.db),
            Command::Block(BlockCommand::Auto(BlockAutoCommand::List(a))) => at(&mut a.db),
            Command::Block(BlockCommand::Auto(BlockAutoCommand::Remove(a))) => at(&mut a.db),
            Command::Blocklist(BlocklistCommand::Export(a)) => {
                at(&mut a.db);
                if let Some(p) = &mut a.output {
                    at(p);
                }
                if let Some(p) = &mut a.identity.identity {
                    at(p);
                }
            }
            Command::Blocklist(BlocklistCommand::Verify(_)) => {}
            Command::Agents(AgentsCommand::Add(a)) => at(&mut a.db),
            Command::Agents(AgentsCommand::List(a)) => at(&mut a.db),
            Command::Agents(AgentsCommand::Revoke(a)) => at(&mut a.db),
            // Never run by another process.
            Command::Open(_)
            | Command::Decode(_)
            | Command::Classify(_)
            | Command::Serve(_)
            | Command::Test(_) => {}
        }
    }
}
