//! What each subcommand does. `main.rs` parses flags and calls these.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;

pub mod offline;
pub mod users;

use crate::approval::{self, Decision, Target};
use crate::roles::Role;
use crate::store::{Location, NewAudit, OrgInput, Store};
use crate::{demo, keys, secrets, AppState, Config, Keys, ServeArgs, SystemClock};

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    /// The database could not be opened (or migrated) at start.
    #[error("cannot open the database {db}: {reason}")]
    Database { db: String, reason: String },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    App(#[from] crate::Error),
}

impl CliError {
    /// The process's exit status: 2 bad usage, 3 the database cannot be
    /// opened, 1 anything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Database { .. } => 3,
            _ => 1,
        }
    }
}

/// Opens the database named by `--db`, or says plainly why it cannot.
pub async fn open_store(db: &Location) -> Result<Store, CliError> {
    Store::connect(db).await.map_err(|e| {
        let mut reason = match &e {
            sqlx::Error::Database(d) => d.message().to_owned(),
            other => other.to_string(),
        };
        if reason.contains("unable to open database file") {
            reason.push_str(" (does its folder exist, and may this user write there?)");
        }
        CliError::Database {
            db: db.to_string(),
            reason,
        }
    })
}

fn now() -> i64 {
    now_time().unix_timestamp()
}

fn now_time() -> time::OffsetDateTime {
    use crate::Clock;
    crate::SystemClock.now()
}

/// `serve`: binds, prints `listening on http://IP:PORT`, serves until Ctrl-C.
pub async fn serve(args: &ServeArgs) -> Result<(), CliError> {
    let store = open_store(&args.db).await?;
    serve_store(args, store, |_| {}).await
}

async fn serve_store(
    args: &ServeArgs,
    store: Store,
    after_bind: impl FnOnce(&Config),
) -> Result<(), CliError> {
    let keys = Keys::load(&store, now()).await?;
    let listener = TcpListener::bind(args.listen).await?;
    let bound = listener.local_addr()?;
    let config = Config::from_args(args, bound);
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{bound}")?;
        out.flush()?;
    }
    after_bind(&config);
    let state = AppState::new(store, keys, Arc::new(SystemClock), config);
    if let Some(addr) = args.metrics_listen {
        let metrics = TcpListener::bind(addr).await?;
        let bound = metrics.local_addr()?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "metrics on http://{bound}/metrics")?;
            out.flush()?;
        }
        let app = crate::metrics::app(state.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(metrics, app).await {
                tracing::error!(error = %e, "the metrics listener failed");
            }
        });
    }
    crate::serve(listener, state, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

/// `demo`: seeds the demo account into an empty database, then serves.
pub async fn demo(args: &ServeArgs) -> Result<(), CliError> {
    let store = open_store(&args.db).await?;
    let sign_ins = demo::seed(&store, now()).await?;
    serve_store(args, store, |config| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "admin page: {}", config.url("/admin/login"));
        let _ = writeln!(out, "authorize device: {}", config.url("/device"));
        match &sign_ins {
            Some(s) => {
                let _ = writeln!(out, "vendor operator email: {}", demo::DEMO_VENDOR);
                let _ = writeln!(out, "vendor operator password: {}", s.vendor_password);
                let _ = writeln!(out, "admin email: {}", demo::DEMO_ADMIN);
                let _ = writeln!(out, "admin password: {}", s.admin_password);
            }
            None => {
                let _ = writeln!(
                    out,
                    "database already seeded; sign in as {} (vendor operator) or {} (organization admin) with the passwords printed when it was created",
                    demo::DEMO_VENDOR,
                    demo::DEMO_ADMIN
                );
            }
        }
        let _ = out.flush();
    })
    .await
}

/// `init`: creates the database, the first signing key and the first admin.
/// Returns the password (generated when none was given).
pub async fn init(
    db: &Location,
    admin_email: &str,
    admin_password: Option<&str>,
    org: &str,
) -> Result<String, CliError> {
    let store = open_store(db).await?;
    let now = now();
    if store.user_by_email(admin_email).await?.is_some() {
        return Err(CliError::Usage(format!(
            "user {admin_email} already exists"
        )));
    }
    crate::accounts::check_email(admin_email)
        .map_err(|e| CliError::Usage(format!("--admin-email: {e}")))?;
    if store.keys().await?.is_empty() {
        keys::rotate(&store, now).await?;
    }
    let password = admin_password
        .map(str::to_owned)
        .unwrap_or_else(secrets::new_password);
    crate::accounts::check_new_password(&password).map_err(CliError::Usage)?;
    let hash = secrets::hash_password(&password).map_err(crate::Error::internal)?;
    let user = store
        .create_user(admin_email, &hash, Role::Vendor, now)
        .await?;
    let org_id = match store.org_by_name(org).await? {
        Some(o) => o.id,
        None => {
            store
                .create_org(
                    &OrgInput {
                        name: org.to_owned(),
                        features: vec!["xms".into()],
                        hub_server_name: String::new(),
                        hub_server_url: String::new(),
                        renewal_date: Some(now + 365 * 86_400),
                        valid_from: now,
                        valid_until: now + 365 * 86_400,
                    },
                    now,
                )
                .await?
        }
    };
    store.add_member(user, org_id).await?;
    store.close().await;
    Ok(password)
}

/// `backup`: a consistent copy of the database at `to` (which must not
/// exist), made while servers may be writing. Returns its size in bytes.
pub async fn backup(db: &Location, to: &Path) -> Result<u64, CliError> {
    let path = match db {
        Location::Sqlite(path) => path,
        Location::Postgres(_) => return Err(CliError::Usage(
            "`backup` copies an SQLite database; back up PostgreSQL with pg_dump (see the README)"
                .into(),
        )),
    };
    if !path.exists() {
        return Err(CliError::Usage(format!(
            "no database at {}",
            path.display()
        )));
    }
    if to.exists() {
        return Err(CliError::Usage(format!(
            "{} exists already; choose a new file",
            to.display()
        )));
    }
    let store = open_store(db).await?;
    let copied = store.backup_to(to).await;
    store.close().await;
    copied?;
    Ok(std::fs::metadata(to)?.len())
}

/// `keys rotate`. Returns the new key id.
pub async fn rotate_keys(db: &Location) -> Result<String, CliError> {
    let store = open_store(db).await?;
    let kid = keys::rotate(&store, now()).await?;
    audit_and_close(store, "keys.rotated", format!("new signing key {kid}")).await?;
    Ok(kid)
}

/// `keys rotate-successor`. Returns the new key's id.
pub async fn rotate_successor_key(db: &Location) -> Result<i64, CliError> {
    let store = open_store(db).await?;
    let id = keys::rotate_successor_key(&store, now()).await?;
    let detail = format!("new refresh-successor key {id}");
    audit_and_close(store, "keys.successor_rotated", detail).await?;
    Ok(id)
}

/// `keys withdraw KID`.
pub async fn withdraw_key(db: &Location, kid: &str) -> Result<keys::Withdrawn, CliError> {
    let store = open_store(db).await?;
    let Some(withdrawn) = keys::withdraw(&store, kid, now()).await? else {
        let live: Vec<String> = store
            .keys()
            .await?
            .into_iter()
            .filter(|k| k.withdrawn_at.is_none())
            .map(|k| k.kid)
            .collect();
        store.close().await;
        return Err(CliError::Usage(format!(
            "no signing key {kid:?} to withdraw (unknown, or withdrawn already); \
             keys not withdrawn: {}",
            live.join(", ")
        )));
    };
    audit_and_close(store, "keys.withdrawn", withdrawn.describe(kid)).await?;
    Ok(withdrawn)
}

/// Writes what a key command did to the audit log, then closes the store.
async fn audit_and_close(store: Store, action: &str, detail: String) -> Result<(), CliError> {
    let entry = NewAudit {
        at: now(),
        actor: "cli",
        org_id: None,
        action,
        detail,
    };
    store.audit(&entry).await?;
    store.close().await;
    Ok(())
}

/// The device `device authorize` or `offline respond` names.
pub struct DeviceArg<'a> {
    pub name: &'a str,
    /// Register a new device of this name if the organization has none.
    pub register: bool,
}

/// `device authorize`: the Authorize Device page for scripts.
pub async fn authorize_device(
    db: &Location,
    org: &str,
    device: DeviceArg<'_>,
    user_code: &str,
    admin: Option<&str>,
) -> Result<String, CliError> {
    let store = open_store(db).await?;
    let now = now();
    let Some(org) = store.org_by_name(org).await? else {
        let names: Vec<String> = store.orgs().await?.into_iter().map(|o| o.name).collect();
        return Err(CliError::Usage(format!(
            "unknown organization {org:?}; known: {}",
            names.join(", ")
        )));
    };
    let target = match store.device_by_name(org.id, device.name).await? {
        Some(found) => Target::Existing(found),
        None if device.register => Target::New(device.name.to_owned()),
        None => {
            let names: Vec<String> = store
                .devices(org.id)
                .await?
                .into_iter()
                .map(|d| d.name)
                .collect();
            return Err(CliError::Usage(format!(
                "unknown device {:?} in {} (--register registers it); known devices: {}",
                device.name,
                org.name,
                names.join(", ")
            )));
        }
    };
    let code = secrets::normalize_user_code(user_code)
        .ok_or_else(|| CliError::Usage("a user code is 8 letters, like BCDF-GHJK".into()))?;
    let pending = store
        .pending_device_code(&code, now)
        .await?
        .ok_or_else(|| {
            CliError::Usage(
                "no pending authorization with this user code (expired or already used?)".into(),
            )
        })?;
    let user = match admin {
        Some(email) => Some(
            store
                .user_by_email(email)
                .await?
                .ok_or_else(|| CliError::Usage(format!("unknown admin {email}")))?,
        ),
        None => None,
    };
    let decided = approval::decide(
        &store,
        Decision {
            org_id: org.id,
            code: &pending,
            target,
            approve: true,
            user_id: user.as_ref().map(|u| u.id),
            actor: user.as_ref().map_or("cli", |u| u.email.as_str()),
            now,
        },
    )
    .await?
    .ok_or_else(|| CliError::Usage("the authorization is no longer pending".into()))?;
    store.close().await;
    let server_id = decided.server_id.unwrap_or_default();
    Ok(format!(
        "authorized {} ({server_id}) in {}",
        decided.name, org.name
    ))
}
