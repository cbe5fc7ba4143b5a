//! Runs steps in this process, on the engine's tokio runtime.

use async_trait::async_trait;

use super::{Dispatcher, PreparedTask};
use crate::engine::ConfigError;
use crate::steps::{StepContext, StepOutput};

#[derive(Debug, Default, Clone, Copy)]
pub struct LocalDispatcher;

#[async_trait]
impl Dispatcher for LocalDispatcher {
    async fn run_attempt(&self, task: &PreparedTask, cx: &StepContext) -> anyhow::Result<StepOutput> {
        let step = task.kind.build(task.config.clone()).map_err(|(path, msg)| {
            let at = if path.is_empty() {
                String::new()
            } else {
                format!("`{path}`: ")
            };
            ConfigError(format!("bad config for step kind `{}`: {at}{msg}", task.kind.name))
        })?;
        step.run(cx).await
    }
}
