//! The three AI features, trained per shard and deterministically on gated datasets.
