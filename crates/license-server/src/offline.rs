//! Air-gapped activation by file, the server's side: answering an
//! activation request with a response file, and taking a deactivation. The
//! one implementation behind the *Offline activation* page and
//! `license-server offline respond|deactivate`; the file formats and their
//! checks are `license_core::offline`'s.
//!
//! Every refusal is a [`Refusal`] whose message says what is wrong, and
//! nothing is written before every check has passed.

use license_core::offline::{
    offline_expiry, read_request, sign_offline_license, ActivationResponse, OfflineError,
    OfflineLicenseClaims, RequestKind, RESPONSE_FORMAT,
};
use license_core::token::Confirmation;
use time::macros::format_description;
use time::OffsetDateTime;

use crate::api::{sign_document, Document, OrgAccount};
use crate::approval::Target;
use crate::store::{
    to_time, Activated, Deactivation, NewAudit, NewOfflineActivation, RegisterDevice, Store,
};
use crate::{secrets, AppState, Config, Keys, CONSOLE_CLIENT_ID};

/// What answering and deactivating need of the server: its database, keys
/// and configuration (an [`AppState`]'s, or the CLI's own).
#[derive(Clone, Copy)]
pub struct Server<'a> {
    pub db: &'a Store,
    pub keys: &'a Keys,
    pub config: &'a Config,
}

impl<'a> Server<'a> {
    pub fn of(state: &'a AppState) -> Server<'a> {
        Server {
            db: &state.db,
            keys: &state.keys,
            config: &state.config,
        }
    }
}

/// Why a file or a choice was refused. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The file itself: damaged, edited, another server's, the wrong kind.
    #[error("{0}")]
    File(#[from] OfflineError),
    #[error("choose a device of this organization")]
    UnknownDevice,
    #[error("the device \"{0}\" is revoked; choose another device or register a new one")]
    DeviceRevoked(String),
    #[error("this request renews the license of Server ID {0}; choose that device (another device, or a new one, would license this server twice)")]
    RenewsAnotherDevice(String),
    #[error("a device named \"{0}\" exists already; choose it from the list")]
    NameTaken(String),
    #[error("a new device needs a name of 1 to 100 characters, without control characters")]
    DeviceName,
    #[error("{0} is suspended: it gets no license until the vendor resumes it")]
    Suspended(String),
    #[error(
        "the license of {org} ended on {on}; it gets no offline license until the vendor extends its validity"
    )]
    ValidityEnded { org: String, on: String },
    #[error("the device was revoked or the organization suspended meanwhile; nothing was changed")]
    ChangedMeanwhile,
    #[error(
        "this deactivation names an offline license this server did not give to this organization"
    )]
    UnknownLicense,
    #[error("this deactivation file was signed by another installation than the one holding the offline license; only that installation can give it up")]
    OtherInstall,
    #[error(
        "this offline license was deactivated already, on {0}; the device \"{1}\" holds no license"
    )]
    AlreadyDeactivated(String, String),
    #[error("unknown organization")]
    UnknownOrganization,
    #[error("database error")]
    Db(#[from] sqlx::Error),
}

/// An activation request to answer.
pub struct Respond<'a> {
    pub org_id: i64,
    /// The device the console is licensed as (a new one is registered).
    pub target: Target,
    /// The request file's text.
    pub request: &'a str,
    /// Who answers, as the audit log names them.
    pub actor: &'a str,
    pub now: OffsetDateTime,
}

/// The answer given.
#[derive(Debug, Clone)]
pub struct Responded {
    /// The stored activation's id.
    pub id: i64,
    /// The response file's text.
    pub text: String,
    pub device_name: String,
    pub server_id: String,
    /// The offline expiry, unix seconds.
    pub expires_at: i64,
}

/// Answers an activation request (a first activation or a renewal: another
/// request of the same install for the same device) with a response file:
/// the key set with its rollovers, the license document and an offline
/// license bound to the request's key, both valid until the offline expiry.
pub async fn respond(server: Server<'_>, r: Respond<'_>) -> Result<Responded, Refusal> {
    let issuer = &server.config.issuer;
    let request = read_request(r.request, RequestKind::Activate, issuer)?;
    let now = r.now.unix_timestamp();
    let account = OrgAccount::load(server.db, r.org_id)
        .await?
        .ok_or(Refusal::UnknownOrganization)?;
    let org = &account.org;
    if org.suspended_at.is_some() {
        return Err(Refusal::Suspended(org.name.clone()));
    }
    if org.valid_until <= now {
        return Err(Refusal::ValidityEnded {
            org: org.name.clone(),
            on: fmt_time(org.valid_until),
        });
    }
    let new_server_id;
    let (name, server_id, device) = match &r.target {
        Target::Existing(d) if d.org_id != r.org_id => return Err(Refusal::UnknownDevice),
        Target::Existing(d) if d.revoked_at.is_some() => {
            return Err(Refusal::DeviceRevoked(d.name.clone()))
        }
        Target::Existing(d) => (
            d.name.clone(),
            d.server_id.clone(),
            RegisterDevice::Existing(d.id),
        ),
        Target::New(name) => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
                return Err(Refusal::DeviceName);
            }
            if server.db.device_by_name(r.org_id, name).await?.is_some() {
                return Err(Refusal::NameTaken(name.to_owned()));
            }
            new_server_id = secrets::new_server_id();
            (
                name.to_owned(),
                new_server_id.clone(),
                RegisterDevice::New {
                    org_id: r.org_id,
                    name,
                    server_id: &new_server_id,
                },
            )
        }
    };
    // A renewal names the device it renews: the same device, or nothing.
    if let Some(renews) = &request.claims.server_id {
        if *renews != server_id {
            return Err(Refusal::RenewsAnotherDevice(renews.clone()));
        }
    }
    let expires_at = offline_expiry(now, org.offline_days, org.valid_until);
    let ring = server.keys.ring();
    let license_document = sign_document(
        server.config,
        &ring,
        &account,
        Document {
            server_id: &server_id,
            audience: CONSOLE_CLIENT_ID,
            exp: expires_at,
        },
        r.now,
    );
    let license_id = secrets::random_token();
    let offline = OfflineLicenseClaims {
        iss: issuer.clone(),
        aud: CONSOLE_CLIENT_ID.to_owned(),
        sub: server_id.clone(),
        iat: now,
        nbf: now,
        exp: expires_at,
        jti: license_id.clone(),
        request_id: request.claims.request_id.clone(),
        cnf: Confirmation {
            jkt: request.jkt.clone(),
        },
    };
    let text = ActivationResponse {
        format: RESPONSE_FORMAT.to_owned(),
        server_url: issuer.clone(),
        keys: ring.jwks.clone(),
        license_document,
        offline_license: sign_offline_license(&offline, &ring.current_kid, &ring.current),
    }
    .to_text();
    let entry = |action, detail| NewAudit {
        at: now,
        actor: r.actor,
        org_id: Some(r.org_id),
        action,
        detail,
    };
    let mut audit = Vec::new();
    if let Target::New(_) = r.target {
        audit.push(entry(
            "device.registered",
            format!("registered device \"{name}\" ({server_id})"),
        ));
    }
    audit.push(entry(
        "offline.activated",
        format!(
            "activated device \"{name}\" ({server_id}) offline until {} (request {}, offline license {license_id})",
            fmt_time(expires_at),
            request.claims.request_id
        ),
    ));
    let stored = server
        .db
        .add_offline_activation(&NewOfflineActivation {
            org_id: r.org_id,
            device,
            request_id: &request.claims.request_id,
            install_jkt: &request.jkt,
            license_id: &license_id,
            issued_at: now,
            expires_at,
            response: &text,
            kid: &ring.current_kid,
            audit: &audit,
        })
        .await?;
    match stored {
        Activated::Stored(id) => Ok(Responded {
            id,
            text,
            device_name: name,
            server_id,
            expires_at,
        }),
        Activated::Refused => Err(Refusal::ChangedMeanwhile),
    }
}

/// A deactivation file to take.
pub struct Deactivate<'a> {
    /// The organization of the admin who uploads it; `None` from the CLI
    /// (any organization's).
    pub org_id: Option<i64>,
    /// The deactivation file's text.
    pub file: &'a str,
    pub actor: &'a str,
    pub now: OffsetDateTime,
}

/// The device whose offline license was given up (and which is now
/// revoked).
#[derive(Debug, Clone)]
pub struct Deactivated {
    pub org_id: i64,
    pub device_name: String,
    pub server_id: String,
}

/// Takes a deactivation: the install that holds the offline license gives
/// it up, so its device is revoked (it may be licensed again, online or by
/// a new request). Only a file signed by that install's key is taken.
pub async fn deactivate(server: Server<'_>, d: Deactivate<'_>) -> Result<Deactivated, Refusal> {
    let request = read_request(d.file, RequestKind::Deactivate, &server.config.issuer)?;
    let license_id = request.claims.license_id.as_deref().unwrap_or_default();
    let activation = server
        .db
        .offline_activation_by_license(license_id)
        .await?
        .filter(|a| d.org_id.is_none_or(|org| org == a.org_id))
        .ok_or(Refusal::UnknownLicense)?;
    if activation.install_jkt != request.jkt {
        return Err(Refusal::OtherInstall);
    }
    let device = server
        .db
        .device(activation.device_id)
        .await?
        .ok_or(Refusal::UnknownLicense)?;
    if let Some(at) = activation.deactivated_at {
        return Err(Refusal::AlreadyDeactivated(fmt_time(at), device.name));
    }
    let now = d.now.unix_timestamp();
    let entry = NewAudit {
        at: now,
        actor: d.actor,
        org_id: Some(activation.org_id),
        action: "offline.deactivated",
        detail: format!(
            "deactivated device \"{}\" ({}): its installation gave up offline license {license_id}; the device is revoked",
            device.name, device.server_id
        ),
    };
    match server
        .db
        .deactivate_offline(&activation, now, &entry)
        .await?
    {
        Deactivation::Done => Ok(Deactivated {
            org_id: activation.org_id,
            device_name: device.name,
            server_id: device.server_id,
        }),
        Deactivation::Already => Err(Refusal::AlreadyDeactivated(fmt_time(now), device.name)),
    }
}

/// A time as the messages and the pages show it.
pub fn fmt_time(unix: i64) -> String {
    let fmt = format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    to_time(unix)
        .and_then(|t| t.format(fmt).ok())
        .unwrap_or_else(|| "—".into())
}
