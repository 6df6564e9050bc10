//! Column types shared by every reader and writer of the read models.
//!
//! Log positions are `u64` in Rust (JetStream stream sequences) and `int8` in Postgres; [`Seq`]
//! converts between them checking the range instead of casting, so a negative or oversized
//! value is an error of the query that met it (a `FromSql`/`ToSql` error), never a wrapped
//! number.

use postgres_types::{accepts, to_sql_checked, FromSql, IsNull, ToSql, Type};
use std::error::Error;

/// The largest position `int8` holds (`i64::MAX`); nothing is stored beyond it, so a bound a
/// client gives above it may be clamped to it.
pub const MAX: u64 = i64::MAX.unsigned_abs();

/// A log position (event-log stream sequence) stored as `int8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Seq(pub u64);

impl From<Seq> for u64 {
    fn from(s: Seq) -> Self {
        s.0
    }
}

impl<'a> FromSql<'a> for Seq {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        let v = i64::from_sql(ty, raw)?;
        u64::try_from(v)
            .map(Seq)
            .map_err(|_| format!("negative log position {v}").into())
    }

    accepts!(INT8);
}

impl ToSql for Seq {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        let v =
            i64::try_from(self.0).map_err(|_| format!("log position {} exceeds int8", self.0))?;
        v.to_sql(ty, out)
    }

    accepts!(INT8);
    to_sql_checked!();
}

/// The `u64` in column `idx` of `row` (an `int8` log position or count).
///
/// # Errors
/// The column is missing, not `int8`, NULL or negative.
pub fn seq(
    row: &tokio_postgres::Row,
    idx: impl tokio_postgres::row::RowIndex + std::fmt::Display,
) -> Result<u64, tokio_postgres::Error> {
    row.try_get::<_, Seq>(idx).map(|s| s.0)
}

/// The optional `u64` in column `idx` of `row`.
///
/// # Errors
/// The column is missing, not `int8` or negative.
pub fn opt_seq(
    row: &tokio_postgres::Row,
    idx: impl tokio_postgres::row::RowIndex + std::fmt::Display,
) -> Result<Option<u64>, tokio_postgres::Error> {
    row.try_get::<_, Option<Seq>>(idx).map(|s| s.map(|s| s.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqs_round_trip_and_out_of_range_values_are_errors() {
        let mut buf = bytes::BytesMut::new();
        Seq(42).to_sql(&Type::INT8, &mut buf).unwrap();
        assert_eq!(Seq::from_sql(&Type::INT8, &buf).unwrap(), Seq(42));
        let mut buf = bytes::BytesMut::new();
        assert!(Seq(u64::MAX).to_sql(&Type::INT8, &mut buf).is_err());
        let mut buf = bytes::BytesMut::new();
        (-1i64).to_sql(&Type::INT8, &mut buf).unwrap();
        assert!(Seq::from_sql(&Type::INT8, &buf).is_err());
    }
}
