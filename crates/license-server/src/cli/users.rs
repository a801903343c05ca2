//! `user add|disable|enable|list`: the users pages for operators who script.

use std::fmt::Write as _;

use super::{audit_and_close, now, CliError};
use crate::accounts::{check_email, check_new_password};
use crate::roles::Role;
use crate::secrets;
use crate::store::{Location, UserChange};

/// `user add`. Returns the password when it generated one.
pub async fn add(
    db: &Location,
    email: &str,
    role: &str,
    orgs: &[String],
    password: Option<&str>,
) -> Result<Option<String>, CliError> {
    let email = check_email(email).map_err(CliError::Usage)?;
    let role = Role::parse(role).ok_or_else(|| {
        CliError::Usage(format!("unknown role {role:?}; use vendor or org-admin"))
    })?;
    if role == Role::OrgAdmin && orgs.is_empty() {
        return Err(CliError::Usage(
            "an organization admin needs at least one --org".into(),
        ));
    }
    let store = super::open_store(db).await?;
    if store.user_by_email(&email).await?.is_some() {
        return Err(CliError::Usage(format!("user {email} already exists")));
    }
    let mut org_ids = Vec::new();
    for name in orgs {
        match store.org_by_name(name).await? {
            Some(o) => org_ids.push(o.id),
            None => return Err(CliError::Usage(format!("unknown organization {name:?}"))),
        }
    }
    let generated = password.is_none().then(secrets::new_password);
    let password = password.or(generated.as_deref()).unwrap_or_default();
    check_new_password(password).map_err(CliError::Usage)?;
    let hash = secrets::hash_password(password).map_err(crate::Error::internal)?;
    let id = store.create_user(&email, &hash, role, now()).await?;
    for org in org_ids {
        store.add_member(id, org).await?;
    }
    let detail = format!("added {} {email} ({})", role.label(), orgs.join(", "));
    audit_and_close(store, "user.added", detail).await?;
    Ok(generated)
}

/// `user disable` (`disabled`) or `user enable`.
pub async fn set_disabled(db: &Location, email: &str, disabled: bool) -> Result<(), CliError> {
    let store = super::open_store(db).await?;
    let user = store
        .user_by_email(email)
        .await?
        .ok_or_else(|| CliError::Usage(format!("unknown user {email}")))?;
    let at = disabled.then(now);
    match store.set_user_disabled(user.id, at).await? {
        UserChange::Done => {}
        UserChange::NoSuchUser => return Err(CliError::Usage(format!("unknown user {email}"))),
        UserChange::LastVendorOperator => {
            return Err(CliError::Usage(format!(
                "{email} is the last vendor operator who can sign in; add another first"
            )))
        }
    }
    let (action, verb) = if disabled {
        ("user.disabled", "disabled")
    } else {
        ("user.enabled", "enabled")
    };
    audit_and_close(store, action, format!("{verb} {email}")).await
}

/// `user list`: one line per user.
pub async fn list(db: &Location) -> Result<String, CliError> {
    let store = super::open_store(db).await?;
    let users = store.users().await?;
    store.close().await;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<40} {:<20} {:<9} ORGANIZATIONS",
        "EMAIL", "ROLE", "STATUS"
    );
    for u in users {
        let status = if u.disabled_at.is_some() {
            "disabled"
        } else {
            "active"
        };
        let orgs = if u.role == Role::Vendor && u.orgs.is_empty() {
            "(all)"
        } else {
            &u.orgs
        };
        let _ = writeln!(
            out,
            "{:<40} {:<20} {:<9} {}",
            u.email,
            u.role.label(),
            status,
            orgs
        );
    }
    Ok(out)
}
