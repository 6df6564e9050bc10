//! The checkpoints readers wait on (`min_event_seq`), and the serving versions' halts
//! (readiness). A serving checkpoint's every change is also announced on the Postgres
//! notification channel [`CHANNEL`] (migration V4), so readers can listen instead of polling.

use deadpool_postgres::Client;

/// The `LISTEN` channel of checkpoint announcements; each payload is
/// `<projection>:<last_seq>` ([`parse_announcement`]).
pub const CHANNEL: &str = "parley_checkpoints";

/// `(projection, last_seq)` of an announcement on [`CHANNEL`]; `None` if it is not one.
pub fn parse_announcement(payload: &str) -> Option<(&str, u64)> {
    let (name, seq) = payload.rsplit_once(':')?;
    Some((name, seq.parse().ok()?))
}

/// Checkpoints of the projections named in `$1` (text[]).
const SOME: &str =
    "SELECT projection, last_seq FROM projection_checkpoints WHERE projection = ANY($1)";

/// Every serving version's checkpoint and halt (`parked_seq`: halted on that poison event
/// under policy `stop`), from the registry behind `projection_checkpoints`.
const SERVING: &str = "SELECT projection, last_seq, parked_seq FROM projection_versions \
     WHERE state = 'serving' ORDER BY projection";

/// One serving projection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serving {
    /// The projection's name.
    pub name: String,
    /// Its checkpoint.
    pub last_seq: u64,
    /// The poison event it is halted on (policy `stop`), if any.
    pub halted_at: Option<u64>,
}

/// `(projection, last_seq)` of those of `names` that have a row; a missing row means 0.
///
/// # Errors
/// The query fails (statements are prepared with `prepare_cached` on `client`).
pub async fn of(
    client: &Client,
    names: &[&str],
) -> Result<Vec<(String, u64)>, tokio_postgres::Error> {
    let stmt = client.prepare_cached(SOME).await?;
    client
        .query(&stmt, &[&names])
        .await?
        .iter()
        .map(|r| Ok((r.try_get("projection")?, crate::sql::seq(r, "last_seq")?)))
        .collect()
}

/// Every serving projection, by name.
///
/// # Errors
/// The query fails (statements are prepared with `prepare_cached` on `client`).
pub async fn serving(client: &Client) -> Result<Vec<Serving>, tokio_postgres::Error> {
    let stmt = client.prepare_cached(SERVING).await?;
    client
        .query(&stmt, &[])
        .await?
        .iter()
        .map(|r| {
            Ok(Serving {
                name: r.try_get("projection")?,
                last_seq: crate::sql::seq(r, "last_seq")?,
                halted_at: crate::sql::opt_seq(r, "parked_seq")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn announcements_parse() {
        assert_eq!(
            super::parse_announcement("messages:42"),
            Some(("messages", 42))
        );
        assert_eq!(super::parse_announcement("messages:x"), None);
        assert_eq!(super::parse_announcement("messages"), None);
    }
}
