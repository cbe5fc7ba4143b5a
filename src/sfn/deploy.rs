//! Creating or updating a DAG's state machine.
//!
//! Idempotent: the machine is tagged with the definition's content hash; a
//! deploy whose hash matches the tag changes nothing, another one updates
//! the definition (and the role) in place, keeping the machine's ARN and its
//! execution history.

use anyhow::{Context, Result, anyhow};
use aws_sdk_sfn::types::Tag;

use super::{Compiled, SfnSettings};

/// The tag holding the definition's content hash.
pub const HASH_TAG: &str = "nightjar:definition-hash";
/// The tag naming the DAG.
pub const DAG_TAG: &str = "nightjar:dag";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Updated,
    Unchanged,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Unchanged => "unchanged",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Deployed {
    pub name: String,
    pub arn: String,
    pub action: Action,
}

/// A Step Functions client for the settings.
pub async fn client(settings: &SfnSettings) -> aws_sdk_sfn::Client {
    aws_sdk_sfn::Client::new(&crate::aws::sdk_config(&settings.aws_options()).await)
}

/// The ARN of the state machine called `name`, if it exists.
pub async fn find(client: &aws_sdk_sfn::Client, name: &str) -> Result<Option<String>> {
    let mut pages = client.list_state_machines().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| anyhow!("listing state machines: {}", aws_sdk_sfn::error::DisplayErrorContext(e)))?;
        if let Some(m) = page.state_machines().iter().find(|m| m.name() == name) {
            return Ok(Some(m.state_machine_arn().to_string()));
        }
    }
    Ok(None)
}

/// Creates or updates the state machine of a compiled DAG.
pub async fn deploy(settings: &SfnSettings, compiled: &Compiled) -> Result<Deployed> {
    let client = client(settings).await;
    let name = settings.state_machine_name(&compiled.dag);
    let role = settings.role_arn.clone().ok_or_else(|| {
        anyhow!("`sfn deploy` needs the role the state machine runs as: add `role_arn = \"arn:aws:iam::ACCOUNT:role/NAME\"` to the env's `sfn` settings")
    })?;
    let tags = [
        Tag::builder().key(HASH_TAG).value(&compiled.content_hash).build(),
        Tag::builder().key(DAG_TAG).value(&compiled.dag).build(),
    ];
    let err = |what: &str, e: String| anyhow!("{what} state machine {name}: {e}");
    match find(&client, &name).await? {
        None => {
            let out = client
                .create_state_machine()
                .name(&name)
                .definition(&compiled.text)
                .role_arn(&role)
                .set_tags(Some(tags.to_vec()))
                .send()
                .await
                .map_err(|e| err("creating", aws_sdk_sfn::error::DisplayErrorContext(e).to_string()))?;
            Ok(Deployed {
                name: name.clone(),
                arn: out.state_machine_arn().to_string(),
                action: Action::Created,
            })
        }
        Some(arn) => {
            let current = client
                .list_tags_for_resource()
                .resource_arn(&arn)
                .send()
                .await
                .map_err(|e| {
                    err(
                        "reading tags of",
                        aws_sdk_sfn::error::DisplayErrorContext(e).to_string(),
                    )
                })?;
            let same = current
                .tags()
                .iter()
                .any(|t| t.key() == Some(HASH_TAG) && t.value() == Some(compiled.content_hash.as_str()));
            if same {
                return Ok(Deployed {
                    name,
                    arn,
                    action: Action::Unchanged,
                });
            }
            client
                .update_state_machine()
                .state_machine_arn(&arn)
                .definition(&compiled.text)
                .role_arn(&role)
                .send()
                .await
                .map_err(|e| err("updating", aws_sdk_sfn::error::DisplayErrorContext(e).to_string()))?;
            client
                .tag_resource()
                .resource_arn(&arn)
                .set_tags(Some(tags.to_vec()))
                .send()
                .await
                .with_context(|| format!("tagging state machine {name}"))?;
            Ok(Deployed {
                name,
                arn,
                action: Action::Updated,
            })
        }
    }
}
