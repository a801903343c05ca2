//! `offline respond|deactivate`: the Offline activation page for operators
//! who script, through the same `crate::offline`.

use std::path::Path;

use super::{now_time, CliError, DeviceArg};
use crate::approval::Target;
use crate::config::OfflineArgs;
use crate::offline::{self, fmt_time, Deactivate, Refusal, Respond, Server};
use crate::store::{Location, Store};
use crate::{keys, Keys};

impl From<Refusal> for CliError {
    fn from(r: Refusal) -> CliError {
        match r {
            Refusal::Db(e) => CliError::Db(e),
            other => CliError::Usage(other.to_string()),
        }
    }
}

/// The store and the keys as a running server has them: key rollovers a
/// rotation calls for are signed first, so the response carries them.
async fn open(args: &OfflineArgs) -> Result<(Store, Keys), CliError> {
    if let Location::Sqlite(path) = &args.db {
        if !path.exists() {
            return Err(CliError::Usage(format!(
                "no database at {}",
                path.display()
            )));
        }
    }
    let store = super::open_store(&args.db).await?;
    let now = now_time().unix_timestamp();
    let keys = Keys::load(&store, now).await?;
    if keys.ring().rollovers_missing {
        keys::sign_rollovers(&store, args.issuer.trim_end_matches('/'), now).await?;
        keys.reload(&store, now).await?;
    }
    Ok((store, keys))
}

fn read_file(path: &Path, what: &str) -> Result<String, CliError> {
    std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("cannot read the {what} {}: {e}", path.display())))
}

/// What `offline respond` did: the response file's text and a line saying
/// for whom and until when.
pub struct Responded {
    pub text: String,
    pub summary: String,
}

/// `offline respond`: answers the activation request in `request` for
/// `device` of `org`.
pub async fn respond(
    args: &OfflineArgs,
    org: &str,
    device: DeviceArg<'_>,
    request: &Path,
) -> Result<Responded, CliError> {
    let text = read_file(request, "activation request")?;
    let (store, keys) = open(args).await?;
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
            return Err(CliError::Usage(format!(
                "unknown device {:?} in {} (--register registers it)",
                device.name, org.name
            )))
        }
    };
    let config = args.config();
    let server = Server {
        db: &store,
        keys: &keys,
        config: &config,
    };
    let answered = offline::respond(
        server,
        Respond {
            org_id: org.id,
            target,
            request: &text,
            actor: "cli",
            now: now_time(),
        },
    )
    .await;
    store.close().await;
    let done = answered?;
    Ok(Responded {
        summary: format!(
            "activation response for {} ({}) in {}; offline license valid until {}",
            done.device_name,
            done.server_id,
            org.name,
            fmt_time(done.expires_at)
        ),
        text: done.text,
    })
}

/// `offline deactivate`: takes the deactivation file `file`; says which
/// device was deactivated.
pub async fn deactivate(args: &OfflineArgs, file: &Path) -> Result<String, CliError> {
    let text = read_file(file, "deactivation file")?;
    let (store, keys) = open(args).await?;
    let config = args.config();
    let server = Server {
        db: &store,
        keys: &keys,
        config: &config,
    };
    let taken = offline::deactivate(
        server,
        Deactivate {
            org_id: None,
            file: &text,
            actor: "cli",
            now: now_time(),
        },
    )
    .await;
    store.close().await;
    let done = taken?;
    Ok(format!(
        "device {} ({}) deactivated: its offline license was given up and the device is revoked",
        done.device_name, done.server_id
    ))
}
