//! Organizations and their license account.

use sqlx::any::AnyArguments;
use sqlx::{AnyConnection, FromRow};

use super::sql::{execute, optional, scalar};
use super::{feature_list, DbResult, Store};

/// `SELECT` the columns of [`Org`] `FROM organizations`, then the rest.
macro_rules! select_organizations {
    ($rest:literal) => {
        concat!("SELECT id, name, features, hub_server_name, hub_server_url, renewal_date, valid_from, valid_until, suspended_at, on_copy, offline_days FROM organizations ", $rest)
    };
}

/// The columns of an organization's license account, as
/// [`OrgInput::account_args`] binds them.
macro_rules! account_columns {
    () => {
        "features, hub_server_name, hub_server_url, renewal_date, valid_from, valid_until"
    };
}

#[derive(Debug, Clone, FromRow)]
pub struct Org {
    pub id: i64,
    pub name: String,
    pub features: String,
    pub hub_server_name: String,
    pub hub_server_url: String,
    pub renewal_date: Option<i64>,
    pub valid_from: i64,
    pub valid_until: i64,
    /// Set while the vendor has suspended the organization: its devices get
    /// no new tokens and no license document.
    pub suspended_at: Option<i64>,
    /// What follows when a copy of one of its consoles is noticed.
    pub on_copy: OnCopy,
    /// How many days an offline license (air-gapped activation by file)
    /// lasts, at most: `license_core::offline::offline_expiry` decides.
    #[sqlx(try_from = "i64")]
    pub offline_days: u32,
}

/// What the server does when it notices a possible copy of a console.
/// Stored as `flag` or `revoke`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCopy {
    /// Mark the device on the Devices page and in the audit log.
    Flag,
    /// Also revoke the device's token chain: every copy loses the license
    /// until an admin authorizes the device again.
    Revoke,
}

impl OnCopy {
    pub fn as_str(self) -> &'static str {
        match self {
            OnCopy::Flag => "flag",
            OnCopy::Revoke => "revoke",
        }
    }

    pub fn parse(s: &str) -> Option<OnCopy> {
        match s {
            "flag" => Some(OnCopy::Flag),
            "revoke" => Some(OnCopy::Revoke),
            _ => None,
        }
    }
}

impl Org {
    pub fn feature_list(&self) -> Vec<String> {
        feature_list(&self.features)
    }

    /// The account as it stands, to change and write back.
    pub fn input(&self) -> OrgInput {
        OrgInput {
            name: self.name.clone(),
            features: self.feature_list(),
            hub_server_name: self.hub_server_name.clone(),
            hub_server_url: self.hub_server_url.clone(),
            renewal_date: self.renewal_date,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
        }
    }
}

/// What an admin may change on an organization's license account.
#[derive(Debug, Clone)]
pub struct OrgInput {
    pub name: String,
    pub features: Vec<String>,
    pub hub_server_name: String,
    pub hub_server_url: String,
    pub renewal_date: Option<i64>,
    pub valid_from: i64,
    pub valid_until: i64,
}

impl OrgInput {
    /// The account's columns as `account_columns!` lists them, then `more`.
    fn account_args<'q>(&'q self, more: i64) -> DbResult<AnyArguments<'q>> {
        let features = serde_json::to_string(&self.features).unwrap_or_else(|_| "[]".into());
        Ok(args![
            features,
            &self.hub_server_name,
            &self.hub_server_url,
            self.renewal_date,
            self.valid_from,
            self.valid_until,
            more
        ])
    }
}

/// Writes the account of organization `id` on `conn`. The caller forgets
/// the issued tokens (they carry the account) once this is committed.
pub(super) async fn update(conn: &mut AnyConnection, id: i64, org: &OrgInput) -> DbResult<()> {
    let sql = concat!(
        "UPDATE organizations SET (",
        account_columns!(),
        ") = ($1, $2, $3, $4, $5, $6) WHERE id = $7"
    );
    execute(conn, sql, org.account_args(id)?).await?;
    Ok(())
}

impl Store {
    pub async fn create_org(&self, org: &OrgInput, now: i64) -> DbResult<i64> {
        let sql = concat!(
            "INSERT INTO organizations (",
            account_columns!(),
            ", created_at, name) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id"
        );
        let mut args = org.account_args(now)?;
        sqlx::Arguments::add(&mut args, &org.name).map_err(sqlx::Error::Encode)?;
        scalar(&self.write, sql, args).await
    }

    pub async fn update_org(&self, id: i64, org: &OrgInput) -> DbResult<()> {
        update(&mut *self.write.acquire().await?, id, org).await?;
        self.issued.forget_all();
        Ok(())
    }

    pub async fn org(&self, id: i64) -> DbResult<Option<Org>> {
        let sql = select_organizations!("WHERE id = $1");
        optional(&self.read, sql, args![id]).await
    }

    pub async fn orgs(&self) -> DbResult<Vec<Org>> {
        let sql = select_organizations!("ORDER BY name");
        sqlx::query_as_with(sql, args![])
            .fetch_all(&self.read)
            .await
    }

    /// Suspends the organization (`Some(now)`) or lifts the suspension
    /// (`None`). While suspended, its devices' grants and license fetches
    /// are refused like a revoked device's.
    pub async fn set_org_suspended(&self, id: i64, at: Option<i64>) -> DbResult<bool> {
        let sql = "UPDATE organizations SET suspended_at = $1 WHERE id = $2";
        let changed = execute(&self.write, sql, args![at, id]).await? == 1;
        self.issued.forget_all();
        Ok(changed)
    }

    pub async fn set_on_copy(&self, id: i64, on_copy: OnCopy) -> DbResult<()> {
        let sql = "UPDATE organizations SET on_copy = $1 WHERE id = $2";
        execute(&self.write, sql, args![on_copy, id]).await?;
        Ok(())
    }

    /// Sets how many days the organization's offline licenses last; the
    /// caller checks the range.
    pub async fn set_offline_days(&self, id: i64, days: u32) -> DbResult<()> {
        let sql = "UPDATE organizations SET offline_days = $1 WHERE id = $2";
        execute(&self.write, sql, args![i64::from(days), id]).await?;
        Ok(())
    }

    pub async fn org_by_name(&self, name: &str) -> DbResult<Option<Org>> {
        let sql = select_organizations!("WHERE name = $1");
        optional(&self.read, sql, args![name]).await
    }
}

super::sql::text_column!(OnCopy { Flag => "flag", Revoke => "revoke" });
