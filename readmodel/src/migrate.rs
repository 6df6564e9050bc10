//! Schema migrations (`readmodel/migrations/V<n>__<name>.sql`), applied with refinery by the
//! projector ([`run`], feature `migrate`); the services check that the database is current
//! with [`wait_until_current`] and so do not compile the migration runner.

#[cfg(feature = "migrate")]
#[allow(missing_docs)]
mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The newest migration this build knows: the highest `V<n>` in `readmodel/migrations/`
/// (a test checks the two agree).
pub const LATEST: u32 = 5;

#[cfg(feature = "migrate")]
/// Advisory lock that serialises concurrent migrators.
const LOCK: i64 = 7_478_712;

#[cfg(feature = "migrate")]
/// Applies every pending migration to the database at `database_url`. Safe to call from
/// several processes at once: they serialise on an advisory lock, and already-applied versions
/// are skipped.
///
/// # Errors
/// Connection failure (naming the server) or a failing migration (nothing of that migration
/// stays applied).
pub async fn run(database_url: &str) -> anyhow::Result<()> {
    let (mut client, conn) = platform::db::connect(database_url).await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK])
        .await?;
    let result = embedded::migrations::runner().run_async(&mut client).await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK])
        .await?;
    drop(client);
    let _ = conn.await;
    result?;
    Ok(())
}

/// The newest migration applied to the database at `database_url` (0: none).
///
/// # Errors
/// Connection failure (naming the server) or a query error.
pub async fn applied(database_url: &str) -> anyhow::Result<u32> {
    let (client, conn) = platform::db::connect(database_url).await?;
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('public.refinery_schema_history') IS NOT NULL",
            &[],
        )
        .await?
        .try_get(0)?;
    let version = if exists {
        client
            .query_one(
                "SELECT coalesce(max(version), 0)::int4 FROM refinery_schema_history",
                &[],
            )
            .await?
            .try_get::<_, i32>(0)?
    } else {
        0
    };
    drop(client);
    let _ = conn.await;
    u32::try_from(version).map_err(|_| anyhow::anyhow!("migration version {version} is negative"))
}

/// Waits until the database at `database_url` has every migration this build knows, saying
/// every few seconds that it waits and what to do (`projector migrate`); `false` when `stop`
/// resolved first.
///
/// # Errors
/// The database cannot be reached (naming the server) or read.
pub async fn wait_until_current(
    database_url: &str,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<bool> {
    let want = LATEST;
    tokio::pin!(stop);
    let mut said = false;
    loop {
        let have = applied(database_url).await?;
        if have >= want {
            if said {
                tracing::info!(migration = have, "the database is migrated; starting");
            }
            return Ok(true);
        }
        if !said {
            tracing::warn!(
                database = %platform::db::describe(database_url),
                have,
                want,
                "the database is not migrated: run `projector migrate` (the projector also \
                 migrates when it starts); waiting"
            );
            said = true;
        }
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            () = &mut stop => return Ok(false),
        }
    }
}

#[cfg(all(test, feature = "migrate"))]
mod tests {
    #[test]
    fn latest_is_the_newest_embedded_migration() {
        let newest = super::embedded::migrations::runner()
            .get_migrations()
            .iter()
            .map(refinery::Migration::version)
            .max();
        assert_eq!(newest, Some(super::LATEST));
    }
}
