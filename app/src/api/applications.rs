//! The server functions of the operators' console for registered applications.

use leptos::prelude::*;
use promio_api::{ApiError, ApplicationView, CreatedApplication, NewApplication};

#[server(prefix = "/api", endpoint = "applications/list")]
pub async fn list_applications() -> Result<Vec<ApplicationView>, ApiError> {
    use crate::edge::principal::Operator;
    use promio_core::idm::apps;
    crate::edge::call(
        |core, operator: Operator| async move { apps::list_views(&core, &operator).await },
    )
    .await
}

#[server(prefix = "/api", endpoint = "applications/create")]
pub async fn create_application(
    #[server(flatten)] application: NewApplication,
) -> Result<CreatedApplication, ApiError> {
    use crate::edge::principal::Operator;
    use promio_core::idm::apps;
    crate::edge::call(|core, operator: Operator| async move {
        apps::register(&core, &operator, application).await
    })
    .await
}

#[server(prefix = "/api", endpoint = "applications/delete")]
pub async fn delete_application(client_id: String) -> Result<(), ApiError> {
    use crate::edge::principal::Operator;
    use promio_core::idm::apps;
    crate::edge::call(|core, operator: Operator| async move {
        apps::remove(&core, &operator, client_id).await
    })
    .await
}

/// A new secret for a confidential application; the old one stops working at once.
#[server(prefix = "/api", endpoint = "applications/rotate-secret")]
pub async fn rotate_application_secret(client_id: String) -> Result<CreatedApplication, ApiError> {
    use crate::edge::principal::Operator;
    use promio_core::idm::apps;
    crate::edge::call(|core, operator: Operator| async move {
        apps::rotate_secret_of(&core, &operator, client_id).await
    })
    .await
}
