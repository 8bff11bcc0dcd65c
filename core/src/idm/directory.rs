//! Tenancy by type: the one way to reach users by an id from outside. A [`Directory`] is had
//! only from a principal, with its scope: an administrator's is their client
//! ([`Admin::directory`]); an operator's is every client ([`Admin::operators_directory`],
//! [`Operator::directory`]) or one named client ([`Operator::directory_of`]); the system's jobs
//! take theirs from [`System`]. The store's client-scoped lookup is allowed here alone
//! (`clippy.toml` refuses it everywhere else), and its unscoped one is private to the store, so
//! a user id of another client is not a convention away from a leak: it is not found.
//!
//! Rows of our own that name a user (a session, a link, a passkey, a token) reach it through
//! `Store::user_of`: the row is the scope.

use crate::domain::ClientId;
use crate::idm::Core;
use crate::idm::principal::{Admin, Operator};
use crate::infra::error::ServiceResult;
use crate::store::clients::ClientRow;
use crate::store::users::UserRow;

/// Users by id, within one client or (operators only) within every client.
pub struct Directory<'a> {
    core: &'a Core,
    /// `None`: every client.
    client: Option<ClientId>,
}

impl<'a> Directory<'a> {
    /// The user of this id in the directory's scope; `None` for an unknown id and for a user of
    /// another client alike.
    #[expect(
        clippy::disallowed_methods,
        reason = "the one place that looks users up by an id from outside"
    )]
    pub async fn user(&self, id: &str) -> ServiceResult<Option<UserRow>> {
        Ok(self
            .core
            .store
            .user_in_scope(self.client.as_ref(), id.trim())
            .await?)
    }

    /// The client this directory is limited to (`None`: every client).
    pub fn client(&self) -> Option<&ClientId> {
        self.client.as_ref()
    }
}

impl Admin {
    /// The administrator's directory: the users of their client.
    pub fn directory<'a>(&self, core: &'a Core) -> Directory<'a> {
        Directory {
            core,
            client: Some(self.client.id.clone()),
        }
    }

    /// Every client's users, for an administrator who is an operator of the platform; `None`
    /// for anyone else.
    pub fn operators_directory<'a>(&self, core: &'a Core) -> Option<Directory<'a>> {
        self.is_operator(core)
            .then_some(Directory { core, client: None })
    }
}

impl Operator {
    /// Every client's users.
    pub fn directory<'a>(&self, core: &'a Core) -> Directory<'a> {
        Directory { core, client: None }
    }

    /// The users of one named client.
    pub fn directory_of<'a>(&self, core: &'a Core, client: &ClientRow) -> Directory<'a> {
        Directory {
            core,
            client: Some(client.id.clone()),
        }
    }
}

/// The server's own jobs (housekeeping, the lifecycle, the command line run by whoever runs the
/// server): they act on every client.
pub struct System(());

impl System {
    /// The system as the actor of a job of the server's own.
    pub fn job() -> System {
        System(())
    }

    /// Every client's users.
    pub fn directory<'a>(&self, core: &'a Core) -> Directory<'a> {
        Directory { core, client: None }
    }
}
