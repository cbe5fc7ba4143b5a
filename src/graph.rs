//! The DAG as a graph (petgraph): order, cycles, sub-graphs and drawings.

use std::collections::{BTreeSet, HashMap};

use petgraph::Direction;
use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Bfs, Reversed};

/// Tasks as nodes, `needs` as edges from upstream to downstream.
pub struct DagGraph {
    graph: DiGraph<String, ()>,
    index: HashMap<String, NodeIndex>,
}

impl DagGraph {
    /// Builds the graph from (task id, needs). Needs naming unknown tasks are
    /// ignored here (validation reports them).
    pub fn new<'a>(tasks: impl IntoIterator<Item = (&'a str, &'a [String])>) -> Self {
        let tasks: Vec<(&str, &[String])> = tasks.into_iter().collect();
        let mut graph = DiGraph::with_capacity(tasks.len(), tasks.len());
        let mut index = HashMap::with_capacity(tasks.len());
        for (id, _) in &tasks {
            index
                .entry(id.to_string())
                .or_insert_with(|| graph.add_node(id.to_string()));
        }
        for (id, needs) in &tasks {
            let to = index[*id];
            for n in needs.iter() {
                if let Some(&from) = index.get(n) {
                    graph.update_edge(from, to, ());
                }
            }
        }
        Self { graph, index }
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// Task ids in an order where every task comes after its needs; `None`
    /// when there is a cycle.
    pub fn topological_order(&self) -> Option<Vec<String>> {
        toposort(&self.graph, None)
            .ok()
            .map(|order| order.into_iter().map(|n| self.graph[n].clone()).collect())
    }

    /// Every cycle, each as the task ids along it (`a, b, c` for
    /// `a -> b -> c -> a`), starting from its smallest id for stable output.
    pub fn cycles(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        for scc in tarjan_scc(&self.graph) {
            let self_loop = scc.len() == 1 && self.graph.contains_edge(scc[0], scc[0]);
            if scc.len() < 2 && !self_loop {
                continue;
            }
            let members: BTreeSet<NodeIndex> = scc.iter().copied().collect();
            let start = *scc.iter().min_by_key(|n| &self.graph[**n]).unwrap();
            out.push(self.cycle_from(start, &members));
        }
        out.sort();
        out
    }

    /// A simple cycle through `start` inside one strongly connected
    /// component (a breadth-first path back to `start`).
    fn cycle_from(&self, start: NodeIndex, members: &BTreeSet<NodeIndex>) -> Vec<String> {
        let mut prev: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(n) = queue.pop_front() {
            for m in self.graph.neighbors_directed(n, Direction::Outgoing) {
                if m == start {
                    let mut path = vec![n];
                    let mut cur = n;
                    while cur != start {
                        cur = prev[&cur];
                        path.push(cur);
                    }
                    path.reverse();
                    return path.into_iter().map(|i| self.graph[i].clone()).collect();
                }
                if members.contains(&m) && !prev.contains_key(&m) && m != start {
                    prev.insert(m, n);
                    queue.push_back(m);
                }
            }
        }
        vec![self.graph[start].clone()]
    }

    /// `id` and every task downstream of it.
    pub fn downstream_of(&self, id: &str) -> BTreeSet<String> {
        self.reach(id, false)
    }

    /// `id` and every task upstream of it.
    pub fn upstream_of(&self, id: &str) -> BTreeSet<String> {
        self.reach(id, true)
    }

    fn reach(&self, id: &str, reversed: bool) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let Some(&start) = self.index.get(id) else { return out };
        if reversed {
            let g = Reversed(&self.graph);
            let mut bfs = Bfs::new(g, start);
            while let Some(n) = bfs.next(g) {
                out.insert(self.graph[n].clone());
            }
        } else {
            let mut bfs = Bfs::new(&self.graph, start);
            while let Some(n) = bfs.next(&self.graph) {
                out.insert(self.graph[n].clone());
            }
        }
        out
    }

    fn edges(&self) -> Vec<(&str, &str)> {
        let mut e: Vec<(&str, &str)> = self
            .graph
            .edge_indices()
            .filter_map(|e| self.graph.edge_endpoints(e))
            .map(|(a, b)| (self.graph[a].as_str(), self.graph[b].as_str()))
            .collect();
        e.sort();
        e
    }

    fn nodes(&self) -> Vec<&str> {
        let mut n: Vec<&str> = self.graph.node_weights().map(String::as_str).collect();
        n.sort();
        n
    }

    /// Graphviz dot. `label` gives each node's extra text (its kind, or its
    /// state in a run).
    pub fn to_dot(&self, name: &str, label: impl Fn(&str) -> String) -> String {
        let mut s = format!(
            "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, style=rounded];\n",
            esc(name)
        );
        for n in self.nodes() {
            s += &format!("  \"{}\" [label=\"{}\\n{}\"];\n", esc(n), esc(n), esc(&label(n)));
        }
        for (a, b) in self.edges() {
            s += &format!("  \"{}\" -> \"{}\";\n", esc(a), esc(b));
        }
        s + "}\n"
    }

    /// Mermaid flowchart.
    pub fn to_mermaid(&self, label: impl Fn(&str) -> String) -> String {
        let ids: HashMap<&str, String> = self
            .nodes()
            .into_iter()
            .enumerate()
            .map(|(i, n)| (n, format!("t{i}")))
            .collect();
        let mut s = String::from("flowchart LR\n");
        for n in self.nodes() {
            s += &format!(
                "  {}[\"{}<br/>{}\"]\n",
                ids[n],
                n.replace('"', "#quot;"),
                label(n).replace('"', "#quot;")
            );
        }
        for (a, b) in self.edges() {
            s += &format!("  {} --> {}\n", ids[a], ids[b]);
        }
        s
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(spec: &[(&str, &[&str])]) -> DagGraph {
        let owned: Vec<(String, Vec<String>)> = spec
            .iter()
            .map(|(id, n)| (id.to_string(), n.iter().map(|s| s.to_string()).collect()))
            .collect();
        DagGraph::new(
            owned
                .iter()
                .map(|(id, n)| (id.as_str(), n.as_slice()))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn order_respects_needs() {
        let d = g(&[("load", &["clean"]), ("clean", &["extract"]), ("extract", &[])]);
        assert_eq!(d.topological_order().unwrap(), ["extract", "clean", "load"]);
    }

    #[test]
    fn names_the_cycle() {
        let d = g(&[("a", &["c"]), ("b", &["a"]), ("c", &["b"]), ("x", &[])]);
        assert_eq!(d.cycles(), vec![vec!["a", "b", "c"]]);
        assert!(d.topological_order().is_none());
    }

    #[test]
    fn subgraphs() {
        let d = g(&[("a", &[]), ("b", &["a"]), ("c", &["b"]), ("d", &["a"])]);
        assert_eq!(d.downstream_of("b").into_iter().collect::<Vec<_>>(), ["b", "c"]);
        assert_eq!(d.upstream_of("c").into_iter().collect::<Vec<_>>(), ["a", "b", "c"]);
    }

    #[test]
    fn renders() {
        let d = g(&[("a", &[]), ("b", &["a"])]);
        assert!(d.to_dot("x", |_| "shell".into()).contains("\"a\" -> \"b\""));
        assert!(d.to_mermaid(|_| "shell".into()).contains("t0 --> t1"));
    }
}
