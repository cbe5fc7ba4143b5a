//! Transform steps: reshape, clean, join and protect datasets between
//! extract and load.

pub mod clean;
pub mod join;
pub mod pii;
