//! `promio-connect backup FILE`: a consistent copy of the SQLite database, taken while the server
//! runs. SQLite's `VACUUM INTO` reads one snapshot (the WAL lets writers go on meanwhile) and
//! writes it as a compact database file, which the server starts on as it is. PostgreSQL has its
//! own tools (pg_dump); README "Backups" says how.
//!
//! The copy holds every password hash and sealed secret, so its file is made here first: new
//! (never an existing file, nor a symlink's target: `create_new` refuses any path that exists,
//! a dangling symlink included) and readable by its owner alone, whatever the umask. `VACUUM
//! INTO` writes into a file that exists when it is empty, and keeps its mode.

use super::{Dialect, Store};
use std::path::Path;

pub async fn write(store: &Store, file: &Path) -> anyhow::Result<()> {
    if store.dialect() != Dialect::Sqlite {
        anyhow::bail!(
            "backup copies the SQLite database; for PostgreSQL use pg_dump (see README, Backups)"
        );
    }
    let path = file
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("{}: not a UTF-8 path", file.display()))?;
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| anyhow::anyhow!("{}: {e}", parent.display()))?;
    }
    create_private(file)?;
    let copied = sqlx::query("VACUUM INTO $1")
        .bind(path)
        .execute(store.pool())
        .await;
    if let Err(e) = copied {
        // The file is the empty one made above: a second attempt would find it in the way.
        let _ = std::fs::remove_file(file);
        anyhow::bail!("{}: {e}", file.display());
    }
    Ok(())
}

/// Creates `file`, empty, with mode 0600; refuses a path that exists (a symlink too).
fn create_private(file: &Path) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(file) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(anyhow::anyhow!(
            "{}: the file exists already",
            file.display()
        )),
        Err(e) => Err(anyhow::anyhow!("{}: {e}", file.display())),
    }
}
