//! The control socket: DuckDB lets one process at a time open a case, so the process that
//! holds one — `tapline serve`, the desktop app — runs the command line's commands for it.
//!
//! The holder listens on a Unix socket beside the case (`CASE.duckdb.sock`, mode 0600; when
//! that path is too long for a socket address, in `/tmp/tapline-UID/`, a directory only the
//! user can enter). A `tapline` command whose case has a live socket sends the parsed command
//! there (its paths made absolute, so files are the ones the person meant) and relays what
//! comes back: standard output, messages, the exit status. The holder runs it on another
//! connection to its open database; a client that goes away cancels its command. Both ends
//! check that the other runs as the same user (or root), so another account can neither give
//! commands nor pose as a case's holder.
//!
//! Wire format: the client sends one line of JSON ([`Request`]); the holder answers with
//! frames — a tag byte (`o` output, `e` messages, `x` exit status), a big-endian `u32`
//! length, that many bytes — ending with one `x` frame.

use crate::cli::{Command, Verbosity};
use crate::commands::{self, Cases, Ctx};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Version of the request; a holder refuses others with a message saying what to do.
const PROTOCOL: u32 = 1;
/// Largest request line (a command line with many files still fits).
const REQUEST_LIMIT: u64 = 1 << 20;
/// Largest frame; writers split what is bigger.
const FRAME_LIMIT: usize = 64 * 1024;
/// Commands run at once; more are told to try again.
const MAX_CLIENTS: usize = 8;
/// How long a client has to send its request, and a stalled reader to take output.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest socket path Linux takes (`sun_path` is 108 bytes with its terminating zero).
const SUN_PATH_MAX: usize = 107;

const OUT: u8 = b'o';
const ERR: u8 = b'e';
const EXIT: u8 = b'x';

/// What a client asks (`C`: the command, borrowed when sent).
#[derive(Debug, Serialize, Deserialize)]
struct Request<C> {
    protocol: u32,
    command: C,
    verbosity: Verbosity,
}

/// Where the control socket of the case at `case` lives (the case must exist).
pub fn socket_path(case: &Path) -> io::Result<PathBuf> {
    let case = case.canonicalize()?;
    let mut beside = case.clone().into_os_string();
    beside.push(".sock");
    if beside.len() <= SUN_PATH_MAX {
        return Ok(beside.into());
    }
    let hash = blake3::hash(case.as_os_str().as_encoded_bytes()).to_hex();
    Ok(private_dir()?.join(format!("{}.sock", &hash[..32])))
}

/// `/tmp/tapline-UID`: created 0700, and refused when someone else made it first.
fn private_dir() -> io::Result<PathBuf> {
    let uid = rustix::process::getuid().as_raw();
    let dir = std::env::temp_dir().join(format!("tapline-{uid}"));
    match std::fs::create_dir(&dir) {
        Ok(()) => std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(&dir)?;
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return Err(io::Error::other(format!(
            "{} is not a private directory of this user: remove it",
            dir.display()
        )));
    }
    Ok(dir)
}

/// The peer runs as this user or as root.
fn check_peer(stream: &UnixStream) -> Result<u32> {
    let cred = rustix::net::sockopt::socket_peercred(stream)
        .context("cannot learn who is on the other end of the control socket")?;
    let (peer, me) = (cred.uid.as_raw(), rustix::process::getuid().as_raw());
    if peer != me && peer != 0 {
        bail!("the control socket's peer runs as user {peer}, not {me}: refused");
    }
    Ok(cred.pid.as_raw_nonzero().get() as u32)
}

/// A running control socket; dropping it stops serving and removes the socket.
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

/// What every client's thread shares.
struct Shared {
    cases: Cases,
    /// Called after each command (the app reloads its views).
    after: Box<dyn Fn() + Send + Sync>,
    busy: AtomicUsize,
}

impl ControlServer {
    /// Serves commands for `case` (which this process holds), reaching it through `cases`.
    pub fn start(
        case: &Path,
        cases: Cases,
        after: impl Fn() + Send + Sync + 'static,
    ) -> Result<ControlServer> {
        let path = socket_path(case)
            .with_context(|| format!("cannot place the control socket of {}", case.display()))?;
        let listener = bind(&path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            cases,
            after: Box::new(after),
            busy: AtomicUsize::new(0),
        });
        let stopping = Arc::clone(&stop);
        let accept = std::thread::Builder::new()
            .name("control".into())
            .spawn(move || accept_loop(&listener, &shared, &stopping))
            .context("cannot start the control socket's thread")?;
        tracing::info!(socket = %path.display(), "serving commands for the case");
        Ok(ControlServer {
            path,
            stop,
            accept: Some(accept),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept call so the thread sees the flag. If the socket file was removed
        // from under us nothing can wake it: leave the thread (it holds nothing but the
        // listener) rather than wait forever.
        let woken = UnixStream::connect(&self.path).is_ok();
        if let Some(t) = self.accept.take().filter(|_| woken) {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds `path` owner-only; a socket left by a process that died is replaced, a live one is
/// another holder (which DuckDB's lock makes a mistake somewhere).
fn bind(path: &Path) -> Result<UnixListener> {
    let listener = match UnixListener::bind(path) {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            if UnixStream::connect(path).is_ok() {
                bail!(
                    "{} is served by another process already: is the case open twice?",
                    path.display()
                );
            }
            std::fs::remove_file(path)
                .with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
            UnixListener::bind(path)
                .with_context(|| format!("cannot listen on {}", path.display()))?
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot listen on {}", path.display()));
        }
    };
    // Peers are checked as well; the mode keeps other users from even connecting.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot make {} owner-only", path.display()))?;
    Ok(listener)
}

fn accept_loop(listener: &UnixListener, shared: &Arc<Shared>, stop: &AtomicBool) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("control socket: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if shared.busy.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
            shared.busy.fetch_sub(1, Ordering::SeqCst);
            let msg = format!(
                "tapline: the case's holder is running {MAX_CLIENTS} commands already; try again shortly\n"
            );
            let _ = write_frame(&stream, ERR, msg.as_bytes());
            let _ = write_frame(&stream, EXIT, &[1]);
            continue;
        }
        let shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name("control-client".into())
            .spawn(move || {
                serve_client(&stream, &shared);
                shared.busy.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            // The closure (and its count) went with the failed spawn.
            tracing::warn!("control socket: cannot start a thread for a client: {e}");
        }
    }
}

/// Runs one client's command and reports how it ended.
fn serve_client(stream: &UnixStream, shared: &Shared) {
    let pid = match check_peer(stream) {
        Ok(pid) => pid,
        Err(e) => {
            tracing::warn!("control socket: {e:#}");
            return;
        }
    };
    let request = match read_request(stream) {
        Ok(r) => r,
        Err(e) => {
            let _ = write_frame(stream, ERR, format!("tapline: {e:#}\n").as_bytes());
            let _ = write_frame(stream, EXIT, &[1]);
            return;
        }
    };
    tracing::info!(client = pid, command = ?request.command, "running a command for another process");
    let cancel = Arc::new(AtomicBool::new(false));
    let watcher = watch_for_departure(stream, &cancel);
    let code = run_request(stream, &request, &shared.cases, &cancel);
    let _ = write_frame(stream, EXIT, &[code]);
    let _ = stream.shutdown(std::net::Shutdown::Both);
    if let Some(w) = watcher {
        let _ = w.join();
    }
    (shared.after)();
}

fn read_request(stream: &UnixStream) -> Result<Request<Command>> {
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let mut line = Vec::new();
    BufReader::new(stream.take(REQUEST_LIMIT))
        .read_until(b'\n', &mut line)
        .context("reading the request")?;
    if line.last() != Some(&b'\n') {
        bail!("the request was cut short or is over {REQUEST_LIMIT} bytes");
    }
    let request: Request<Command> = serde_json::from_slice(&line).context(
        "the request is not a command this Tapline understands: use the same Tapline version as the hub or app holding the case",
    )?;
    if request.protocol != PROTOCOL {
        bail!(
            "the request speaks control protocol {}, the case's holder {PROTOCOL}: use the same Tapline version",
            request.protocol
        );
    }
    stream.set_read_timeout(None)?;
    Ok(request)
}

/// The client sends nothing after its request: when its end closes, it gave up.
fn watch_for_departure(stream: &UnixStream, cancel: &Arc<AtomicBool>) -> Option<JoinHandle<()>> {
    let mut watch = stream.try_clone().ok()?;
    let cancel = Arc::clone(cancel);
    std::thread::Builder::new()
        .name("control-watch".into())
        .spawn(move || {
            let _ = watch.read(&mut [0u8; 1]);
            cancel.store(true, Ordering::SeqCst);
        })
        .ok()
}

fn run_request(
    stream: &UnixStream,
    request: &Request<Command>,
    cases: &Cases,
    cancel: &AtomicBool,
) -> u8 {
    let mut out = BufWriter::with_capacity(FRAME_LIMIT, Frames { stream, tag: OUT });
    let mut err = Frames { stream, tag: ERR };
    let result = {
        let mut ctx = Ctx {
            err: &mut err,
            cases,
            cancel,
            verbosity: request.verbosity,
            progress: false,
        };
        commands::dispatch(&request.command, &mut out, &mut ctx)
    };
    let flushed = out.flush();
    match (result, flushed) {
        (Ok(status), Ok(())) => status.exit_code(),
        (Ok(_), Err(e)) => {
            tracing::debug!("control socket: the client stopped reading: {e}");
            0
        }
        (Err(e), _) => {
            let _ = writeln!(err, "tapline: {e:#}");
            commands::failure_code(&e)
        }
    }
}

/// Writes go out as frames of one tag.
struct Frames<'a> {
    stream: &'a UnixStream,
    tag: u8,
}

impl Write for Frames<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(FRAME_LIMIT);
        write_frame(self.stream, self.tag, &buf[..n])?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn write_frame(mut stream: &UnixStream, tag: u8, payload: &[u8]) -> io::Result<()> {
    let mut head = [0u8; 5];
    head[0] = tag;
    head[1..].copy_from_slice(&(payload.len() as u32).to_be_bytes());
    stream.write_all(&head)?;
    stream.write_all(payload)
}

/// When a live process holds `command`'s case, has it run the command and relays its output
/// and messages here; returns the exit status. `None`: nobody serves the case (the command
/// runs in this process).
pub fn forward(command: &Command, verbosity: Verbosity) -> Result<Option<u8>> {
    let Some(case) = command.served_case() else {
        return Ok(None);
    };
    // A case that does not exist, or has no socket, is held by nobody who serves it.
    let Ok(path) = socket_path(case) else {
        return Ok(None);
    };
    let stream = match UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(socket = %path.display(), "no process serves the case: {e}");
            return Ok(None);
        }
    };
    let holder = check_peer(&stream)
        .with_context(|| format!("the control socket {} is not trusted", path.display()))?;
    tracing::info!(
        holder,
        "the case is held by another process, which runs the command"
    );
    let request = Request {
        protocol: PROTOCOL,
        command,
        verbosity,
    };
    let mut line = serde_json::to_vec(&request)?;
    line.push(b'\n');
    (&stream)
        .write_all(&line)
        .context("sending the command to the case's holder")?;
    relay(&stream, &mut io::stdout().lock(), &mut io::stderr()).map(Some)
}

/// Copies the holder's frames to `out` and `err` until its exit status.
fn relay(stream: &UnixStream, out: &mut dyn Write, err: &mut dyn Write) -> Result<u8> {
    let mut reader = BufReader::new(stream);
    let mut payload = Vec::new();
    loop {
        let mut head = [0u8; 5];
        reader.read_exact(&mut head).context(
            "the process holding the case stopped before the command finished (was it closed?)",
        )?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if len > FRAME_LIMIT {
            bail!("the case's holder sent a frame of {len} bytes (at most {FRAME_LIMIT})");
        }
        payload.resize(len, 0);
        reader
            .read_exact(&mut payload)
            .context("the case's holder stopped mid-answer")?;
        match head[0] {
            OUT => out.write_all(&payload)?,
            ERR => err.write_all(&payload)?,
            EXIT => {
                out.flush()?;
                return Ok(payload.first().copied().unwrap_or(1));
            }
            other => bail!("the case's holder sent an unknown frame {other:#04x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tag: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![tag];
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// Relays `bytes` as if a holder sent them.
    fn relayed(bytes: &[u8]) -> (Result<u8>, Vec<u8>, Vec<u8>) {
        let (a, b) = UnixStream::pair().unwrap_or_else(|e| panic!("{e}"));
        (&a).write_all(bytes).unwrap_or_else(|e| panic!("{e}"));
        drop(a);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = relay(&b, &mut out, &mut err);
        (code, out, err)
    }

    #[test]
    fn output_messages_and_status_arrive_apart() {
        let mut wire = frame(OUT, b"endpoints\n");
        wire.extend(frame(ERR, b"note\n"));
        wire.extend(frame(OUT, b"more\n"));
        wire.extend(frame(EXIT, &[3]));
        let (code, out, err) = relayed(&wire);
        assert_eq!(code.ok(), Some(3));
        assert_eq!(out, b"endpoints\nmore\n");
        assert_eq!(err, b"note\n");
    }

    #[test]
    fn a_holder_that_stops_or_misbehaves_is_an_error_not_a_hang() {
        let (code, ..) = relayed(&frame(OUT, b"half"));
        let e = code.err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(e.contains("stopped before the command finished"), "{e}");
        let mut huge = vec![OUT];
        huge.extend_from_slice(&(FRAME_LIMIT as u32 + 1).to_be_bytes());
        assert!(relayed(&huge).0.is_err(), "an oversized frame is refused");
        assert!(relayed(&frame(b'?', b"")).0.is_err(), "an unknown frame");
    }

    #[test]
    fn a_large_write_goes_out_in_bounded_frames() {
        let (a, b) = UnixStream::pair().unwrap_or_else(|e| panic!("{e}"));
        let big = vec![b'x'; 3 * FRAME_LIMIT + 7];
        let writer = std::thread::spawn(move || {
            let mut w = Frames {
                stream: &a,
                tag: OUT,
            };
            w.write_all(&big).unwrap_or_else(|e| panic!("{e}"));
            write_frame(&a, EXIT, &[0]).unwrap_or_else(|e| panic!("{e}"));
        });
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(relay(&b, &mut out, &mut err).ok(), Some(0));
        assert_eq!(out.len(), 3 * FRAME_LIMIT + 7);
        writer.join().unwrap_or_else(|_| panic!("writer"));
    }

    #[test]
    fn a_request_cut_short_or_from_another_version_is_refused_with_a_reason() {
        for (wire, says) in [
            (&b"{\"protocol\":1"[..], "cut short"),
            (b"{\"protocol\":99,\"command\":{\"Endpoints\":{\"db\":\"/x\",\"format\":\"Table\"}},\"verbosity\":{\"verbose\":0,\"quiet\":false}}\n", "protocol 99"),
            (b"not json\n", "same Tapline version"),
        ] {
            let (a, b) = UnixStream::pair().unwrap_or_else(|e| panic!("{e}"));
            (&a).write_all(wire).unwrap_or_else(|e| panic!("{e}"));
            drop(a);
            let e = read_request(&b).err().map(|e| format!("{e:#}")).unwrap_or_default();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn a_socket_path_too_long_for_an_address_moves_to_a_private_directory() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let deep = dir.path().join("d".repeat(120));
        std::fs::create_dir(&deep).unwrap_or_else(|e| panic!("{e}"));
        let case = deep.join("case.duckdb");
        std::fs::write(&case, b"").unwrap_or_else(|e| panic!("{e}"));
        let path = socket_path(&case).unwrap_or_else(|e| panic!("{e}"));
        assert!(path.as_os_str().len() <= SUN_PATH_MAX, "{}", path.display());
        let parent = path.parent().unwrap_or_else(|| panic!("no parent"));
        let mode = std::fs::metadata(parent).map(|m| m.mode() & 0o777).ok();
        assert_eq!(mode, Some(0o700));
        let near = dir.path().join("case.duckdb");
        std::fs::write(&near, b"").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            socket_path(&near).ok(),
            near.canonicalize()
                .ok()
                .map(|p| PathBuf::from(format!("{}.sock", p.display())))
        );
    }

    #[test]
    fn stopping_does_not_hang_when_the_socket_file_was_removed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let case = dir.path().join("case.duckdb");
        std::fs::write(&case, b"").unwrap_or_else(|e| panic!("{e}"));
        let server =
            ControlServer::start(&case, Cases::direct(), || {}).unwrap_or_else(|e| panic!("{e:#}"));
        std::fs::remove_file(server.path()).unwrap_or_else(|e| panic!("{e}"));
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(server);
            let _ = done.send(());
        });
        assert!(
            finished.recv_timeout(Duration::from_secs(5)).is_ok(),
            "dropping the server hung"
        );
    }

    #[test]
    fn a_socket_left_by_a_dead_holder_is_replaced_and_a_live_one_is_not() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("case.duckdb.sock");
        drop(UnixListener::bind(&path).unwrap_or_else(|e| panic!("{e}")));
        assert!(path.exists(), "a stale socket file");
        let live = bind(&path).unwrap_or_else(|e| panic!("{e:#}"));
        let mode = std::fs::metadata(&path).map(|m| m.mode() & 0o777).ok();
        assert_eq!(mode, Some(0o600), "owner-only");
        let e = bind(&path)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(e.contains("served by another process"), "{e}");
        drop(live);
    }
}
