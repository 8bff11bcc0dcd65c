//! `/metrics`: the counters of `crate::infra::metrics`, with the figures read at each scrape.

use crate::idm::Core;

/// The metrics in Prometheus's text format (version 0.0.4).
pub async fn render(core: &Core) -> Result<String, sqlx::Error> {
    let pool = core.hasher.stats();
    let outbox = core.store.outbox_depth(core.clock.now()).await?;
    core.metrics
        .render(&pool, outbox)
        .map_err(|e| sqlx::Error::Protocol(format!("encoding the metrics: {e}")))
}
