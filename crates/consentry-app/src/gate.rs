//! Gate use cases: materialise a purpose's training set from a snapshot and register it, verify one by
//! recomputing it, merge partitions; and the two ends of a gate another engine (Spark) runs: the spec its workers
//! apply, and the dataset assembled from their partials.

use crate::datadir::DataDir;
use crate::error::{AppError, Context as _, Result};
use crate::openlineage::{self as ol, JobKind};
use crate::progress::Progress;
use crate::session::Session;
use consentry_gate::distributed::{GateSpec, Partial};
use consentry_gate::materialize::{GateOptions, GateRequest, build_detector};
use consentry_gate::{Difference, Manifest, Sources};
use consentry_ledger::position::At;
use consentry_ledger::snapshot::Snapshot;
use std::path::{Path, PathBuf};

/// The name manifests record for the built-in declaration of the synthetic network.
pub const BUILTIN_SOURCES: &str = "synthetic network (built in)";

/// A source declaration loaded, with the BLAKE3 of its text (recorded in manifests).
pub struct LoadedSources {
    /// The parsed declaration.
    pub sources: Sources,
    /// BLAKE3 of the declaration's text.
    pub declaration_hash: String,
}

/// What `gate` is asked to do.
#[derive(Debug, Clone)]
pub struct GateRun {
    /// Purpose key.
    pub purpose: String,
    /// The ledger state to cut from.
    pub at: At,
    /// A source declaration file [default: the synthetic network's, over the data directory's network].
    pub sources: Option<PathBuf>,
    /// Directory relative source paths resolve against.
    pub base: Option<PathBuf>,
    /// The dataset directory to create.
    pub out: PathBuf,
    /// Shard function, partition and threads.
    pub options: GateOptions,
    /// The withdrawal deadline the models must meet: when given, it sizes the shard function
    /// ([`shards_for_deadline`]) in place of `options.shards`.
    pub deadline_secs: Option<i64>,
}

/// The shard count for a dataset cut from `snap` whose models must meet a withdrawal deadline of `deadline_secs`:
/// `consentry_learn::train::shards_for_purpose` over the members the snapshot allows.
pub fn shards_for_deadline(snap: &consentry_ledger::snapshot::Snapshot, deadline_secs: i64) -> u32 {
    consentry_learn::train::shards_for_purpose(snap.purpose_key(), snap.allowed().len(), deadline_secs)
}

/// A dataset the gate wrote.
#[derive(Debug)]
pub struct GateOutcome {
    /// Its manifest.
    pub manifest: Manifest,
    /// Wall-clock seconds of the materialisation (none for a merge).
    pub seconds: Option<f64>,
    /// Its registry id (none for a partial result, which is not a dataset until merged).
    pub dataset_id: Option<String>,
}

/// What `gate verify` found.
#[derive(Debug)]
pub struct GateVerification {
    /// The manifest checked.
    pub manifest: Manifest,
    /// Every difference between the files, the manifest and a recomputation (empty: identical).
    pub differences: Vec<Difference>,
}

/// `I/N` of `--partition`.
pub fn parse_partition(s: &str) -> Result<(u32, u32)> {
    let bad = || AppError::bad_input(format!("--partition `{s}`: write I/N with 0 ≤ I < N, e.g. 0/4"));
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (u32, u32) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

/// Gate options from front-end values.
pub fn options(threads: Option<usize>, shards: u32, partition: Option<(u32, u32)>) -> GateOptions {
    let mut o = GateOptions { shards, partition, ..GateOptions::default() };
    if let Some(t) = threads {
        o.threads = t.max(1);
    }
    o
}

impl DataDir {
    /// Loads a declaration: a file, or the built-in one over the network directory.
    pub fn load_sources(&self, file: Option<&Path>, base: Option<&Path>) -> Result<LoadedSources> {
        let (name, text, dir) = match file {
            Some(f) => {
                let text = std::fs::read_to_string(f)
                    .map_err(|e| AppError::bad_input(format!("cannot read source declaration {}: {e}", f.display())))?;
                let dir = f.parent().map(Path::to_path_buf).unwrap_or_default();
                (self.relative_name(f), text, dir)
            }
            None => (BUILTIN_SOURCES.to_string(), consentry_gate::sources::SYNTHETIC.to_string(), self.network_dir()),
        };
        let base = base.map(Path::to_path_buf).unwrap_or(dir);
        let sources = Sources::parse(&name, &text, &base)?;
        Ok(LoadedSources { sources, declaration_hash: blake3::hash(text.as_bytes()).to_hex().to_string() })
    }
}

impl Session {
    /// `gate`: materialises a purpose's dataset and registers it (a partial result is registered after merging).
    /// With lineage configured, the run is an OpenLineage run of job `gate.<purpose>` (see [`crate::openlineage`]).
    pub fn gate(&self, run: GateRun, progress: &dyn Progress) -> Result<GateOutcome> {
        let lineage = self.lineage_run(format!("gate.{}", run.purpose), JobKind::Gate);
        let out = run.out.clone();
        let start = || ol::Parts {
            inputs: vec![self.ledger_dataset(None)],
            outputs: vec![ol::file_dataset(&out)],
            ..Default::default()
        };
        let done = |(g, loaded): &(GateOutcome, LoadedSources)| {
            let mut inputs = vec![self.ledger_dataset(Some(g.manifest.ledger.position))];
            inputs.extend(ol::source_inputs(&loaded.sources, &g.manifest));
            ol::Parts {
                inputs,
                outputs: vec![ol::gated_output(&out, &g.manifest, g.dataset_id.as_deref())],
                ..Default::default()
            }
        };
        lineage.wrap(start, || self.gate_run(run, progress), done).map(|(g, _)| g)
    }

    /// The work of [`Session::gate`], with the declaration it read.
    fn gate_run(&self, run: GateRun, progress: &dyn Progress) -> Result<(GateOutcome, LoadedSources)> {
        if let Some(done) = self.finish_interrupted_gate(&run)? {
            return Ok(done);
        }
        consentry_gate::check_output(&run.out)?;
        if run.options.partition.is_some() && run.at == At::Now {
            return Err(AppError::bad_input(
                "--partition needs --at SEQ|TIME so that every partition is cut from the same ledger state",
            ));
        }
        let loaded = self.dir().load_sources(run.sources.as_deref(), run.base.as_deref())?;
        let snap = self.snapshot(&run.purpose, run.at)?;
        let mut options = run.options;
        if let Some(d) = run.deadline_secs {
            if d < 0 {
                return Err(AppError::bad_input("--deadline is seconds, 0 or more"));
            }
            options.shards = shards_for_deadline(&snap, d);
        }
        let (manifest, seconds) = self.materialize(&loaded, &snap, &run.out, options, progress)?;
        let dataset_id = self.register_gated(&manifest, &run.out)?;
        Ok((GateOutcome { manifest, seconds: Some(seconds), dataset_id }, loaded))
    }

    /// A run killed between the rename that put its dataset in place and its registration leaves a complete dataset
    /// the registry does not know; the same `gate` run again registers it instead of refusing the taken output —
    /// but only a dataset of the purpose asked for that `gate verify` recomputes identically from this ledger and
    /// the sources (exactly what the interrupted run would have registered). Anything else stays refused.
    fn finish_interrupted_gate(&self, run: &GateRun) -> Result<Option<(GateOutcome, LoadedSources)>> {
        let out = &run.out;
        if run.options.partition.is_some()
            || !out.is_dir()
            || std::fs::symlink_metadata(out).is_ok_and(|m| m.file_type().is_symlink())
            || !out.join(consentry_gate::manifest::MANIFEST_FILE).is_file()
            || !self.has_ledger()
            || self.registry()?.registered_dataset(out).is_ok()
        {
            return Ok(None);
        }
        let Ok(v) = self.gate_verify(out, run.sources.as_deref(), run.base.as_deref()) else { return Ok(None) };
        if !v.differences.is_empty() || v.manifest.purpose != run.purpose {
            return Ok(None);
        }
        let loaded = self.dir().load_sources(run.sources.as_deref(), run.base.as_deref())?;
        let dataset_id = self.register_gated(&v.manifest, out)?;
        // What the killed run left beside the dataset (its lock file) goes too.
        consentry_gate::materialize::remove_stale_partials(out);
        Ok(Some((GateOutcome { manifest: v.manifest, seconds: None, dataset_id }, loaded)))
    }

    /// Materialises one purpose's dataset from a snapshot into `out` (not registered).
    pub fn materialize(
        &self,
        loaded: &LoadedSources,
        snap: &Snapshot,
        out: &Path,
        options: GateOptions,
        progress: &dyn Progress,
    ) -> Result<(Manifest, f64)> {
        let ledger = self.ledger()?;
        let checkpoint = ledger.checkpoint_covering(snap.position())?;
        let (detector, names) = build_detector(&loaded.sources)?;
        let req = GateRequest {
            policy: ledger.policy(),
            snapshot: snap,
            checkpoint: Some(checkpoint),
            sources: &loaded.sources,
            declaration_hash: loaded.declaration_hash.clone(),
            detector: Some(&detector),
            member_names: names,
            options,
            created: consentry_ledger::now(),
        };
        let outcome = consentry_gate::materialize(&req, Some(out), progress)
            .map_err(AppError::from)
            .with_context(|| format!("materialising {} into {}", snap.purpose_key(), out.display()))?;
        Ok((outcome.manifest, outcome.seconds))
    }

    /// Records a complete dataset in the lineage registry; its id (none for a partial result).
    pub fn register_gated(&self, m: &Manifest, out: &Path) -> Result<Option<String>> {
        if m.partition.is_some() {
            return Ok(None);
        }
        let rec = self
            .registry()?
            .register_dataset_dir(out)
            .map_err(AppError::from)
            .with_context(|| format!("registering {} in the lineage registry", out.display()))?;
        Ok(Some(rec.id))
    }

    /// `gate merge`: combines the partial results of `gate --partition I/N` into one registered dataset.
    /// With lineage configured, an OpenLineage run of job `gate.merge`: the partials in, the dataset out.
    pub fn gate_merge(&self, partials: &[PathBuf], out: &Path) -> Result<GateOutcome> {
        let lineage = self.lineage_run("gate.merge".into(), JobKind::Gate);
        let start = || ol::Parts {
            inputs: partials.iter().map(|p| ol::gated_input(p)).collect(),
            outputs: vec![ol::file_dataset(out)],
            ..Default::default()
        };
        let done = |g: &GateOutcome| ol::Parts {
            inputs: partials.iter().map(|p| ol::file_dataset(p)).collect(),
            outputs: vec![ol::gated_output(out, &g.manifest, g.dataset_id.as_deref())],
            ..Default::default()
        };
        let work = || {
            let manifest = consentry_gate::merge(partials, out, consentry_ledger::now())?;
            let dataset_id = self.register_gated(&manifest, out)?;
            Ok(GateOutcome { manifest, seconds: None, dataset_id })
        };
        lineage.wrap(start, work, done)
    }

    /// `gate verify`: the files against the manifest, the evaluation time against the log, and a recomputation
    /// from the ledger and the sources against the files.
    pub fn gate_verify(&self, dir: &Path, sources: Option<&Path>, base: Option<&Path>) -> Result<GateVerification> {
        let (m, mut diffs) = consentry_gate::verify_files(dir)?;
        let file = match sources {
            Some(f) => Some(f.to_path_buf()),
            None if m.sources.declaration == BUILTIN_SOURCES => None,
            None => Some(self.dir().resolve_name(&m.sources.declaration)),
        };
        let loaded = self.dir().load_sources(file.as_deref(), base)?;
        // The manifest records source paths relative to the base the gate was given, which it does not record: a
        // dataset gated with `--base DIR` verifies only with the same `--base`, and a bare "no such file" would
        // not say so.
        if let Some(missing) = m.sources.files.iter().find(|f| !loaded.sources.base.join(&f.path).exists()) {
            let hint = if base.is_none() {
                "; if the dataset was gated with --base DIR (or --sources), pass the same to `gate verify`"
            } else {
                "; is --base the directory the dataset was gated with?"
            };
            return Err(AppError::bad_input(format!(
                "source file {} of table `{}` is not at {}{hint}",
                missing.path,
                missing.table,
                loaded.sources.base.join(&missing.path).display()
            )));
        }
        let ledger = self.ledger()?;
        // A dataset evaluated in the future (or after the log moved on) is not recomputed: that would only repeat it.
        let times = consentry_gate::verify_times(&m, ledger.store(), consentry_ledger::now())?;
        if times.is_empty() {
            let snap = self.snapshot_of(&m)?;
            let (detector, names) = build_detector(&loaded.sources)?;
            let req = GateRequest {
                policy: ledger.policy(),
                snapshot: &snap,
                checkpoint: m.ledger.checkpoint.clone(),
                sources: &loaded.sources,
                declaration_hash: loaded.declaration_hash,
                detector: m.redaction.enabled.then_some(&detector),
                member_names: names,
                options: GateOptions::default(),
                created: m.created,
            };
            diffs.extend(consentry_gate::verify_recompute(&m, req)?);
        }
        diffs.extend(times);
        if let Some(c) = &m.ledger.checkpoint
            && !ledger.key_chain()?.verify(c)
        {
            diffs.push(Difference {
                what: "checkpoint signature".into(),
                expected: "signed by this ledger's key".into(),
                found: "invalid".into(),
            });
        }
        Ok(GateVerification { manifest: m, differences: diffs })
    }

    /// The snapshot at a manifest's ledger position and time.
    fn snapshot_of(&self, m: &Manifest) -> Result<Snapshot> {
        self.snapshot_at(&m.purpose, m.ledger.position, m.ledger.at, "the manifest")
    }

    /// The snapshot of `purpose` at a recorded ledger position and time (`what` names the record in errors).
    fn snapshot_at(&self, purpose: &str, position: u64, at: i64, what: &str) -> Result<Snapshot> {
        let ledger = self.ledger()?;
        let pid = ledger
            .policy()
            .purpose_id(purpose)
            .ok_or_else(|| AppError::bad_input(format!("the policy in force has no purpose `{purpose}`")))?;
        let len = ledger.store().len()?;
        if position > len {
            return Err(AppError::bad_input(format!(
                "{what} names ledger position {position}, but this ledger holds {len} events: wrong --data?"
            )));
        }
        Ok(ledger.snapshot(pid, position, at)?)
    }

    /// A gate another engine runs, first half: the spec its workers apply to every partition of every table
    /// (see [`consentry_gate::distributed`]). `At::Now` is resolved here, so every worker sees one ledger state,
    /// which the spec records. Without `redact`, free text passes unredacted (benchmarks only). Hashes the source
    /// files (slow on big inputs, as the single-machine gate is).
    pub fn gate_spec(
        &self,
        purpose: &str,
        at: At,
        sources: Option<&Path>,
        base: Option<&Path>,
        redact: bool,
        shards: u32,
    ) -> Result<GateSpec> {
        let loaded = self.dir().load_sources(sources, base)?;
        let snap = self.snapshot(purpose, at)?;
        let ledger = self.ledger()?;
        let checkpoint = ledger.checkpoint_covering(snap.position())?;
        // The workers build the detector from the names; the driver reads them once and builds none.
        let names = if redact { Some(consentry_gate::materialize::member_names(&loaded.sources)?) } else { None };
        let req = GateRequest {
            policy: ledger.policy(),
            snapshot: &snap,
            checkpoint: Some(checkpoint),
            sources: &loaded.sources,
            declaration_hash: loaded.declaration_hash.clone(),
            detector: None,
            member_names: 0,
            options: options(None, shards, None),
            created: consentry_ledger::now(),
        };
        // The gate's errors name the file, table or column at fault: passed on as they are.
        Ok(GateSpec::build(&req, names)?)
    }

    /// A gate another engine ran, second half: checks that `spec` was cut from this ledger (the snapshot at its
    /// position has the same tree root, allowed set and counts, its checkpoint carries this ledger's signature),
    /// assembles the workers' partials and the part files in `staging` into the dataset at `out` (renamed there
    /// only when complete) and registers it. The manifest equals the one `gate` writes for the same sources and
    /// position, except for the data files and the creation time.
    pub fn gate_finish(
        &self,
        spec: &GateSpec,
        partials: Vec<Partial>,
        staging: &Path,
        out: &Path,
    ) -> Result<GateOutcome> {
        // With lineage configured, an OpenLineage run of the purpose's gate job around the assembly (the engine's
        // job ran before; its work is in the partials): the dataset out, with the manifest's commitments.
        let lineage = self.lineage_run(format!("gate.{}", spec.purpose()), JobKind::Gate);
        let start = || ol::Parts { outputs: vec![ol::file_dataset(out)], ..Default::default() };
        let done = |g: &GateOutcome| ol::Parts {
            outputs: vec![ol::gated_output(out, &g.manifest, g.dataset_id.as_deref())],
            ..Default::default()
        };
        lineage.wrap(start, || self.assemble_distributed(spec, partials, staging, out), done)
    }

    /// [`Session::gate_finish`] without the lineage run.
    fn assemble_distributed(
        &self,
        spec: &GateSpec,
        partials: Vec<Partial>,
        staging: &Path,
        out: &Path,
    ) -> Result<GateOutcome> {
        consentry_gate::check_output(out)?;
        let ledger = self.ledger()?;
        let l = spec.ledger();
        let len = ledger.store().len()?;
        if l.position > len {
            return Err(AppError::bad_input(format!(
                "the snapshot in this job was cut from a different ledger (or edited): it names ledger position {}, \
                 but this ledger ({}) holds {len} events; pass the session of the data directory it was cut from",
                l.position,
                self.dir().root().display()
            )));
        }
        let snap = self.snapshot_at(spec.purpose(), l.position, l.at, "the gate spec")?;
        let (_, allowed_hash) = snap.allowed_bytes()?;
        let counts = snap.counts();
        let mut differs = Vec::new();
        if hex::encode(snap.tree_root) != l.tree_root {
            differs.push(format!(
                "tree root at position {} is {}, the spec says {}",
                l.position,
                hex::encode(snap.tree_root),
                l.tree_root
            ));
        }
        if hex::encode(allowed_hash) != spec.snapshot().hash
            || counts.allowed != spec.snapshot().allowed
            || counts.members != spec.snapshot().members
        {
            differs.push(format!(
                "{} of {} members allowed here, the spec says {} of {}",
                counts.allowed,
                counts.members,
                spec.snapshot().allowed,
                spec.snapshot().members
            ));
        }
        if ledger.policy().hash != spec.policy().hash {
            differs.push(format!(
                "policy {} in force, the spec was cut under {}",
                ledger.policy().version,
                spec.policy().version
            ));
        }
        if let Some(c) = &l.checkpoint
            && !ledger.key_chain()?.verify(c)
        {
            differs.push("its checkpoint is not signed by this ledger's key".into());
        }
        if !differs.is_empty() {
            return Err(AppError::bad_input(format!(
                "the snapshot in this job was cut from a different ledger (or edited): {}",
                differs.join("; ")
            )));
        }
        let manifest = consentry_gate::distributed::assemble(spec, partials, staging, out, consentry_ledger::now())?;
        let dataset_id = self.register_gated(&manifest, out)?;
        Ok(GateOutcome { manifest, seconds: None, dataset_id })
    }
}
