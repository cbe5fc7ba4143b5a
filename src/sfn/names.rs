//! State names: at most 80 characters, unique within the definition.
//!
//! A task's state is named after the task id, with characters outside
//! `[A-Za-z0-9_.-]` replaced by `_`; an id too long (or one that collides
//! after replacement) keeps a prefix plus a hash of the full id. States that
//! nightjar adds (parallel groups, checks) carry ` #N`, which no task state
//! name can contain, so the two never collide.

use std::collections::{BTreeMap, BTreeSet};

/// Step Functions' limit on state (and state machine) names.
pub const MAX_NAME: usize = 80;

/// `name` cut to `max` characters, keeping it unique by a hash suffix.
pub fn fit(name: &str, max: usize) -> String {
    if name.chars().count() <= max {
        return name.to_string();
    }
    let hash = format!("{:08x}", xxhash_rust::xxh3::xxh3_64(name.as_bytes()) as u32);
    let keep: String = name.chars().take(max - hash.len() - 1).collect();
    format!("{keep}-{hash}")
}

/// State names of the tasks, by task id.
pub fn task_state_names<'a>(ids: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut used = BTreeSet::new();
    for id in ids {
        let clean: String = id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut name = fit(&clean, MAX_NAME);
        if used.contains(&name) || clean != id && clean.is_empty() {
            // Two ids that differ only in replaced characters.
            let hash = format!("{:08x}", xxhash_rust::xxh3::xxh3_64(id.as_bytes()) as u32);
            let keep: String = clean.chars().take(MAX_NAME - 9).collect();
            name = format!("{keep}-{hash}");
        }
        used.insert(name.clone());
        out.insert(id.to_string(), name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_and_stay_unique() {
        let long = "x".repeat(200);
        let ids = [long.as_str(), "a b", "a_b", "ok"];
        let names = task_state_names(ids);
        assert!(names.values().all(|n| n.chars().count() <= MAX_NAME));
        let distinct: BTreeSet<&String> = names.values().collect();
        assert_eq!(distinct.len(), 4);
        assert_eq!(names["ok"], "ok");
    }
}
