//! TANE: level-wise search of the attribute-set lattice with stripped
//! partitions (Huhtala et al., "TANE: An Efficient Algorithm for
//! Discovering Functional and Approximate Dependencies", 1999).
//!
//! For each set X on level l, `C+(X)` holds the right sides still possible
//! for minimal FDs `X \ {A} -> A`; it is the intersection of the C+ of X's
//! subsets. `X \ {A} -> A` is checked for each A in X and C+(X): exactly by
//! comparing partition errors, approximately by its g3 error. A found FD
//! removes A from C+(X) and, when exact, every column outside X (no
//! superset can give a minimal FD then). Sets with an empty C+ are pruned,
//! and the next level joins sets that share all but their last column.
//! The key-pruning rule of the paper is not applied (it only saves work);
//! superkeys have empty partitions, so their products cost nothing.
//!
//! Results are minimal non-trivial FDs with a single column on the right.
//! An empty left side means a constant column.

use std::collections::HashMap;

use super::partition::Partition;
use super::table::Encoded;
use super::{Cols, Fd, members};

/// Discovery settings.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Largest g3 error (share of rows) an FD may have: 0 for exact FDs.
    pub max_error: f64,
    /// Largest left side (columns); None for no limit.
    pub max_lhs: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_error: 0.0,
            max_lhs: None,
        }
    }
}

struct Node {
    set: Cols,
    partition: Partition,
    cplus: Cols,
}

/// The minimal FDs of `t`, sorted by left-side size, then columns.
pub fn discover(t: &Encoded, opts: Options) -> Vec<Fd> {
    let width = t.width();
    let all: Cols = if width == 64 { u64::MAX } else { (1u64 << width) - 1 };
    let limit = (opts.max_error * t.rows as f64).floor() as u64;
    let mut scratch = vec![u32::MAX; t.rows];
    let mut counts: Vec<Vec<u32>> = t.cardinality.iter().map(|&c| vec![0; c as usize]).collect();
    let mut fds = Vec::new();

    // Level 0: the empty set.
    let mut prev: HashMap<Cols, Node> = HashMap::new();
    prev.insert(
        0,
        Node {
            set: 0,
            partition: Partition::all(t.rows),
            cplus: all,
        },
    );
    let mut level: Vec<Node> = (0..width)
        .map(|a| Node {
            set: 1 << a,
            partition: Partition::of_column(&t.codes[a], t.cardinality[a]),
            cplus: 0,
        })
        .collect();
    let mut size = 1;
    while !level.is_empty() {
        // compute_dependencies
        for node in &mut level {
            node.cplus = members(node.set).fold(all, |acc, a| {
                acc & prev.get(&(node.set & !(1 << a))).map_or(0, |p| p.cplus)
            });
        }
        for node in &mut level {
            for a in members(node.set & node.cplus) {
                let lhs = node.set & !(1 << a);
                let Some(l) = prev.get(&lhs) else { continue };
                let exact = l.partition.error() == node.partition.error();
                let violating = if exact {
                    0
                } else if limit > 0 {
                    l.partition.violating_rows(&t.codes[a], &mut counts[a])
                } else {
                    u64::MAX
                };
                if exact || violating <= limit {
                    fds.push(Fd {
                        lhs,
                        rhs: a,
                        violating_rows: violating,
                    });
                    node.cplus &= !(1 << a);
                    if exact {
                        node.cplus &= node.set;
                    }
                }
            }
        }
        // prune
        level.retain(|n| n.cplus != 0);
        if opts.max_lhs.is_some_and(|m| size > m) {
            break;
        }
        // generate_next_level: join sets sharing all but their highest column.
        let index: HashMap<Cols, usize> = level.iter().enumerate().map(|(i, n)| (n.set, i)).collect();
        let mut by_prefix: HashMap<Cols, Vec<usize>> = HashMap::new();
        for (i, n) in level.iter().enumerate() {
            let top = 63 - n.set.leading_zeros() as usize;
            by_prefix.entry(n.set & !(1 << top)).or_default().push(i);
        }
        let mut prefixes: Vec<&Cols> = by_prefix.keys().collect();
        prefixes.sort();
        let mut next = Vec::new();
        for p in prefixes {
            let block = &by_prefix[p];
            for (x, &i) in block.iter().enumerate() {
                for &j in &block[x + 1..] {
                    let set = level[i].set | level[j].set;
                    if members(set).all(|a| index.contains_key(&(set & !(1 << a)))) {
                        let partition = level[i].partition.product(&level[j].partition, &mut scratch);
                        next.push(Node {
                            set,
                            partition,
                            cplus: 0,
                        });
                    }
                }
            }
        }
        next.sort_by_key(|n| n.set);
        prev = level.into_iter().map(|n| (n.set, n)).collect();
        level = next;
        size += 1;
    }
    fds.sort_by_key(|f| (f.lhs.count_ones(), f.lhs.reverse_bits(), f.rhs));
    fds
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every minimal FD by brute force: X -> A holds (within `limit` rows)
    /// and no proper subset of X gives it.
    fn brute_force(t: &Encoded, limit: u64) -> Vec<(Cols, usize)> {
        let w = t.width();
        let holds = |x: Cols, a: usize| -> bool {
            let mut groups: HashMap<Vec<u32>, HashMap<u32, u64>> = HashMap::new();
            for r in 0..t.rows {
                let key: Vec<u32> = members(x).map(|c| t.codes[c][r]).collect();
                *groups.entry(key).or_default().entry(t.codes[a][r]).or_default() += 1;
            }
            let bad: u64 = groups
                .values()
                .map(|m| m.values().sum::<u64>() - m.values().max().unwrap())
                .sum();
            bad <= limit
        };
        let mut out = Vec::new();
        for a in 0..w {
            for x in 0..(1u64 << w) {
                if x & (1 << a) != 0 || !holds(x, a) {
                    continue;
                }
                let minimal = members(x).all(|b| !holds(x & !(1 << b), a));
                if minimal {
                    out.push((x, a));
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn tane_equals_brute_force_on_random_tables() {
        let mut rng = fastrand::Rng::with_seed(7);
        for round in 0..60 {
            let w = rng.usize(2..6);
            let n = rng.usize(1..40);
            let rows: Vec<Vec<u32>> = (0..n)
                .map(|_| (0..w).map(|c| rng.u32(0..(c as u32 % 3 + 2))).collect())
                .collect();
            let names: Vec<String> = (0..w).map(|i| format!("c{i}")).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let t = Encoded::from_rows(&names, &rows);
            for err in [0.0, 0.1] {
                let limit = (err * n as f64).floor() as u64;
                let mut got: Vec<(Cols, usize)> = discover(
                    &t,
                    Options {
                        max_error: err,
                        max_lhs: None,
                    },
                )
                .iter()
                .map(|f| (f.lhs, f.rhs))
                .collect();
                got.sort();
                assert_eq!(got, brute_force(&t, limit), "round {round}, error {err}, rows {rows:?}");
            }
        }
    }
}
