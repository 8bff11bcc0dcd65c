//! The housekeeping lease: one instance at a time runs a pass (`crate::idm::housekeeping`), and
//! the lifecycle's long steps renew it as they go.

use crate::idm::Core;
use crate::infra::error::ServiceResult;

/// The lease's name, and how long one pass may hold it before another instance may take over
/// (renewed after every batch).
pub const LEASE: &str = "housekeeping";
pub const LEASE_SECS: i64 = 300;

/// The housekeeping lease as one pass holds it.
pub struct Lease<'a> {
    core: &'a Core,
    holder: &'a str,
}

impl<'a> Lease<'a> {
    /// The lease as `holder` would hold it (taken with `crate::idm::housekeeping::run_once`).
    pub fn new(core: &'a Core, holder: &'a str) -> Lease<'a> {
        Lease { core, holder }
    }

    /// Renews the lease; an error when another instance has taken it meanwhile (the pass ran
    /// longer than the lease), so that the pass stops instead of running beside the other.
    pub async fn keep(&self) -> ServiceResult<()> {
        let kept = self
            .core
            .store
            .take_lease(LEASE, self.holder, self.core.clock.now(), LEASE_SECS)
            .await?;
        if kept {
            Ok(())
        } else {
            Err(crate::infra::error::ServiceError::Internal(
                anyhow::anyhow!("the housekeeping lease went to another instance; this pass stops"),
            ))
        }
    }
}
