//! Model use cases: train and register, the serving guard (a superseded, altered or unregistered model is not
//! served), recommendations, reply suggestions, a model's DP claim.

use crate::error::{AppError, Context as _, ErrorKind, Result};
use crate::openlineage::{self as ol, JobKind};
use crate::progress::Progress;
use crate::session::Session;
use consentry_files::OutputOptions;
use consentry_learn::LearnError;
use consentry_learn::dp::PrivacyClaim;
use consentry_learn::model::ModelMeta;
use consentry_learn::replies::Suggested;
use consentry_learn::train::{ModelKind, TrainOptions, TrainReport, load_recommender};
use std::path::{Path, PathBuf};

/// What `train` is asked to do.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    /// The gated dataset [default: the data directory's dataset of the model's purpose].
    pub dataset: Option<PathBuf>,
    /// The model directory to create [default: the data directory's models/<kind>].
    pub out: Option<PathBuf>,
    /// Record the model in the lineage registry (when the data directory has a ledger), so withdrawals reach it.
    pub register: bool,
    /// Model kind, shards, seed, hyper-parameters and DP.
    pub options: TrainOptions,
}

/// Whether a trained model was registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// Registered under this id: withdrawals now reach it.
    Registered(String),
    /// The caller asked not to register it.
    NotRequested,
    /// The data directory has no ledger, so no registry.
    NoLedger,
}

/// A trained model.
#[derive(Debug)]
pub struct TrainOutcome {
    /// The dataset it was trained on.
    pub dataset: PathBuf,
    /// Where it was written.
    pub out: PathBuf,
    /// Its metadata, metrics and timings.
    pub report: TrainReport,
    /// Whether withdrawals reach it.
    pub registration: Registration,
}

/// Ranked items for a member.
#[derive(Debug, Clone)]
pub struct Recommendations {
    /// The model's metadata.
    pub meta: ModelMeta,
    /// (item, score), best first.
    pub items: Vec<(u64, f32)>,
    /// An items model with string ids: each item's string, in the order of `items` (empty otherwise).
    pub names: Vec<Option<String>>,
    /// Microseconds the ranking took.
    pub micros: u128,
}

/// The progress stage name of training a kind (a static name, as progress stages are).
fn stage_name(kind: ModelKind) -> &'static str {
    match kind {
        ModelKind::JobRecs => "train job-recs",
        ModelKind::Content => "train content",
        ModelKind::Replies => "train replies",
        ModelKind::Items => "train items",
    }
}

/// Trains with progress over shards, unregistered; the error stays typed so callers can tell why (see the demo).
pub fn train_model(
    dataset: &Path,
    out: &Path,
    opts: &TrainOptions,
    progress: &dyn Progress,
) -> std::result::Result<TrainReport, LearnError> {
    let stage = stage_name(opts.kind);
    progress.stage(stage, u64::from(opts.shards.unwrap_or(8)));
    consentry_learn::train(dataset, out, opts, &|_| progress.advance(stage, 1))
}

/// [`train_model`], evaluating a recommender beside the synthetic world's oracle for `network` (the demo and
/// benchmarks only: the oracle reads the generator's hidden truth), so its report carries `model ÷ oracle`.
pub fn train_model_with_oracle(
    dataset: &Path,
    out: &Path,
    opts: &TrainOptions,
    network: &consentry_synth::SynthConfig,
    progress: &dyn Progress,
) -> std::result::Result<TrainReport, LearnError> {
    let scorer: Option<Box<consentry_learn::recs::ItemScorer<'static>>> = match opts.kind {
        ModelKind::Replies => None,
        kind => {
            let oracle = consentry_synth::oracle::Oracle::new(network);
            let score = if kind == ModelKind::JobRecs {
                consentry_synth::oracle::Oracle::job_score
            } else {
                consentry_synth::oracle::Oracle::post_score
            };
            Some(Box::new(move |m: u64, items: &[u64], out: &mut [f32]| oracle.score_into(score, m, items, out)))
        }
    };
    let stage = stage_name(opts.kind);
    progress.stage(stage, u64::from(opts.shards.unwrap_or(8)));
    consentry_learn::train::train_with_oracle(dataset, out, opts, &|_| progress.advance(stage, 1), scorer.as_deref())
}

/// Makes sure a directory given as a model exists before loading.
fn require_dir(p: &Path) -> Result<()> {
    if !p.is_dir() {
        return Err(AppError::bad_input(format!(
            "{} is not a directory; pass a model written by `consentry train`",
            p.display()
        )));
    }
    Ok(())
}

/// `.NAME.registering` beside a model directory a registering `train` is writing: present from before training
/// until the registration is done (removed when the run ends, whatever the outcome; left only by a killed run).
struct RegisteringMarker(PathBuf);

impl RegisteringMarker {
    fn path(out: &Path) -> PathBuf {
        let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
        out.with_file_name(format!(".{name}.registering"))
    }

    fn create(out: &Path) -> Result<RegisteringMarker> {
        let path = RegisteringMarker::path(out);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| LearnError::Io { path: parent.to_path_buf(), source: e })?;
        }
        consentry_files::write(&path, format!("{}\n", std::process::id()).as_bytes(), OutputOptions::MEMBER_DATA)?;
        Ok(RegisteringMarker(path))
    }
}

impl Drop for RegisteringMarker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Session {
    /// `train`: trains a model on a registered dataset and registers it; a model that fails to register is removed,
    /// so an unregistered model is never left where it could be served.
    /// With lineage configured, the run is an OpenLineage run of job `train.<kind>`: the dataset (with its
    /// manifest's commitments) in, the model out (see [`crate::openlineage`]).
    pub fn train(&self, req: TrainRequest, progress: &dyn Progress) -> Result<TrainOutcome> {
        let kind = req.options.kind;
        let dataset = match (&req.dataset, kind.fixed_purpose()) {
            (Some(d), _) => d.clone(),
            (None, Some(purpose)) => self.dir().dataset_dir(purpose),
            (None, None) => {
                return Err(AppError::bad_input(
                    "an items model trains on the dataset you name: pass --dataset DIR (a dataset `consentry gate` \
                     wrote for the purpose whose source declaration names the table)",
                ));
            }
        };
        let out = req.out.clone().unwrap_or_else(|| match &req.options.items {
            Some(spec) if kind == ModelKind::Items => self.dir().model_dir(&format!("items-{}", spec.table)),
            _ => self.dir().model_dir(kind.name()),
        });
        let lineage = self.lineage_run(format!("train.{}", kind.name()), JobKind::Train);
        let start = || ol::Parts {
            inputs: vec![ol::gated_input(&dataset)],
            outputs: vec![ol::file_dataset(&out)],
            ..Default::default()
        };
        let done = |t: &TrainOutcome| {
            let id = match &t.registration {
                Registration::Registered(id) => Some(id.as_str()),
                _ => None,
            };
            ol::Parts {
                inputs: vec![ol::gated_input(&t.dataset)],
                outputs: vec![ol::model_output(&t.out, id, None)],
                ..Default::default()
            }
        };
        lineage.wrap(start, || self.train_run(dataset.clone(), out.clone(), req, progress), done)
    }

    /// The work of [`Session::train`].
    fn train_run(
        &self,
        dataset: PathBuf,
        out: PathBuf,
        req: TrainRequest,
        progress: &dyn Progress,
    ) -> Result<TrainOutcome> {
        if let Some(d) = &req.options.dp {
            d.check()?;
        }
        // An output already there is refused before any other work (training checks it again); a directory left by
        // an interrupted run between rename and registration gets a message saying what it is and what to do.
        if consentry_files::taken(&out) {
            if let Some(done) = self.finish_interrupted_train(&dataset, &out, &req)? {
                return Ok(done);
            }
            if req.register && out.is_dir() && self.has_ledger() {
                self.registry()?.check_train_target(&out)?;
            }
            return Err(LearnError::Exists(out).into());
        }
        let register = req.register && self.has_ledger();
        // A model that will be registered trains only on a dataset the gate registered (its manifest unaltered).
        let checked = if register {
            let rec = self
                .registry()?
                .registered_dataset(&dataset)
                .map_err(AppError::from)
                .with_context(|| format!("refusing to train on {}", dataset.display()))?;
            Some(rec.id)
        } else {
            None
        };
        if req.options.kind == ModelKind::Items {
            self.check_items_declaration(&dataset, &req.options)?;
        }
        // Until the model is registered, a marker beside it says a registering run is under way: a run killed
        // between the rename and the registration leaves it, and only then does the next run finish the job.
        let _marker = match checked {
            Some(_) => Some(RegisteringMarker::create(&out)?),
            None => None,
        };
        let report = train_model(&dataset, &out, &req.options, progress)?;
        let registration = match checked {
            Some(ds) => {
                Registration::Registered(self.register_trained(&out, &ds, &report.meta.dataset.manifest_blake3)?)
            }
            None if !req.register => Registration::NotRequested,
            None => Registration::NoLedger,
        };
        Ok(TrainOutcome { dataset, out, report, registration })
    }

    /// A `train` killed between the rename that put its model in place and its registration leaves a complete model
    /// the registry does not know; the same run again registers it instead of refusing the taken output — only a
    /// real directory holding a model of the kind and seed asked for, trained on the registered dataset named, whose
    /// files match its `model.json` (the registration checks them): what the interrupted run would have registered,
    /// and what `lineage register-model` would register. Anything else stays refused by the caller.
    fn finish_interrupted_train(&self, dataset: &Path, out: &Path, req: &TrainRequest) -> Result<Option<TrainOutcome>> {
        let real_dir = std::fs::symlink_metadata(out).is_ok_and(|m| m.file_type().is_dir());
        let marker = RegisteringMarker::path(out);
        // A model trained with --no-register (or put there by hand) has no marker: it stays refused.
        if !req.register || !real_dir || !self.has_ledger() || !marker.is_file() {
            return Ok(None);
        }
        let reg = self.registry()?;
        let Ok(canonical) = out.canonicalize() else { return Ok(None) };
        if reg.registered_at(&canonical)?.is_some() {
            return Ok(None);
        }
        let Ok(meta) = consentry_learn::model::ModelMeta::read(out) else { return Ok(None) };
        let Ok(ds) = reg.registered_dataset(dataset) else { return Ok(None) };
        if meta.kind != req.options.kind.name()
            || meta.seed != req.options.seed
            || meta.dataset.manifest_blake3 != ds.id
        {
            return Ok(None);
        }
        let id = self.register_trained(out, &ds.id, &meta.dataset.manifest_blake3)?;
        let _ = std::fs::remove_file(&marker);
        let report = TrainReport { meta, dir: out.to_path_buf(), shard_seconds: Vec::new() };
        Ok(Some(TrainOutcome {
            dataset: dataset.to_path_buf(),
            out: out.to_path_buf(),
            report,
            registration: Registration::Registered(id),
        }))
    }

    /// An items model's columns against the source declaration the dataset was gated with (read again, its BLAKE3
    /// checked against the manifest's): no column holding members' free text becomes an item, a weight or a time.
    fn check_items_declaration(&self, dataset: &Path, opts: &TrainOptions) -> Result<()> {
        let Some(spec) = &opts.items else {
            return Err(LearnError::Hyper("an items model needs --table and --item-column".into()).into());
        };
        let m = consentry_gate::Manifest::read(dataset)?;
        let file = (m.sources.declaration != crate::gate::BUILTIN_SOURCES)
            .then(|| self.dir().resolve_name(&m.sources.declaration));
        let loaded = self.dir().load_sources(file.as_deref(), None).with_context(|| {
            format!(
                "the source declaration {} that {} was gated with is needed to check the items model's columns",
                m.sources.declaration,
                dataset.display()
            )
        })?;
        if loaded.declaration_hash != m.sources.declaration_hash {
            return Err(AppError::bad_input(format!(
                "the source declaration {} changed since {} was gated (its BLAKE3 differs from the manifest's); gate \
                 the dataset again with the declaration in force",
                m.sources.declaration,
                dataset.display()
            )));
        }
        // A table the declaration does not name is left to training, which lists the dataset's tables.
        if let Some(decl) = loaded.sources.table(&spec.table) {
            consentry_learn::items::check_declaration(spec, decl)?;
        }
        Ok(())
    }

    /// Records a model trained on the registered dataset `dataset` in the lineage registry; its id. When that fails
    /// (or the model names another dataset: the manifest changed during training), the model directory is removed.
    fn register_trained(&self, out: &Path, dataset: &str, trained_on: &str) -> Result<String> {
        let registered = if trained_on == dataset {
            self.registry().and_then(|reg| Ok(reg.register_model_dir(out)?))
        } else {
            Err(AppError::internal(format!(
                "the dataset's manifest changed during training (BLAKE3 {} before, {} after)",
                consentry_lineage::registry::short(dataset),
                consentry_lineage::registry::short(trained_on)
            )))
        };
        match registered {
            Ok(rec) => Ok(rec.id),
            Err(e) => {
                let removed = match std::fs::remove_dir_all(out) {
                    Ok(()) => "the model directory was removed".to_string(),
                    Err(r) => {
                        format!("removing the model directory {} failed too ({r}): remove it by hand", out.display())
                    }
                };
                Err(e.context(format!(
                    "the model was trained into {}, but registering it failed, so {removed}; fix the cause and train \
                     again",
                    out.display()
                )))
            }
        }
    }

    /// The serving guard: refuses a model the lineage registry does not vouch for (live, and `model.json`, every
    /// shard file and member bitmap as registered; a superseded one is refused naming its live successor); a model
    /// unknown to the registry only with `allow_unregistered`, and never one inside the data directory.
    pub fn require_servable(&self, dir: &Path, allow_unregistered: bool) -> Result<()> {
        require_dir(dir)?;
        if !self.has_ledger() {
            if allow_unregistered {
                return Ok(());
            }
            return Err(AppError::bad_input(format!(
                "{} has no ledger, so no lineage registry vouches for {}; pass --unregistered to serve it as an \
                 experiment no withdrawal will reach",
                self.dir().root().display(),
                dir.display()
            )));
        }
        self.registry()?.servable(dir, allow_unregistered)?;
        Ok(())
    }

    /// Ranks `k` jobs or posts for a member with a model the serving guard lets through.
    pub fn recommend(&self, model: &Path, member: u64, k: usize, allow_unregistered: bool) -> Result<Recommendations> {
        if k == 0 {
            return Err(AppError::bad_input("--k must be at least 1"));
        }
        self.require_servable(model, allow_unregistered)?;
        let (meta, rec) = load_recommender(model)?;
        if self.has_ledger() {
            self.require_consent_to_serve(member, &meta.purpose, consentry_ledger::now())?;
        }
        let t = std::time::Instant::now();
        let items = rec.recommend(member, k)?;
        let micros = t.elapsed().as_micros();
        let names = self.item_names(model, &meta, &items)?;
        Ok(Recommendations { meta, items, names, micros })
    }

    /// The strings behind an items model's hashed string ids, read from the dataset it names (model.json's path,
    /// its manifest's BLAKE3 checked); empty for integer ids and the built-in models.
    fn item_names(&self, model: &Path, meta: &ModelMeta, items: &[(u64, f32)]) -> Result<Vec<Option<String>>> {
        let opts: Option<TrainOptions> = serde_json::from_value(meta.hyper.clone()).ok();
        let Some(spec) = opts.and_then(|o| o.items).filter(|s| s.string_ids) else { return Ok(Vec::new()) };
        let recorded = PathBuf::from(&meta.dataset.path);
        let dir = if recorded.is_dir() { recorded } else { self.dir().resolve_name(&meta.dataset.path) };
        let ds = consentry_learn::data::Dataset::open(&dir).with_context(|| {
            format!("{} has string item ids; their names are read from its dataset {}", model.display(), dir.display())
        })?;
        if ds.manifest_hash != meta.dataset.manifest_blake3 {
            return Err(AppError::bad_input(format!(
                "{} is not the dataset {} was trained on; its item names cannot be shown",
                dir.display(),
                model.display()
            )));
        }
        let names = consentry_learn::items::item_names(&ds, &spec)?;
        Ok(items.iter().map(|(i, _)| names.get(i).cloned()).collect())
    }

    /// Up to `n` reply suggestions for a message, with a replies model the serving guard lets through.
    pub fn suggest_replies(
        &self,
        model: &Path,
        text: &str,
        n: usize,
        allow_unregistered: bool,
    ) -> Result<Vec<Suggested>> {
        self.require_servable(model, allow_unregistered)?;
        let m = consentry_learn::replies::ShardedReplies::load(model)?;
        Ok(m.suggest(text, n))
    }

    /// A model's privacy claim, read only after checking that a registered model's record is the registered one
    /// (its BLAKE3 is the model's id): an edited DP record would otherwise be checked as if it were the model's.
    pub fn privacy_claim(&self, model: &Path) -> Result<(ModelMeta, PrivacyClaim)> {
        if self.has_ledger() {
            self.registry()?.verify_registered_dir(model)?;
        }
        let meta = ModelMeta::read(model).map_err(|e| AppError::new(ErrorKind::BadInput, e.to_string()))?;
        let claim = meta.privacy_claim().map_err(|e| AppError::new(ErrorKind::BadInput, e.to_string()))?;
        Ok((meta, claim))
    }
}
