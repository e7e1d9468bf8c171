//! Model and dataset registry with lineage queries (work in progress).
