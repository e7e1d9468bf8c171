//! OpenLineage run events for `gate`, `train` and `unlearn`, so the platform's lineage tools (Marquez, DataHub,
//! …) see consent-gated datasets, the models trained on them and the unlearning retrains, with the manifest's
//! commitments attached.
//!
//! The one place that decides what is emitted: the use cases wrap their work in [`LineageRun::wrap`], which sends
//! START before the work, then COMPLETE (with the outputs and their facets) or FAIL (with the error text in an
//! `errorMessage` run facet). Every run sends START and exactly one of COMPLETE / FAIL with the same `runId`,
//! also a run refused before any work (output already there, bad options): its FAIL names no output.
//! `unlearn --watch` is one long run: START, a RUNNING event per pass that did something, COMPLETE when stopped.
//!
//! Front ends only pass the configuration ([`Session::with_openlineage`]): the value of their `--openlineage` flag
//! and a way to read the environment. Where events go:
//! * `--openlineage TARGET`, else `CONSENTRY_OPENLINEAGE=TARGET`: TARGET is `file:///abs/path.jsonl` (or a bare
//!   path) — one event per line, appended with `O_APPEND` in one write and synced — or `http://host:port/path`
//!   (the events are POSTed there as they are).
//! * else the variables the OpenLineage clients read: `OPENLINEAGE_URL` (+ `OPENLINEAGE_ENDPOINT`, default
//!   `api/v1/lineage`, + `OPENLINEAGE_API_KEY`, sent as a bearer token), or `OPENLINEAGE__TRANSPORT__TYPE=file`
//!   with `OPENLINEAGE__TRANSPORT__LOG_FILE_PATH`.
//! * `OPENLINEAGE_DISABLED=true` turns it all off; `OPENLINEAGE_NAMESPACE` names the job namespace [default:
//!   `consentry://<data directory's name>`]; `OPENLINEAGE_PARENT_ID=namespace/job/runId` (what schedulers pass
//!   their tasks) adds a `parent` run facet.
//!
//! A malformed `--openlineage` / `CONSENTRY_OPENLINEAGE` is refused before any work. A problem with the shared
//! `OPENLINEAGE_*` variables (other tools read them too, e.g. an `https://` URL) is a warning and no event. A
//! failed emit never fails nor loses the run: the first failure is a warning, the run goes on. HTTPS is not spoken
//! here: point `--openlineage` at a local collector or proxy, or use the file transport.
//!
//! Events carry no member data: counts, hashes and commitments only.

use crate::datadir::DataDir;
use crate::error::{AppError, Result};
use crate::session::Session;
use consentry_gate::Manifest;
use serde_json::{Map, Value, json};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The OpenLineage spec version the events follow (the vendored `openlineage/spec/OpenLineage.json`).
pub const SPEC: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json";
/// Every event's `schemaURL`.
pub const RUN_EVENT_SCHEMA: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
/// Every event's and facet's `producer`: this build of Consentry.
pub const PRODUCER: &str = concat!(env!("CARGO_PKG_REPOSITORY"), "/tree/v", env!("CARGO_PKG_VERSION"));
/// The schema of Consentry's own facets (`openlineage/ConsentryFacets.json`, whose `$id` this is).
pub const CONSENTRY_FACETS: &str =
    concat!(env!("CARGO_PKG_REPOSITORY"), "/openlineage/facets/1-0-0/ConsentryFacets.json");
/// The path an `OPENLINEAGE_URL` is joined with when `OPENLINEAGE_ENDPOINT` is not set (as the clients do).
pub const DEFAULT_ENDPOINT: &str = "api/v1/lineage";
/// How long one POST may take, connecting included (the Python client's default).
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The dataset namespace of local files (OpenLineage's naming convention: `file`, the absolute path as name).
pub const FILE_NAMESPACE: &str = "file";

/// The standard facets used, by key: their schema URLs (each vendored under `openlineage/spec/facets/`).
pub mod facets {
    /// `schema` dataset facet.
    pub const SCHEMA: &str =
        "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet";
    /// `version` dataset facet.
    pub const VERSION: &str =
        "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet";
    /// `datasetType` dataset facet.
    pub const DATASET_TYPE: &str =
        "https://openlineage.io/spec/facets/1-0-1/DatasetTypeDatasetFacet.json#/$defs/DatasetTypeDatasetFacet";
    /// `outputStatistics` output facet.
    pub const OUTPUT_STATISTICS: &str = "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet";
    /// `inputStatistics` input facet.
    pub const INPUT_STATISTICS: &str = "https://openlineage.io/spec/facets/1-0-0/InputStatisticsInputDatasetFacet.json#/$defs/InputStatisticsInputDatasetFacet";
    /// `errorMessage` run facet.
    pub const ERROR_MESSAGE: &str =
        "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";
    /// `parent` run facet.
    pub const PARENT: &str = "https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet";
    /// `processing_engine` run facet.
    pub const PROCESSING_ENGINE: &str =
        "https://openlineage.io/spec/facets/1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet";
    /// `jobType` job facet.
    pub const JOB_TYPE: &str = "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet";
}

/// Where events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Appended to this file, one JSON event per line.
    File(PathBuf),
    /// POSTed to this endpoint.
    Http(HttpTarget),
}

/// A plain-HTTP endpoint (the API key is kept out of `Debug`).
#[derive(Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
    /// Sent as `Authorization: Bearer …` when set.
    api_key: Option<String>,
}

impl std::fmt::Debug for HttpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (api key: {})", self.url(), if self.api_key.is_some() { "set" } else { "none" })
    }
}

impl HttpTarget {
    /// Reads `http://host[:port][/path]`; `https://` is refused with what to do instead.
    pub fn parse(url: &str, api_key: Option<String>) -> std::result::Result<HttpTarget, String> {
        if url.get(..8).is_some_and(|p| p.eq_ignore_ascii_case("https://")) {
            return Err(format!(
                "`{url}`: HTTPS is not supported; send the events to a local OpenLineage collector or proxy over \
                 http://, or write them to a file (file:///path/events.jsonl)"
            ));
        }
        let rest = match url.get(..7) {
            Some(s) if s.eq_ignore_ascii_case("http://") => &url[7..],
            _ => return Err(format!("`{url}` is not an http:// URL")),
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        if authority.contains('@') {
            return Err(format!("`{url}`: put credentials in OPENLINEAGE_API_KEY, not in the URL"));
        }
        let bad_port = || format!("`{url}`: bad port");
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, tail) = v6.split_once(']').ok_or_else(|| format!("`{url}`: unclosed [ in the host"))?;
            let port = match tail.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad_port())?,
                None if tail.is_empty() => 80,
                None => return Err(bad_port()),
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad_port())?),
                None => (authority.to_string(), 80),
            }
        };
        if host.is_empty() || path.chars().any(|c| c.is_control() || c == ' ') {
            return Err(format!("`{url}` names no host, or its path holds spaces or control characters"));
        }
        Ok(HttpTarget { host, port, path, api_key })
    }

    /// The URL, for messages.
    pub fn url(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!("http://{host}:{}{}", self.port, self.path)
    }

    /// This endpoint's path joined with `endpoint` as the clients do (`urljoin`): an absolute endpoint replaces the
    /// path, a relative one replaces its last segment.
    fn join(mut self, endpoint: &str) -> HttpTarget {
        if endpoint.starts_with('/') {
            self.path = endpoint.to_string();
        } else {
            let path = self.path.split(['?', '#']).next().unwrap_or("/");
            let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            let dir = if dir.is_empty() { "/" } else { dir };
            self.path = format!("{dir}{endpoint}");
        }
        self
    }
}

/// The run that started this one (a scheduler's task), from `OPENLINEAGE_PARENT_ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentRun {
    /// Its job's namespace.
    pub namespace: String,
    /// Its job's name.
    pub name: String,
    /// Its run id.
    pub run_id: String,
}

impl ParentRun {
    /// Reads `namespace/job/runId` (split from the right, so a namespace may hold slashes).
    fn parse(s: &str) -> Option<ParentRun> {
        let mut it = s.rsplitn(3, '/');
        let (run_id, name, namespace) = (it.next()?, it.next()?, it.next()?);
        (is_uuid(run_id) && !name.is_empty() && !namespace.is_empty()).then(|| ParentRun {
            namespace: namespace.into(),
            name: name.into(),
            run_id: run_id.to_ascii_lowercase(),
        })
    }
}

/// How events are emitted: where to, under which job namespace, under which parent run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineageConfig {
    /// Where events go.
    pub transport: Transport,
    /// The jobs' namespace.
    pub namespace: String,
    /// The scheduler's run this one belongs to.
    pub parent: Option<ParentRun>,
}

/// Where a warning about lineage goes (the front end decides: stderr, a log, Python's `warnings`).
pub type Warn = Arc<dyn Fn(&str) + Send + Sync>;

/// Warnings on standard error, for command-line front ends.
pub fn stderr_warnings() -> Warn {
    Arc::new(|m: &str| eprintln!("warning: OpenLineage: {m}"))
}

impl LineageConfig {
    /// The configuration `flag` (a front end's `--openlineage`) and the environment (`env` reads one variable)
    /// describe, or none. A bad `flag` / `CONSENTRY_OPENLINEAGE` is an error; a bad shared `OPENLINEAGE_*`
    /// variable goes to `warn` and yields none.
    pub fn resolve(
        flag: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
        dir: &DataDir,
        warn: &dyn Fn(&str),
    ) -> Result<Option<LineageConfig>> {
        let var = |k: &str| env(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        if var("OPENLINEAGE_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let explicit = flag.map(str::to_string).or_else(|| var("CONSENTRY_OPENLINEAGE"));
        let transport = if let Some(t) = explicit {
            Some(
                parse_target(&t)
                    .map_err(|m| AppError::bad_input(format!("--openlineage / CONSENTRY_OPENLINEAGE: {m}")))?,
            )
        } else if let Some(url) = var("OPENLINEAGE_URL") {
            let endpoint = var("OPENLINEAGE_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
            match HttpTarget::parse(&url, var("OPENLINEAGE_API_KEY")) {
                Ok(t) => Some(Transport::Http(t.join(&endpoint))),
                Err(m) => {
                    warn(&format!("OPENLINEAGE_URL {m}; no lineage events will be sent"));
                    None
                }
            }
        } else {
            match var("OPENLINEAGE__TRANSPORT__TYPE").map(|t| t.to_ascii_lowercase()).as_deref() {
                None => None,
                Some("file") => match var("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH") {
                    Some(p) => Some(Transport::File(absolute(Path::new(&p)))),
                    None => {
                        warn(
                            "OPENLINEAGE__TRANSPORT__TYPE=file needs OPENLINEAGE__TRANSPORT__LOG_FILE_PATH; no lineage events will be written",
                        );
                        None
                    }
                },
                Some(other) => {
                    warn(&format!(
                        "OPENLINEAGE__TRANSPORT__TYPE={other} is not supported here (file, or OPENLINEAGE_URL for \
                         http); no lineage events will be sent"
                    ));
                    None
                }
            }
        };
        let Some(transport) = transport else { return Ok(None) };
        let namespace = var("OPENLINEAGE_NAMESPACE").unwrap_or_else(|| default_namespace(dir));
        let parent = match var("OPENLINEAGE_PARENT_ID") {
            Some(p) => {
                let parsed = ParentRun::parse(&p);
                if parsed.is_none() {
                    warn(&format!("OPENLINEAGE_PARENT_ID `{p}` is not namespace/job/runId; no parent facet"));
                }
                parsed
            }
            None => None,
        };
        Ok(Some(LineageConfig { transport, namespace, parent }))
    }
}

/// `consentry://<the data directory's name>`.
fn default_namespace(dir: &DataDir) -> String {
    let abs = absolute(dir.root());
    let name = abs.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "data".into());
    format!("consentry://{name}")
}

/// Reads a `--openlineage` target: `file:///abs`, `http://…`, or a bare path.
fn parse_target(t: &str) -> std::result::Result<Transport, String> {
    let lower = t.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return HttpTarget::parse(t, None).map(Transport::Http);
    }
    if let Some(rest) = t.strip_prefix("file://") {
        if !rest.starts_with('/') {
            return Err(format!("`{t}`: write file:///absolute/path (three slashes) or a plain path"));
        }
        return Ok(Transport::File(PathBuf::from(percent_decode(rest)?)));
    }
    if let Some((scheme, _)) = t.split_once("://") {
        return Err(format!("`{t}`: the {scheme}:// transport is not supported (file:// or http://)"));
    }
    if t.is_empty() {
        return Err("empty target".into());
    }
    Ok(Transport::File(absolute(Path::new(t))))
}

/// Decodes `%XX` in a file URL's path.
fn percent_decode(s: &str) -> std::result::Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or_else(|| format!("bad %-escape in `{s}`"))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad %-escape in `{s}`"))?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{s}` does not decode to UTF-8"))
}

/// A path made absolute (against the working directory) without touching the file system.
fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The name a directory or file has as an OpenLineage dataset: its absolute path, with the parent resolved when it
/// exists (so START, before the directory exists, and COMPLETE name it alike).
pub fn dataset_name(p: &Path) -> String {
    let abs = absolute(p);
    let resolved = match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => std::fs::canonicalize(parent).map(|c| c.join(name)).unwrap_or(abs),
        _ => abs,
    };
    resolved.display().to_string()
}

/// Sends events; shared by the runs of one session.
pub(crate) struct Emitter {
    config: LineageConfig,
    warn: Warn,
    /// Set after a failed send, so one warning stands for a collector that stays down; cleared by a success.
    failing: AtomicBool,
}

impl Emitter {
    fn emit(&self, event: &Value) {
        match self.send(event) {
            Ok(()) => self.failing.store(false, Ordering::Relaxed),
            Err(e) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    let what = format!("{} {}", event["eventType"].as_str().unwrap_or("?"), event["job"]["name"]);
                    let to = match &self.config.transport {
                        Transport::File(p) => p.display().to_string(),
                        Transport::Http(h) => h.url(),
                    };
                    (self.warn)(&format!("could not send the {what} event to {to}: {e}; the run goes on without it"));
                }
            }
        }
    }

    fn send(&self, event: &Value) -> std::result::Result<(), String> {
        let mut line = serde_json::to_string(event).map_err(|e| e.to_string())?;
        match &self.config.transport {
            Transport::File(p) => {
                line.push('\n');
                append_line(p, line.as_bytes()).map_err(|e| e.to_string())
            }
            Transport::Http(h) => post(h, line.as_bytes(), TIMEOUT),
        }
    }
}

/// Appends one line in one `write` on an `O_APPEND` descriptor (concurrent writers never interleave inside a line
/// on a local file system), then syncs it.
fn append_line(path: &Path, line: &[u8]) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o640);
    let mut f = o.open(path)?;
    let n = f.write(line)?;
    if n != line.len() {
        // Only on a full disk or a signal; the rest follows so the line is at least whole.
        f.write_all(&line[n..])?;
    }
    f.sync_data()
}

/// POSTs one event over HTTP/1.1 (one connection, closed after); 2xx is success.
fn post(t: &HttpTarget, body: &[u8], timeout: Duration) -> std::result::Result<(), String> {
    use std::net::{TcpStream, ToSocketAddrs};
    let started = std::time::Instant::now();
    let addrs = (t.host.as_str(), t.port).to_socket_addrs().map_err(|e| format!("resolving {}: {e}", t.host))?;
    let mut last = format!("{} resolves to no address", t.host);
    let mut stream = None;
    for a in addrs {
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&a, left) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("connecting to {a}: {e}"),
        }
    }
    let mut s = stream.ok_or(last)?;
    let left = timeout.saturating_sub(started.elapsed()).max(Duration::from_millis(100));
    s.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(left)).map_err(|e| e.to_string())?;
    let host = if t.host.contains(':') { format!("[{}]", t.host) } else { t.host.clone() };
    let mut head = format!(
        "POST {} HTTP/1.1\r\nhost: {host}:{}\r\nconnection: close\r\nuser-agent: consentry/{}\r\ncontent-type: \
         application/json\r\ncontent-length: {}\r\n",
        t.path,
        t.port,
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    if let Some(k) = &t.api_key {
        head.push_str(&format!("authorization: Bearer {k}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).and_then(|()| s.write_all(body)).map_err(|e| format!("sending: {e}"))?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    while !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < 8192 {
        let n = s.read(&mut chunk).map_err(|e| format!("reading the answer: {e}"))?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    match status_code(&buf) {
        Some(c) if (200..300).contains(&c) => Ok(()),
        Some(c) => Err(format!("the collector answered HTTP {c}")),
        None => Err("the answer is not HTTP".into()),
    }
}

/// The status code of an HTTP/1.x status line (the service's webhook deliveries read their answers with it too).
pub fn status_code(answer: &[u8]) -> Option<u16> {
    let line = answer.split(|&b| b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    parts.next()?.parse().ok()
}

/// True for the 8-4-4-4-12 hex form.
fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter()
            .enumerate()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { *c == b'-' } else { c.is_ascii_hexdigit() })
}

/// A UUIDv7: the time in milliseconds, then randomness from the operating system (run ids are meant to be unique,
/// not reproducible).
fn new_run_id() -> std::result::Result<String, String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| format!("no randomness available: {e}"))?;
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis()) as u64;
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6] = 0x70 | (b[6] & 0x0f);
    b[8] = 0x80 | (b[8] & 0x3f);
    let h = hex::encode(b);
    Ok(format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]))
}

/// A facet: its fields with `_producer` and `_schemaURL` added.
pub fn facet(schema_url: &str, fields: Value) -> Value {
    let mut m = match fields {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    m.insert("_producer".into(), PRODUCER.into());
    m.insert("_schemaURL".into(), schema_url.into());
    Value::Object(m)
}

/// One of Consentry's own facets (`ConsentryFacets.json#/$defs/NAME`).
fn consentry_facet(def: &str, fields: Value) -> Value {
    facet(&format!("{CONSENTRY_FACETS}#/$defs/{def}"), fields)
}

/// Inputs, outputs and run facets of one event.
#[derive(Debug, Default, Clone)]
pub(crate) struct Parts {
    pub inputs: Vec<Value>,
    pub outputs: Vec<Value>,
    pub run_facets: Map<String, Value>,
}

/// A dataset in an event: namespace, name, facets (and output/input facets).
pub(crate) fn dataset(
    namespace: &str,
    name: &str,
    facets: Map<String, Value>,
    io_facets: Option<(&str, Map<String, Value>)>,
) -> Value {
    let mut d = json!({"namespace": namespace, "name": name});
    if !facets.is_empty() {
        d["facets"] = Value::Object(facets);
    }
    if let Some((key, f)) = io_facets.filter(|(_, f)| !f.is_empty()) {
        d[key] = Value::Object(f);
    }
    d
}

/// A file or directory as a dataset without facets.
pub(crate) fn file_dataset(p: &Path) -> Value {
    dataset(FILE_NAMESPACE, &dataset_name(p), Map::new(), None)
}

/// The kind of job, for the `jobType` facet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobKind {
    Gate,
    Train,
    Unlearn,
}

impl JobKind {
    fn name(self) -> &'static str {
        match self {
            JobKind::Gate => "GATE",
            JobKind::Train => "TRAIN",
            JobKind::Unlearn => "UNLEARN",
        }
    }
}

/// One run of a job: its id and where its events go (nothing when lineage is off).
pub(crate) struct LineageRun<'a> {
    emitter: Option<&'a Emitter>,
    run_id: String,
    job: String,
    kind: JobKind,
    streaming: bool,
}

impl Session {
    /// Emits OpenLineage events for `gate`, `train` and `unlearn` as `flag` (the front end's `--openlineage`, if
    /// any) and the environment (`env` reads one variable) say; warnings about lineage go to `warn`. A bad
    /// `--openlineage` / `CONSENTRY_OPENLINEAGE` is [`crate::ErrorKind::BadInput`].
    pub fn with_openlineage(
        mut self,
        flag: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
        warn: Warn,
    ) -> Result<Session> {
        let config = LineageConfig::resolve(flag, env, self.dir(), &*warn)?;
        self.openlineage = config.map(|config| Emitter { config, warn, failing: AtomicBool::new(false) });
        Ok(self)
    }

    /// Emits events as `config` says (for callers that built the configuration themselves).
    pub fn with_lineage_config(mut self, config: LineageConfig, warn: Warn) -> Session {
        self.openlineage = Some(Emitter { config, warn, failing: AtomicBool::new(false) });
        self
    }

    /// Where this session's lineage events go, if anywhere.
    pub fn lineage_config(&self) -> Option<&LineageConfig> {
        self.openlineage.as_ref().map(|e| &e.config)
    }

    /// A new run of `job` (with no emitter, a run that emits nothing).
    pub(crate) fn lineage_run(&self, job: String, kind: JobKind) -> LineageRun<'_> {
        let emitter = self.openlineage.as_ref();
        let run_id = match emitter.map(|_| new_run_id()) {
            Some(Ok(id)) => id,
            Some(Err(e)) => {
                if let Some(em) = emitter {
                    (em.warn)(&format!("{e}; no lineage events for this run"));
                }
                return LineageRun { emitter: None, run_id: String::new(), job, kind, streaming: false };
            }
            None => String::new(),
        };
        LineageRun { emitter, run_id, job, kind, streaming: false }
    }

    /// The ledger as an input dataset, at a position when known.
    pub(crate) fn ledger_dataset(&self, position: Option<u64>) -> Value {
        let ns = self.openlineage.as_ref().map_or("consentry", |e| e.config.namespace.as_str());
        let mut f = Map::new();
        if let Some(p) = position {
            f.insert("version".into(), facet(facets::VERSION, json!({"datasetVersion": p.to_string()})));
        }
        dataset(ns, "ledger", f, None)
    }
}

impl LineageRun<'_> {
    /// Whether events are emitted (builders skip their work otherwise).
    pub fn active(&self) -> bool {
        self.emitter.is_some()
    }

    /// Marks the run as continuous (`unlearn --watch`).
    pub fn streaming(mut self) -> Self {
        self.streaming = true;
        self
    }

    /// Emits one event of this run.
    pub fn emit(&self, event_type: &str, parts: Parts) {
        let Some(em) = self.emitter else { return };
        let mut run_facets = parts.run_facets;
        run_facets.insert(
            "processing_engine".into(),
            facet(
                facets::PROCESSING_ENGINE,
                json!({"name": "consentry", "version": env!("CARGO_PKG_VERSION"), "openlineageAdapterVersion": env!("CARGO_PKG_VERSION")}),
            ),
        );
        if let Some(p) = &em.config.parent {
            let job = json!({"namespace": p.namespace, "name": p.name});
            let run = json!({"runId": p.run_id});
            run_facets.insert("parent".into(), facet(facets::PARENT, json!({"run": run, "job": job})));
        }
        let event = json!({
            "eventType": event_type,
            "eventTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "producer": PRODUCER,
            "schemaURL": RUN_EVENT_SCHEMA,
            "run": {"runId": self.run_id, "facets": run_facets},
            "job": {
                "namespace": em.config.namespace,
                "name": self.job,
                "facets": {"jobType": facet(facets::JOB_TYPE, json!({
                    "processingType": if self.streaming { "STREAMING" } else { "BATCH" },
                    "integration": "CONSENTRY",
                    "jobType": self.kind.name(),
                }))},
            },
            "inputs": parts.inputs,
            "outputs": parts.outputs,
        });
        em.emit(&event);
    }

    /// Runs `work` between START (`start`'s parts) and COMPLETE (`done`'s parts from the result) or FAIL (the
    /// error, and `start`'s inputs). The builders run only when events are emitted.
    pub fn wrap<T>(
        &self,
        start: impl FnOnce() -> Parts,
        work: impl FnOnce() -> Result<T>,
        done: impl FnOnce(&T) -> Parts,
    ) -> Result<T> {
        if !self.active() {
            return work();
        }
        let started = start();
        let inputs = started.inputs.clone();
        self.emit("START", started);
        let result = work();
        match &result {
            Ok(v) => self.emit("COMPLETE", done(v)),
            Err(e) => self.fail(e, inputs),
        }
        result
    }

    /// Emits FAIL with the error (its whole chain of causes) in an `errorMessage` facet.
    pub fn fail(&self, e: &AppError, inputs: Vec<Value>) {
        let mut run_facets = Map::new();
        run_facets.insert(
            "errorMessage".into(),
            facet(facets::ERROR_MESSAGE, json!({"message": error_chain(e), "programmingLanguage": "RUST"})),
        );
        self.emit("FAIL", Parts { inputs, outputs: Vec::new(), run_facets });
    }
}

/// An error and its causes, `: `-joined.
fn error_chain(e: &AppError) -> String {
    let mut s = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// The `consentry_manifest` facet: the commitments a gated dataset's manifest makes.
pub(crate) fn manifest_facet(m: &Manifest, manifest_blake3: Option<&str>, dataset_id: Option<&str>) -> Value {
    let tables: Map<String, Value> = m
        .tables
        .iter()
        .filter(|(_, t)| t.included)
        .map(|(k, t)| {
            (k.clone(), json!({"rows_in": t.rows_in, "rows_out": t.rows_out, "row_commitment": t.row_commitment}))
        })
        .collect();
    let mut f = json!({
        "purpose": m.purpose,
        "policy": {"version": m.policy.version, "hash": m.policy.hash},
        "ledger": {
            "position": m.ledger.position,
            "at": m.ledger.at,
            "tree_root": m.ledger.tree_root,
            "checkpoint_tree_size": m.ledger.checkpoint.as_ref().map(|c| c.head.tree_size),
        },
        "snapshot": {"hash": m.snapshot.hash, "allowed": m.snapshot.allowed, "members": m.snapshot.members},
        "members": {"count": m.members.count, "commitment": m.members.commitment},
        "tables": tables,
        "rows_in": m.rows_in,
        "rows_out": m.rows_out,
        "sources": {"declaration": m.sources.declaration, "declaration_hash": m.sources.declaration_hash},
        "shard": {"algorithm": m.shard.algorithm, "shards": m.shard.shards},
        "redaction": m.redaction.enabled,
        "created": m.created,
    });
    if let Some(p) = m.partition {
        f["partition"] = json!({"index": p.index, "count": p.count});
    }
    if let Some(h) = manifest_blake3 {
        f["manifest_blake3"] = h.into();
    }
    if let Some(id) = dataset_id {
        f["dataset_id"] = id.into();
    }
    consentry_facet("ConsentryManifestDatasetFacet", f)
}

/// The schema facet of a gated dataset: one struct field per written table, its columns (with their Arrow types,
/// read from the first file's footer) inside.
pub(crate) fn dataset_schema_facet(dir: &Path, m: &Manifest) -> Value {
    let fields: Vec<Value> = m
        .tables
        .iter()
        .filter(|(_, t)| t.included)
        .enumerate()
        .map(|(i, (name, t))| {
            let types = m
                .files
                .iter()
                .find(|f| f.path.split('/').next() == Some(name.as_str()))
                .and_then(|f| parquet_types(&dir.join(&f.path)))
                .unwrap_or_default();
            let cols: Vec<Value> = t
                .columns
                .iter()
                .enumerate()
                .map(|(j, c)| {
                    let mut v = json!({"name": c, "ordinal_position": j + 1});
                    if let Some(ty) = types.iter().find(|(n, _)| n == c).map(|(_, t)| t) {
                        v["type"] = ty.clone().into();
                    }
                    v
                })
                .collect();
            json!({"name": name, "type": "table", "ordinal_position": i + 1, "fields": cols})
        })
        .collect();
    facet(facets::SCHEMA, json!({"fields": fields}))
}

/// (column, Arrow type) of a Parquet file, from its footer.
fn parquet_types(path: &Path) -> Option<Vec<(String, String)>> {
    let f = std::fs::File::open(path).ok()?;
    let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).ok()?;
    Some(b.schema().fields().iter().map(|f| (f.name().clone(), f.data_type().to_string())).collect())
}

/// The output dataset of a gate run: schema, version, statistics and the manifest's commitments.
pub(crate) fn gated_output(dir: &Path, m: &Manifest, dataset_id: Option<&str>) -> Value {
    let manifest_blake3 = consentry_gate::fsguard::read_inside(dir, consentry_gate::manifest::MANIFEST_FILE)
        .ok()
        .map(|b| blake3::hash(&b).to_hex().to_string());
    let mut f = Map::new();
    f.insert("schema".into(), dataset_schema_facet(dir, m));
    if let Some(v) = dataset_id.or(manifest_blake3.as_deref()) {
        f.insert("version".into(), facet(facets::VERSION, json!({"datasetVersion": v})));
    }
    f.insert("consentry_manifest".into(), manifest_facet(m, manifest_blake3.as_deref(), dataset_id));
    let mut o = Map::new();
    let bytes: u64 = m.files.iter().map(|f| f.bytes).sum();
    o.insert(
        "outputStatistics".into(),
        facet(facets::OUTPUT_STATISTICS, json!({"rowCount": m.rows_out, "size": bytes, "fileCount": m.files.len()})),
    );
    dataset(FILE_NAMESPACE, &dataset_name(dir), f, Some(("outputFacets", o)))
}

/// A gated dataset read as an input (by `train`), with its manifest's commitments when it has a readable one.
pub(crate) fn gated_input(dir: &Path) -> Value {
    let mut f = Map::new();
    if let Ok(m) = Manifest::read(dir) {
        let h = consentry_gate::fsguard::read_inside(dir, consentry_gate::manifest::MANIFEST_FILE)
            .ok()
            .map(|b| blake3::hash(&b).to_hex().to_string());
        if let Some(h) = &h {
            f.insert("version".into(), facet(facets::VERSION, json!({"datasetVersion": h})));
        }
        f.insert(
            "consentry_manifest".into(),
            manifest_facet(&m, h.as_deref(), m.partition.is_none().then_some(h.as_deref()).flatten()),
        );
    }
    dataset(FILE_NAMESPACE, &dataset_name(dir), f, None)
}

/// The source tables a gate run read, with their declared columns and what was read of them.
pub(crate) fn source_inputs(sources: &consentry_gate::Sources, m: &Manifest) -> Vec<Value> {
    sources
        .tables
        .iter()
        .filter(|t| m.sources.files.iter().any(|f| f.table == t.name))
        .map(|t| {
            let files: Vec<_> = m.sources.files.iter().filter(|f| f.table == t.name).collect();
            let cols: Vec<Value> = t
                .members
                .iter()
                .map(|c| c.column.clone())
                .chain(t.columns.keys().cloned())
                .map(|c| json!({"name": c}))
                .collect();
            let mut f = Map::new();
            f.insert("schema".into(), facet(facets::SCHEMA, json!({"fields": cols})));
            let mut i = Map::new();
            i.insert(
                "inputStatistics".into(),
                facet(
                    facets::INPUT_STATISTICS,
                    json!({
                        "rowCount": files.iter().map(|f| f.rows).sum::<u64>(),
                        "size": files.iter().map(|f| f.bytes).sum::<u64>(),
                        "fileCount": files.len(),
                    }),
                ),
            );
            dataset(FILE_NAMESPACE, &dataset_name(&t.path), f, Some(("inputFacets", i)))
        })
        .collect()
}

/// A trained (or retrained) model directory as an output: type MODEL, its id, statistics, and what it rests on.
pub(crate) fn model_output(dir: &Path, model_id: Option<&str>, extra: Option<(&str, Value)>) -> Value {
    let mut f = Map::new();
    let mut o = Map::new();
    f.insert("datasetType".into(), facet(facets::DATASET_TYPE, json!({"datasetType": "MODEL"})));
    if let Ok((meta, h)) = consentry_learn::model::ModelMeta::read_hashed(dir) {
        f.insert("version".into(), facet(facets::VERSION, json!({"datasetVersion": model_id.unwrap_or(&h)})));
        let shards: Vec<Value> = meta
            .shards
            .iter()
            .map(|s| json!({"index": s.index, "blake3": s.blake3, "members": s.members, "rows": s.rows, "members_commitment": s.members_commitment}))
            .collect();
        let mut m = json!({
            "kind": meta.kind,
            "purpose": meta.purpose,
            "model_json_blake3": h,
            "dataset": {
                "manifest_blake3": meta.dataset.manifest_blake3,
                "members_commitment": meta.dataset.members_commitment,
                "members": meta.dataset.members,
                "ledger_position": meta.dataset.ledger_position,
            },
            "seed": meta.seed,
            "dp": meta.dp.is_some(),
            "shards": shards,
            "registered": model_id.is_some(),
        });
        if let Some(id) = model_id {
            m["model_id"] = id.into();
        }
        f.insert("consentry_model".into(), consentry_facet("ConsentryModelDatasetFacet", m));
        o.insert(
            "outputStatistics".into(),
            facet(
                facets::OUTPUT_STATISTICS,
                json!({
                    "rowCount": meta.shards.iter().map(|s| s.rows).sum::<u64>(),
                    "size": meta.shards.iter().map(|s| s.bytes).sum::<u64>(),
                    "fileCount": meta.shards.len(),
                }),
            ),
        );
    }
    if let Some((key, v)) = extra {
        f.insert(key.into(), v);
    }
    dataset(FILE_NAMESPACE, &dataset_name(dir), f, Some(("outputFacets", o)))
}

/// What one unlearning pass did, as a run facet (counts only, no member ids).
pub(crate) fn unlearning_pass_facet(r: &consentry_lineage::worker::WorkerReport) -> Value {
    let f = &r.figures;
    consentry_facet(
        "ConsentryUnlearningRunFacet",
        json!({
            "ledger_from": r.cursor_from,
            "ledger_to": r.cursor_to,
            "withdrawals": r.withdrawals,
            "requests_opened": r.requests_opened,
            "retrains": r.retrains.len(),
            "closed_without_retrain": r.closed_without_retrain,
            "open": r.open.len(),
            "figures": {
                "deadline_secs": f.deadline_secs,
                "completed": f.completed,
                "within_deadline": f.within_deadline,
                "missed": f.missed,
                "open": f.open,
                "open_overdue": f.open_overdue,
            },
        }),
    )
}

/// One retrain as a dataset facet of the new version.
pub(crate) fn retrain_facet(x: &consentry_lineage::worker::Retrain) -> Value {
    consentry_facet(
        "ConsentryUnlearningDatasetFacet",
        json!({
            "previous_model": x.old_model,
            "model_id": x.new_model,
            "version": x.version,
            "kind": x.kind,
            "purpose": x.purpose,
            "members_removed": x.members.len(),
            "withdrawal_events": x.events.len(),
            "retrained_shards": x.shards,
            "shards_total": x.shards_total,
            "missed": x.missed,
            "completed_at": x.completed_at,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let v: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k: &str| v.iter().find(|(a, _)| a == k).map(|(_, b)| b.clone())
    }

    fn resolve(flag: Option<&str>, pairs: &[(&str, &str)]) -> (Result<Option<LineageConfig>>, Vec<String>) {
        let warnings = std::cell::RefCell::new(Vec::new());
        let r = LineageConfig::resolve(flag, &env_of(pairs), &DataDir::new("/srv/acme-data"), &|m: &str| {
            warnings.borrow_mut().push(m.to_string())
        });
        (r, warnings.into_inner())
    }

    #[test]
    fn targets_are_read() {
        let (c, _) = resolve(Some("file:///tmp/a%20b.jsonl"), &[]);
        let c = c.unwrap().unwrap();
        assert_eq!(c.transport, Transport::File("/tmp/a b.jsonl".into()));
        assert_eq!(c.namespace, "consentry://acme-data");
        let (c, _) = resolve(None, &[("CONSENTRY_OPENLINEAGE", "http://[::1]:5000/api/v1/lineage?x=1")]);
        let Transport::Http(h) = c.unwrap().unwrap().transport else { panic!("http") };
        assert_eq!((h.host.as_str(), h.port, h.path.as_str()), ("::1", 5000, "/api/v1/lineage?x=1"));
        assert_eq!(h.url(), "http://[::1]:5000/api/v1/lineage?x=1");
        let (c, _) = resolve(Some("events.jsonl"), &[("OPENLINEAGE_NAMESPACE", "prod")]);
        let c = c.unwrap().unwrap();
        assert!(matches!(&c.transport, Transport::File(p) if p.is_absolute() && p.ends_with("events.jsonl")));
        assert_eq!(c.namespace, "prod");
        assert!(resolve(None, &[]).0.unwrap().is_none());
    }

    #[test]
    fn a_bad_explicit_target_is_refused_before_any_work() {
        for t in ["https://collector/api", "kafka://x", "file://relative", "http://:80/", "http://h:port/", "httpé://x"]
        {
            let e = resolve(Some(t), &[]).0.unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::BadInput, "{t}");
        }
        // Byte 8 inside a character: refused, not a panic.
        assert!(HttpTarget::parse("https:/é", None).is_err());
        let e = resolve(Some("https://collector/api"), &[]).0.unwrap_err();
        assert!(e.to_string().contains("local OpenLineage collector or proxy"), "{e}");
    }

    #[test]
    fn the_clients_variables_are_honoured() {
        let (c, w) = resolve(None, &[("OPENLINEAGE_URL", "http://marquez:5000"), ("OPENLINEAGE_API_KEY", "s3cret")]);
        let Transport::Http(h) = c.unwrap().unwrap().transport else { panic!("http") };
        assert_eq!((h.host.as_str(), h.port, h.path.as_str()), ("marquez", 5000, "/api/v1/lineage"));
        assert_eq!(h.api_key.as_deref(), Some("s3cret"));
        assert!(!format!("{h:?}").contains("s3cret"), "the key stays out of Debug");
        assert!(w.is_empty());
        let (c, _) = resolve(None, &[("OPENLINEAGE_URL", "http://h/base/"), ("OPENLINEAGE_ENDPOINT", "events")]);
        let Transport::Http(h) = c.unwrap().unwrap().transport else { panic!("http") };
        assert_eq!(h.path, "/base/events");
        let (c, _) = resolve(None, &[("OPENLINEAGE_URL", "http://h/x"), ("OPENLINEAGE_ENDPOINT", "/abs")]);
        let Transport::Http(h) = c.unwrap().unwrap().transport else { panic!("http") };
        assert_eq!(h.path, "/abs");
        // A shared variable other tools read: a warning, not a refusal.
        let (c, w) = resolve(None, &[("OPENLINEAGE_URL", "https://marquez")]);
        assert!(c.unwrap().is_none());
        assert!(w[0].contains("HTTPS"), "{w:?}");
        let (c, _) = resolve(
            None,
            &[("OPENLINEAGE__TRANSPORT__TYPE", "file"), ("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH", "/var/ol.jsonl")],
        );
        assert_eq!(c.unwrap().unwrap().transport, Transport::File("/var/ol.jsonl".into()));
        let (c, w) = resolve(None, &[("OPENLINEAGE__TRANSPORT__TYPE", "kafka")]);
        assert!(c.unwrap().is_none() && w.len() == 1);
        // Disabled wins, as in the clients.
        let (c, _) = resolve(Some("/tmp/x"), &[("OPENLINEAGE_DISABLED", "TRUE")]);
        assert!(c.unwrap().is_none());
    }

    #[test]
    fn the_parent_run_is_read_from_the_right() {
        let id = "01890a5d-ac96-774b-bcce-b302099a8057";
        let (c, _) = resolve(Some("/tmp/x"), &[("OPENLINEAGE_PARENT_ID", &format!("airflow://prod/dag.task/{id}"))]);
        let p = c.unwrap().unwrap().parent.unwrap();
        assert_eq!((p.namespace.as_str(), p.name.as_str(), p.run_id.as_str()), ("airflow://prod", "dag.task", id));
        let (c, w) = resolve(Some("/tmp/x"), &[("OPENLINEAGE_PARENT_ID", "ns/job/not-a-uuid")]);
        assert!(c.unwrap().unwrap().parent.is_none());
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn run_ids_are_uuid_v7() {
        let a = new_run_id().unwrap();
        let b = new_run_id().unwrap();
        assert!(is_uuid(&a) && is_uuid(&b) && a != b, "{a} {b}");
        assert_eq!(&a[14..15], "7");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }

    #[test]
    fn status_lines_are_read() {
        assert_eq!(status_code(b"HTTP/1.1 201 Created\r\n"), Some(201));
        assert_eq!(status_code(b"SSH-2.0\r\n"), None);
    }

    /// Every facet schema URL names a vendored schema whose `$id` it is.
    #[test]
    fn facet_urls_name_the_vendored_schemas() {
        let vendored: &[(&str, &str)] = &[
            (facets::SCHEMA, include_str!("../openlineage/spec/facets/SchemaDatasetFacet.json")),
            (facets::VERSION, include_str!("../openlineage/spec/facets/DatasetVersionDatasetFacet.json")),
            (facets::DATASET_TYPE, include_str!("../openlineage/spec/facets/DatasetTypeDatasetFacet.json")),
            (
                facets::OUTPUT_STATISTICS,
                include_str!("../openlineage/spec/facets/OutputStatisticsOutputDatasetFacet.json"),
            ),
            (
                facets::INPUT_STATISTICS,
                include_str!("../openlineage/spec/facets/InputStatisticsInputDatasetFacet.json"),
            ),
            (facets::ERROR_MESSAGE, include_str!("../openlineage/spec/facets/ErrorMessageRunFacet.json")),
            (facets::PARENT, include_str!("../openlineage/spec/facets/ParentRunFacet.json")),
            (facets::PROCESSING_ENGINE, include_str!("../openlineage/spec/facets/ProcessingEngineRunFacet.json")),
            (facets::JOB_TYPE, include_str!("../openlineage/spec/facets/JobTypeJobFacet.json")),
            (SPEC, include_str!("../openlineage/spec/OpenLineage.json")),
            (CONSENTRY_FACETS, include_str!("../openlineage/ConsentryFacets.json")),
        ];
        for (url, text) in vendored {
            let v: Value = serde_json::from_str(text).unwrap();
            let (id, fragment) = url.split_once('#').unwrap_or((url, ""));
            assert_eq!(v["$id"], *id, "{url}");
            if let Some(def) = fragment.strip_prefix("/$defs/") {
                assert!(v["$defs"].get(def).is_some(), "{url}");
            }
        }
        for def in [
            "ConsentryManifestDatasetFacet",
            "ConsentryModelDatasetFacet",
            "ConsentryUnlearningDatasetFacet",
            "ConsentryUnlearningRunFacet",
        ] {
            let v: Value = serde_json::from_str(include_str!("../openlineage/ConsentryFacets.json")).unwrap();
            assert!(v["$defs"].get(def).is_some(), "{def}");
        }
    }
}
