//! Surrogate keys: a deterministic hash of the natural key, so that every
//! run, process and machine computes the same key for the same entity
//! without a shared sequence.
//!
//! The hash is xxh3-64, seeded with the xxh3-64 of an optional salt, over a
//! canonical encoding of the key's values: for each key column, `0x00` for
//! NULL, else `0x01`, the value's text length (u32, little endian) and its
//! text (Arrow's display form: `17850`, `85123A`, `2010-12-01T08:26:00`).
//! The text form makes the key independent of Arrow's internal layouts and
//! of the integer width; changing a key column's type (int -> decimal) or
//! the salt changes every key. The top bit is cleared so the key fits a
//! signed BIGINT in every warehouse.
//!
//! This is not a pseudonym: anyone who knows the natural key and the salt
//! can compute it. Use `transform.pii` to hide identities.

use std::collections::HashMap;

use anyhow::{Result, bail};
use arrow::array::{Array, ArrayRef, Int64Array};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// Computes surrogate keys and checks them for collisions within a run.
pub struct SurrogateKeys {
    seed: u64,
    /// surrogate -> canonical encoding of the natural key that produced it.
    seen: HashMap<i64, Vec<u8>>,
}

impl SurrogateKeys {
    pub fn new(salt: &str) -> Self {
        Self {
            seed: xxh3_64(salt.as_bytes()),
            seen: HashMap::new(),
        }
    }

    /// The canonical encoding of row `row` of the key columns.
    pub fn encode(columns: &[ArrayRef], row: usize) -> Result<Vec<u8>> {
        let opts = FormatOptions::default();
        let mut buf = Vec::new();
        for c in columns {
            if c.is_null(row) {
                buf.push(0);
            } else {
                let text = ArrayFormatter::try_new(c.as_ref(), &opts)?.value(row).to_string();
                buf.push(1);
                buf.extend_from_slice(&(text.len() as u32).to_le_bytes());
                buf.extend_from_slice(text.as_bytes());
            }
        }
        Ok(buf)
    }

    /// The surrogate key of an encoded natural key.
    pub fn key_of(&self, encoded: &[u8]) -> i64 {
        (xxh3_64_with_seed(encoded, self.seed) & (i64::MAX as u64)) as i64
    }

    /// Surrogate keys for every row of `columns` (distinct natural keys, as
    /// an entity's rows are). Fails when two different natural keys get
    /// the same surrogate.
    pub fn column(&mut self, entity: &str, columns: &[ArrayRef]) -> Result<Int64Array> {
        let rows = columns.first().map_or(0, |c| c.len());
        let mut out = Vec::with_capacity(rows);
        for r in 0..rows {
            let enc = Self::encode(columns, r)?;
            let k = self.key_of(&enc);
            match self.seen.get(&k) {
                Some(prev) if *prev != enc => bail!(
                    "surrogate key collision in entity `{entity}`: two natural keys hash to {k}; \
                     set `surrogate_salt` to another value (every key changes) or use the natural key"
                ),
                Some(_) => {}
                None => {
                    self.seen.insert(k, enc);
                }
            }
            out.push(k);
        }
        Ok(Int64Array::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, Int64Array, StringArray};
    use std::sync::Arc;

    #[test]
    fn stable_values_salted_and_width_independent() {
        let mut s = SurrogateKeys::new("");
        let cols: Vec<ArrayRef> = vec![Arc::new(StringArray::from(vec![Some("85123A"), None]))];
        let k = s.column("p", &cols).unwrap();
        // Pinned: a change of encoding or hash would silently re-key every
        // warehouse table, so it must show up here.
        let pinned = SurrogateKeys::new("").key_of(&[1, 6, 0, 0, 0, b'8', b'5', b'1', b'2', b'3', b'A']);
        assert_eq!(k.value(0), pinned);
        assert_eq!(k.value(0), 7_176_612_810_089_169_601, "value changed: {}", k.value(0));
        assert!(k.value(0) >= 0 && k.value(1) >= 0);
        assert_ne!(k.value(0), k.value(1));
        let salted = SurrogateKeys::new("s").column("p", &cols).unwrap();
        assert_ne!(salted.value(0), k.value(0));
        let a: Vec<ArrayRef> = vec![Arc::new(Int32Array::from(vec![17850]))];
        let b: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![17850]))];
        assert_eq!(
            SurrogateKeys::new("").column("c", &a).unwrap().value(0),
            SurrogateKeys::new("").column("c", &b).unwrap().value(0)
        );
    }

    #[test]
    fn a_collision_fails_with_a_hint() {
        let mut s = SurrogateKeys::new("");
        // Simulate a collision: pretend another key already produced this value.
        let cols: Vec<ArrayRef> = vec![Arc::new(StringArray::from(vec!["x"]))];
        let k = s.key_of(&SurrogateKeys::encode(&cols, 0).unwrap());
        s.seen.insert(k, b"another key".to_vec());
        let err = s.column("p", &cols).unwrap_err().to_string();
        assert!(err.contains("collision") && err.contains("surrogate_salt"), "{err}");
    }
}
