//! The model directory format (version 1): `model.json` (what, from which dataset, how, how good) beside one
//! safetensors file and one member bitmap per shard. Shard files are byte-identical for identical inputs; that is
//! what makes unlearning checkable.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use consentry_gate::manifest::ShardFunction;
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};

use crate::LearnError;

/// Version of the model directory format.
pub const FORMAT: u32 = 1;
/// The metadata file of a model directory.
pub const MODEL_FILE: &str = "model.json";

/// The dataset a model was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRef {
    /// Where it was (informational; the hash is what counts).
    pub path: String,
    /// BLAKE3 of its `manifest.json`.
    pub manifest_blake3: String,
    /// The dataset's member-set commitment.
    pub members_commitment: String,
    /// Members in the dataset.
    pub members: u64,
    /// Ledger position the dataset was materialised at.
    pub ledger_position: u64,
}

/// One shard of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardMeta {
    /// Shard index.
    pub index: u32,
    /// The safetensors file, relative to the model directory.
    pub file: String,
    /// BLAKE3 of that file.
    pub blake3: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Members whose rows trained this shard.
    pub members: u64,
    /// Training rows (interactions or message pairs).
    pub rows: u64,
    /// The shard's member bitmap (roaring treemap), relative to the model directory.
    pub members_file: String,
    /// BLAKE3 of that bitmap.
    pub members_commitment: String,
}

/// The members a model version was trained without, and how it came about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnlearningRef {
    /// Members excluded from the dataset, cumulatively over versions.
    pub excluded: u64,
    /// Their bitmap (roaring treemap), relative to the model directory.
    pub file: String,
    /// BLAKE3 of that bitmap.
    pub commitment: String,
    /// BLAKE3 of the previous version's `model.json`.
    pub previous: String,
    /// Shards retrained for this version; every other shard file is the previous version's, byte for byte.
    pub retrained_shards: Vec<u32>,
}

/// The file holding the excluded-member bitmap of an unlearned model version.
pub const EXCLUDED_FILE: &str = "excluded.roaring";

/// `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// [`FORMAT`].
    pub format: u32,
    /// `job-recs`, `content` or `replies`.
    pub kind: String,
    /// The purpose key the dataset was gated for.
    pub purpose: String,
    /// The input.
    pub dataset: DatasetRef,
    /// How members map to shards.
    pub shard_function: ShardFunction,
    /// Training seed.
    pub seed: u64,
    /// Hyper-parameters as trained.
    pub hyper: serde_json::Value,
    /// Evaluation results (see the crate docs for their definitions).
    pub metrics: serde_json::Value,
    /// Differential-privacy parameters, when trained with DP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dp: Option<serde_json::Value>,
    /// The shards, by index.
    pub shards: Vec<ShardMeta>,
    /// Per shard, the BLAKE3 of the inputs it was trained from (its rows; options and seed are the model's), so
    /// unlearning sees which shards a removal changes without reading the old inputs again. Empty in models
    /// written before it existed, which unlearning refuses (they must be retrained).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shard_inputs: Vec<String>,
    /// Set when this version was made by unlearning: who was taken out, and what was retrained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlearning: Option<UnlearningRef>,
    /// Seconds the training took (informational).
    pub train_seconds: f64,
    /// The tool that wrote it.
    pub tool: String,
    /// When it was written (Unix seconds).
    pub created: i64,
}

impl ModelMeta {
    /// Reads `DIR/model.json`.
    pub fn read(dir: &Path) -> Result<ModelMeta, LearnError> {
        Self::read_hashed(dir).map(|(meta, _)| meta)
    }

    /// Reads `DIR/model.json` and returns it with the BLAKE3 (hex) of the bytes read.
    pub fn read_hashed(dir: &Path) -> Result<(ModelMeta, String), LearnError> {
        let text = consentry_gate::fsguard::read_inside(dir, MODEL_FILE).map_err(|e| LearnError::ModelFile {
            dir: dir.to_path_buf(),
            message: format!("cannot read {MODEL_FILE}: {e}; is this a directory written by `consentry train`?"),
            source: Box::new(e),
        })?;
        let meta: ModelMeta = serde_json::from_slice(&text)
            .map_err(|e| LearnError::Model { dir: dir.to_path_buf(), message: format!("{MODEL_FILE}: {e}") })?;
        if meta.format != FORMAT {
            return Err(LearnError::Model {
                dir: dir.to_path_buf(),
                message: format!("format {} is not supported (this build reads {FORMAT})", meta.format),
            });
        }
        Ok((meta, blake3::hash(&text).to_hex().to_string()))
    }

    /// The excluded-member bitmap of an unlearned version (empty for a first version), checked against its commitment.
    pub fn excluded(&self, dir: &Path) -> Result<roaring::RoaringTreemap, LearnError> {
        let Some(u) = &self.unlearning else { return Ok(roaring::RoaringTreemap::new()) };
        read_bitmap(dir, "excluded-member bitmap", &u.file, &u.commitment)
    }

    /// The model's privacy claim: `PrivacyClaim::None` ("no formal bound") for models trained without DP,
    /// including those written before DP existed (no `dp` key).
    pub fn privacy_claim(&self) -> Result<crate::dp::PrivacyClaim, LearnError> {
        crate::dp::PrivacyClaim::of_record(self.dp.as_ref()).map_err(|e| LearnError::Corrupt {
            file: MODEL_FILE.into(),
            message: format!("the `dp` record cannot be read: {e}"),
        })
    }

    /// What this model costs each member of its training set, for `consentry_dp::cumulative_loss`: a DP model's
    /// (ε, δ) and RDP curve, re-derived from its recorded mechanism (a record claiming a smaller ε than its
    /// mechanism gives is refused); a model without DP gives ε = +∞ at δ = 0 — no formal bound.
    pub fn privacy_loss(&self, model: &str) -> Result<consentry_dp::ModelLoss, LearnError> {
        let loss = self.privacy_claim()?.loss(model)?;
        Ok(loss.unwrap_or_else(|| consentry_dp::ModelLoss {
            model: model.into(),
            epsilon: f64::INFINITY,
            delta: 0.0,
            accountant: None,
        }))
    }

    /// Reads shard `i`'s bytes, checking them against the recorded BLAKE3.
    pub fn shard_bytes(&self, dir: &Path, i: usize) -> Result<Vec<u8>, LearnError> {
        let s = self.shard(dir, i)?;
        read_checked(dir, "shard file", &s.file, &s.blake3)
    }

    /// The members whose rows trained shard `i`, checked against the recorded commitment.
    pub fn shard_members(&self, dir: &Path, i: usize) -> Result<roaring::RoaringTreemap, LearnError> {
        let s = self.shard(dir, i)?;
        read_bitmap(dir, "member bitmap", &s.members_file, &s.members_commitment)
    }

    /// Every member of the model, over all shards.
    pub fn members(&self, dir: &Path) -> Result<roaring::RoaringTreemap, LearnError> {
        let mut all = roaring::RoaringTreemap::new();
        for i in 0..self.shards.len() {
            all |= self.shard_members(dir, i)?;
        }
        Ok(all)
    }

    fn shard(&self, dir: &Path, i: usize) -> Result<&ShardMeta, LearnError> {
        self.shards.get(i).ok_or_else(|| LearnError::Model {
            dir: dir.to_path_buf(),
            message: format!("shard {i} is not listed in {MODEL_FILE}"),
        })
    }
}

/// A file of a model directory, refused unless its BLAKE3 is the one `model.json` records.
fn read_checked(dir: &Path, what: &str, file: &str, blake3_hex: &str) -> Result<Vec<u8>, LearnError> {
    // Never through a link: a model directory is read only from inside itself.
    let bytes = consentry_gate::fsguard::read_inside(dir, file).map_err(|e| LearnError::ModelFile {
        dir: dir.to_path_buf(),
        message: format!("{what} {file} cannot be read: {e}"),
        source: Box::new(e),
    })?;
    if blake3::hash(&bytes).to_hex().as_str() != blake3_hex {
        return Err(LearnError::Model {
            dir: dir.to_path_buf(),
            message: format!("{what} {file} was altered (BLAKE3 differs from {MODEL_FILE}); retrain"),
        });
    }
    Ok(bytes)
}

/// A member bitmap of a model directory, refused unless its BLAKE3 is the one `model.json` records.
fn read_bitmap(dir: &Path, what: &str, file: &str, blake3_hex: &str) -> Result<roaring::RoaringTreemap, LearnError> {
    let bytes = read_checked(dir, what, file, blake3_hex)?;
    roaring::RoaringTreemap::deserialize_from(&bytes[..])
        .map_err(|e| LearnError::Model { dir: dir.to_path_buf(), message: format!("{what} {file}: {e}") })
}

/// The file name of shard `i`.
pub fn shard_file(i: u32) -> String {
    format!("shard-{i:03}.safetensors")
}

/// The member bitmap file name of shard `i`.
pub fn shard_members_file(i: u32) -> String {
    format!("shard-{i:03}.members.roaring")
}

/// A tensor to write: name, shape, little-endian bytes and type.
pub struct Tensor {
    /// Name in the file.
    pub name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Vec<usize>,
    /// Little-endian data.
    pub data: Vec<u8>,
}

impl Tensor {
    /// An f32 tensor.
    pub fn f32(name: &str, shape: Vec<usize>, v: &[f32]) -> Tensor {
        Tensor { name: name.into(), dtype: Dtype::F32, shape, data: v.iter().flat_map(|x| x.to_le_bytes()).collect() }
    }
    /// A u64 tensor.
    pub fn u64(name: &str, v: &[u64]) -> Tensor {
        Tensor {
            name: name.into(),
            dtype: Dtype::U64,
            shape: vec![v.len()],
            data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
    /// A u32 tensor.
    pub fn u32(name: &str, v: &[u32]) -> Tensor {
        Tensor {
            name: name.into(),
            dtype: Dtype::U32,
            shape: vec![v.len()],
            data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}

/// Serialises tensors plus one JSON metadata string (safetensors keeps metadata in a hash map, so one key is the
/// only deterministic choice) — the same inputs always give the same bytes.
pub fn to_safetensors(tensors: &[Tensor], meta_json: &str) -> Result<Vec<u8>, LearnError> {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|t| {
            TensorView::new(t.dtype, t.shape.clone(), &t.data)
                .map(|v| (t.name.clone(), v))
                .map_err(|e| LearnError::Internal(format!("tensor {}: {e}", t.name)))
        })
        .collect::<Result<_, _>>()?;
    let info = HashMap::from([("consentry".to_string(), meta_json.to_string())]);
    safetensors::serialize(views, Some(info)).map_err(|e| LearnError::Internal(e.to_string()))
}

/// Reads a safetensors file's tensors and its `consentry` metadata string.
pub struct TensorFile<'a> {
    inner: safetensors::SafeTensors<'a>,
    /// The `consentry` metadata string.
    pub meta: String,
    name: String,
}

impl<'a> TensorFile<'a> {
    /// Parses `bytes` (named `name` in errors).
    pub fn parse(bytes: &'a [u8], name: &str) -> Result<TensorFile<'a>, LearnError> {
        let bad = |m: String| LearnError::Corrupt { file: name.into(), message: m };
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
        let meta = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get("consentry"))
            .cloned()
            .ok_or_else(|| bad("no `consentry` metadata".into()))?;
        let inner = safetensors::SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
        Ok(TensorFile { inner, meta, name: name.into() })
    }

    fn view(&self, name: &str, dtype: Dtype) -> Result<safetensors::tensor::TensorView<'a>, LearnError> {
        let v = self
            .inner
            .tensor(name)
            .map_err(|e| LearnError::Corrupt { file: self.name.clone(), message: format!("tensor {name}: {e}") })?;
        if v.dtype() != dtype {
            return Err(LearnError::Corrupt {
                file: self.name.clone(),
                message: format!("tensor {name} is {:?}, expected {dtype:?}", v.dtype()),
            });
        }
        Ok(v)
    }

    /// An f32 tensor with its shape; refuses NaN and infinities.
    pub fn f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), LearnError> {
        let v = self.view(name, Dtype::F32)?;
        let data: Vec<f32> = v.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        if let Some(p) = data.iter().position(|x| !x.is_finite()) {
            return Err(LearnError::Corrupt {
                file: self.name.clone(),
                message: format!("tensor {name} holds a non-finite value at {p}"),
            });
        }
        Ok((v.shape().to_vec(), data))
    }

    /// A u64 tensor.
    pub fn u64(&self, name: &str) -> Result<Vec<u64>, LearnError> {
        let v = self.view(name, Dtype::U64)?;
        Ok(v.data().chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect())
    }

    /// A u32 tensor.
    pub fn u32(&self, name: &str) -> Result<Vec<u32>, LearnError> {
        let v = self.view(name, Dtype::U32)?;
        Ok(v.data().chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
}

/// Removes the temporary directories (`.NAME.tmp-PID`) that runs killed while writing model `name` left in
/// `parent`, once their process is gone (Linux's `/proc` says; elsewhere nothing is removed). Best effort.
fn remove_dead_temporaries(parent: &Path, name: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = n.strip_prefix(&prefix).and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid != std::process::id()
            && !Path::new("/proc").join(pid.to_string()).exists()
            && e.file_type().is_ok_and(|t| t.is_dir())
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Writes the shard files and `model.json` into a fresh temporary directory beside `out`, then renames it into
/// place: a failed or interrupted run never leaves something that looks like a model.
pub fn write_model_dir(
    out: &Path,
    mut meta: ModelMeta,
    shards: Vec<(Vec<u8>, roaring::RoaringTreemap, u64)>,
    extra: &[(&str, Vec<u8>)],
) -> Result<ModelMeta, LearnError> {
    if consentry_files::taken(out) {
        return Err(LearnError::Exists(out.to_path_buf()));
    }
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| LearnError::io(parent, e))?;
    let name = out.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "model".into());
    let tmp: PathBuf = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    remove_dead_temporaries(parent, &name);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| LearnError::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| LearnError::io(&tmp, e))?;
    let result = (|| {
        meta.shards.clear();
        for (i, (bytes, members, rows)) in shards.into_iter().enumerate() {
            let i = i as u32;
            let file = shard_file(i);
            consentry_files::write_part("learn::model::write_shard", &tmp.join(&file), &bytes)
                .map_err(|e| LearnError::io(&tmp.join(&file), e))?;
            let mut bitmap = Vec::new();
            members.serialize_into(&mut bitmap).map_err(|e| LearnError::io(&tmp, e))?;
            let members_file = shard_members_file(i);
            consentry_files::write_part("learn::model::write_members", &tmp.join(&members_file), &bitmap)
                .map_err(|e| LearnError::io(&tmp.join(&members_file), e))?;
            meta.shards.push(ShardMeta {
                index: i,
                file,
                blake3: blake3::hash(&bytes).to_hex().to_string(),
                bytes: bytes.len() as u64,
                members: members.len(),
                rows,
                members_file,
                members_commitment: blake3::hash(&bitmap).to_hex().to_string(),
            });
        }
        for (name, bytes) in extra {
            consentry_files::write_part("learn::model::write_extra", &tmp.join(name), bytes)
                .map_err(|e| LearnError::io(&tmp.join(name), e))?;
        }
        let text = serde_json::to_string_pretty(&meta).map_err(|e| LearnError::Internal(e.to_string()))?;
        consentry_files::write_part("learn::model::write_meta", &tmp.join(MODEL_FILE), text.as_bytes())
            .map_err(|e| LearnError::io(&tmp.join(MODEL_FILE), e))?;
        fail::fail_point!("learn::model::before_rename", |a| Err(LearnError::io(
            out,
            consentry_files::fault::injected(a)
        )));
        consentry_files::commit_dir(&tmp, out).map_err(|e| LearnError::io(out, e))?;
        fail::fail_point!("learn::model::after_rename", |a| Err(LearnError::io(
            out,
            consentry_files::fault::injected(a)
        )));
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result.map(|()| meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory without `model.json` is bad input naming it, with the reader's error kept as the source.
    #[test]
    fn a_missing_model_json_keeps_its_reader_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = ModelMeta::read_hashed(dir.path()).unwrap_err();
        assert!(matches!(e, LearnError::ModelFile { .. }) && e.is_bad_input(), "{e}");
        let source = std::error::Error::source(&e).expect("a source");
        assert!(source.downcast_ref::<Box<consentry_gate::GateError>>().is_some(), "{source:?}");
        assert!(e.to_string().contains("cannot read model.json"), "{e}");
    }
}
