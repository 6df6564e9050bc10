//! Verification before a switch: the rebuilt tables must equal the serving ones at the same
//! checkpoint, table by table: the same row count and the same content checksum (the sum, as
//! numeric, of a 64-bit hash of each row's text form — order-independent, so no sort). A
//! difference is located by listing a few rows found on one side only.

use crate::core::Projection;
use crate::schema;
use deadpool_postgres::GenericClient;
use std::fmt;

/// One table compared.
#[derive(Debug, Clone)]
pub struct TableCheck {
    /// `<projection>.<table>`.
    pub table: String,
    /// Rows in the serving version.
    pub serving_rows: i64,
    /// Rows in the rebuilt version.
    pub rebuilt_rows: i64,
    /// Whether the checksums are equal.
    pub checksum_equal: bool,
    /// Rows only in the serving version, then only in the rebuilt one (a few, text form,
    /// shortened); empty when equal.
    pub only_serving: Vec<String>,
    /// See `only_serving`.
    pub only_rebuilt: Vec<String>,
}

impl TableCheck {
    /// Whether the table is identical in both versions.
    pub fn equal(&self) -> bool {
        self.serving_rows == self.rebuilt_rows && self.checksum_equal
    }
}

impl fmt::Display for TableCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.equal() {
            return write!(
                f,
                "{}: {} rows, checksums equal",
                self.table, self.rebuilt_rows
            );
        }
        write!(
            f,
            "{}: DIFFERS — serving {} rows, rebuilt {} rows, checksums {}",
            self.table,
            self.serving_rows,
            self.rebuilt_rows,
            if self.checksum_equal {
                "equal"
            } else {
                "differ"
            }
        )?;
        for r in &self.only_serving {
            write!(f, "\n    only in serving: {r}")?;
        }
        for r in &self.only_rebuilt {
            write!(f, "\n    only in rebuilt: {r}")?;
        }
        Ok(())
    }
}

async fn sums<C: GenericClient>(
    c: &C,
    schema: &str,
    table: &str,
) -> Result<(i64, String), tokio_postgres::Error> {
    let row = c
        .query_one(
            &format!(
                "SELECT count(*), coalesce(sum(hashtextextended(x::text, 0)::numeric), 0)::text \
                 FROM {schema}.{table} x"
            ),
            &[],
        )
        .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

async fn only_in<C: GenericClient>(
    c: &C,
    a: &str,
    b: &str,
    table: &str,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = c
        .query(
            &format!(
                "SELECT left(r, 300) FROM (SELECT x::text AS r FROM {a}.{table} x \
                 EXCEPT ALL SELECT y::text FROM {b}.{table} y) d ORDER BY r LIMIT 3"
            ),
            &[],
        )
        .await?;
    rows.iter().map(|r| r.try_get(0)).collect()
}

/// Compares every table of `p` in schemas `serving` and `rebuilt`, inside whatever snapshot
/// `c` is in (the caller holds both at one checkpoint).
///
/// # Errors
/// Database errors.
pub async fn compare<C: GenericClient>(
    c: &C,
    p: Projection,
    serving: &str,
    rebuilt: &str,
) -> Result<Vec<TableCheck>, tokio_postgres::Error> {
    let mut out = Vec::new();
    for (table, _) in schema::tables(p) {
        let (sr, ss) = sums(c, serving, table).await?;
        let (rr, rs) = sums(c, rebuilt, table).await?;
        let mut check = TableCheck {
            table: format!("{}.{table}", p.name()),
            serving_rows: sr,
            rebuilt_rows: rr,
            checksum_equal: ss == rs,
            only_serving: Vec::new(),
            only_rebuilt: Vec::new(),
        };
        if !check.equal() {
            check.only_serving = only_in(c, serving, rebuilt, table).await?;
            check.only_rebuilt = only_in(c, rebuilt, serving, table).await?;
        }
        out.push(check);
    }
    Ok(out)
}
