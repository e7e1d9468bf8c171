//! Reply suggestions.
