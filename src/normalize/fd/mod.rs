//! Functional dependency discovery and 3NF synthesis, for
//! `nightjar normalize infer`.
//!
//! - [`table`]: a table as dense integer codes per column (NULL is one
//!   value, equal to itself: "null = null" semantics);
//! - [`partition`]: stripped partitions and their product;
//! - [`tane`]: TANE (Huhtala, Kärkkäinen, Porkka, Toivonen, 1999): minimal
//!   non-trivial FDs, exact or approximate under the g3 error;
//! - [`synthesis`]: candidate keys and Bernstein's 3NF synthesis.

pub mod partition;
pub mod proposal;
pub mod synthesis;
pub mod table;
pub mod tane;

/// A set of columns, as bits (column i is bit i); at most 64 columns.
pub type Cols = u64;

/// Column indices in a set, ascending.
pub fn members(set: Cols) -> impl Iterator<Item = usize> {
    (0..64).filter(move |i| set & (1 << i) != 0)
}

/// A functional dependency `lhs -> rhs`, found in the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Fd {
    pub lhs: Cols,
    pub rhs: usize,
    /// Fewest rows to delete for the FD to hold exactly (g3 x rows); 0 for
    /// an exact FD.
    pub violating_rows: u64,
}

impl Fd {
    pub fn is_exact(&self) -> bool {
        self.violating_rows == 0
    }
}
