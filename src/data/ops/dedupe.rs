//! Removing duplicate rows: exact duplicates (all columns) or duplicates on
//! a key, keeping the first or the last occurrence.
//!
//! Rows are identified by a 128-bit hash (xxh3) of their values, so memory
//! grows by 16 bytes per distinct row, not by the rows' size; a collision
//! between two different rows is astronomically unlikely (about 1 in 10^20
//! at a billion rows).

use std::collections::{HashMap, HashSet};

use arrow::array::{Array, AsArray, BooleanArray};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use xxhash_rust::xxh3::xxh3_128;

/// Which duplicate survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Keep {
    #[default]
    First,
    Last,
}

/// Hashes the key columns (all columns when `on` is empty) of each row.
///
/// Column by column, reading each array's own buffers: a value's bytes
/// (a string's UTF-8, a number's little-endian bytes) are hashed, and the
/// values' hashes folded into the row's with their column's position (see
/// [`value_hashes`] and [`row_hashes`]). Arrow's row format gave the same
/// identity but encoded every row into a fresh buffer first; that
/// allocation and its page faults were most of a normalize step
/// (docs/benchmarks.md, "Normalize"). Types without a fast path here
/// (dictionaries, nested types) still go through the row format, one column
/// at a time.
pub struct RowHasher {
    on: Vec<usize>,
}

/// The hash a NULL contributes (any fixed value: a value's hash equals it
/// with probability 2^-128).
const NULL_HASH: u128 = 0x6e75_6c6c_6e75_6c6c_6e75_6c6c_6e75_6c6c;

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
        Ok(Self { on })
    }

    /// Equal to [`row_hashes`] over the [`value_hashes`] of the key
    /// columns, without a vector per column.
    pub fn hashes(&self, batch: &RecordBatch) -> anyhow::Result<Vec<u128>> {
        let Some((&first, rest)) = self.on.split_first() else {
            return Ok(vec![0; batch.num_rows()]);
        };
        let mut hashes = value_hashes(batch.column(first).as_ref())?;
        for (pos, &i) in rest.iter().enumerate() {
            each_value_hash(batch.column(i).as_ref(), |row, v| {
                hashes[row] = combine(hashes[row], v, pos + 1)
            })?;
        }
        Ok(hashes)
    }
}

/// The hash of each value of `col` (a row hash of that column alone).
pub fn value_hashes(col: &dyn Array) -> anyhow::Result<Vec<u128>> {
    // Pushed, not written into `vec![0; n]`: calloc's zero pages, read then
    // written, cost a page fault and a TLB shootdown across the threads
    // each (a quarter of a normalize step).
    let mut out = Vec::with_capacity(col.len());
    each_value_hash(col, |_, v| out.push(v))?;
    Ok(out)
}

/// Row hashes of several columns from their [`value_hashes`], in key
/// order; `columns` must not be empty.
pub fn row_hashes(columns: &[&[u128]]) -> Vec<u128> {
    let mut hashes = columns[0].to_vec();
    for (pos, col) in columns.iter().enumerate().skip(1) {
        for (h, v) in hashes.iter_mut().zip(col.iter()) {
            *h = combine(*h, *v, pos);
        }
    }
    hashes
}

/// Calls `f(row, hash of the value)` for every row of `col`, in order.
fn each_value_hash(col: &dyn Array, f: impl FnMut(usize, u128)) -> anyhow::Result<()> {
    if has_fast_path(col.data_type()) {
        fold_values(col, f);
    } else {
        let mut f = f;
        let converter = RowConverter::new(vec![SortField::new(col.data_type().clone())])?;
        let rows = converter.convert_columns(&[arrow::array::make_array(col.to_data())])?;
        for (row, r) in rows.iter().enumerate() {
            f(row, xxh3_128(r.as_ref()));
        }
    }
    Ok(())
}

fn has_fast_path(ty: &DataType) -> bool {
    ty.is_primitive()
        || matches!(
            ty,
            DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::Boolean
                | DataType::Null
        )
}

/// Calls `f(row, hash of the value)` for every row of `col`, whose type has
/// a fast path.
fn fold_values(col: &dyn Array, mut f: impl FnMut(usize, u128)) {
    let nulls = col.logical_nulls();
    let valid = |row: usize| nulls.as_ref().is_none_or(|n| n.is_valid(row));
    let mut each = |value: &dyn Fn(usize) -> u128| {
        for row in 0..col.len() {
            f(row, if valid(row) { value(row) } else { NULL_HASH });
        }
    };
    match col.data_type() {
        DataType::Utf8 => {
            let a = col.as_string::<i32>();
            each(&|row| xxh3_128(a.value(row).as_bytes()))
        }
        DataType::LargeUtf8 => {
            let a = col.as_string::<i64>();
            each(&|row| xxh3_128(a.value(row).as_bytes()))
        }
        DataType::Binary => {
            let a = col.as_binary::<i32>();
            each(&|row| xxh3_128(a.value(row)))
        }
        DataType::LargeBinary => {
            let a = col.as_binary::<i64>();
            each(&|row| xxh3_128(a.value(row)))
        }
        DataType::Boolean => {
            let a = col.as_boolean();
            each(&|row| xxh3_128(&[a.value(row) as u8]))
        }
        DataType::Null => each(&|_| NULL_HASH),
        ty => {
            // Fixed-width values: their bytes in the array's one buffer.
            let width = ty.primitive_width().expect("a primitive type");
            let data = col.to_data();
            let bytes = &data.buffers()[0].as_slice()[data.offset() * width..];
            each(&|row| xxh3_128(&bytes[row * width..(row + 1) * width]))
        }
    }
}

/// The row's hash so far with the value of the key column at `pos`.
fn combine(h: u128, value: u128, pos: usize) -> u128 {
    let mut buf = [0u8; 40];
    buf[..16].copy_from_slice(&h.to_le_bytes());
    buf[16..32].copy_from_slice(&value.to_le_bytes());
    buf[32..].copy_from_slice(&(pos as u64).to_le_bytes());
    xxh3_128(&buf)
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

    /// The identity the row format gave: equal values hash equal (also
    /// through a sliced array), and NULL, the empty string, values moved to
    /// another column or split differently do not.
    #[test]
    fn typed_hashes_tell_rows_apart_as_the_row_format_did() {
        use arrow::array::{ArrayRef, BooleanArray, DictionaryArray, Float64Array, TimestampMicrosecondArray};
        use arrow::datatypes::Int32Type;
        let s: ArrayRef = Arc::new(StringArray::from(vec![
            Some("a"),
            Some("b"),
            Some(""),
            None,
            Some("ab"),
            Some("a"),
            Some("a"),
        ]));
        let t: ArrayRef = Arc::new(StringArray::from(vec![
            Some("b"),
            Some("a"),
            None,
            Some(""),
            Some("c"),
            Some("bc"),
            Some("b"),
        ]));
        let f: ArrayRef = Arc::new(Float64Array::from(vec![
            Some(1.5),
            Some(1.5),
            None,
            None,
            Some(-0.0),
            Some(0.0),
            Some(1.5),
        ]));
        let ts: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![1, 1, 2, 2, 3, 3, 1]));
        let flag: ArrayRef = Arc::new(BooleanArray::from(vec![true, true, false, false, true, true, true]));
        let dict: ArrayRef = Arc::new(
            vec!["x", "x", "y", "y", "z", "z", "x"]
                .into_iter()
                .collect::<DictionaryArray<Int32Type>>(),
        );
        let b = RecordBatch::try_from_iter([("s", s), ("t", t), ("f", f), ("ts", ts), ("flag", flag), ("d", dict)])
            .unwrap();
        let h = RowHasher::new(&b.schema(), &[]).unwrap().hashes(&b).unwrap();
        // Row 6 repeats row 0; every other pair differs.
        assert_eq!(h[0], h[6]);
        for i in 0..6 {
            for j in i + 1..6 {
                assert_ne!(h[i], h[j], "rows {i} and {j}");
            }
        }
        // ("a","b") vs ("b","a"), "" vs NULL, ("ab","c") vs ("a","bc") on
        // the string columns alone.
        let st = RowHasher::new(&b.schema(), &["s".into(), "t".into()])
            .unwrap()
            .hashes(&b)
            .unwrap();
        assert_ne!(st[0], st[1]);
        assert_ne!(st[2], st[3]);
        assert_ne!(st[4], st[5]);
        // The same hashes as the normalize split's, from per-column hashes.
        let per_column: Vec<Vec<u128>> = ["s", "t"]
            .iter()
            .map(|c| value_hashes(b.column_by_name(c).unwrap().as_ref()).unwrap())
            .collect();
        assert_eq!(row_hashes(&[&per_column[0], &per_column[1]]), st);
        // A slice hashes its rows as the whole array does (buffer offsets).
        let tail = RowHasher::new(&b.schema(), &[])
            .unwrap()
            .hashes(&b.slice(3, 4))
            .unwrap();
        assert_eq!(tail, h[3..]);
    }
}
