//! A throwaway PostgreSQL cluster for tests.
//!
//! The first test of a test binary that asks for PostgreSQL starts one
//! cluster (`initdb` + `pg_ctl start`) in a fresh temporary directory, on a
//! free TCP port on 127.0.0.1; every test then gets its own database
//! (`CREATE DATABASE t_<n>`), so tests are independent and can run in
//! parallel. Teardown does not rely on destructors of statics (Rust runs none
//! at exit): a small watchdog process, started with the cluster in its own
//! process group, waits for the test process to end — normally, by panic, or
//! by SIGKILL — then stops the server (`pg_ctl stop -m immediate`) and removes
//! the directory.
//!
//! Binaries are looked up on `PATH`, then under `/usr/lib/postgresql/*/bin`
//! (newest version first). `initdb` refuses to run as root, so as root the
//! binaries run as the `postgres` user through `runuser`. With no binaries,
//! tests are skipped with a message — unless `CI=true`, where that is a
//! failure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A running cluster; lives until the test process ends.
pub struct Cluster {
    /// Temporary directory holding the data directory, the socket and the log.
    pub base: PathBuf,
    /// The data directory.
    pub data: PathBuf,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// Directory of `initdb`, `pg_ctl` and `postgres`.
    pub bin: PathBuf,
    /// True when the binaries run as the `postgres` user (the tests run as root).
    pub as_postgres: bool,
    /// How long `initdb` plus `pg_ctl start` took.
    pub startup: Duration,
}

/// One fresh database in the shared cluster.
pub struct PgDb {
    /// Connection string for the database.
    pub url: String,
    /// Database name.
    pub name: String,
    /// The cluster it lives in.
    pub cluster: &'static Cluster,
}

impl PgDb {
    /// A new client session on this database (for tampering with rows directly).
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).expect("connect to the test database")
    }
}

static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(1);

/// A fresh database on the shared test cluster, or `None` (after saying so)
/// when PostgreSQL is not installed and `CI` is not `true`.
pub fn pg() -> Option<PgDb> {
    let cluster = CLUSTER.get_or_init(start_cluster).as_ref()?;
    let n = NEXT_DB.fetch_add(1, Ordering::Relaxed);
    let name = format!("t_{}_{n}", std::process::id());
    let mut admin = postgres::Client::connect(&cluster.url("postgres"), postgres::NoTls)
        .unwrap_or_else(|e| panic!("connect to the test cluster on port {}: {e}", cluster.port));
    admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    Some(PgDb { url: cluster.url(&name), name, cluster })
}

impl Cluster {
    /// Connection string for database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|rest| rest.split_whitespace().next().map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// The directory holding `initdb` and `pg_ctl`.
fn find_bin_dir() -> Option<PathBuf> {
    if let Some(initdb) = find_on_path("initdb") {
        let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
        if let Some(dir) = real.parent()
            && dir.join("pg_ctl").is_file()
        {
            return Some(dir.to_path_buf());
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

/// A command for a PostgreSQL binary, run as `postgres` when we are root.
fn pg_command(as_postgres: bool, exe: &Path) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.arg("-u").arg("postgres").arg("--").arg(exe);
        c
    } else {
        Command::new(exe)
    }
}

fn run(mut cmd: Command, what: &str) -> Result<(), String> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("{what}: cannot run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local address").port()
}

fn start_cluster() -> Option<Cluster> {
    let Some(bin) = find_bin_dir() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but no PostgreSQL found (initdb/pg_ctl on PATH or under /usr/lib/postgresql/*/bin)");
        }
        // Straight to the stream, past the test harness's output capture, so the skip is seen.
        let _ = writeln!(
            std::io::stderr(),
            "skipping PostgreSQL tests: no PostgreSQL found (initdb/pg_ctl on PATH or under /usr/lib/postgresql/*/bin)"
        );
        return None;
    };
    let started = Instant::now();
    let as_postgres = is_root();
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let base = std::env::temp_dir().join(format!("consentry-pg-{}-{stamp}", std::process::id()));
    std::fs::create_dir_all(&base).expect("create the cluster directory");
    if as_postgres {
        let mut chown = Command::new("chown");
        chown.arg("-R").arg("postgres").arg(&base);
        run(chown, "chown -R postgres").unwrap_or_else(|e| panic!("{e} (is there a `postgres` user?)"));
    }
    let data = base.join("data");
    let mut initdb = pg_command(as_postgres, &bin.join("initdb"));
    initdb.arg("-D").arg(&data).args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]);
    if let Err(e) = run(initdb, "initdb") {
        let _ = std::fs::remove_dir_all(&base);
        panic!("{e}");
    }
    // The watchdog: once this process is gone, stop the server and remove everything.
    spawn_watchdog(&bin, as_postgres, &data, &base);
    let log = base.join("server.log");
    let mut last_err = String::new();
    for _ in 0..5 {
        let port = free_port();
        let opts = format!(
            "-c fsync=on -c listen_addresses=127.0.0.1 -p {port} -k '{}' -c max_connections=200 -c shared_buffers=32MB",
            base.display()
        );
        let mut ctl = pg_command(as_postgres, &bin.join("pg_ctl"));
        ctl.arg("-D").arg(&data).arg("-l").arg(&log).args(["-w", "-t", "60", "-o", &opts, "start"]);
        match run(ctl, "pg_ctl start") {
            Ok(()) => {
                let c = Cluster { base, data, port, bin, as_postgres, startup: started.elapsed() };
                eprintln!(
                    "test PostgreSQL cluster on 127.0.0.1:{port} in {} (started in {:?})",
                    c.base.display(),
                    c.startup
                );
                return Some(c);
            }
            Err(e) => {
                // Most likely the port was taken between choosing and binding; try another.
                let server_log = std::fs::read_to_string(&log).unwrap_or_default();
                last_err = format!("{e}\nserver log:\n{server_log}");
            }
        }
    }
    panic!("could not start the test PostgreSQL cluster: {last_err}");
}

// Never waited for on purpose: the watchdog must outlive this process.
#[allow(clippy::zombie_processes)]
fn spawn_watchdog(bin: &Path, as_postgres: bool, data: &Path, base: &Path) {
    use std::os::unix::process::CommandExt;
    let stop_prefix = if as_postgres { "runuser -u postgres -- " } else { "" };
    let script = format!(
        "while kill -0 \"$1\" 2>/dev/null; do sleep 0.2; done; \
         {stop_prefix}\"$2\" stop -D \"$3\" -m immediate -w >/dev/null 2>&1; rm -rf \"$4\""
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("consentry-pg-watchdog")
        .arg(std::process::id().to_string())
        .arg(bin.join("pg_ctl"))
        .arg(data)
        .arg(base)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a Ctrl-C aimed at the tests does not kill the cleanup.
        .process_group(0)
        .spawn()
        .expect("spawn the cluster watchdog");
}
