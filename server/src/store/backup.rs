//! `promio-connect backup FILE`: a consistent copy of the SQLite database, taken while the server
//! runs. SQLite's `VACUUM INTO` reads one snapshot (the WAL lets writers go on meanwhile) and
//! writes it as a compact database file, which the server starts on as it is. PostgreSQL has its
//! own tools (pg_dump); README "Backups" says how.

use super::{Dialect, Store};
use std::path::Path;

pub async fn write(store: &Store, file: &Path) -> anyhow::Result<()> {
    if store.dialect() != Dialect::Sqlite {
        anyhow::bail!(
            "backup copies the SQLite database; for PostgreSQL use pg_dump (see README, Backups)"
        );
    }
    if file.exists() {
        anyhow::bail!("{}: the file exists already", file.display());
    }
    let path = file
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("{}: not a UTF-8 path", file.display()))?;
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| anyhow::anyhow!("{}: {e}", parent.display()))?;
    }
    sqlx::query("VACUUM INTO $1")
        .bind(path)
        .execute(store.pool())
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    Ok(())
}
