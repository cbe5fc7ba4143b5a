//! Events to an SQS queue, up to ten per `SendMessageBatch` call.
//!
//! A FIFO queue (URL ending in `.fifo`) gets `MessageGroupId` = the DAG, so
//! each DAG's events are delivered in order, and `MessageDeduplicationId` =
//! the event id, so a re-send after a lost reply is dropped by SQS. On a
//! standard queue, consumers deduplicate on the `id` field themselves.

use std::time::Duration;

use anyhow::{Result, anyhow};
use async_trait::async_trait;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};

use super::{EventDoc, Sink, short_hash};
use crate::aws::AwsOptions;

pub struct SqsSink {
    client: aws_sdk_sqs::Client,
    url: String,
    fifo: bool,
}

/// An SQS client that fails fast: the reporter retries with its own
/// backoff and spool, so long SDK-level retries would only hold a batch.
pub async fn client(opts: &AwsOptions) -> aws_sdk_sqs::Client {
    let conf = crate::aws::sdk_config(opts).await;
    aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&conf)
            .retry_config(aws_sdk_sqs::config::retry::RetryConfig::standard().with_max_attempts(2))
            .timeout_config(
                aws_sdk_sqs::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_timeout(Duration::from_secs(20))
                    .build(),
            )
            .build(),
    )
}

impl SqsSink {
    pub async fn new(opts: &AwsOptions, url: &str) -> Self {
        Self::with_client(client(opts).await, url)
    }

    pub fn with_client(client: aws_sdk_sqs::Client, url: &str) -> Self {
        Self {
            client,
            url: url.to_string(),
            fifo: url.ends_with(".fifo"),
        }
    }
}

fn text_attr(v: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(v)
        .build()
        .expect("data type is set")
}

#[async_trait]
impl Sink for SqsSink {
    fn name(&self) -> String {
        let queue = self.url.rsplit('/').next().unwrap_or_default();
        format!("sqs-{queue}-{}", short_hash(&self.url))
    }

    fn batch_size(&self) -> usize {
        // SendMessageBatch takes 10 entries; a document is at most a few
        // KiB (errors are cut), far below the batch size limit.
        10
    }

    async fn send(&self, batch: &[EventDoc]) -> Result<()> {
        let mut entries = Vec::with_capacity(batch.len());
        for (i, doc) in batch.iter().enumerate() {
            let mut e = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(doc.to_json())
                // For subscribers that route without parsing the body.
                .message_attributes("event", text_attr(doc.kind.as_str()))
                .message_attributes("dag", text_attr(&doc.dag));
            if self.fifo {
                e = e.message_group_id(&doc.dag).message_deduplication_id(&doc.id);
            }
            entries.push(e.build()?);
        }
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "SQS SendMessageBatch to {}: {}",
                    self.url,
                    aws_sdk_sqs::error::DisplayErrorContext(e)
                )
            })?;
        if let Some(f) = out.failed().first() {
            // The whole batch is sent again: a FIFO queue drops the copies
            // of the ones that did arrive, consumers of a standard queue
            // deduplicate on `id`.
            return Err(anyhow!(
                "SQS refused {} of {} events ({}: {})",
                out.failed().len(),
                batch.len(),
                f.code(),
                f.message().unwrap_or_default()
            ));
        }
        Ok(())
    }
}
