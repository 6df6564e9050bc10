//! Schema migrations (`projector/migrations/V<n>__<name>.sql`), applied with refinery.

#[allow(missing_docs)]
mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Applies every pending migration to the database at `database_url`. Safe to call from
/// several processes at once: refinery serialises on its history table, and already-applied
/// versions are skipped.
///
/// # Errors
/// Connection failure or a failing migration (nothing of that migration stays applied).
pub async fn run(database_url: &str) -> anyhow::Result<()> {
    let (mut client, conn) = platform::db::connect(database_url).await?;
    // Serialise concurrent starters (command-svc, query-svc tests, projector) on one lock.
    client
        .simple_query("SELECT pg_advisory_lock(7478712)")
        .await?;
    let result = embedded::migrations::runner().run_async(&mut client).await;
    client
        .simple_query("SELECT pg_advisory_unlock(7478712)")
        .await?;
    drop(client);
    let _ = conn.await;
    result?;
    Ok(())
}
