//! Events as JSON lines on stdout (`--report stdout`), for piping into
//! another tool.

use std::io::Write;

use anyhow::Result;
use async_trait::async_trait;

use super::{EventDoc, Sink};

pub struct StdoutSink;

#[async_trait]
impl Sink for StdoutSink {
    fn name(&self) -> String {
        "stdout".into()
    }

    fn batch_size(&self) -> usize {
        256
    }

    async fn send(&self, batch: &[EventDoc]) -> Result<()> {
        let mut text = String::new();
        for doc in batch {
            text.push_str(&doc.to_json());
            text.push('\n');
        }
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
        Ok(())
    }
}
