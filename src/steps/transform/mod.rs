//! Transform steps: reshape, clean, join and protect datasets between
//! extract and load.

pub mod clean;
pub mod explode;
pub mod join;
pub mod normalize;
pub mod pii;
