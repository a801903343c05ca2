//! Device approval: the one implementation behind the Authorize Device page
//! and `license-server device authorize`. Registering a new device, deciding
//! the device code and the audit entries are one transaction.

use crate::secrets;
use crate::store::{DbResult, Device, DeviceCode, DeviceDecision, NewAudit, RegisterDevice, Store};

/// The device a user code is decided for.
pub enum Target {
    /// A device of the organization.
    Existing(Device),
    /// A new device of this name, registered only if authorized.
    New(String),
}

/// Who decides, on which code, for which device.
pub struct Decision<'a> {
    pub org_id: i64,
    pub code: &'a DeviceCode,
    pub target: Target,
    pub approve: bool,
    /// The admin user deciding, if known.
    pub user_id: Option<i64>,
    /// The name the audit log shows.
    pub actor: &'a str,
    pub now: i64,
}

/// The device as decided: its name, and its Server ID unless a new device
/// was denied (then it was never registered).
#[derive(Debug, Clone)]
pub struct Decided {
    pub name: String,
    pub server_id: Option<String>,
}

/// Approves or denies the code; `None` if it was no longer pending, and then
/// nothing was written.
pub async fn decide(db: &Store, d: Decision<'_>) -> DbResult<Option<Decided>> {
    let new_server_id;
    let (name, server_id, device) = match &d.target {
        Target::Existing(device) => (
            device.name.clone(),
            Some(device.server_id.clone()),
            Some(RegisterDevice::Existing(device.id)),
        ),
        Target::New(name) if d.approve => {
            new_server_id = secrets::new_server_id();
            (
                name.clone(),
                Some(new_server_id.clone()),
                Some(RegisterDevice::New {
                    org_id: d.org_id,
                    name,
                    server_id: &new_server_id,
                }),
            )
        }
        Target::New(name) => (name.clone(), None, None),
    };
    let entry = |action, detail| NewAudit {
        at: d.now,
        actor: d.actor,
        org_id: Some(d.org_id),
        action,
        detail,
    };
    let mut audit = Vec::new();
    if let (Target::New(_), Some(id)) = (&d.target, &server_id) {
        audit.push(entry(
            "device.registered",
            format!("registered device \"{name}\" ({id})"),
        ));
    }
    audit.push(match &server_id {
        Some(id) if d.approve => entry(
            "device.authorized",
            format!("authorized device \"{name}\" ({id})"),
        ),
        _ => entry(
            "device.denied",
            format!("denied authorization of device \"{name}\""),
        ),
    });
    let decided = db
        .decide_device_code(&DeviceDecision {
            code_id: d.code.id,
            approve: d.approve,
            device,
            user_id: d.user_id,
            now: d.now,
            audit: &audit,
        })
        .await?;
    Ok(decided.then_some(Decided { name, server_id }))
}
