//! Differential privacy.
