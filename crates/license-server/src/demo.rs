//! The demo account: a store chain with devices, a hub server and license
//! packages of every license kind.

use license_core::model::LicenseKind;

use crate::roles::Role;
use crate::store::{NewAudit, OrgInput, Store};
use crate::{keys, secrets};

pub const DEMO_ORG: &str = "Demo Store";
/// The organization admin of Demo Store (the customer's staff).
pub const DEMO_ADMIN: &str = "admin@demo-store.example";
/// The vendor's operator, who grants Demo Store its licenses.
pub const DEMO_VENDOR: &str = "operator@license-vendor.example";
pub const DEMO_DEVICES: &[&str] = &[
    "Store 001 POS Server",
    "Store 002 POS Server",
    "Back Office Server",
];

const DAY: i64 = 86_400;

/// A license kind, its total and who holds assigned licenses.
type Seed = (LicenseKind, i64, &'static [&'static str]);

/// The generated passwords of the demo's two sign-ins.
#[derive(Debug, Clone)]
pub struct DemoSignIns {
    /// Of [`DEMO_VENDOR`], a vendor operator.
    pub vendor_password: String,
    /// Of [`DEMO_ADMIN`], the organization admin of Demo Store.
    pub admin_password: String,
}

/// Seeds the demo account if the database holds no user yet. Returns the
/// generated passwords when it seeded.
pub async fn seed(store: &Store, now: i64) -> Result<Option<DemoSignIns>, crate::Error> {
    if store.user_count().await? > 0 {
        return Ok(None);
    }
    if store.keys().await?.is_empty() {
        keys::rotate(store, now)
            .await
            .map_err(crate::Error::internal)?;
    }
    let org_id = store
        .create_org(
            &OrgInput {
                name: DEMO_ORG.into(),
                features: vec!["xms".into()],
                hub_server_name: "Demo Hub".into(),
                hub_server_url: "https://hub.demo-store.example".into(),
                renewal_date: Some(now + 365 * DAY),
                valid_from: now - 30 * DAY,
                valid_until: now + 365 * DAY,
            },
            now,
        )
        .await?;
    for name in DEMO_DEVICES {
        store
            .create_device(org_id, name, &secrets::new_server_id(), now)
            .await?;
    }
    let packages: [(&str, &[Seed]); 2] = [
        (
            "Xopero ONE Business",
            &[
                (
                    LicenseKind::Endpoint,
                    50,
                    &[
                        "Store 001 POS Register 1",
                        "Store 001 POS Register 2",
                        "Office Laptop 07",
                    ],
                ),
                (
                    LicenseKind::Server,
                    5,
                    &["Store 001 POS Server", "Back Office Server"],
                ),
                (LicenseKind::FeatureWorker, 2, &["Feature Worker FW-01"]),
                (LicenseKind::CloudWorker, 2, &["Cloud Worker EU-1"]),
                (LicenseKind::LocalWorker, 3, &["Local Worker Store 001"]),
            ],
        ),
        (
            "Microsoft 365 & Git protection",
            &[
                (
                    LicenseKind::Microsoft365User,
                    100,
                    &[
                        "anna.kowalska@demo-store.example",
                        "john.smith@demo-store.example",
                    ],
                ),
                (
                    LicenseKind::GitRepository,
                    20,
                    &["demo-store/pos-frontend", "demo-store/inventory-api"],
                ),
            ],
        ),
    ];
    for (name, licenses) in packages {
        let id = store
            .create_package(org_id, name, now - 30 * DAY, now + 365 * DAY)
            .await?;
        for (kind, total, assigned) in licenses {
            store.set_license_total(id, kind.as_str(), *total).await?;
            for who in *assigned {
                store.add_assignment(id, kind, who).await?;
            }
        }
    }
    let admin_password = secrets::new_password();
    let hash = secrets::hash_password(&admin_password).map_err(crate::Error::internal)?;
    let user = store
        .create_user(DEMO_ADMIN, &hash, Role::OrgAdmin, now)
        .await?;
    store.add_member(user, org_id).await?;
    let vendor_password = secrets::new_password();
    let hash = secrets::hash_password(&vendor_password).map_err(crate::Error::internal)?;
    store
        .create_user(DEMO_VENDOR, &hash, Role::Vendor, now)
        .await?;
    store
        .audit(&NewAudit {
            at: now,
            actor: "system",
            org_id: Some(org_id),
            action: "account.created",
            detail: "demo account seeded".into(),
        })
        .await?;
    Ok(Some(DemoSignIns {
        vendor_password,
        admin_password,
    }))
}
