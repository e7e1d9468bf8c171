//! Differential privacy for consent-gated training: the privacy accountant and the DP-SGD primitives.
//!
//! * [`rdp`]: Rényi DP of the Poisson-subsampled Gaussian mechanism (Mironov, Talwar, Zhang 2019), a port of
//!   dp_accounting 0.6.0 that agrees with it to rounding, on its default order grid.
//! * [`convert`]: RDP → (ε, δ), the classic bound and dp_accounting's tighter one.
//! * [`Accountant`]: a serialisable record of the mechanisms a model's training ran, composed into an RDP
//!   curve; [`ModelLoss`] and [`cumulative_loss`] compose a member's loss across models.
//! * [`calibrate_sigma`]: the smallest noise multiplier that meets a target ε for the planned steps.
//! * [`sgd`]: per-member clipping, Gaussian noise from a seeded ChaCha stream, Poisson sampling of members.
//!
//! The privacy unit is the member: sampling picks members, and a member's rows are summed and clipped
//! together, so a member with 1000 rows moves the noisy sum no more than one with a single row.
//! Pure: no I/O, no clock, no global RNG.

pub mod accountant;
pub mod calibrate;
pub mod convert;
pub mod rdp;
pub mod sgd;
mod special;

pub use accountant::{Accountant, CumulativeLoss, ModelLoss, SampledGaussian, cumulative_loss, default_delta};
pub use calibrate::{MAX_SIGMA, SIGMA_REL_PRECISION, calibrate_sigma, calibrate_sigma_with_orders};
pub use convert::{Conversion, Guarantee};
pub use rdp::default_orders;
pub use sgd::{NoisySum, add_noise, clip_and_noise, poisson_sample, seeded_rng};

/// Everything that can go wrong, each naming the bad value so the caller can fix its input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DpError {
    /// The sampling rate is outside [0, 1].
    #[error("sampling rate q = {0} is not in [0, 1]")]
    InvalidSamplingRate(f64),
    /// The noise multiplier is negative, infinite or NaN.
    #[error("noise multiplier σ = {0} is not a finite number ≥ 0")]
    InvalidNoiseMultiplier(f64),
    /// δ is outside (0, 1).
    #[error("δ = {0} is not in (0, 1); typical values are 1e-5 to 1e-9")]
    InvalidDelta(f64),
    /// ε is negative or NaN.
    #[error("ε = {0} is not a number ≥ 0")]
    InvalidEpsilon(f64),
    /// The RDP order grid is unusable.
    #[error("invalid RDP order grid: {0}")]
    InvalidOrders(String),
    /// An RDP curve is unusable.
    #[error("invalid RDP curve: {0}")]
    InvalidRdp(String),
    /// Orders and RDP values differ in length.
    #[error("{orders} orders but {rdp} RDP values")]
    LengthMismatch {
        /// Number of orders.
        orders: usize,
        /// Number of RDP values.
        rdp: usize,
    },
    /// Two accountants use different order grids, so their RDP curves cannot be added.
    #[error("the accountants use different RDP order grids; RDP curves add only on the same grid")]
    GridMismatch,
    /// No conversion has this name.
    #[error("unknown conversion {0:?}; use \"classic\" or \"improved\"")]
    UnknownConversion(String),
    /// The calibration target cannot be met.
    #[error("{0}")]
    Unreachable(String),
    /// The clipping norm is not a finite positive number.
    #[error("clipping norm C = {0} is not a finite number > 0")]
    InvalidClip(f64),
    /// A gradient row has the wrong length.
    #[error("gradient row of length {got}, expected {expected}")]
    DimensionMismatch {
        /// The model dimension.
        expected: usize,
        /// The row's length.
        got: usize,
    },
    /// A member's summed gradient is infinite or NaN: clipping cannot bound it.
    #[error("member {member}'s gradient is not finite (NaN or ∞); refusing to add it to a private sum")]
    NonFiniteGradient {
        /// The member's position in the batch.
        member: usize,
    },
}

/// Serialises ∞ as JSON null (JSON has no infinity) and reads null back as +∞.
pub(crate) mod serde_inf {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes a finite value as a number and +∞ as null.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() { s.serialize_f64(*v) } else { s.serialize_none() }
    }

    /// Reads a number, or null as +∞.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
    }

    /// The same for a vector of values.
    pub mod vec {
        use serde::{Deserialize, Deserializer, Serializer, ser::SerializeSeq};

        /// Writes each finite value as a number and +∞ as null.
        pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(v.len()))?;
            for x in v {
                seq.serialize_element(&x.is_finite().then_some(*x))?;
            }
            seq.end()
        }

        /// Reads numbers, null as +∞.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
            Ok(Vec::<Option<f64>>::deserialize(d)?.into_iter().map(|x| x.unwrap_or(f64::INFINITY)).collect())
        }
    }
}
