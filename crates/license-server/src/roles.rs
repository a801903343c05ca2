//! Who may do what: the one role check of the admin pages, the CLI and the
//! vendor API. Pages and routes ask [`Role::may`]; nothing else compares
//! roles.
//!
//! The server is run by the **vendor**, who grants licenses, and used by the
//! vendor's **customers**, whose admins authorize their own devices and read
//! their license account. A customer's admin must never grant themselves a
//! license, so every write to a license account is a vendor action.

use std::fmt;

/// A user's role. Stored as `vendor` or `org_admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The vendor's operators: every organization, every license account,
    /// keys, users.
    Vendor,
    /// A customer's admin: the organizations they belong to, devices,
    /// read-only license packages.
    OrgAdmin,
}

/// Everything the role check distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Work in any organization, member or not; list every organization.
    SeeEveryOrganization,
    /// Create organizations; change an account's features, hub server,
    /// validity, renewal date and offline period; suspend an organization.
    ManageOrganizations,
    /// Create and change license packages, their totals, validity and
    /// assignments; renew them.
    ManagePackages,
    /// Invite vendor operators; disable or remove any user.
    ManageUsers,
    /// Create and revoke vendor API tokens.
    ManageApiTokens,
    /// Rotate the signing and refresh-successor keys; withdraw a signing key.
    ManageKeys,
    /// Authorize Device with a User Code.
    AuthorizeDevice,
    /// Register and revoke devices.
    ManageDevices,
    /// Read license packages and licenses.
    ReadPackages,
    /// Read the organization's audit log.
    ReadAudit,
    /// Invite and remove admins of the organization.
    ManageOrgAdmins,
    /// Answer an air-gapped console's activation request with a response
    /// file; take its deactivation file.
    OfflineActivation,
}

impl Action {
    /// Every action, in the order of the README's role matrix.
    pub const ALL: [Action; 12] = [
        Action::SeeEveryOrganization,
        Action::ManageOrganizations,
        Action::ManagePackages,
        Action::ManageUsers,
        Action::ManageApiTokens,
        Action::ManageKeys,
        Action::AuthorizeDevice,
        Action::ManageDevices,
        Action::ReadPackages,
        Action::ReadAudit,
        Action::ManageOrgAdmins,
        Action::OfflineActivation,
    ];

    /// How the README's role matrix names the action.
    pub fn label(self) -> &'static str {
        match self {
            Action::SeeEveryOrganization => "Every organization",
            Action::ManageOrganizations => {
                "Create, edit and suspend organizations (features, hub, validity, renewal, offline period)"
            }
            Action::ManagePackages => {
                "Create and edit license packages, totals, assignments; renew"
            }
            Action::ManageUsers => "Invite vendor operators; disable or remove any user",
            Action::ManageApiTokens => "Vendor API tokens",
            Action::ManageKeys => "Signing keys: rotate, withdraw",
            Action::AuthorizeDevice => "Authorize Device (own organizations)",
            Action::ManageDevices => "Register and revoke devices (own organizations)",
            Action::ReadPackages => "Read license packages and licenses (own organizations)",
            Action::ReadAudit => "Audit log (own organizations)",
            Action::ManageOrgAdmins => "Invite and remove admins (own organizations)",
            Action::OfflineActivation => {
                "Offline activation by file: respond, deactivate (own organizations)"
            }
        }
    }
}

impl Role {
    pub const ALL: [Role; 2] = [Role::Vendor, Role::OrgAdmin];

    /// The role check.
    pub fn may(self, action: Action) -> bool {
        match self {
            Role::Vendor => true,
            Role::OrgAdmin => matches!(
                action,
                Action::AuthorizeDevice
                    | Action::ManageDevices
                    | Action::ReadPackages
                    | Action::ReadAudit
                    | Action::ManageOrgAdmins
                    | Action::OfflineActivation
            ),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Vendor => "vendor",
            Role::OrgAdmin => "org_admin",
        }
    }

    /// How pages name the role.
    pub fn label(self) -> &'static str {
        match self {
            Role::Vendor => "Vendor operator",
            Role::OrgAdmin => "Organization admin",
        }
    }

    /// Parses `vendor`, `org_admin` or `org-admin` (the CLI's spelling).
    pub fn parse(s: &str) -> Option<Role> {
        match s.trim() {
            "vendor" => Some(Role::Vendor),
            "org_admin" | "org-admin" => Some(Role::OrgAdmin),
            _ => None,
        }
    }

    /// The role matrix as the README shows it (a Markdown table); a test
    /// keeps the README equal to this.
    pub fn matrix_markdown() -> String {
        let mut out =
            String::from("| Action | Vendor operator | Organization admin |\n|---|---|---|\n");
        for action in Action::ALL {
            let mark = |r: Role| if r.may(action) { "yes" } else { "no" };
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                action.label(),
                mark(Role::Vendor),
                mark(Role::OrgAdmin)
            ));
        }
        out
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_admins_never_grant_licenses() {
        for a in [
            Action::SeeEveryOrganization,
            Action::ManageOrganizations,
            Action::ManagePackages,
            Action::ManageUsers,
            Action::ManageApiTokens,
        ] {
            assert!(!Role::OrgAdmin.may(a), "{a:?}");
            assert!(Role::Vendor.may(a), "{a:?}");
        }
    }

    #[test]
    fn parses_both_spellings() {
        assert_eq!(Role::parse("org-admin"), Some(Role::OrgAdmin));
        assert_eq!(Role::parse("org_admin"), Some(Role::OrgAdmin));
        assert_eq!(Role::parse("vendor"), Some(Role::Vendor));
        assert_eq!(Role::parse("admin"), None);
    }

    #[test]
    fn readme_shows_the_matrix() {
        let readme = include_str!("../README.md");
        assert!(
            readme.contains(&Role::matrix_markdown()),
            "the server README's role matrix differs from roles.rs; it should read:\n{}",
            Role::matrix_markdown()
        );
    }
}

crate::store::sql::text_column!(Role { Vendor => "vendor", OrgAdmin => "org_admin" });
