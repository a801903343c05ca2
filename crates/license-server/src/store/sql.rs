//! Statements with their arguments bound in order (`args![...]`), on a
//! pool or inside a transaction. Queries returning many rows call
//! `sqlx::query_as_with` directly.

use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{FromRow, SqliteExecutor};

use super::DbResult;

/// Runs a statement; returns how many rows it changed.
pub(super) async fn execute<'c, 'q>(
    conn: impl SqliteExecutor<'c>,
    sql: &'q str,
    args: SqliteArguments<'q>,
) -> DbResult<u64> {
    let done = sqlx::query_with(sql, args).execute(conn).await?;
    Ok(done.rows_affected())
}

/// The first row, if any.
pub(super) async fn optional<'c, 'q, T>(
    conn: impl SqliteExecutor<'c>,
    sql: &'q str,
    args: SqliteArguments<'q>,
) -> DbResult<Option<T>>
where
    T: for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
{
    sqlx::query_as_with(sql, args).fetch_optional(conn).await
}

/// The first column of the one row.
pub(super) async fn scalar<'c, 'q, T>(
    conn: impl SqliteExecutor<'c>,
    sql: &'q str,
    args: SqliteArguments<'q>,
) -> DbResult<T>
where
    (T,): for<'r> FromRow<'r, SqliteRow>,
    T: Send + Unpin,
{
    sqlx::query_scalar_with(sql, args).fetch_one(conn).await
}
