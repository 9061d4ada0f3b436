//! Normalisation (DESIGN §3, contract). PLACEHOLDER SIGNATURES: being implemented.

use crate::model::IndicatorType;

/// A value in normal form and the type it was recognised as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// The type of the value.
    pub itype: IndicatorType,
    /// The canonical spelling.
    pub value: String,
    /// Domains only: false when written as `*.x` / `.x` or plain (this domain and below);
    /// feeds may still force exact-only matching.
    pub exact_only: bool,
}

/// Why a value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    /// The value could not be read as any indicator type (or as the hinted one).
    #[error("not a valid {expected}: {reason}")]
    Invalid {
        /// The type that was expected ("indicator" when none was hinted).
        expected: &'static str,
        /// Why.
        reason: String,
    },
}

/// Normalise one raw value, refanging first. With `hint`, the value must be of that type
/// (an ipv4 hint also accepts a CIDR); without, the type is inferred.
pub fn normalize(raw: &str, hint: Option<IndicatorType>) -> Result<Normalized, NormalizeError> {
    let _ = (raw, hint);
    todo!("being implemented")
}
