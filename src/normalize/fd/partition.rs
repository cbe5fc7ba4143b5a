//! Stripped partitions: the rows grouped by their values on a set of
//! columns, groups of one row left out. Two sets have the same partition
//! error exactly when one determines the other's extra column, which is
//! how TANE tests X -> A: e(X) = e(X + A).

/// Equivalence classes of rows (each of two rows or more), stored flat.
#[derive(Debug, Clone, Default)]
pub struct Partition {
    rows: Vec<u32>,
    /// Class i is `rows[starts[i]..starts[i + 1]]`.
    starts: Vec<u32>,
}

impl Partition {
    /// The partition of one column from its codes.
    pub fn of_column(codes: &[u32], cardinality: u32) -> Self {
        let mut count = vec![0u32; cardinality as usize];
        for &c in codes {
            count[c as usize] += 1;
        }
        // Classes in order of code (first appearance); singletons dropped.
        let mut offset = vec![u32::MAX; cardinality as usize];
        let mut starts = Vec::new();
        let mut total = 0u32;
        for (c, &n) in count.iter().enumerate() {
            if n >= 2 {
                offset[c] = total;
                starts.push(total);
                total += n;
            }
        }
        starts.push(total);
        let mut rows = vec![0u32; total as usize];
        let mut fill = offset.clone();
        for (r, &c) in codes.iter().enumerate() {
            let o = &mut fill[c as usize];
            if *o != u32::MAX {
                rows[*o as usize] = r as u32;
                *o += 1;
            }
        }
        Self { rows, starts }
    }

    /// The partition of the empty set: all rows in one class.
    pub fn all(rows: usize) -> Self {
        if rows < 2 {
            return Self {
                rows: Vec::new(),
                starts: vec![0],
            };
        }
        Self {
            rows: (0..rows as u32).collect(),
            starts: vec![0, rows as u32],
        }
    }

    pub fn classes(&self) -> impl Iterator<Item = &[u32]> {
        self.starts.windows(2).map(|w| &self.rows[w[0] as usize..w[1] as usize])
    }

    pub fn class_count(&self) -> usize {
        self.starts.len() - 1
    }

    /// ||pi|| - |pi|: rows minus classes, over the stripped classes. Equal
    /// errors of X and X + A mean X -> A.
    pub fn error(&self) -> u64 {
        self.rows.len() as u64 - self.class_count() as u64
    }

    /// No two rows agree: the columns are a (super)key.
    pub fn is_unique(&self) -> bool {
        self.rows.is_empty()
    }

    /// The product (partition of the union of both column sets). `scratch`
    /// must hold one u32::MAX per table row; it is left that way.
    pub fn product(&self, other: &Partition, scratch: &mut [u32]) -> Partition {
        for (i, c) in self.classes().enumerate() {
            for &r in c {
                scratch[r as usize] = i as u32;
            }
        }
        let mut out = Partition {
            rows: Vec::new(),
            starts: vec![0],
        };
        // Per class of `other`: its rows that are in a class of `self`,
        // sorted by that class; runs of two or more are classes of the
        // product. No allocation per class.
        let mut buf: Vec<(u32, u32)> = Vec::new();
        for c in other.classes() {
            buf.clear();
            buf.extend(c.iter().filter_map(|&r| {
                let i = scratch[r as usize];
                (i != u32::MAX).then_some((i, r))
            }));
            if buf.len() < 2 {
                continue;
            }
            buf.sort_unstable();
            let mut start = 0;
            for k in 1..=buf.len() {
                if k == buf.len() || buf[k].0 != buf[start].0 {
                    if k - start >= 2 {
                        out.rows.extend(buf[start..k].iter().map(|&(_, r)| r));
                        out.starts.push(out.rows.len() as u32);
                    }
                    start = k;
                }
            }
        }
        for c in self.classes() {
            for &r in c {
                scratch[r as usize] = u32::MAX;
            }
        }
        out
    }

    /// g3 of `self's columns -> a` in rows: the fewest rows to delete so that
    /// every class agrees on `a`. `counts` holds one zero per value of `a`
    /// and is left that way.
    pub fn violating_rows(&self, a: &[u32], counts: &mut [u32]) -> u64 {
        let mut total = 0u64;
        for c in self.classes() {
            let mut max = 0;
            for &r in c {
                let k = &mut counts[a[r as usize] as usize];
                *k += 1;
                max = max.max(*k);
            }
            for &r in c {
                counts[a[r as usize] as usize] = 0;
            }
            total += (c.len() as u32 - max) as u64;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_and_errors() {
        let a = Partition::of_column(&[0, 0, 1, 1, 2], 3);
        let b = Partition::of_column(&[0, 1, 1, 1, 0], 2);
        assert_eq!(a.error(), 2);
        let mut scratch = vec![u32::MAX; 5];
        let ab = a.product(&b, &mut scratch);
        let classes: Vec<Vec<u32>> = ab.classes().map(|c| c.to_vec()).collect();
        assert_eq!(classes, vec![vec![2, 3]]);
        assert!(scratch.iter().all(|&s| s == u32::MAX));
        let mut counts = vec![0; 2];
        // a -> b breaks on rows {0, 1}: one row to delete.
        assert_eq!(a.violating_rows(&[0, 1, 1, 1, 0], &mut counts), 1);
        assert_eq!(Partition::all(5).violating_rows(&[0, 1, 1, 1, 0], &mut counts), 2);
    }
}
