//! Removing duplicate rows: exact duplicates (all columns) or duplicates on
//! a key, keeping the first or the last occurrence.
//!
//! Rows are identified by a 128-bit hash (xxh3) of their encoded values
//! (arrow's row format), so memory grows by 16 bytes per distinct row, not
//! by the rows' size; a collision between two different rows is
//! astronomically unlikely (about 1 in 10^20 at a billion rows).

use std::collections::{HashMap, HashSet};

use arrow::array::BooleanArray;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};

/// Which duplicate survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Keep {
    #[default]
    First,
    Last,
}

/// Hashes the key columns (all columns when `on` is empty) of each row.
pub struct RowHasher {
    on: Vec<usize>,
    converter: RowConverter,
}

impl RowHasher {
    pub fn new(batch_schema: &arrow::datatypes::Schema, on: &[String]) -> anyhow::Result<Self> {
        let on: Vec<usize> = if on.is_empty() {
            (0..batch_schema.fields().len()).collect()
        } else {
            on.iter()
                .map(|c| {
                    batch_schema.index_of(c).map_err(|_| {
                        let names: Vec<&str> = batch_schema.fields().iter().map(|f| f.name().as_str()).collect();
                        anyhow::anyhow!(
                            "dedupe key `{c}` is not a column ({})",
                            crate::spec::diagnostic::unknown_name_hint(c, &names)
                        )
                    })
                })
                .collect::<anyhow::Result<_>>()?
        };
        let fields = on
            .iter()
            .map(|&i| SortField::new(batch_schema.field(i).data_type().clone()))
            .collect();
        Ok(Self {
            on,
            converter: RowConverter::new(fields)?,
        })
    }

    pub fn hashes(&self, batch: &RecordBatch) -> anyhow::Result<Vec<u128>> {
        let cols: Vec<_> = self.on.iter().map(|&i| batch.column(i).clone()).collect();
        let rows = self.converter.convert_columns(&cols)?;
        Ok(rows.iter().map(|r| xxhash_rust::xxh3::xxh3_128(r.as_ref())).collect())
    }
}

/// Hashing for tables keyed by these hashes: they are already uniformly
/// random, so their low 64 bits serve as is (SipHash over them cost a
/// sizeable share of a dedupe).
#[derive(Clone, Copy, Default)]
pub struct HashIsRandom;

impl std::hash::BuildHasher for HashIsRandom {
    type Hasher = TakeLowBits;
    fn build_hasher(&self) -> TakeLowBits {
        TakeLowBits(0)
    }
}

#[derive(Default)]
pub struct TakeLowBits(u64);

impl std::hash::Hasher for TakeLowBits {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not used by u128 keys; mixes anything else reasonably.
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

/// Keep-first dedupe, streaming: a row is kept if its hash is new.
#[derive(Default)]
pub struct FirstSeen {
    seen: HashSet<u128, HashIsRandom>,
}

impl FirstSeen {
    /// A table sized for `rows` distinct rows at once (no growth spike).
    pub fn with_capacity(rows: u64) -> Self {
        Self {
            seen: HashSet::with_capacity_and_hasher(rows as usize, HashIsRandom),
        }
    }

    pub fn mask(&mut self, hashes: &[u128]) -> BooleanArray {
        hashes.iter().map(|h| Some(self.seen.insert(*h))).collect()
    }
}

/// Keep-last dedupe: a first pass records the last position of each hash,
/// the second keeps the rows found there.
#[derive(Default)]
pub struct LastSeen {
    last: HashMap<u128, u64, HashIsRandom>,
}

impl LastSeen {
    /// A table sized for `rows` distinct rows at once (no growth spike).
    pub fn with_capacity(rows: u64) -> Self {
        Self {
            last: HashMap::with_capacity_and_hasher(rows as usize, HashIsRandom),
        }
    }

    /// First pass: `first_row` is the global index of the batch's first row.
    pub fn observe(&mut self, hashes: &[u128], first_row: u64) {
        for (i, h) in hashes.iter().enumerate() {
            self.last.insert(*h, first_row + i as u64);
        }
    }

    /// Second pass.
    pub fn mask(&self, hashes: &[u128], first_row: u64) -> BooleanArray {
        hashes
            .iter()
            .enumerate()
            .map(|(i, h)| Some(self.last.get(h) == Some(&(first_row + i as u64))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let s = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            s,
            vec![
                Arc::new(Int64Array::from(vec![1, 1, 2, 1])),
                Arc::new(StringArray::from(vec!["a", "a", "b", "c"])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn exact_and_keyed() {
        let b = batch();
        let all = RowHasher::new(&b.schema(), &[]).unwrap();
        let m = FirstSeen::default().mask(&all.hashes(&b).unwrap());
        assert_eq!(m, BooleanArray::from(vec![true, false, true, true]));
        let key = RowHasher::new(&b.schema(), &["k".into()]).unwrap();
        let h = key.hashes(&b).unwrap();
        let mut last = LastSeen::default();
        last.observe(&h, 0);
        assert_eq!(last.mask(&h, 0), BooleanArray::from(vec![false, false, true, true]));
        assert!(
            RowHasher::new(&b.schema(), &["kk".into()])
                .err()
                .unwrap()
                .to_string()
                .contains("did you mean `k`")
        );
    }
}
