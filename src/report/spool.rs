//! Events a sink could not take yet, on disk under
//! `.nightjar/spool/<sink>/`, one JSON file per event.
//!
//! File names sort in event order (`<reporter start µs>-<sequence>.json`),
//! so events written at different moments (buffer overflow, a failed batch,
//! a previous process) are re-sent in the order they happened. A file is
//! written to a temporary name and renamed, so a crash never leaves half an
//! event; it is deleted only after the sink took it (at least once).
//!
//! Several processes may share a spool folder: the one holding the folder's
//! lock (`flock` on `.lock`) adopts the files it finds at start (left by
//! earlier processes); the others send only their own.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::event::EventDoc;

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    /// Keys (file stems) of the events waiting, in order.
    keys: BTreeSet<String>,
    /// Held for the process's life once taken; released on drop.
    lock: Option<File>,
}

impl Spool {
    /// Opens (creating) a spool folder and adopts the events already in it
    /// when no other process holds it.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create spool folder {}", dir.display()))?;
        let lock = File::create(dir.join(".lock")).ok().filter(try_lock);
        let mut keys = BTreeSet::new();
        if lock.is_some() {
            for entry in std::fs::read_dir(dir)? {
                let name = entry?.file_name();
                let name = name.to_string_lossy();
                if let Some(stem) = name.strip_suffix(".json") {
                    keys.insert(stem.to_string());
                } else if name.ends_with(".tmp") {
                    let _ = std::fs::remove_file(dir.join(&*name));
                }
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            keys,
            lock,
        })
    }

    /// Lets another reporter adopt this folder (after `close`).
    pub fn release(&mut self) {
        self.lock = None;
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Writes one event under its key.
    pub fn put(&mut self, key: &str, doc: &EventDoc) -> Result<()> {
        let tmp = self.dir.join(format!("{key}.tmp"));
        std::fs::write(&tmp, doc.to_json()).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, self.dir.join(format!("{key}.json")))?;
        self.keys.insert(key.to_string());
        Ok(())
    }

    /// The first `n` waiting events, oldest first. A file that cannot be
    /// read or parsed is set aside as `.bad` (it would block the spool
    /// forever) and skipped.
    pub fn peek(&mut self, n: usize) -> Vec<(String, EventDoc)> {
        let mut out = Vec::new();
        let mut bad = Vec::new();
        for key in self.keys.iter() {
            if out.len() >= n {
                break;
            }
            let path = self.dir.join(format!("{key}.json"));
            match std::fs::read(&path)
                .map_err(anyhow::Error::from)
                .and_then(|b| Ok(serde_json::from_slice::<EventDoc>(&b)?))
            {
                Ok(doc) => out.push((key.clone(), doc)),
                Err(e) => {
                    tracing::warn!("spooled event {} unreadable ({e:#}); set aside", path.display());
                    let _ = std::fs::rename(&path, path.with_extension("bad"));
                    bad.push(key.clone());
                }
            }
        }
        for k in bad {
            self.keys.remove(&k);
        }
        out
    }

    /// Forgets delivered events.
    pub fn remove(&mut self, keys: &[String]) {
        for k in keys {
            let _ = std::fs::remove_file(self.dir.join(format!("{k}.json")));
            self.keys.remove(k);
        }
    }
}

fn try_lock(f: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own; no memory involved.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str) -> EventDoc {
        serde_json::from_value(serde_json::json!({
            "schema": super::super::event::SCHEMA, "id": id, "kind": "run_started",
            "time": "2026-01-01T00:00:00.000Z", "dag": "d", "run_id": "d@2026-01-01",
            "logical_date": "2026-01-01", "env": "local", "state": "running"
        }))
        .unwrap()
    }

    #[test]
    fn events_come_back_in_key_order_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Spool::open(dir.path()).unwrap();
            s.put("0001-0000000002", &doc("b")).unwrap();
            s.put("0001-0000000001", &doc("a")).unwrap();
            s.put("0002-0000000000", &doc("c")).unwrap();
            let got: Vec<String> = s.peek(2).into_iter().map(|(_, d)| d.id).collect();
            assert_eq!(got, ["a", "b"]);
            s.remove(&["0001-0000000001".to_string()]);
        }
        let mut s = Spool::open(dir.path()).unwrap();
        let got: Vec<String> = s.peek(10).into_iter().map(|(_, d)| d.id).collect();
        assert_eq!(got, ["b", "c"]);
    }

    #[test]
    fn a_second_holder_does_not_adopt_foreign_events() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = Spool::open(dir.path()).unwrap();
        first.put("0001-0000000001", &doc("a")).unwrap();
        let second = Spool::open(dir.path()).unwrap();
        assert!(second.is_empty(), "the lock holder owns the old events");
        drop(first);
        assert_eq!(Spool::open(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn an_unreadable_file_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0001-0000000001.json"), "{not json").unwrap();
        let mut s = Spool::open(dir.path()).unwrap();
        s.put("0001-0000000002", &doc("b")).unwrap();
        let got: Vec<String> = s.peek(10).into_iter().map(|(_, d)| d.id).collect();
        assert_eq!(got, ["b"]);
        assert!(dir.path().join("0001-0000000001.bad").exists());
    }
}
