//! Reply suggestions on the gated `messages` table: message–reply pairs (a reply's `reply_to` names the message
//! it answers; both rows passed the gate, so sender and recipient both allowed), a row belongs to the replier's
//! shard, the model itself lives in `consentry-replies`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::LearnError;
use crate::data::{self, Dataset};
use crate::train::TrainOptions;

/// The purpose reply suggestions are trained for.
pub const PURPOSE: &str = "train_ai_system.reply_suggestions";

/// One message and the reply to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// Who replied.
    pub replier: u64,
    /// The message replied to.
    pub incoming: String,
    /// The reply.
    pub reply: String,
    /// When the reply was sent (Unix ms).
    pub at_ms: i64,
}

/// Reply-model settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplyOptions {
    /// A response is suggested only if at least this many distinct members wrote it.
    pub k: usize,
    /// Share of each replier's latest pairs held out for evaluation.
    pub holdout: f64,
}

impl Default for ReplyOptions {
    fn default() -> Self {
        ReplyOptions { k: 20, holdout: 0.2 }
    }
}

/// Reads the message–reply pairs of a reply-suggestions dataset, sorted canonically.
pub fn load_pairs(ds: &Dataset) -> Result<Vec<Pair>, LearnError> {
    if ds.manifest.purpose != PURPOSE {
        return Err(LearnError::Dataset {
            dir: ds.dir.clone(),
            message: format!("it was gated for {}, but the replies model needs {PURPOSE}", ds.manifest.purpose),
        });
    }
    struct Msg {
        sender: u64,
        reply_to: Option<u64>,
        text: String,
        at: i64,
    }
    let mut msgs: HashMap<u64, Msg> = HashMap::new();
    if !ds.has_table("messages") {
        return Ok(Vec::new());
    }
    for b in ds.read("messages", &["message_id", "sender_id", "reply_to", "text", "sent_at"])? {
        let (id, s, r, t, at) = (
            data::u64s(&b, "message_id")?,
            data::u64s(&b, "sender_id")?,
            data::opt_u64s(&b, "reply_to")?,
            data::strs(&b, "text")?,
            data::times(&b, "sent_at")?,
        );
        for i in 0..b.num_rows() {
            msgs.insert(id[i], Msg { sender: s[i], reply_to: r[i], text: t[i].clone(), at: at[i] });
        }
    }
    let mut pairs: Vec<Pair> = msgs
        .values()
        .filter_map(|m| {
            let prev = msgs.get(&m.reply_to?)?;
            Some(Pair { replier: m.sender, incoming: prev.text.clone(), reply: m.text.clone(), at_ms: m.at })
        })
        .collect();
    pairs.sort_by(|a, b| (a.replier, a.at_ms, &a.incoming, &a.reply).cmp(&(b.replier, b.at_ms, &b.incoming, &b.reply)));
    Ok(pairs)
}

/// Trains the reply model per shard (see [`crate::train`]).
#[allow(clippy::type_complexity)]
pub(crate) fn train_replies(
    ds: &Dataset,
    shards: u32,
    shard_of: &(dyn Fn(u64) -> u32 + Sync),
    opts: &TrainOptions,
    on_shard: &(dyn Fn(u32) + Sync),
) -> Result<(Vec<(Vec<u8>, roaring::RoaringTreemap, u64)>, Vec<f64>, serde_json::Value, serde_json::Value), LearnError>
{
    let _ = (ds, shards, shard_of, opts, on_shard);
    Err(LearnError::Internal("reply training is being wired in".into()))
}
