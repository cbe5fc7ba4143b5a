//! Turning a DAG into nested sequences and parallel groups, the only shapes
//! Step Functions can express (`Parallel` states whose branches run in
//! sequence).
//!
//! A series-parallel DAG decomposes exactly: every task then waits for its
//! upstream tasks and nothing else. A DAG that is not series-parallel (its
//! smallest witness is the "N": `a -> c`, `b -> c`, `b -> d`) cannot be
//! expressed without making some task wait for a task it does not need. There
//! the decomposition splits the stuck part at the down-closed cut that adds
//! the fewest such waits (each task still runs once: nothing is duplicated),
//! and reports every added wait as lost concurrency.
//!
//! The recursion works on convex sets of tasks (every task on a path between
//! two members is a member), which each split preserves, so the `needs`
//! edges inside a set are all it has to look at.

use std::collections::BTreeMap;

use super::bitset::BitSet;

/// The shape of a compiled DAG: tasks are indexes into the topological order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    Task(usize),
    /// One after another.
    Seq(Vec<Block>),
    /// All at once; done when every branch is done.
    Par(Vec<Block>),
}

/// A DAG in topological order with its reachability.
pub struct Ordered {
    /// Task ids, every task after its needs.
    pub ids: Vec<String>,
    /// Direct needs, as indexes.
    pub needs: Vec<Vec<usize>>,
    /// Every task upstream of each task (itself excluded).
    pub ancestors: Vec<BitSet>,
}

impl Ordered {
    /// `order` lists the task ids topologically; `needs_of` gives each one's needs.
    pub fn new<'a>(order: &[String], needs_of: impl Fn(&str) -> &'a [String]) -> Self {
        let n = order.len();
        let pos: BTreeMap<&str, usize> = order.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
        let mut needs = Vec::with_capacity(n);
        let mut ancestors: Vec<BitSet> = Vec::with_capacity(n);
        for id in order {
            let mine: Vec<usize> = needs_of(id)
                .iter()
                .filter_map(|x| pos.get(x.as_str()).copied())
                .collect();
            let mut anc = BitSet::new(n);
            for &u in &mine {
                anc.insert(u);
                anc.union_with(&ancestors[u]);
            }
            needs.push(mine);
            ancestors.push(anc);
        }
        Self {
            ids: order.to_vec(),
            needs,
            ancestors,
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Most candidate cuts tried when a part is not series-parallel (keeps the
/// compile time of large irregular DAGs in check).
const MAX_CANDIDATES: usize = 48;

/// Decomposes the whole DAG.
pub fn decompose(dag: &Ordered) -> Block {
    if dag.is_empty() {
        return Block::Seq(Vec::new());
    }
    let all: Vec<usize> = (0..dag.len()).collect();
    split(dag, &all)
}

/// `set` is sorted (topological order) and convex.
fn split(dag: &Ordered, set: &[usize]) -> Block {
    if set.len() == 1 {
        return Block::Task(set[0]);
    }
    let comps = components(dag, set);
    if comps.len() > 1 {
        return Block::Par(comps.iter().map(|c| split(dag, c)).collect());
    }
    let mut mask = BitSet::new(dag.len());
    for &v in set {
        mask.insert(v);
    }
    let cuts = series_cuts(dag, set, &mask);
    if !cuts.is_empty() {
        let mut parts = Vec::new();
        let mut from = 0;
        for k in cuts.into_iter().chain([set.len()]) {
            parts.push(split(dag, &set[from..k]));
            from = k;
        }
        return seq(parts);
    }
    // Not series-parallel here: cut at the cheapest down-closed set.
    let lower = cheapest_ideal(dag, set, &mask);
    let upper: Vec<usize> = set.iter().copied().filter(|v| !lower.contains(*v)).collect();
    let lower: Vec<usize> = set.iter().copied().filter(|v| lower.contains(*v)).collect();
    seq(vec![split(dag, &lower), split(dag, &upper)])
}

fn seq(parts: Vec<Block>) -> Block {
    let mut flat = Vec::new();
    for p in parts {
        match p {
            Block::Seq(inner) => flat.extend(inner),
            other => flat.push(other),
        }
    }
    Block::Seq(flat)
}

/// Weakly connected components of `set`, each sorted.
fn components(dag: &Ordered, set: &[usize]) -> Vec<Vec<usize>> {
    let local: BTreeMap<usize, usize> = set.iter().enumerate().map(|(i, &v)| (v, i)).collect();
    let mut parent: Vec<usize> = (0..set.len()).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    for (i, &v) in set.iter().enumerate() {
        for u in &dag.needs[v] {
            if let Some(&j) = local.get(u) {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                if a != b {
                    parent[a] = b;
                }
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, &v) in set.iter().enumerate() {
        let r = find(&mut parent, i);
        groups.entry(r).or_default().push(v);
    }
    let mut out: Vec<Vec<usize>> = groups.into_values().collect();
    out.sort_by_key(|g| g[0]);
    out
}

/// Positions `k` (0 < k < len) where every task before `k` is upstream of
/// every task from `k` on. Any such cut is a prefix of every topological
/// order, so checking the prefixes of one finds them all.
fn series_cuts(dag: &Ordered, set: &[usize], mask: &BitSet) -> Vec<usize> {
    let n = set.len();
    // first_gap[j]: the position of the first member (in order) that the
    // j-th member does not depend on (j itself when it depends on all before it).
    let pos: BTreeMap<usize, usize> = set.iter().enumerate().map(|(i, &v)| (v, i)).collect();
    let first_gap: Vec<usize> = set
        .iter()
        .enumerate()
        .map(|(j, &v)| {
            mask.first_not_in(&dag.ancestors[v])
                .map(|u| pos[&u].min(j))
                .unwrap_or(j)
        })
        .collect();
    let mut suffix_min = vec![usize::MAX; n + 1];
    for j in (0..n).rev() {
        suffix_min[j] = suffix_min[j + 1].min(first_gap[j]);
    }
    (1..n).filter(|&k| suffix_min[k] >= k).collect()
}

/// The proper, non-empty, down-closed subset of `set` whose completion
/// before the rest adds the fewest waits on tasks that are not upstream.
fn cheapest_ideal(dag: &Ordered, set: &[usize], mask: &BitSet) -> BitSet {
    let n = dag.len();
    let mut candidates: Vec<BitSet> = Vec::new();
    // Prefixes by depth (longest path from the set's sources).
    let mut depth: BTreeMap<usize, usize> = BTreeMap::new();
    for &v in set {
        let d = dag.needs[v]
            .iter()
            .filter_map(|u| depth.get(u))
            .map(|d| d + 1)
            .max()
            .unwrap_or(0);
        depth.insert(v, d);
    }
    let max_depth = depth.values().copied().max().unwrap_or(0);
    for level in 0..max_depth {
        let mut b = BitSet::new(n);
        for (&v, &d) in &depth {
            if d <= level {
                b.insert(v);
            }
        }
        candidates.push(b);
    }
    // Each task with everything it needs (sampled evenly on large sets).
    let step = set
        .len()
        .div_ceil(MAX_CANDIDATES.saturating_sub(candidates.len()).max(1));
    for &v in set.iter().step_by(step.max(1)) {
        let mut b = dag.ancestors[v].intersection(mask);
        b.insert(v);
        candidates.push(b);
    }
    let total = set.len();
    let mut best: Option<(f64, usize, BitSet)> = None;
    for c in candidates {
        let size = c.count();
        if size == 0 || size == total {
            continue;
        }
        let cost: u64 = set
            .iter()
            .filter(|&&b| !c.contains(b))
            .map(|&b| (size - c.intersection_count(&dag.ancestors[b])) as u64)
            .sum();
        // The share of the cut's (lower, upper) pairs that become extra
        // waits: minimising the raw count would peel one task at a time
        // (deep nesting, quadratic time, and every peeled task waiting on
        // the rest); the share favours balanced cuts at the same cost.
        let share = cost as f64 / (size * (total - size)) as f64;
        let balance = size.abs_diff(total - size);
        if best.as_ref().is_none_or(|(bs, bb, _)| (share, balance) < (*bs, *bb)) {
            best = Some((share, balance, c));
        }
    }
    best.map(|(_, _, c)| c)
        .expect("a connected set of two or more tasks has a proper ideal")
}

/// For each task, the tasks it waits for in `block` (all tasks of every
/// earlier element of each enclosing sequence).
pub fn waits(block: &Block, n: usize) -> Vec<BitSet> {
    let mut out = vec![BitSet::new(n); n];
    fn members(b: &Block, into: &mut BitSet) {
        match b {
            Block::Task(t) => into.insert(*t),
            Block::Seq(xs) | Block::Par(xs) => xs.iter().for_each(|x| members(x, into)),
        }
    }
    fn walk(b: &Block, before: &BitSet, out: &mut [BitSet]) {
        match b {
            Block::Task(t) => out[*t] = before.clone(),
            Block::Par(xs) => xs.iter().for_each(|x| walk(x, before, out)),
            Block::Seq(xs) => {
                let mut running = before.clone();
                for x in xs {
                    walk(x, &running, out);
                    members(x, &mut running);
                }
            }
        }
    }
    walk(block, &BitSet::new(n), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ordered(spec: &[(&str, &[&str])]) -> Ordered {
        let order: Vec<String> = spec.iter().map(|(a, _)| a.to_string()).collect();
        let needs: BTreeMap<String, Vec<String>> = spec
            .iter()
            .map(|(a, n)| (a.to_string(), n.iter().map(|s| s.to_string()).collect()))
            .collect();
        Ordered::new(&order, |id| needs[id].as_slice())
    }

    fn show(d: &Ordered, b: &Block) -> String {
        match b {
            Block::Task(t) => d.ids[*t].clone(),
            Block::Seq(xs) => format!("({})", xs.iter().map(|x| show(d, x)).collect::<Vec<_>>().join(" ; ")),
            Block::Par(xs) => format!("[{}]", xs.iter().map(|x| show(d, x)).collect::<Vec<_>>().join(" | ")),
        }
    }

    #[test]
    fn diamond_is_exact() {
        let d = ordered(&[("a", &[]), ("b", &["a"]), ("c", &["a"]), ("d", &["b", "c"])]);
        assert_eq!(show(&d, &decompose(&d)), "(a ; [b | c] ; d)");
    }

    #[test]
    fn nested_series_parallel() {
        let d = ordered(&[("a", &[]), ("b", &["a"]), ("c", &["b"]), ("x", &[]), ("d", &["c", "x"])]);
        assert_eq!(show(&d, &decompose(&d)), "([(a ; b ; c) | x] ; d)");
    }

    #[test]
    fn n_shape_loses_one_wait_and_keeps_order() {
        let d = ordered(&[("a", &[]), ("b", &[]), ("c", &["a", "b"]), ("d", &["b"])]);
        let block = decompose(&d);
        let w = waits(&block, d.len());
        let extra: usize = (0..d.len()).map(|t| w[t].difference_count(&d.ancestors[t])).sum();
        assert_eq!(extra, 1, "{}", show(&d, &block));
        for (t, wt) in w.iter().enumerate() {
            assert!(d.ancestors[t].is_subset(wt), "{} misses a need", d.ids[t]);
        }
    }
}
