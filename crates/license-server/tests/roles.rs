//! The role matrix over HTTP: an organization admin (the customer's staff)
//! gets 403 on every vendor action and changes nothing, while the vendor
//! operator may; an organization admin sees nothing of another organization;
//! a suspended organization's devices get nothing.

mod common;

use common::*;
use license_server::store::OrgInput;

/// Everything a vendor action could change, to compare before and after.
async fn snapshot(server: &TestServer) -> String {
    let db = &server.state.db;
    let mut out = String::new();
    for org in db.orgs().await.unwrap() {
        let (packages, licenses, assignments) = db.packages(org.id).await.unwrap();
        let audit = db.audit_log(org.id, 1000).await.unwrap().len();
        out += &format!("{org:?}\n{packages:?}\n{licenses:?}\n{assignments:?}\n{audit}\n");
    }
    for u in db.users().await.unwrap() {
        out += &format!("{} {:?} {:?} {}\n", u.email, u.role, u.disabled_at, u.orgs);
    }
    for k in db.keys().await.unwrap() {
        out += &format!("key {} {:?} {:?}\n", k.kid, k.retired_at, k.withdrawn_at);
    }
    out += &format!(
        "successor keys {:?}\n",
        db.successor_key_times().await.unwrap()
    );
    for t in db.api_tokens().await.unwrap() {
        out += &format!("api token {} {:?}\n", t.name, t.revoked_at);
    }
    out
}

/// A vendor action: the path and form fields (the CSRF token is added).
fn vendor_action(name: &str) -> (String, Vec<(&'static str, &'static str)>) {
    let dates = [("valid_from", "2024-01-01"), ("valid_until", "2031-01-01")];
    match name {
        "create_organization" => ("/admin/orgs/new".into(), vec![("name", "Self-made Ltd")]),
        "edit_account" => (
            "/admin/account".into(),
            [
                vec![
                    ("features", "xms, everything"),
                    ("hub_server_name", "hub"),
                    ("hub_server_url", "https://hub.example"),
                    ("renewal_date", "2031-01-01"),
                ],
                dates.to_vec(),
            ]
            .concat(),
        ),
        "set_offline_period" => (
            "/admin/account/offline-days".into(),
            vec![("offline_days", "90")],
        ),
        "suspend_organization" => ("/admin/account/suspend".into(), vec![]),
        "resume_organization" => ("/admin/account/resume".into(), vec![]),
        "create_package" => (
            "/admin/packages".into(),
            [vec![("name", "Free licenses")], dates.to_vec()].concat(),
        ),
        // The attack that was tried: raising Endpoint licenses from 50 to 75.
        "raise_license_total" => (
            "/admin/packages/1".into(),
            [
                vec![
                    ("name", "Xopero ONE Business"),
                    ("status", "active"),
                    ("total_endpoint", "75"),
                ],
                dates.to_vec(),
            ]
            .concat(),
        ),
        "renew_package" => ("/admin/packages/1/renew".into(), vec![]),
        "assign_license" => (
            "/admin/packages/1/assignments".into(),
            vec![("kind", "endpoint"), ("name", "self-assigned")],
        ),
        "unassign_license" => ("/admin/packages/1/assignments/1/delete".into(), vec![]),
        "invite_vendor_operator" => (
            "/admin/users/invite".into(),
            vec![("email", "me-too@demo-store.example"), ("role", "vendor")],
        ),
        "invite_to_another_organization" => (
            "/admin/users/invite".into(),
            vec![
                ("email", "me-too@demo-store.example"),
                ("role", "org_admin"),
                ("org_id", "2"),
            ],
        ),
        "disable_user" => ("/admin/users/VENDOR/disable".into(), vec![]),
        "enable_user" => ("/admin/users/VENDOR/enable".into(), vec![]),
        "remove_user" => ("/admin/users/VENDOR/remove".into(), vec![]),
        "create_api_token" => (
            "/admin/api-tokens".into(),
            vec![("name", "my own billing"), ("scope", "write")],
        ),
        "rotate_signing_key" => ("/admin/keys/rotate".into(), vec![]),
        "rotate_successor_key" => ("/admin/keys/rotate-successor".into(), vec![]),
        "withdraw_signing_key" => ("/admin/keys/CURRENT_KID/withdraw".into(), vec![]),
        other => panic!("no vendor action {other}"),
    }
}

/// A server with a second organization (id 2) and a second vendor
/// operator (so that disabling one is allowed).
async fn server() -> TestServer {
    let server = start().await;
    let db = &server.state.db;
    let now = server.state.now();
    let other = db
        .create_org(
            &OrgInput {
                name: "Other Co".into(),
                features: vec![],
                hub_server_name: String::new(),
                hub_server_url: String::new(),
                renewal_date: None,
                valid_from: now,
                valid_until: now + 86_400,
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!(other, 2);
    db.create_user(
        "second-operator@license-vendor.example",
        "x",
        license_server::roles::Role::Vendor,
        now,
    )
    .await
    .unwrap();
    server
}

async fn post_action(server: &TestServer, client: &reqwest::Client, name: &str) -> (u16, String) {
    let (mut path, fields) = vendor_action(name);
    if path.contains("VENDOR") {
        let second = server
            .state
            .db
            .user_by_email("second-operator@license-vendor.example")
            .await
            .unwrap()
            .unwrap();
        path = path.replace("VENDOR", &second.id.to_string());
    }
    let current_kid = server.state.keys.ring().current_kid.clone();
    path = path.replace("CURRENT_KID", &current_kid);
    post_form(server, client, "/admin/packages", &path, &fields).await
}

async fn org_admin_is_refused(name: &str) {
    let server = server().await;
    let client = browser();
    sign_in(&server, &client).await;
    let before = snapshot(&server).await;
    let (status, body) = post_action(&server, &client, name).await;
    assert_eq!(status, 403, "{name}: {body}");
    assert!(body.contains("Not allowed"), "{name}: {body}");
    assert_eq!(snapshot(&server).await, before, "{name} changed something");
}

async fn vendor_may(name: &str) {
    let server = server().await;
    let client = browser();
    sign_in_vendor(&server, &client).await;
    choose_org(&server, &client, 1).await;
    let before = snapshot(&server).await;
    let (status, body) = post_action(&server, &client, name).await;
    assert!(status == 303 || status == 200, "{name}: {status} {body}");
    assert_ne!(snapshot(&server).await, before, "{name} changed nothing");
}

macro_rules! role_matrix {
    ($($action:ident),* $(,)?) => {
        mod org_admin_is_refused {
            $(#[tokio::test]
            async fn $action() {
                super::org_admin_is_refused(stringify!($action)).await;
            })*
        }
        mod vendor_operator_may {
            $(#[tokio::test]
            async fn $action() {
                super::vendor_may(stringify!($action)).await;
            })*
        }
    };
}

role_matrix!(
    create_organization,
    edit_account,
    set_offline_period,
    suspend_organization,
    resume_organization,
    create_package,
    raise_license_total,
    renew_package,
    assign_license,
    unassign_license,
    invite_vendor_operator,
    invite_to_another_organization,
    disable_user,
    enable_user,
    remove_user,
    create_api_token,
    rotate_signing_key,
    rotate_successor_key,
    withdraw_signing_key,
);

/// Works in organization `id` from now on (a vendor operator with several
/// organizations chooses one after signing in).
async fn choose_org(server: &TestServer, client: &reqwest::Client, id: i64) {
    let page = page_text(server, client, "/admin/orgs").await;
    let csrf = hidden(&page, "csrf");
    let r = client
        .post(server.url("/admin/orgs"))
        .form(&[("csrf", csrf.as_str()), ("org_id", &id.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

/// The organization admin sees the license packages read-only.
#[tokio::test]
async fn org_admin_reads_packages_without_forms() {
    let server = server().await;
    let client = browser();
    sign_in(&server, &client).await;
    for path in ["/admin/packages", "/admin/packages/1"] {
        let page = page_text(&server, &client, path).await;
        assert!(page.contains("id=\"read-only\""), "{path}");
        assert!(page.contains("Xopero ONE Business"), "{path}");
        for form in [
            "Save package",
            "Renew 1 year",
            "Create package",
            "Save account",
            "Assign license",
        ] {
            assert!(!page.contains(form), "{path} offers {form}");
        }
    }
}

/// An organization admin sees nothing of an organization they are not in.
#[tokio::test]
async fn org_admin_sees_nothing_of_another_organization() {
    let server = server().await;
    let db = &server.state.db;
    let now = server.state.now();
    let package = db
        .create_package(2, "Other package", now, now + 86_400)
        .await
        .unwrap();
    let other_device = db
        .create_device(2, "Other server", "SRV-OTHER0000000000", now)
        .await
        .unwrap()
        .id;
    let client = browser();
    sign_in(&server, &client).await;
    let orgs = page_text(&server, &client, "/admin/orgs").await;
    assert!(orgs.contains("Demo Store") && !orgs.contains("Other Co"));
    let csrf = hidden(&orgs, "csrf");
    let choose = client
        .post(server.url("/admin/orgs"))
        .form(&[("csrf", csrf.as_str()), ("org_id", "2")])
        .send()
        .await
        .unwrap();
    assert_eq!(choose.status(), 404);
    let page = client
        .get(server.url(&format!("/admin/packages/{package}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
    let revoke = client
        .post(server.url(&format!("/admin/devices/{other_device}/revoke")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 404);
    assert!(db.devices(2).await.unwrap()[0].revoked_at.is_none());
    for path in [
        "/admin/devices",
        "/admin/packages",
        "/admin/audit",
        "/admin/users",
        "/admin/offline",
    ] {
        let page = page_text(&server, &client, path).await;
        assert!(
            !page.contains("Other"),
            "{path} shows the other organization"
        );
    }
    // The vendor operator sees both.
    let vendor = browser();
    sign_in_vendor(&server, &vendor).await;
    let orgs = page_text(&server, &vendor, "/admin/orgs").await;
    assert!(orgs.contains("Demo Store") && orgs.contains("Other Co"));
}

/// A suspended organization's devices get no tokens and no license; after
/// the suspension is lifted the same refresh token works again.
#[tokio::test]
async fn a_suspended_organization_gets_nothing() {
    let server = start().await;
    let tokens = license_device(&server, "Store 001 POS Server").await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let pending = start_device_authorization(&server).await;
    let admin = browser();
    sign_in(&server, &admin).await;
    decide_on_page(
        &server,
        &admin,
        "Store 002 POS Server",
        &pending.user_code,
        "authorize",
    )
    .await;

    let vendor = browser();
    sign_in_vendor(&server, &vendor).await;
    let (status, _) = post_action(&server, &vendor, "suspend_organization").await;
    assert_eq!(status, 303);
    server.advance(10);
    let (status, body) = refresh(&server, refresh_token).await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"), "{body}");
    assert_eq!(fetch_license(&server, access).await.status(), 401);
    let (status, body) = poll(&server, &pending.device_code).await;
    assert_eq!((status, error_of(&body)), (400, "access_denied"), "{body}");

    let (status, _) = post_action(&server, &vendor, "resume_organization").await;
    assert_eq!(status, 303);
    let (status, body) = refresh(&server, refresh_token).await;
    assert_eq!(status, 200, "{body}");
}

/// The vendor operator reads the audit log of everything; an organization
/// admin gets 403 asking for it and reads their organization's only.
#[tokio::test]
async fn only_vendor_operators_read_the_audit_log_of_everything() {
    let server = server().await;
    let db = &server.state.db;
    let entry = |org_id, action| license_server::store::NewAudit {
        at: server.state.now(),
        actor: "cli",
        org_id,
        action,
        detail: String::new(),
    };
    db.audit(&entry(Some(2), "other.thing")).await.unwrap();
    db.audit(&entry(None, "keys.rotated")).await.unwrap();
    let admin = browser();
    sign_in(&server, &admin).await;
    let r = admin
        .get(server.url("/admin/audit?scope=all"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let own = page_text(&server, &admin, "/admin/audit").await;
    assert!(own.contains("account.created"), "{own}");
    assert!(!own.contains("other.thing") && !own.contains("keys.rotated"));
    assert!(!own.contains("audit-everything"));
    let vendor = browser();
    sign_in_vendor(&server, &vendor).await;
    choose_org(&server, &vendor, 1).await;
    let all = page_text(&server, &vendor, "/admin/audit?scope=all").await;
    for action in ["account.created", "other.thing", "keys.rotated", "Other Co"] {
        assert!(all.contains(action), "{action} missing:\n{all}");
    }
}
