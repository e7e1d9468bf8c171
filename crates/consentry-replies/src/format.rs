//! The model file: a standard safetensors file with one metadata key.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! u64 N | N bytes of JSON header, space-padded to a multiple of 8 | tensor data
//! ```
//!
//! The header is written byte for byte by this module, keys in sorted order:
//!
//! ```text
//! {"__metadata__":{"consentry.replies":"<metadata JSON, escaped>"},
//!  "bias":{"dtype":"F32","shape":[I],"data_offsets":[0,4I]},
//!  "weights":{"dtype":"F32","shape":[B,I],"data_offsets":[4I,4I+4BI]}}
//! ```
//!
//! (without the line breaks). `bias` is one f32 per intent; `weights` is row-major, one row per
//! hash bucket. The metadata JSON is [`Metadata`]: format tag, the BLAKE3 of the tensor data
//! (hex), the inventory and the training provenance. Struct fields serialise in declaration order
//! and floats via serde_json's shortest round-trip form, so equal models give equal bytes.

use serde::{Deserialize, Serialize};

use crate::ReplyError;
use crate::inventory::{Intent, Inventory, Response};
use crate::model::{ReplyModel, TrainingInfo};

/// Format tag in the metadata; bump when features, layout or semantics change (2: the incoming message's own
/// inventory intent is a feature; DP-SGD trains only the most-used intents).
pub const FORMAT: &str = "consentry.replies/2";

/// The single safetensors metadata key (one key keeps the byte order deterministic).
pub const METADATA_KEY: &str = "consentry.replies";

/// Largest header accepted when reading, against hostile length fields.
const MAX_HEADER: u64 = 256 << 20;

#[derive(Serialize, Deserialize)]
struct InventoryRepr {
    k: u64,
    responses: Vec<Response>,
    intents: Vec<Intent>,
}

/// Everything but the tensors, stored as the one metadata value.
#[derive(Serialize, Deserialize)]
struct Metadata {
    format: String,
    data_blake3: String,
    inventory: InventoryRepr,
    training: TrainingInfo,
}

fn invalid(m: impl Into<String>) -> ReplyError {
    ReplyError::InvalidModel(m.into())
}

impl ReplyModel {
    /// Serialises the model as a safetensors file; equal models give byte-identical output.
    pub fn to_bytes(&self) -> Vec<u8> {
        let intents = self.bias.len();
        let mut data = Vec::with_capacity(4 * (self.bias.len() + self.weights.len()));
        for v in self.bias.iter().chain(&self.weights) {
            data.extend_from_slice(&v.to_le_bytes());
        }
        let meta = Metadata {
            format: FORMAT.to_owned(),
            data_blake3: hex::encode(blake3::hash(&data).as_bytes()),
            inventory: InventoryRepr {
                k: self.inventory.k(),
                responses: self.inventory.responses().to_vec(),
                intents: self.inventory.intents().to_vec(),
            },
            training: self.info.clone(),
        };
        // Serialising plain structs of strings, integers and finite floats cannot fail.
        let meta_json = serde_json::to_string(&meta).unwrap_or_default();
        let meta_escaped = serde_json::to_string(&meta_json).unwrap_or_default();
        let b = 4 * intents;
        let mut header = format!(
            "{{\"__metadata__\":{{\"{METADATA_KEY}\":{meta_escaped}}},\
             \"bias\":{{\"dtype\":\"F32\",\"shape\":[{intents}],\"data_offsets\":[0,{b}]}},\
             \"weights\":{{\"dtype\":\"F32\",\"shape\":[{},{intents}],\"data_offsets\":[{b},{}]}}}}",
            self.buckets,
            data.len()
        );
        while header.len() % 8 != 0 {
            header.push(' ');
        }
        let mut out = Vec::with_capacity(8 + header.len() + data.len());
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&data);
        out
    }

    /// Reads a model written by [`ReplyModel::to_bytes`], checking layout, shapes, checksum and finiteness.
    pub fn from_bytes(bytes: &[u8]) -> Result<ReplyModel, ReplyError> {
        let len_bytes: [u8; 8] =
            bytes.get(..8).and_then(|s| s.try_into().ok()).ok_or_else(|| invalid("file shorter than 8 bytes"))?;
        let n = u64::from_le_bytes(len_bytes);
        if n > MAX_HEADER || n > (bytes.len() - 8) as u64 {
            return Err(invalid(format!("header length {n} exceeds the file")));
        }
        let header = std::str::from_utf8(&bytes[8..8 + n as usize]).map_err(|_| invalid("header is not UTF-8"))?;
        let data = &bytes[8 + n as usize..];
        let v: serde_json::Value = serde_json::from_str(header).map_err(|e| invalid(format!("header JSON: {e}")))?;
        let obj = v.as_object().ok_or_else(|| invalid("header is not a JSON object"))?;
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        if keys != ["__metadata__", "bias", "weights"] {
            return Err(invalid(format!("unexpected header keys {keys:?}")));
        }
        let meta_obj = obj.get("__metadata__").and_then(|m| m.as_object()).ok_or_else(|| invalid("no metadata"))?;
        if meta_obj.len() != 1 {
            return Err(invalid("metadata must hold exactly one key"));
        }
        let meta_str =
            meta_obj.get(METADATA_KEY).and_then(|m| m.as_str()).ok_or_else(|| invalid("no model metadata"))?;
        let meta: Metadata = serde_json::from_str(meta_str).map_err(|e| invalid(format!("metadata: {e}")))?;
        if meta.format != FORMAT {
            return Err(invalid(format!("format {:?}, expected {FORMAT:?}", meta.format)));
        }
        if hex::encode(blake3::hash(data).as_bytes()) != meta.data_blake3 {
            return Err(invalid("tensor data does not match its checksum"));
        }
        let inventory = Inventory::assemble(meta.inventory.k, meta.inventory.responses, meta.inventory.intents)?;
        let intents = inventory.intents().len() as u64;
        let buckets = meta.training.hyper.buckets;
        let tensor = |name: &str, shape: &[u64], start: u64| -> Result<u64, ReplyError> {
            let t = obj.get(name).ok_or_else(|| invalid(format!("no tensor {name}")))?;
            let elems: u64 = shape.iter().product();
            let end = start + 4 * elems;
            let expected = serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, end]});
            if *t != expected {
                return Err(invalid(format!("tensor {name} is {t}, expected {expected}")));
            }
            Ok(end)
        };
        let end = tensor("bias", &[intents], 0)?;
        let end = tensor("weights", &[u64::from(buckets), intents], end)?;
        if end != data.len() as u64 || buckets == 0 {
            return Err(invalid(format!("tensor data is {} bytes, expected {end}", data.len())));
        }
        let floats: Vec<f32> = data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        if floats.iter().any(|x| !x.is_finite()) {
            return Err(invalid("non-finite parameter"));
        }
        let (bias, weights) = floats.split_at(intents as usize);
        if let Some(dp) = &meta.training.dp {
            let ok = [dp.sigma, dp.clip, dp.sample_rate].iter().all(|x| x.is_finite());
            if !ok {
                return Err(invalid("non-finite DP parameters"));
            }
        }
        Ok(ReplyModel { inventory, buckets, weights: weights.to_vec(), bias: bias.to_vec(), info: meta.training })
    }
}
