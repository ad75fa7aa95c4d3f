//! General statistics with no clinical meaning of their own: rates and intervals, survival
//! curves, mixed models.

pub mod descriptive;
pub mod growth;
pub mod rates;
pub mod survival;
