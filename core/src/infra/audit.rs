//! The audit log's one way in (the vocabulary is `crate::domain::audit`).

use crate::domain::audit::Event;
use crate::domain::clock::UnixTime;
use crate::infra::error::{Context, ServiceResult};
use crate::store::Store;

/// Appends an event to the log.
pub async fn record(store: &Store, event: Event<'_>, now: UnixTime) -> ServiceResult<()> {
    store
        .record(event, now)
        .await
        .context("writing to the audit log")
}
