//! Offline activations: the activation responses given to air-gapped
//! consoles (`crate::offline`), and their deactivation.

use sqlx::FromRow;

use super::audit::{self, NewAudit};
use super::device_codes::RegisterDevice;
use super::devices;
use super::sql::{execute, optional, scalar};
use super::{DbResult, Store};

/// `SELECT` the columns of [`OfflineActivation`], then the rest.
macro_rules! select_offline_activations {
    ($rest:literal) => {
        concat!("SELECT id, org_id, device_id, request_id, install_jkt, license_id, issued_at, expires_at, deactivated_at, response FROM offline_activations ", $rest)
    };
}

/// An activation response given for a console's request.
#[derive(Debug, Clone, FromRow)]
pub struct OfflineActivation {
    pub id: i64,
    pub org_id: i64,
    pub device_id: i64,
    /// The request it answers (the console's random id).
    pub request_id: String,
    /// The thumbprint of the install key the offline license is bound to.
    pub install_jkt: String,
    /// The offline license's `jti`: a deactivation names it.
    pub license_id: String,
    pub issued_at: i64,
    /// The offline expiry.
    pub expires_at: i64,
    pub deactivated_at: Option<i64>,
    /// The response file's text (bound to the install key: no secret).
    pub response: String,
}

/// An activation response to store, with its device and audit entries.
pub struct NewOfflineActivation<'a> {
    pub org_id: i64,
    /// The device, or a new one registered in the same transaction.
    pub device: RegisterDevice<'a>,
    pub request_id: &'a str,
    pub install_jkt: &'a str,
    pub license_id: &'a str,
    pub issued_at: i64,
    pub expires_at: i64,
    pub response: &'a str,
    /// The signing key that signed it: it stays published until
    /// `expires_at`.
    pub kid: &'a str,
    pub audit: &'a [NewAudit<'a>],
}

/// What [`Store::add_offline_activation`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activated {
    /// Stored: the activation's id.
    Stored(i64),
    /// The device was revoked, or its organization suspended, since the
    /// caller looked (nothing written).
    Refused,
}

/// What [`Store::deactivate_offline`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deactivation {
    /// Deactivated, and the device revoked.
    Done,
    /// It was deactivated before (nothing written).
    Already,
}

impl Store {
    /// Stores an activation response: registers the new device if asked,
    /// marks the device licensed until the offline expiry, raises the
    /// signing key's `last_exp`, writes the audit entries; all or nothing.
    /// Refused (nothing written) for a device revoked or an organization
    /// suspended meanwhile.
    pub async fn add_offline_activation(
        &self,
        a: &NewOfflineActivation<'_>,
    ) -> DbResult<Activated> {
        let mut tx = self.write.begin().await?;
        let device_id = match a.device {
            RegisterDevice::Existing(id) => id,
            RegisterDevice::New {
                org_id,
                name,
                server_id,
            } => devices::insert(&mut tx, org_id, name, server_id, a.issued_at).await?,
        };
        let license = "UPDATE devices SET authorized_at = COALESCE(authorized_at, $1),
                              token_expiry = CASE WHEN token_expiry > $2
                                             THEN token_expiry ELSE $2 END
                        WHERE id = $3 AND org_id = $4 AND revoked_at IS NULL
                          AND EXISTS (SELECT 1 FROM organizations
                                       WHERE id = $4 AND suspended_at IS NULL)";
        let licensed = args![a.issued_at, a.expires_at, device_id, a.org_id];
        if execute(&mut *tx, license, licensed).await? != 1 {
            tx.rollback().await?;
            return Ok(Activated::Refused);
        }
        let key =
            "UPDATE signing_keys SET last_exp = CASE WHEN last_exp > $1 THEN last_exp ELSE $1 END
                    WHERE kid = $2";
        execute(&mut *tx, key, args![a.expires_at, a.kid]).await?;
        let insert = "INSERT INTO offline_activations (org_id, device_id, request_id, install_jkt,
                             license_id, issued_at, expires_at, response)
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";
        let row = args![
            a.org_id,
            device_id,
            a.request_id,
            a.install_jkt,
            a.license_id,
            a.issued_at,
            a.expires_at,
            a.response
        ];
        let id = scalar(&mut *tx, insert, row).await?;
        for entry in a.audit {
            audit::insert(&mut tx, entry).await?;
        }
        tx.commit().await?;
        Ok(Activated::Stored(id))
    }

    pub async fn offline_activation(&self, id: i64) -> DbResult<Option<OfflineActivation>> {
        let sql = select_offline_activations!("WHERE id = $1");
        optional(&self.read, sql, args![id]).await
    }

    /// The activation whose offline license has this `jti`.
    pub async fn offline_activation_by_license(
        &self,
        license_id: &str,
    ) -> DbResult<Option<OfflineActivation>> {
        let sql = select_offline_activations!("WHERE license_id = $1");
        optional(&self.write, sql, args![license_id]).await
    }

    /// Deactivates the activation `a` (the install gave it up): it and every
    /// other live activation of the same install for the same device are
    /// marked deactivated, the device is revoked (it holds no license any
    /// more) and the audit entry written; all or nothing.
    pub async fn deactivate_offline(
        &self,
        a: &OfflineActivation,
        now: i64,
        entry: &NewAudit<'_>,
    ) -> DbResult<Deactivation> {
        let mut tx = self.write.begin().await?;
        let this = "UPDATE offline_activations SET deactivated_at = $1
                     WHERE id = $2 AND deactivated_at IS NULL";
        if execute(&mut *tx, this, args![now, a.id]).await? != 1 {
            tx.rollback().await?;
            return Ok(Deactivation::Already);
        }
        let same_install = "UPDATE offline_activations SET deactivated_at = $1
                             WHERE device_id = $2 AND install_jkt = $3 AND deactivated_at IS NULL";
        execute(
            &mut *tx,
            same_install,
            args![now, a.device_id, &a.install_jkt],
        )
        .await?;
        devices::revoke(&mut tx, a.device_id, now).await?;
        audit::insert(&mut tx, entry).await?;
        tx.commit().await?;
        self.issued.forget_all();
        Ok(Deactivation::Done)
    }
}
