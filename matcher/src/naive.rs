//! The naive reference matcher: a plain list scanned linearly. PLACEHOLDER: being implemented.

use crate::model::Indicator;

/// Reference [`crate::Matcher`] over a `Vec<Indicator>` (ids are indices), for property tests.
#[derive(Debug, Clone)]
pub struct NaiveMatcher {
    /// The indicators, in id order.
    pub indicators: Vec<Indicator>,
}
