//! Golden files: what the CLI shows its users, pinned byte for byte — every command's `--help`, the
//! `demo --json` report and the output and exit code of representative error paths — so a rewrite of
//! `crates/consentry/src` cannot change them unnoticed.
//!
//! The fixtures live in `tests/golden/`. After an INTENDED change, re-bless them and review the diff:
//!
//! ```text
//! CONSENTRY_BLESS=1 cargo test -p consentry --test golden
//! git diff crates/consentry/tests/golden
//! ```
//!
//! Run-dependent values are normalised, and only those (found by running the demo twice into fresh
//! directories, once on a single core, and diffing): see `normalise`.

mod common;

use common::text;
use consentry_app::DataDir;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// How to accept a change, printed with every mismatch.
const BLESS: &str = "CONSENTRY_BLESS=1 cargo test -p consentry --test golden";

/// The smallest demo worth pinning: every stage runs (the replies model is refused for too few common
/// replies, as it is at 3 000 members). Below 40 members some sizes fail for want of a message–reply
/// pair (35 and 37 do, 32 does not), so 100 keeps clear of that edge and runs in about 2 s in debug.
const DEMO_MEMBERS: &str = "100";

/// The binary on `data`, with a fixed terminal width (clap wraps help to it), no colour and no
/// inherited `CONSENTRY_*` settings (clap prints their values in the help).
fn consentry(data: &Path) -> Command {
    let mut c = common::command(data);
    c.env("COLUMNS", "100")
        .env("NO_COLOR", "1")
        .env_remove("LINES")
        .env_remove("CLICOLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE");
    c
}

fn run(mut c: Command) -> Output {
    c.output().expect("the consentry binary runs")
}

/// Compares outputs with the fixture files under one directory of `tests/golden`, or rewrites them when
/// `CONSENTRY_BLESS=1`; collects every mismatch and reports them all at the end.
struct Golden {
    root: PathBuf,
    bless: bool,
    seen: BTreeSet<PathBuf>,
    failures: Vec<String>,
}

impl Golden {
    fn new() -> Golden {
        Golden {
            root: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden"),
            bless: std::env::var_os("CONSENTRY_BLESS").is_some_and(|v| v == "1"),
            seen: BTreeSet::new(),
            failures: Vec::new(),
        }
    }

    /// Checks `actual` against the fixture `rel` (relative to `tests/golden`).
    fn check(&mut self, rel: &str, actual: &str) {
        let path = self.root.join(rel);
        assert!(self.seen.insert(path.clone()), "two outputs claim the fixture {rel}");
        let expected = std::fs::read_to_string(&path);
        if self.bless {
            if expected.as_deref().ok() != Some(actual) {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, actual).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            }
            return;
        }
        match expected {
            Err(e) => self.failures.push(format!("{rel}: no fixture ({e})")),
            Ok(expected) if expected != actual => {
                self.failures.push(format!("{rel}: {}", first_difference(&expected, actual)))
            }
            Ok(_) => {}
        }
    }

    /// Every file in directory `rel` must be one this run checked: a fixture of a command that is gone
    /// fails the test (blessing removes it).
    fn no_stale(&mut self, rel: &str) {
        let dir = self.root.join(rel);
        let Ok(entries) = std::fs::read_dir(&dir) else { return };
        for e in entries {
            let path = e.unwrap().path();
            if self.seen.contains(&path) {
                continue;
            }
            if self.bless {
                std::fs::remove_file(&path).unwrap_or_else(|e| panic!("removing {}: {e}", path.display()));
            } else {
                let name = path.strip_prefix(&self.root).unwrap_or(&path).display().to_string();
                self.failures.push(format!("{name}: fixture of nothing this test produces any more"));
            }
        }
    }

    fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} golden file(s) differ from the CLI's output:\n\n{}\n\nIf the change is intended, re-bless \
             the fixtures and review the diff:\n    {BLESS}\n    git diff crates/consentry/tests/golden",
            self.failures.len(),
            self.failures.join("\n\n")
        );
    }
}

/// The first line where `actual` departs from `expected`.
fn first_difference(expected: &str, actual: &str) -> String {
    let (mut e, mut a) = (expected.split('\n'), actual.split('\n'));
    for n in 1.. {
        match (e.next(), a.next()) {
            (Some(x), Some(y)) if x == y => {}
            (None, None) => break,
            (x, y) => {
                let show = |l: Option<&str>| l.map_or_else(|| "<end of output>".to_string(), |l| format!("{l:?}"));
                return format!("first difference at line {n}\n    expected: {}\n    actual:   {}", show(x), show(y));
            }
        }
    }
    "differs".to_string()
}

/// The subcommands a help text lists under "Commands:" (clap's own `help` aside).
fn subcommands(help: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut lines = help.lines().skip_while(|l| *l != "Commands:").skip(1);
    for line in lines.by_ref() {
        if line.trim().is_empty() || !line.starts_with(' ') {
            break;
        }
        // A name line is indented by two spaces; a wrapped description by more.
        if let Some(rest) = line.strip_prefix("  ")
            && !rest.starts_with(' ')
            && let Some(name) = rest.split_whitespace().next()
            && name != "help"
        {
            names.push(name.to_string());
        }
    }
    names
}

#[test]
fn help_of_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut golden = Golden::new();
    let mut paths: Vec<Vec<String>> = vec![vec![]];
    let mut covered = Vec::new();
    while let Some(path) = paths.pop() {
        let mut c = consentry(&data);
        c.args(&path).arg("--help");
        let o = run(c);
        let help = text(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "consentry {} --help: {}", path.join(" "), text(&o.stderr));
        assert_eq!(text(&o.stderr), "", "consentry {} --help wrote to stderr", path.join(" "));
        let name = if path.is_empty() { "consentry".to_string() } else { path.join("-") };
        golden.check(&format!("help/{name}.txt"), &help);
        let subs = subcommands(&help);
        // A command that takes a subcommand must list at least one: guards the parsing above.
        let usage_takes_command = help.lines().any(|l| l.contains("<COMMAND>"));
        assert!(!usage_takes_command || !subs.is_empty(), "no subcommands found in:\n{help}");
        for s in subs {
            let mut p = path.clone();
            p.push(s);
            paths.push(p);
        }
        covered.push(path.join(" "));
    }
    assert!(covered.len() > 30, "only {} commands found: {covered:?}", covered.len());
    let version = run({
        let mut c = consentry(&data);
        c.arg("--version");
        c
    });
    assert_eq!(version.status.code(), Some(0));
    golden.check("help/version.txt", &text(&version.stdout));
    golden.no_stale("help");
    golden.finish();
    assert!(!data.exists(), "--help must not create the data directory");
}

/// A JSON value that keeps its keys in document order (the CLI's order is part of its output; the
/// workspace's `serde_json::Value` sorts keys).
#[derive(Clone, Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
                Ok(Json::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
                Ok(Json::Int(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
                Ok(Json::Int(n.into()))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Json, E> {
                Ok(Json::Float(n))
            }
            fn visit_str<E>(self, s: &str) -> Result<Json, E> {
                Ok(Json::Str(s.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Json, A::Error> {
                let mut v = Vec::new();
                while let Some(e) = a.next_element()? {
                    v.push(e);
                }
                Ok(Json::Arr(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Json, A::Error> {
                let mut v = Vec::new();
                while let Some(e) = a.next_entry()? {
                    v.push(e);
                }
                Ok(Json::Obj(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Int(n) => s.serialize_i128(*n),
            Json::Float(f) => s.serialize_f64(*f),
            Json::Str(t) => s.serialize_str(t),
            Json::Arr(v) => {
                let mut q = s.serialize_seq(Some(v.len()))?;
                for e in v {
                    q.serialize_element(e)?;
                }
                q.end()
            }
            Json::Obj(v) => {
                let mut m = s.serialize_map(Some(v.len()))?;
                for (k, e) in v {
                    m.serialize_entry(k, e)?;
                }
                m.end()
            }
        }
    }
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(v) => v.iter().find(|(k, _)| k == key).map(|(_, e)| e),
            _ => None,
        }
    }
}

/// Durations measured by the run (wall clock): `*seconds` of import, gate, training and retrains, and
/// the withdrawal → removal latencies (0 s on an idle machine, 1 s on a loaded one). `deadline_*` keys
/// are settings and stay exact.
const TIMINGS: &[&str] = &["seconds", "train_seconds", "max_latency_secs", "mean_latency_secs"];
/// Memory measured by the run: each demo stage's peak resident set (`null` where the kernel does not report
/// it, which is run-dependent too), and the size of the report it wrote (its times and durations vary).
const MEASURED: &[&str] = &["peak_rss_bytes", "report_bytes"];
/// Unix times read from the clock: creation of datasets and models, signed tree heads, retrains, the
/// audit's "now".
const TIMES: &[&str] = &["created", "timestamp", "completed_at", "now", "next_deadline"];
/// Hex values that change from run to run: the ledger's Ed25519 key is random (`public_key`, `log_id`,
/// signatures), entries carry their recording time (`checkpoint_root`, `tree_root`, `root_hash`,
/// `chain_hash`), and a manifest or model id hashes all of these and its creation time
/// (`manifest_blake3`, `old_model`, `new_model`). Every other hash (files, commitments, shard keys,
/// the policy) is deterministic and stays exact.
const RUN_HASHES: &[&str] = &[
    "public_key",
    "log_id",
    "signature",
    "checkpoint_root",
    "tree_root",
    "root_hash",
    "chain_hash",
    "manifest_blake3",
    "old_model",
    "new_model",
];
/// Arrays listed in an order that follows random model ids (the registry orders models by creation
/// second, then id): sorted by the given key, which is deterministic.
const SORT_BY: &[(&str, &str, &str)] = &[("retrains", "kind", "unlearning"), ("models", "id", "audit")];

/// Replaces the run-dependent values of the demo's report by typed placeholders: `<data>` for the data
/// directory, `<float>`/`<int>` for timings, `<bytes>` for measured memory, `<time>` for clock readings,
/// `<hexN>` for run-dependent hashes. A value of an unexpected type or shape is left as it is, so the
/// fixture catches it. Floats are rounded to 9 decimals: evaluation metrics are sums whose order follows
/// the thread count (the last bits differ on one core).
fn normalise(v: &mut Json, parent: &str, key: &str, data: &str) {
    match v {
        Json::Str(s) => {
            if let Some(rest) = s.strip_prefix(data) {
                *s = format!("<data>{rest}");
            } else if RUN_HASHES.contains(&key) && !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()) {
                *s = format!("<hex{}>", s.len());
            }
        }
        Json::Float(_) if TIMINGS.contains(&key) => *v = Json::Str("<float>".into()),
        Json::Int(_) if TIMINGS.contains(&key) => *v = Json::Str("<int>".into()),
        Json::Int(_) | Json::Null if MEASURED.contains(&key) => *v = Json::Str("<bytes>".into()),
        Json::Int(n) if TIMES.contains(&key) && *n > 1_600_000_000 => *v = Json::Str("<time>".into()),
        Json::Float(f) => *f = format!("{f:.9}").parse().unwrap(),
        Json::Arr(items) => {
            for e in items.iter_mut() {
                normalise(e, parent, key, data);
            }
            if let Some((_, by, _)) = SORT_BY.iter().find(|(k, _, p)| *k == key && *p == parent) {
                items.sort_by_key(|e| format!("{:?}", e.get(by)));
            }
        }
        Json::Obj(entries) => {
            for (k, e) in entries.iter_mut() {
                normalise(e, key, k, data);
            }
        }
        Json::Null | Json::Bool(_) | Json::Int(_) => {}
    }
}

/// One error-path invocation: its fixture name, where it runs, its arguments.
struct Case<'a> {
    name: &'a str,
    data: &'a Path,
    args: &'a [&'a str],
}

/// The invocation, exit code, stdout and stderr of a run, with the temporary root replaced by `<tmp>`.
fn transcript(case: &Case, o: &Output, tmp: &str) -> String {
    let mut args = vec!["--data".to_string(), case.data.display().to_string()];
    args.extend(case.args.iter().map(|a| a.to_string()));
    format!(
        "$ consentry {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        o.status.code().map_or_else(|| "killed by a signal".to_string(), |c| c.to_string()),
        text(&o.stdout),
        text(&o.stderr)
    )
    .replace(tmp, "<tmp>")
}

#[test]
fn demo_json_and_error_paths() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let tmp = root.to_str().expect("the temporary directory's path is UTF-8");
    let demo = root.join("demo");
    let mut golden = Golden::new();

    // The whole pipeline, once.
    let o = run({
        let mut c = consentry(&demo);
        c.args(["--json", "demo", "--members", DEMO_MEMBERS]);
        c
    });
    assert_eq!(o.status.code(), Some(0), "demo failed: {}", text(&o.stderr));
    assert_eq!(text(&o.stderr), "", "demo --json writes nothing to stderr");
    let mut report: Json = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("demo --json: not JSON ({e}): {}", text(&o.stdout)));
    normalise(&mut report, "", "", demo.to_str().unwrap());
    golden.check("demo.json", &(serde_json::to_string_pretty(&report).unwrap() + "\n"));

    // Inputs for the error paths.
    let empty = root.join("empty");
    let file = root.join("file.txt");
    std::fs::write(&file, "not a directory\n").unwrap();
    let garbage = root.join("garbage.json");
    std::fs::write(&garbage, "garbage\n").unwrap();
    let bad_policy = root.join("bad.toml");
    let policy =
        consentry_policy::DEFAULT_POLICY.replace("\"user.professional.skills\",\n", "\"user.profesional.skills\",\n");
    assert_ne!(policy, consentry_policy::DEFAULT_POLICY);
    std::fs::write(&bad_policy, policy).unwrap();
    let receipt = root.join("receipt.json");
    let o = run({
        let mut c = consentry(&demo);
        c.args(["--quiet", "ledger", "receipt", "--event", "264", "--out", receipt.to_str().unwrap()]);
        c
    });
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let json = std::fs::read_to_string(&receipt).unwrap();
    let altered = root.join("altered.json");
    let controller = "\"pii_controller\": \"Example";
    assert!(json.contains(controller), "{json}");
    std::fs::write(&altered, json.replacen(controller, "\"pii_controller\": \"Xxample", 1)).unwrap();
    let public_key = DataDir::new(&demo).public_key_file();
    let (garbage, altered, public_key) =
        (garbage.to_str().unwrap(), altered.to_str().unwrap(), public_key.to_str().unwrap());
    let jobs = "train_ai_system.job_recommendations";
    let out = root.join("out");
    let out = out.to_str().unwrap();

    let cases = [
        Case { name: "unknown-subcommand", data: &empty, args: &["no-such-verb"] },
        Case { name: "synth-members-not-a-number", data: &empty, args: &["synth", "--members", "many"] },
        Case { name: "data-is-a-file", data: &file, args: &["ledger", "init"] },
        Case { name: "ledger-verify-no-ledger", data: &empty, args: &["ledger", "verify"] },
        Case { name: "gate-no-ledger", data: &empty, args: &["gate", "--purpose", jobs, "--out", out] },
        // A relative file name: miette wraps its report to a width, so the path's length must not vary.
        Case { name: "policy-check-unknown-category", data: &empty, args: &["policy", "check", "bad.toml"] },
        Case {
            name: "policy-check-unknown-category-json",
            data: &empty,
            args: &["--json", "policy", "check", "bad.toml"],
        },
        Case {
            name: "ledger-append-unknown-purpose",
            data: &demo,
            args: &["ledger", "append", "--member", "5", "--purpose", "train_ai_system.nope", "--action", "grant"],
        },
        Case {
            name: "verify-receipt-garbage",
            data: &empty,
            args: &["ledger", "verify-receipt", garbage, "--public-key", public_key],
        },
        Case {
            name: "verify-receipt-altered",
            data: &empty,
            args: &["ledger", "verify-receipt", altered, "--public-key", public_key],
        },
        Case { name: "gate-verify-not-a-dataset", data: &demo, args: &["gate", "verify", tmp] },
    ];
    let check = |golden: &mut Golden, case: &Case| {
        let mut c = consentry(case.data);
        c.args(case.args).current_dir(root);
        let o = run(c);
        golden.check(&format!("errors/{}.txt", case.name), &transcript(case, &o, tmp));
    };
    for case in &cases {
        check(&mut golden, case);
    }
    assert!(!empty.exists(), "no error path creates the data directory");

    // Last, as it spoils the demo's ledger: a rewritten event fails verification (exit 1).
    let conn = rusqlite::Connection::open(DataDir::new(&demo).ledger_db()).unwrap();
    conn.execute("UPDATE events SET member_id = member_id + 1 WHERE seq = 150", []).unwrap();
    drop(conn);
    check(&mut golden, &Case { name: "ledger-verify-tampered", data: &demo, args: &["ledger", "verify"] });

    golden.no_stale("errors");
    golden.finish();
}
