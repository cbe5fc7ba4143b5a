//! Candidate keys and Bernstein's 3NF synthesis from a set of FDs.
//!
//! 1. Minimal cover: single-column right sides (as discovered), left sides
//!    reduced (no column can be dropped), redundant FDs removed (implied by
//!    the others).
//! 2. One relation per left side: the left side and every column it
//!    determines; the left side is its key.
//! 3. Relations contained in another are dropped.
//! 4. If no relation holds a candidate key of the whole table, a relation
//!    made of one candidate key is added (it makes the join lossless).
//!
//! The result is in 3NF, lossless (joining the relations back gives the
//! table) and dependency-preserving (each FD of the cover lies within one
//! relation). Relations whose left sides are equivalent are not merged
//! (Bernstein's optional step); the job's author can merge them.

use super::{Cols, Fd, members};

/// Whether every column of `a` is in `b`.
fn is_subset(a: Cols, b: Cols) -> bool {
    a & b == a
}

/// The columns `set` determines under `fds`.
pub fn closure(set: Cols, fds: &[(Cols, usize)]) -> Cols {
    let mut c = set;
    loop {
        let before = c;
        for &(l, r) in fds {
            if l & c == l {
                c |= 1 << r;
            }
        }
        if c == before {
            return c;
        }
    }
}

/// A minimal cover of `fds`.
pub fn minimal_cover(fds: &[Fd]) -> Vec<(Cols, usize)> {
    let mut f: Vec<(Cols, usize)> = fds.iter().map(|f| (f.lhs, f.rhs)).collect();
    f.sort_by_key(|&(l, r)| (l.count_ones(), l, r));
    f.dedup();
    for i in 0..f.len() {
        for b in members(f[i].0) {
            let smaller = f[i].0 & !(1 << b);
            if closure(smaller, &f) & (1 << f[i].1) != 0 {
                f[i].0 = smaller;
            }
        }
    }
    f.sort_by_key(|&(l, r)| (l.count_ones(), l, r));
    f.dedup();
    let mut i = 0;
    while i < f.len() {
        let fd = f.remove(i);
        if closure(fd.0, &f) & (1 << fd.1) == 0 {
            f.insert(i, fd);
            i += 1;
        }
    }
    f
}

/// Candidate keys (minimal sets determining every column), smallest first;
/// at most `limit` of them.
pub fn candidate_keys(width: usize, fds: &[(Cols, usize)], limit: usize) -> Vec<Cols> {
    let all: Cols = if width == 64 { u64::MAX } else { (1 << width) - 1 };
    let determined = fds.iter().fold(0, |acc, &(_, r)| acc | (1 << r));
    let core = all & !determined; // in every key
    let optional: Vec<usize> = members(determined).collect();
    let mut keys: Vec<Cols> = Vec::new();
    for k in 0..=optional.len() {
        // Subsets of `optional` of size k, in lexicographic order.
        let mut idx: Vec<usize> = (0..k).collect();
        loop {
            let set = idx.iter().fold(core, |acc, &i| acc | (1 << optional[i]));
            if !keys.iter().any(|&key| is_subset(key, set)) && closure(set, fds) == all {
                keys.push(set);
                if keys.len() >= limit {
                    return keys;
                }
            }
            // Next combination.
            let mut i = k;
            loop {
                if i == 0 {
                    break;
                }
                i -= 1;
                if idx[i] < optional.len() - k + i {
                    idx[i] += 1;
                    for j in i + 1..k {
                        idx[j] = idx[j - 1] + 1;
                    }
                    i = usize::MAX;
                    break;
                }
            }
            if i != usize::MAX {
                break;
            }
        }
    }
    keys
}

/// One relation of a synthesized schema.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Relation {
    pub key: Cols,
    pub columns: Cols,
}

/// Bernstein's synthesis over `width` columns.
pub fn synthesize(width: usize, fds: &[Fd]) -> (Vec<(Cols, usize)>, Vec<Relation>, Vec<Cols>) {
    let cover = minimal_cover(fds);
    let keys = candidate_keys(width, &cover, 16);
    let mut rels: Vec<Relation> = Vec::new();
    for &(l, r) in &cover {
        match rels.iter_mut().find(|x| x.key == l) {
            Some(x) => x.columns |= 1 << r,
            None => rels.push(Relation {
                key: l,
                columns: l | (1 << r),
            }),
        }
    }
    let snapshot = rels.clone();
    rels.retain(|r| {
        !snapshot
            .iter()
            .any(|o| o != r && o.columns & r.columns == r.columns && (o.columns != r.columns || o.key < r.key))
    });
    if let Some(&k) = keys.first()
        && !rels.iter().any(|r| keys.iter().any(|&key| is_subset(key, r.columns)))
    {
        rels.push(Relation { key: k, columns: k });
    }
    (cover, rels, keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fd(l: &[usize], r: usize) -> Fd {
        Fd {
            lhs: l.iter().fold(0, |a, &c| a | (1 << c)),
            rhs: r,
            violating_rows: 0,
        }
    }

    #[test]
    fn textbook_synthesis() {
        // A -> B, B -> C, A -> C (redundant), AB -> C (not left-reduced).
        let (cover, rels, keys) = synthesize(4, &[fd(&[0], 1), fd(&[1], 2), fd(&[0], 2), fd(&[0, 1], 2)]);
        assert_eq!(cover, vec![(0b0001, 1), (0b0010, 2)]);
        // Key: A and D (D is determined by nothing).
        assert_eq!(keys, vec![0b1001]);
        assert_eq!(
            rels,
            vec![
                Relation {
                    key: 0b0001,
                    columns: 0b0011
                },
                Relation {
                    key: 0b0010,
                    columns: 0b0110
                },
                Relation {
                    key: 0b1001,
                    columns: 0b1001
                },
            ]
        );
    }
}
