//! Drawings made on the server, as SVG text: the DAG graph (layered by
//! topological depth) and the Gantt chart of a run's task times.

use std::collections::HashMap;
use std::fmt::Write;

use crate::spec::Dag;

/// Escapes text for XML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Each task's layer: 0 for tasks with no needs, else one more than the
/// deepest task it needs (longest path from a root).
pub fn layers(dag: &Dag) -> HashMap<String, usize> {
    let g = crate::graph::DagGraph::new(dag.tasks.iter().map(|t| (t.id.as_str(), t.needs.as_slice())));
    let order = g
        .topological_order()
        .unwrap_or_else(|| dag.tasks.iter().map(|t| t.id.clone()).collect());
    let needs: HashMap<&str, &[String]> = dag.tasks.iter().map(|t| (t.id.as_str(), t.needs.as_slice())).collect();
    let mut depth: HashMap<String, usize> = HashMap::new();
    for id in &order {
        let d = needs
            .get(id.as_str())
            .map(|ns| ns.iter().filter_map(|n| depth.get(n)).map(|d| d + 1).max().unwrap_or(0))
            .unwrap_or(0);
        depth.insert(id.clone(), d);
    }
    depth
}

/// Tasks in display order: by layer, then file order.
pub fn ordered_tasks(dag: &Dag) -> Vec<String> {
    let depth = layers(dag);
    let mut ids: Vec<(usize, usize, String)> = dag
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (depth.get(&t.id).copied().unwrap_or(0), i, t.id.clone()))
        .collect();
    ids.sort();
    ids.into_iter().map(|(_, _, id)| id).collect()
}

const NODE_W: usize = 170;
const NODE_H: usize = 36;
const COL_GAP: usize = 60;
const ROW_GAP: usize = 18;

/// The DAG as boxes in columns by layer, edges as curves. `state` gives a
/// task's state in the selected run (its CSS class `s-<state>`), `href`
/// where a box links to.
pub fn graph(dag: &Dag, state: impl Fn(&str) -> Option<String>, href: impl Fn(&str) -> Option<String>) -> String {
    let depth = layers(dag);
    let mut columns: Vec<Vec<&str>> = Vec::new();
    for t in &dag.tasks {
        let d = depth.get(&t.id).copied().unwrap_or(0);
        if columns.len() <= d {
            columns.resize(d + 1, Vec::new());
        }
        columns[d].push(&t.id);
    }
    let mut pos: HashMap<&str, (usize, usize)> = HashMap::new();
    for (c, col) in columns.iter().enumerate() {
        for (r, id) in col.iter().enumerate() {
            pos.insert(id, (10 + c * (NODE_W + COL_GAP), 10 + r * (NODE_H + ROW_GAP)));
        }
    }
    let rows = columns.iter().map(Vec::len).max().unwrap_or(0);
    let w = 20 + columns.len() * (NODE_W + COL_GAP) - COL_GAP;
    let h = 20 + rows * (NODE_H + ROW_GAP);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="dag-graph" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="graph of {}">"#,
        esc(&dag.name)
    );
    for t in &dag.tasks {
        let Some(&(x2, y2)) = pos.get(t.id.as_str()) else {
            continue;
        };
        for n in &t.needs {
            let Some(&(x1, y1)) = pos.get(n.as_str()) else { continue };
            let (ax, ay) = (x1 + NODE_W, y1 + NODE_H / 2);
            let (bx, by) = (x2, y2 + NODE_H / 2);
            let mid = (ax + bx) / 2;
            let _ = write!(
                s,
                r#"<path class="edge" d="M{ax},{ay} C{mid},{ay} {mid},{by} {bx},{by}"/>"#
            );
        }
    }
    for t in &dag.tasks {
        let Some(&(x, y)) = pos.get(t.id.as_str()) else {
            continue;
        };
        let st = state(&t.id);
        let class = st.as_deref().unwrap_or("none");
        let label: String = if t.id.chars().count() > 22 {
            t.id.chars().take(21).chain(['…']).collect()
        } else {
            t.id.clone()
        };
        let title = format!("{} ({}): {}", t.id, t.kind, st.as_deref().unwrap_or("no run"));
        let node = format!(
            r#"<g class="node s-{class}" data-task="{id}"><title>{title}</title><rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6"/><text x="{tx}" y="{ty}">{label}</text><text class="kind" x="{tx}" y="{ky}">{kind}</text></g>"#,
            class = esc(class),
            id = esc(&t.id),
            title = esc(&title),
            tx = x + 8,
            ty = y + 15,
            ky = y + 29,
            label = esc(&label),
            kind = esc(&t.kind),
        );
        match href(&t.id) {
            Some(h) => {
                let _ = write!(s, r#"<a href="{}">{node}</a>"#, esc(&h));
            }
            None => s.push_str(&node),
        }
    }
    s.push_str("</svg>");
    s
}

/// One bar of the Gantt chart.
pub struct Bar {
    pub task: String,
    pub state: String,
    /// Seconds from the run's first start.
    pub start: f64,
    pub end: f64,
    pub href: Option<String>,
}

/// Parses a stored time (RFC 3339) into seconds since the epoch.
pub fn epoch_secs(t: &str) -> Option<f64> {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|d| d.timestamp_millis() as f64 / 1000.0)
}

/// Horizontal bars of task times on a common time axis.
pub fn gantt(bars: &[Bar]) -> String {
    const LABEL_W: f64 = 180.0;
    const PLOT_W: f64 = 640.0;
    const ROW: f64 = 22.0;
    let span = bars.iter().map(|b| b.end).fold(0.0_f64, f64::max).max(0.001);
    let h = 30.0 + ROW * bars.len() as f64;
    let w = LABEL_W + PLOT_W + 70.0;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="gantt" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="task durations">"#
    );
    for i in 0..=4 {
        let x = LABEL_W + PLOT_W * i as f64 / 4.0;
        let _ = write!(
            s,
            r#"<line class="tick" x1="{x}" y1="0" x2="{x}" y2="{}"/><text class="axis" x="{x}" y="{}">{}</text>"#,
            h - 14.0,
            h - 2.0,
            fmt_secs(span * i as f64 / 4.0)
        );
    }
    for (i, b) in bars.iter().enumerate() {
        let y = 4.0 + ROW * i as f64;
        let x = LABEL_W + PLOT_W * b.start / span;
        let bw = (PLOT_W * (b.end - b.start) / span).max(2.0);
        let title = format!("{}: {} ({})", b.task, b.state, fmt_secs(b.end - b.start));
        let bar = format!(
            r#"<g class="bar s-{state}"><title>{title}</title><text class="label" x="4" y="{ty}">{task}</text><rect x="{x:.1}" y="{y}" width="{bw:.1}" height="{bh}" rx="3"/><text class="dur" x="{dx:.1}" y="{ty}">{d}</text></g>"#,
            state = esc(&b.state),
            title = esc(&title),
            task = esc(&b.task),
            ty = y + 13.0,
            bh = ROW - 6.0,
            dx = x + bw + 4.0,
            d = fmt_secs(b.end - b.start),
        );
        match &b.href {
            Some(hr) => {
                let _ = write!(s, r#"<a href="{}">{bar}</a>"#, esc(hr));
            }
            None => s.push_str(&bar),
        }
    }
    s.push_str("</svg>");
    s
}

/// `0.42s`, `12.3s`, `4m05s`, `2h03m`.
pub fn fmt_secs(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.2}s")
    } else if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{}h{:02}m", (s / 3600.0) as u64, ((s % 3600.0) / 60.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(esc(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_secs(0.5), "0.50s");
        assert_eq!(fmt_secs(245.0), "4m05s");
        assert_eq!(fmt_secs(7380.0), "2h03m");
    }

    #[test]
    fn gantt_scales_bars_to_the_longest() {
        let svg = gantt(&[
            Bar {
                task: "a".into(),
                state: "success".into(),
                start: 0.0,
                end: 1.0,
                href: None,
            },
            Bar {
                task: "b<".into(),
                state: "failed".into(),
                start: 1.0,
                end: 2.0,
                href: Some("/x".into()),
            },
        ]);
        assert!(svg.contains(r#"x="500.0""#), "{svg}");
        assert!(svg.contains("b&lt;"));
        assert!(svg.contains(r#"<a href="/x">"#));
    }
}
