//! What the data lifecycle reads and writes (see `crate::idm::lifecycle` and `crate::idm::housekeeping`): the
//! users due for a warning, a deletion or a deactivation, the erasure of one user, the clean-up of
//! rows whose time is over, and the lease that lets one instance at a time do housekeeping.

use super::Store;
use super::users::UserRow;
use crate::domain::clock::UnixTime;
use sqlx::AnyConnection;

use super::users::COLUMNS as USER_COLUMNS;

/// An audit row that names a user who is being deleted.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditMention {
    pub id: String,
    pub action: String,
    pub actor_user_id: Option<String>,
    pub subject_user_id: Option<String>,
    pub detail: String,
    pub ip: Option<String>,
}

/// A clean-up: which rows of a table go (see [`Store::delete_batch`]); the SQL stays here, the
/// times it compares with are housekeeping's policy.
pub struct Cleanup {
    pub table: &'static str,
    key: &'static str,
    condition: &'static str,
}

// The throttle clean-up spells the lock out as 100.
const _: () = assert!(crate::domain::limits::LOCK_AFTER == 100);

/// The tables housekeeping deletes from, as `/metrics` labels them.
pub const TABLES: [&str; 16] = [
    "users",
    "sessions",
    "login_challenges",
    "sso_flows",
    "webauthn_ceremonies",
    "link_tokens",
    "throttle",
    "mail_outbox",
    "audit_events",
    "oauth_codes",
    "oauth_tokens",
    "oauth_requests",
    "oauth_keys",
    "oauth_logout_outbox",
    "oauth_participations",
    "recovery_codes",
];

/// The clean-ups; `$1`, `$2`, `$3` are the times `crate::idm::housekeeping` gives each.
pub const CLEANUPS: [Cleanup; 15] = [
    Cleanup {
        table: "sessions",
        key: "token_hash",
        // $1: idle since, $2: started before.
        condition: "last_seen_at < $1 OR created_at < $2",
    },
    Cleanup {
        table: "login_challenges",
        key: "token_hash",
        condition: "expires_at <= $1",
    },
    Cleanup {
        table: "sso_flows",
        key: "id_hash",
        condition: "created_at < $1",
    },
    Cleanup {
        table: "webauthn_ceremonies",
        key: "id_hash",
        condition: "expires_at <= $1",
    },
    Cleanup {
        table: "link_tokens",
        key: "token_hash",
        condition: "expires_at < $1 OR used_at < $1 OR superseded_at < $1",
    },
    Cleanup {
        table: "throttle",
        key: "key",
        // $1: now, $2: a day ago. A password or second-factor counter that reached the lock
        // stays while its account exists (an administrator, a new password or a new second
        // factor lets the user in again).
        condition: "blocked_until <= $1 AND last_at < $2
            AND NOT (key LIKE 'pw:%' AND failures >= 100 AND EXISTS (
                SELECT 1 FROM users u JOIN clients c ON c.id = u.client_id
                WHERE throttle.key = 'pw:' || c.company_key || ':' || u.username_key))
            AND NOT (key LIKE 'totp:%' AND failures >= 100 AND EXISTS (
                SELECT 1 FROM users u WHERE throttle.key = 'totp:' || u.id))",
    },
    Cleanup {
        table: "mail_outbox",
        key: "id",
        // $1: sent before, $2: queued before (and never sent).
        condition: "sent_at < $1 OR (sent_at IS NULL AND created_at < $2)",
    },
    Cleanup {
        table: "audit_events",
        key: "id",
        condition: "created_at < $1",
    },
    // The OpenID Provider's rows (see `promio_server::edge::oauth`).
    Cleanup {
        table: "oauth_codes",
        key: "code_hash",
        // $1: a day ago.
        condition: "expires_at < $1",
    },
    Cleanup {
        table: "oauth_tokens",
        key: "token_hash",
        // $1: a day ago. A used refresh token stays until then, so that its reuse is seen.
        condition: "expires_at < $1 OR revoked_at < $1",
    },
    Cleanup {
        table: "oauth_requests",
        key: "id_hash",
        condition: "created_at < $1",
    },
    Cleanup {
        table: "oauth_keys",
        key: "kid",
        // $1: retired long enough that no token it signed is alive, and a day more.
        condition: "retired_at IS NOT NULL AND retired_at < $1",
    },
    Cleanup {
        table: "oauth_logout_outbox",
        key: "id",
        // $1: given up (the delivery deletes what it sends or gives up; this is the rest).
        condition: "created_at < $1 OR sent_at IS NOT NULL",
    },
    // Listed after `sessions`: a participation whose session is gone and whose application
    // hears of no logout (the sweeper in `promio_server::edge::oauth::logout` handles the others).
    Cleanup {
        table: "oauth_participations",
        key: "(session_hash || ' ' || client_id)",
        condition: "NOT EXISTS (SELECT 1 FROM sessions s
                WHERE s.token_hash = oauth_participations.session_hash)
            AND NOT EXISTS (SELECT 1 FROM oauth_apps a
                WHERE a.client_id = oauth_participations.client_id
                  AND a.backchannel_logout_uri IS NOT NULL)",
    },
    // Listed last: what a deleted account left is gone with it already.
    Cleanup {
        table: "recovery_codes",
        key: "code_hash",
        condition: "used_at < $1",
    },
];

impl Store {
    /// Takes (or renews) the lease `name` for `holder` until `now + secs`; false when another
    /// holder has it. One conditional UPDATE, so two instances never both get it.
    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: UnixTime,
        secs: i64,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE leases SET holder = $2, until = $3 + $4
             WHERE name = $1 AND (until <= $3 OR holder = $2)",
        )
        .bind(name)
        .bind(holder)
        .bind(now)
        .bind(secs)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives the lease back, so that the next instance need not wait for it to run out.
    pub async fn release_lease(
        &self,
        name: &str,
        holder: &str,
        now: UnixTime,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE leases SET until = $3 WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Runs one batch of a clean-up: deletes at most `limit` rows of its table that its condition
    /// selects (`times` bound as `$1`, `$2`, `$3`). Returns the rows deleted. A small batch holds
    /// its locks only briefly, so logins never wait long.
    pub async fn delete_batch(
        &self,
        cleanup: &Cleanup,
        times: [i64; 3],
        limit: i64,
    ) -> Result<u64, sqlx::Error> {
        let Cleanup {
            table,
            key,
            condition,
        } = cleanup;
        let done = sqlx::query(&format!(
            "DELETE FROM {table} WHERE {key} IN (
                 SELECT {key} FROM {table} WHERE {condition} LIMIT $4)"
        ))
        .bind(times[0])
        .bind(times[1])
        .bind(times[2])
        .bind(limit)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// A client's deactivated users deactivated at or before `before`, oldest first; with
    /// `unwarned`, only those whose administrators were not yet told of the deletion.
    pub async fn deactivated_users(
        &self,
        client_id: &str,
        before: UnixTime,
        unwarned: bool,
        limit: i64,
    ) -> Result<Vec<(UserRow, Option<i64>)>, sqlx::Error> {
        use sqlx::Row;
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, deletion_warned_at FROM users
             WHERE client_id = $1 AND status = 'deactivated' AND deactivated_at <= $2
               AND ($3 = 0 OR deletion_warned_at IS NULL)
             ORDER BY deactivated_at, id LIMIT $4"
        ))
        .bind(client_id)
        .bind(before)
        .bind(i64::from(unwarned))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|row| {
                let warned: Option<i64> = row.try_get("deletion_warned_at")?;
                Ok((<UserRow as sqlx::FromRow<_>>::from_row(&row)?, warned))
            })
            .collect()
    }

    /// When the administrators were told that the user will be deleted, if they were.
    pub async fn deletion_warned_at(&self, user_id: &str) -> Result<Option<i64>, sqlx::Error> {
        use sqlx::Row;
        let row = sqlx::query("SELECT deletion_warned_at FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row
            .map(|r| r.try_get::<Option<i64>, _>("deletion_warned_at"))
            .transpose()?
            .flatten())
    }

    /// A client's active users (not operators) whose last activity was at or before `before`;
    /// `warned`: `None` those not yet warned, `Some(t)` those warned at or before `t`.
    pub async fn inactive_users(
        &self,
        client_id: &str,
        before: UnixTime,
        warned: Option<UnixTime>,
        limit: i64,
    ) -> Result<Vec<(UserRow, i64)>, sqlx::Error> {
        use sqlx::Row;
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, last_activity_at FROM users
             WHERE client_id = $1 AND status = 'active' AND role <> 'operator'
               AND last_activity_at <= $2
               AND (($3 = 0 AND inactivity_warned_at IS NULL)
                    OR ($3 = 1 AND inactivity_warned_at <= $4))
             ORDER BY last_activity_at, id LIMIT $5"
        ))
        .bind(client_id)
        .bind(before)
        .bind(i64::from(warned.is_some()))
        .bind(warned.unwrap_or(0))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|row| {
                let last: Option<i64> = row.try_get("last_activity_at")?;
                Ok((
                    <UserRow as sqlx::FromRow<_>>::from_row(&row)?,
                    last.unwrap_or(0),
                ))
            })
            .collect()
    }

    /// Forgets the announcements of a client's coming deletions (its retention changed).
    pub async fn reset_deletion_notices(&self, client_id: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE users SET deletion_warned_at = NULL
             WHERE client_id = $1 AND status = 'deactivated'",
        )
        .bind(client_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The active administrators of a client (and its operators), who get its lifecycle mails.
    pub async fn client_admins(&self, client_id: &str) -> Result<Vec<UserRow>, sqlx::Error> {
        sqlx::query_as::<_, UserRow>(&format!(
            "SELECT {USER_COLUMNS} FROM users
             WHERE client_id = $1 AND status = 'active' AND role IN ('admin', 'operator')
             ORDER BY username_key LIMIT 100"
        ))
        .bind(client_id)
        .fetch_all(self.pool())
        .await
    }
}

/// Notes that the administrators were told of the user's deletion; false when they already were
/// (another instance got there first), so that each warning is sent once.
pub async fn mark_deletion_warned(
    conn: &mut AnyConnection,
    user_id: &str,
    now: UnixTime,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE users SET deletion_warned_at = $2
         WHERE id = $1 AND status = 'deactivated' AND deletion_warned_at IS NULL",
    )
    .bind(user_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Notes that the user was told of the coming deactivation; false when they already were or have
/// logged in since `last_activity`.
pub async fn mark_inactivity_warned(
    conn: &mut AnyConnection,
    user_id: &str,
    last_activity: UnixTime,
    now: UnixTime,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE users SET inactivity_warned_at = $3
         WHERE id = $1 AND status = 'active' AND inactivity_warned_at IS NULL
           AND last_activity_at = $2",
    )
    .bind(user_id)
    .bind(last_activity)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deactivates a user for inactivity, unless they have been active since `last_activity`.
pub async fn deactivate_inactive(
    conn: &mut AnyConnection,
    user_id: &str,
    last_activity: UnixTime,
    now: UnixTime,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE users SET status = 'deactivated', deactivated_at = $3, deletion_warned_at = NULL,
             updated_at = $3
         WHERE id = $1 AND status = 'active' AND last_activity_at = $2
           AND inactivity_warned_at IS NOT NULL",
    )
    .bind(user_id)
    .bind(last_activity)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

impl Store {
    /// The audit rows that may name a user: by or about them, the clearings of login counters
    /// in their client (whose detail is a user name), and the SSO logins in their client whose
    /// detail may hold their address (`email`; a refused one names the address it was refused
    /// for, often with nobody as its subject). The caller compares, in Rust, so that every
    /// alphabet compares without case on both databases: the SQL only preselects.
    pub async fn audit_mentions(
        &self,
        user_id: &str,
        client_id: &str,
        email: &str,
    ) -> Result<Vec<AuditMention>, sqlx::Error> {
        sqlx::query_as::<_, AuditMention>(
            "SELECT id, action, actor_user_id, subject_user_id, detail, ip FROM audit_events
             WHERE actor_user_id = $1 OR subject_user_id = $1
                OR (client_id = $2 AND action = 'login.throttle_cleared')
                OR (client_id = $2 AND action = 'login.sso' AND LOWER(detail) LIKE $3)",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(contains_pattern(email))
        .fetch_all(self.pool())
        .await
    }

    /// Rewrites an audit row's detail and address (the one change the log ever sees: a deleted
    /// person's pseudonym in place of what named them).
    pub async fn rewrite_audit(
        &self,
        id: &str,
        detail: &str,
        ip: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE audit_events SET detail = $2, ip = $3 WHERE id = $1")
            .bind(id)
            .bind(detail)
            .bind(ip)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

/// A `LIKE` pattern for `LOWER(column)` that selects at least every text holding `needle` in any
/// case, on both databases: SQLite's `LOWER` folds only ASCII, so any other character (and `%`,
/// `_` and `\`, which `LIKE` would read as its own) matches as `_`, any one character. It may
/// select more; the caller decides.
fn contains_pattern(needle: &str) -> String {
    let inner: String = needle
        .chars()
        .map(|c| {
            if c.is_ascii() && !matches!(c, '%' | '_' | '\\') {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("%{inner}%")
}

/// Deletes everything of a user but the audit log: their counters (`throttle_keys`), mails,
/// sessions, pending logins, links, recovery codes, and the user row itself. With
/// `deactivated_before`, only a user who is still deactivated since then is deleted (a user
/// reactivated meanwhile stays). Returns whether the user was deleted; on false, the caller rolls
/// back.
pub async fn erase_user(
    conn: &mut AnyConnection,
    user_id: &str,
    throttle_keys: &[String],
    deactivated_before: Option<UnixTime>,
) -> Result<bool, sqlx::Error> {
    for key in throttle_keys {
        sqlx::query("DELETE FROM throttle WHERE key = $1")
            .bind(key)
            .execute(&mut *conn)
            .await?;
    }
    for table in [
        "passkeys",
        "webauthn_ceremonies",
        "mail_outbox",
        "sessions",
        "login_challenges",
        "link_tokens",
        "recovery_codes",
        "oauth_codes",
        "oauth_tokens",
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
    }
    let done = sqlx::query(
        "DELETE FROM users WHERE id = $1
           AND ($2 = 0 OR (status = 'deactivated' AND deactivated_at <= $3))",
    )
    .bind(user_id)
    .bind(i64::from(deactivated_before.is_some()))
    .bind(deactivated_before.unwrap_or(0))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn the_pattern_folds_ascii_and_leaves_the_rest_to_any_character() {
        assert_eq!(contains_pattern("Jane@ACME.example"), "%jane@acme.example%");
        assert_eq!(contains_pattern("a_b%c\\d"), "%a_b_c_d%");
        assert_eq!(
            contains_pattern("jürgen@acme.example"),
            "%j_rgen@acme.example%"
        );
    }
}
