//! Dedupe within a memory budget: when the rows' hashes would not fit in
//! memory, they spill to disk.
//!
//! The in-memory dedupe ([`FirstSeen`](super::dedupe::FirstSeen),
//! [`LastSeen`](super::dedupe::LastSeen)) holds one 128-bit hash per
//! distinct row in a hash table: 26 to 39 bytes per row for keep-first, and
//! twice that while the table grows (a 2 GB CSV of 22 M rows needed 855 MB).
//! Before a dedupe starts, [`plan`] compares what the table would take for
//! the input's row count (an upper bound of the rows reaching the dedupe)
//! with the budget (`dedupe_memory`, default [`DEFAULT_BUDGET`]):
//!
//! - it fits: the table is made that size at once (no growth spike);
//! - it does not: a first pass writes every row's `(hash, row number)` to
//!   one of `2^k` partition files chosen by the hash's top bits
//!   ([`SpillWriter`]); then each partition alone is read into a table of
//!   its distinct hashes with their first (or last) row number, and those
//!   rows are marked in a bitmap of kept rows ([`KeptRows`], one bit per
//!   row); the final pass keeps the marked rows. A duplicate always shares
//!   its partition with the row it duplicates, so the result is exactly the
//!   in-memory one (same rows kept, same order, same counts); `k` is chosen
//!   so that a partition's table stays within the budget.
//!
//! Either way rows are compared by their full 128-bit hash (see
//! `dedupe.rs`): two different rows are taken for duplicates only if their
//! xxh3-128 hashes collide, about 1 in 10^20 for a billion rows.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use arrow::array::BooleanArray;

use super::dedupe::{HashIsRandom, Keep};

/// Default memory budget of one dedupe: 256 MiB.
pub const DEFAULT_BUDGET: u64 = 256 << 20;

/// Bytes of a hash table of `n` entries of `entry` bytes (hashbrown: a
/// power-of-two bucket count at most 7/8 full, one control byte each).
fn table_bytes(n: u64, entry: u64) -> u64 {
    let buckets = (n.max(1) * 8 / 7 + 1).next_power_of_two().max(4);
    buckets * (entry + 1)
}

/// Entry bytes of the in-memory tables: `u128` (keep first), `(u128, u64)`
/// (keep last; 32 with alignment).
fn entry_bytes(keep: Keep) -> u64 {
    match keep {
        Keep::First => 16,
        Keep::Last => 32,
    }
}

/// How a dedupe of at most `rows` rows runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// In memory, the table sized for `rows` at once.
    InMemory { rows: u64 },
    /// Spilled to `2^bits` partitions.
    Spill { bits: u32 },
}

/// Picks in memory or spilled for `rows` rows within `budget` bytes.
pub fn plan(rows: u64, keep: Keep, budget: u64) -> Plan {
    if table_bytes(rows, entry_bytes(keep)) <= budget {
        return Plan::InMemory { rows };
    }
    // A partition's table holds (hash, row) entries; sized as it fills, it
    // can briefly hold the old and the new bucket arrays (x 1.5 of the
    // final size at most), so aim each partition at 2/3 of the budget.
    // At most 256 files (and 16 MiB of write buffers); past ~650 M rows
    // at the default budget a partition's table outgrows the budget.
    let mut bits = 1;
    while bits < MAX_BITS && table_bytes(rows >> bits, 32) * 3 / 2 > budget {
        bits += 1;
    }
    Plan::Spill { bits }
}

const MAX_BITS: u32 = 8;

/// Parses a memory size: `"256MB"`, `"1 GiB"`, `"512k"`, `"1048576"`
/// (bytes). K/M/G are powers of 1024 with or without `i`/`B`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. \"256MB\", \"1GB\")"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit `{other}` in `{s}` (use KB, MB or GB)")),
    };
    let bytes = (n * mult as f64) as u64;
    if bytes == 0 {
        return Err(format!("`{s}`: the size must be more than 0"));
    }
    Ok(bytes)
}

/// Bytes of one spilled entry: the hash and the row number, little-endian.
const ENTRY: usize = 24;

/// Writes `(hash, row)` of every row to the partition files.
pub struct SpillWriter {
    dir: SpillDir,
    bits: u32,
    files: Vec<BufWriter<File>>,
    rows: u64,
    budget: u64,
}

/// The spill folder, removed when dropped (done, failed or cancelled).
struct SpillDir(PathBuf);

impl Drop for SpillDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl SpillWriter {
    /// Creates `2^bits` partition files in a fresh folder `dir`; `budget`
    /// bounds the table of one partition when it is read back.
    pub fn create(dir: &Path, bits: u32, budget: u64) -> Result<Self> {
        let _ = std::fs::remove_dir_all(dir); // a leftover of a killed attempt
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let guard = SpillDir(dir.to_path_buf());
        let files = (0..1usize << bits)
            .map(|i| {
                let p = dir.join(format!("part-{i:04}"));
                let f = File::create(&p).with_context(|| format!("creating {}", p.display()))?;
                Ok(BufWriter::with_capacity(64 << 10, f))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            dir: guard,
            bits,
            files,
            rows: 0,
            budget,
        })
    }

    /// Adds the next rows' hashes (row numbers continue from the last call).
    pub fn add(&mut self, hashes: &[u128]) -> Result<()> {
        for h in hashes {
            let part = (h >> (128 - self.bits)) as usize;
            let mut e = [0u8; ENTRY];
            e[..16].copy_from_slice(&h.to_le_bytes());
            e[16..].copy_from_slice(&self.rows.to_le_bytes());
            self.files[part].write_all(&e).context("writing the dedupe spill")?;
            self.rows += 1;
        }
        Ok(())
    }

    /// Reads each partition back and marks the rows to keep.
    pub fn resolve(self, keep: Keep) -> Result<KeptRows> {
        let mut kept = KeptRows::new(self.rows);
        let mut paths = Vec::with_capacity(self.files.len());
        for (i, f) in self.files.into_iter().enumerate() {
            f.into_inner()
                .map_err(|e| e.into_error())
                .context("writing the dedupe spill")?;
            paths.push(self.dir.0.join(format!("part-{i:04}")));
        }
        let mut read = 0u64;
        for p in &paths {
            let entries = std::fs::metadata(p)?.len() / ENTRY as u64;
            read += entries;
            // Sized for the entries at once when that fits (duplicates make
            // it an overestimate); else grown as needed.
            let cap = if table_bytes(entries, 32) <= self.budget {
                entries
            } else {
                0
            };
            let mut rows: HashMap<u128, u64, HashIsRandom> =
                HashMap::with_capacity_and_hasher(cap as usize, HashIsRandom);
            let mut r = BufReader::with_capacity(256 << 10, File::open(p)?);
            let mut e = [0u8; ENTRY];
            for _ in 0..entries {
                r.read_exact(&mut e).context("reading the dedupe spill")?;
                let h = u128::from_le_bytes(e[..16].try_into().expect("16 bytes"));
                let row = u64::from_le_bytes(e[16..].try_into().expect("8 bytes"));
                // Rows come in order: the first insert is the first row,
                // the last overwrite the last.
                match keep {
                    Keep::First => {
                        rows.entry(h).or_insert(row);
                    }
                    Keep::Last => {
                        rows.insert(h, row);
                    }
                }
            }
            for row in rows.values() {
                kept.set(*row);
            }
            std::fs::remove_file(p).ok();
        }
        if read != self.rows {
            bail!("dedupe spill: {read} rows read back, {} written", self.rows);
        }
        Ok(kept)
    }
}

/// One bit per row reaching the dedupe: kept or not.
pub struct KeptRows {
    bits: Vec<u64>,
    rows: u64,
}

impl KeptRows {
    fn new(rows: u64) -> Self {
        Self {
            bits: vec![0; rows.div_ceil(64) as usize],
            rows,
        }
    }

    fn set(&mut self, row: u64) {
        self.bits[(row / 64) as usize] |= 1 << (row % 64);
    }

    /// The keep mask of `n` rows from row `first`.
    pub fn mask(&self, first: u64, n: usize) -> BooleanArray {
        (first..first + n as u64)
            .map(|r| Some(r < self.rows && self.bits[(r / 64) as usize] & (1 << (r % 64)) != 0))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ops::dedupe::{FirstSeen, LastSeen};

    /// Hashes with many duplicates, spread over batches of uneven sizes.
    fn batches(seed: u64) -> Vec<Vec<u128>> {
        let mut rng = fastrand::Rng::with_seed(seed);
        let distinct: Vec<u128> = (0..3000).map(|_| rng.u128(..)).collect();
        (0..40)
            .map(|_| {
                (0..rng.usize(0..500))
                    .map(|_| distinct[rng.usize(0..distinct.len())])
                    .collect()
            })
            .collect()
    }

    #[test]
    fn spilled_equals_in_memory_for_first_and_last() {
        for seed in 0..4 {
            let batches = batches(seed);
            let dir = tempfile::tempdir().unwrap();
            for bits in [1, 3, 6] {
                // keep first
                let mut mem = FirstSeen::default();
                let mut spill = SpillWriter::create(&dir.path().join("s"), bits, 1 << 20).unwrap();
                let want: Vec<BooleanArray> = batches.iter().map(|b| mem.mask(b)).collect();
                batches.iter().for_each(|b| spill.add(b).unwrap());
                let kept = spill.resolve(Keep::First).unwrap();
                let mut first = 0;
                for (b, w) in batches.iter().zip(&want) {
                    assert_eq!(&kept.mask(first, b.len()), w, "seed {seed} bits {bits}");
                    first += b.len() as u64;
                }
                assert!(!dir.path().join("s").exists(), "the spill is removed");
                // keep last
                let mut last = LastSeen::default();
                let mut spill = SpillWriter::create(&dir.path().join("s"), bits, 1 << 20).unwrap();
                let mut first = 0;
                for b in &batches {
                    last.observe(b, first);
                    spill.add(b).unwrap();
                    first += b.len() as u64;
                }
                let kept = spill.resolve(Keep::Last).unwrap();
                let mut first = 0;
                for b in &batches {
                    assert_eq!(
                        kept.mask(first, b.len()),
                        last.mask(b, first),
                        "seed {seed} bits {bits}"
                    );
                    first += b.len() as u64;
                }
            }
        }
    }

    #[test]
    fn plans_and_sizes() {
        assert_eq!(
            plan(541_909, Keep::First, DEFAULT_BUDGET),
            Plan::InMemory { rows: 541_909 }
        );
        // The 2 GB benchmark CSV: 22 M rows do not fit in 256 MiB.
        let Plan::Spill { bits } = plan(22_218_269, Keep::First, DEFAULT_BUDGET) else {
            panic!("spills")
        };
        assert!(table_bytes(22_218_269 >> bits, 32) * 3 / 2 <= DEFAULT_BUDGET, "{bits}");
        assert!(matches!(plan(1000, Keep::Last, 1024), Plan::Spill { .. }));
        assert_eq!(parse_size("256MB"), Ok(256 << 20));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").unwrap_err().contains("unknown size unit"));
        assert!(parse_size("0").is_err());
    }
}
