//! Source files and positions inside them.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A file read from disk, kept whole so that byte spans can be turned into
/// line and column numbers for messages.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: Arc<Path>,
    pub text: Arc<str>,
    line_starts: Arc<[usize]>,
}

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        let text: String = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect::<Vec<_>>();
        Self {
            path: Arc::from(path.into().as_path()),
            text: Arc::from(text),
            line_starts: Arc::from(line_starts),
        }
    }

    pub fn read(path: &Path) -> std::io::Result<Self> {
        Ok(Self::new(path, std::fs::read_to_string(path)?))
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let end = offset.min(self.text.len());
        let col = self.text.get(start..end).map_or(1, |s| s.chars().count() + 1);
        (line + 1, col)
    }

    pub fn origin(&self, span: &Range<usize>) -> Origin {
        let (line, col) = self.line_col(span.start);
        Origin {
            file: self.path.clone(),
            line,
            col,
        }
    }

    /// The start of the file, for problems that concern the file as a whole.
    pub fn start(&self) -> Origin {
        Origin {
            file: self.path.clone(),
            line: 1,
            col: 1,
        }
    }
}

/// A place in a file, as users read it: `dags/x.toml:12:5`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub file: Arc<Path>,
    pub line: usize,
    pub col: usize,
}

impl Origin {
    pub fn file_only(path: &Path) -> Self {
        Self {
            file: Arc::from(path),
            line: 1,
            col: 1,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let f = SourceFile::new("x.toml", "a = 1\nbé = 2\n");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(6), (2, 1));
        // 'é' is two bytes but one column.
        assert_eq!(f.line_col(9), (2, 3));
    }
}
