//! Statements with their arguments bound in order (`args![...]`), on a
//! pool or inside a transaction. Queries returning many rows call
//! `sqlx::query_as_with` directly.
//!
//! Statements are written once for both backends: placeholders are `$1`,
//! `$2`, … (SQLite reads them too), and the SQL is the subset both speak.
//! The few statements that differ are chosen by [`super::Backend`].

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, Executor, FromRow};

use super::DbResult;

/// Runs a statement; returns how many rows it changed.
pub(super) async fn execute<'c, 'q>(
    conn: impl Executor<'c, Database = Any>,
    sql: &'q str,
    args: AnyArguments<'q>,
) -> DbResult<u64> {
    let done = sqlx::query_with(sql, args).execute(conn).await?;
    Ok(done.rows_affected())
}

/// The first row, if any.
pub(super) async fn optional<'c, 'q, T>(
    conn: impl Executor<'c, Database = Any>,
    sql: &'q str,
    args: AnyArguments<'q>,
) -> DbResult<Option<T>>
where
    T: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
{
    sqlx::query_as_with(sql, args).fetch_optional(conn).await
}

/// The first column of the one row.
pub(super) async fn scalar<'c, 'q, T>(
    conn: impl Executor<'c, Database = Any>,
    sql: &'q str,
    args: AnyArguments<'q>,
) -> DbResult<T>
where
    (T,): for<'r> FromRow<'r, AnyRow>,
    T: Send + Unpin,
{
    sqlx::query_scalar_with(sql, args).fetch_one(conn).await
}

/// Stores a Rust enum as the TEXT values listed, on both backends:
/// `text_column!(Role { Vendor => "vendor", OrgAdmin => "org_admin" })`.
macro_rules! text_column {
    ($ty:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl sqlx::Type<sqlx::Any> for $ty {
            fn type_info() -> sqlx::any::AnyTypeInfo {
                <&str as sqlx::Type<sqlx::Any>>::type_info()
            }
            fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
                <&str as sqlx::Type<sqlx::Any>>::compatible(ty)
            }
        }
        impl<'q> sqlx::Encode<'q, sqlx::Any> for $ty {
            fn encode_by_ref(
                &self,
                buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                let text: &'static str = match self {
                    $($ty::$variant => $text,)+
                };
                <&str as sqlx::Encode<'q, sqlx::Any>>::encode(text, buf)
            }
        }
        impl<'r> sqlx::Decode<'r, sqlx::Any> for $ty {
            fn decode(
                value: <sqlx::Any as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                match <&str as sqlx::Decode<'r, sqlx::Any>>::decode(value)? {
                    $($text => Ok($ty::$variant),)+
                    other => Err(format!(concat!("unexpected ", stringify!($ty), " {:?}"), other).into()),
                }
            }
        }
    };
}
pub(crate) use text_column;
