//! `noop`: does nothing and succeeds. A placeholder while a DAG is being
//! written, a join point for fan-in, and the task of the overhead benchmark.

use async_trait::async_trait;
use serde::Deserialize;

use super::{Step, StepConfig, StepContext, StepKind, StepOutput};

pub const KIND: StepKind = StepKind::of::<NoopConfig>("noop", "does nothing and succeeds", EXAMPLE);

const EXAMPLE: &str = r#"kind = "noop"
"#;

/// `noop` takes no settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoopConfig {}

impl StepConfig for NoopConfig {
    fn build(self) -> anyhow::Result<Box<dyn Step>> {
        Ok(Box::new(Noop))
    }
}

struct Noop;

#[async_trait]
impl Step for Noop {
    async fn run(&self, _cx: &StepContext) -> anyhow::Result<StepOutput> {
        Ok(StepOutput::default())
    }
}
