//! Users: invitations (single use, expiring), accepting one, password
//! changes, disabling and removing, the last vendor operator, the `user`
//! CLI, and databases made before roles existed.

mod common;

use std::borrow::Cow;
use std::process::Command;

use common::*;
use license_server::demo;

const BIN: &str = env!("CARGO_BIN_EXE_license-server");

/// The invitation link shown once on the page after inviting.
fn link_of(page: &str) -> String {
    let start = page.find("http://").expect(page);
    let end = page[start..].find('"').unwrap() + start;
    page[start..end].to_owned()
}

async fn invite(server: &TestServer, client: &reqwest::Client, fields: &[(&str, &str)]) -> String {
    let (status, page) = post_form(
        server,
        client,
        "/admin/users",
        "/admin/users/invite",
        fields,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("shown only now"), "{page}");
    link_of(&page)
}

async fn accept(link: &str, password: &str, confirm: &str) -> (u16, String) {
    let r = browser()
        .post(link)
        .form(&[("password", password), ("confirm", confirm)])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn can_sign_in(server: &TestServer, email: &str, password: &str) -> u16 {
    sign_in_status(server, &browser(), email, password).await
}

#[tokio::test]
async fn an_org_admin_invites_an_admin_of_their_organization() {
    let server = start().await;
    let admin = browser();
    sign_in(&server, &admin).await;
    let link = invite(
        &server,
        &admin,
        &[("email", "new.admin@demo-store.example")],
    )
    .await;
    assert!(link.contains("/admin/invitations/"), "{link}");
    // The link is not stored: only its hash is.
    let token = link.rsplit('/').next().unwrap();
    let invitations = stored_text(&server, "invitations").await;
    assert!(
        !invitations.contains(token),
        "the invitation link is stored"
    );

    let page = browser()
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("new.admin@demo-store.example") && page.contains("Demo Store"));
    let (status, page) = accept(&link, "short", "short").await;
    assert_eq!(status, 200);
    assert!(page.contains("at least 12 characters"), "{page}");
    let (_, page) = accept(&link, "a long new password", "a different one!").await;
    assert!(page.contains("the passwords differ"), "{page}");
    let (status, page) = accept(&link, "a long new password", "a long new password").await;
    assert_eq!(status, 200);
    assert!(page.contains("Invitation accepted"), "{page}");
    assert_eq!(
        can_sign_in(
            &server,
            "new.admin@demo-store.example",
            "a long new password"
        )
        .await,
        303
    );
    let user = server
        .state
        .db
        .user_by_email("new.admin@demo-store.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.role, license_server::roles::Role::OrgAdmin);
    assert!(server.state.db.is_member(user.id, 1).await.unwrap());

    // Single use.
    let (_, page) = accept(&link, "another long password", "another long password").await;
    assert!(page.contains("Invitation not valid"), "{page}");
    assert_eq!(
        can_sign_in(
            &server,
            "new.admin@demo-store.example",
            "another long password"
        )
        .await,
        401
    );

    // The new admin appears among the organization's admins, and can be
    // removed from it.
    let members = page_text(&server, &admin, "/admin/users").await;
    assert!(members.contains("new.admin@demo-store.example"));
    assert!(
        !members.contains(demo::DEMO_VENDOR),
        "vendor operators are not members"
    );
    let path = format!("/admin/users/{}/leave", user.id);
    let (status, _) = post_form(&server, &admin, "/admin/users", &path, &[]).await;
    assert_eq!(status, 303);
    assert!(!server.state.db.is_member(user.id, 1).await.unwrap());
}

#[tokio::test]
async fn invitations_expire() {
    let server = start().await;
    let vendor = browser();
    sign_in_vendor(&server, &vendor).await;
    let link = invite(
        &server,
        &vendor,
        &[("email", "late@vendor.example"), ("role", "vendor")],
    )
    .await;
    server.advance(7 * 86_400 + 1);
    let (_, page) = accept(&link, "a long new password", "a long new password").await;
    assert!(page.contains("Invitation not valid"), "{page}");
    assert!(server
        .state
        .db
        .user_by_email("late@vendor.example")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn an_invitation_adds_an_organization_to_an_existing_user() {
    let server = start().await;
    let vendor = browser();
    sign_in_vendor(&server, &vendor).await;
    let link = invite(
        &server,
        &vendor,
        &[
            ("email", demo::DEMO_VENDOR),
            ("role", "org_admin"),
            ("org_id", "1"),
        ],
    )
    .await;
    let page = browser()
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("You already have an account"), "{page}");
    let (status, page) = accept(&link, "", "").await;
    assert_eq!(status, 200);
    assert!(page.contains("now also administers Demo Store"), "{page}");
    // The password did not change.
    assert_eq!(
        can_sign_in(&server, demo::DEMO_VENDOR, &server.vendor_password).await,
        303
    );
}

#[tokio::test]
async fn a_disabled_user_cannot_sign_in_and_their_sessions_end() {
    let server = start().await;
    let admin = browser();
    sign_in(&server, &admin).await;
    assert_eq!(
        admin
            .get(server.url("/admin/devices"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let vendor = browser();
    sign_in_vendor(&server, &vendor).await;
    let user = server
        .state
        .db
        .user_by_email(demo::DEMO_ADMIN)
        .await
        .unwrap()
        .unwrap();
    let path = format!("/admin/users/{}/disable", user.id);
    let (status, _) = post_form(&server, &vendor, "/admin/users", &path, &[]).await;
    assert_eq!(status, 303);
    let r = admin
        .get(server.url("/admin/devices"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "the session ended");
    assert_eq!(
        can_sign_in(&server, demo::DEMO_ADMIN, &server.admin_password).await,
        403
    );
    let path = format!("/admin/users/{}/enable", user.id);
    let (status, _) = post_form(&server, &vendor, "/admin/users", &path, &[]).await;
    assert_eq!(status, 303);
    assert_eq!(
        can_sign_in(&server, demo::DEMO_ADMIN, &server.admin_password).await,
        303
    );
}

#[tokio::test]
async fn the_last_vendor_operator_stays() {
    let server = start().await;
    let vendor = browser();
    sign_in_vendor(&server, &vendor).await;
    let me = server
        .state
        .db
        .user_by_email(demo::DEMO_VENDOR)
        .await
        .unwrap()
        .unwrap();
    for action in ["disable", "remove"] {
        let path = format!("/admin/users/{}/{action}", me.id);
        let (status, page) = post_form(&server, &vendor, "/admin/users", &path, &[]).await;
        assert_eq!(status, 400, "{action}: {page}");
        assert!(page.contains("last vendor operator"), "{page}");
    }
    let me = server.state.db.user(me.id).await.unwrap().unwrap();
    assert!(me.disabled_at.is_none());
    assert_eq!(
        can_sign_in(&server, demo::DEMO_VENDOR, &server.vendor_password).await,
        303
    );
}

#[tokio::test]
async fn a_password_change_needs_the_current_password_and_ends_other_sessions() {
    let server = start().await;
    let other_session = browser();
    sign_in(&server, &other_session).await;
    let admin = browser();
    sign_in(&server, &admin).await;
    let change = |current: String| {
        vec![
            ("current", current),
            ("password", "my new long password".to_owned()),
            ("confirm", "my new long password".to_owned()),
        ]
    };
    let wrong = change("not my password".into());
    let wrong: Vec<(&str, &str)> = wrong.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, page) = post_form(
        &server,
        &admin,
        "/admin/password",
        "/admin/password",
        &wrong,
    )
    .await;
    assert_eq!(status, 401, "{page}");
    assert_eq!(
        can_sign_in(&server, demo::DEMO_ADMIN, "my new long password").await,
        401
    );
    let right = change(server.admin_password.clone());
    let right: Vec<(&str, &str)> = right.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, page) = post_form(
        &server,
        &admin,
        "/admin/password",
        "/admin/password",
        &right,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Password changed"));
    assert_eq!(
        can_sign_in(&server, demo::DEMO_ADMIN, "my new long password").await,
        303
    );
    assert_eq!(
        can_sign_in(&server, demo::DEMO_ADMIN, &server.admin_password).await,
        401
    );
    assert_eq!(
        admin
            .get(server.url("/admin/devices"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = other_session
        .get(server.url("/admin/devices"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "the other session ended");
}

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_user_cli_adds_disables_and_lists() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("license.db");
    let db = db.to_str().unwrap();
    let (ok, out) = run(&[
        "init",
        "--db",
        db,
        "--admin-email",
        "ops@vendor.example",
        "--org",
        "Customer Ltd",
    ]);
    assert!(ok, "{out}");
    let (ok, out) = run(&[
        "user",
        "add",
        "--db",
        db,
        "--email",
        "it@customer.example",
        "--role",
        "org-admin",
        "--org",
        "Customer Ltd",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("password: "), "{out}");
    let (ok, out) = run(&[
        "user",
        "add",
        "--db",
        db,
        "--email",
        "x@customer.example",
        "--role",
        "org-admin",
    ]);
    assert!(!ok && out.contains("needs at least one --org"), "{out}");
    let (ok, out) = run(&[
        "user",
        "add",
        "--db",
        db,
        "--email",
        "x@customer.example",
        "--role",
        "owner",
        "--org",
        "Customer Ltd",
    ]);
    assert!(!ok && out.contains("unknown role"), "{out}");
    let (ok, out) = run(&[
        "user",
        "add",
        "--db",
        db,
        "--email",
        "not-an-email",
        "--role",
        "vendor",
    ]);
    assert!(!ok && out.contains("not an email address"), "{out}");
    let (ok, out) = run(&[
        "user",
        "disable",
        "--db",
        db,
        "--email",
        "ops@vendor.example",
    ]);
    assert!(!ok && out.contains("last vendor operator"), "{out}");
    let (ok, out) = run(&[
        "user",
        "disable",
        "--db",
        db,
        "--email",
        "it@customer.example",
    ]);
    assert!(ok, "{out}");
    let (ok, out) = run(&["user", "list", "--db", db]);
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with("ops@vendor.example")
            && l.contains("Vendor operator")
            && l.contains("active")),
        "{out}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("it@customer.example")
            && l.contains("Organization admin")
            && l.contains("disabled")
            && l.contains("Customer Ltd")),
        "{out}"
    );
}

/// A database made before roles existed: its users become vendor
/// operators when the new server opens it.
#[tokio::test]
async fn an_older_database_keeps_its_admin_as_vendor_operator() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let mut old = sqlx::migrate!("./migrations/sqlite");
    old.migrations = Cow::Owned(old.migrations[..2].to_vec());
    old.run(&pool).await.unwrap();
    sqlx::query(
        "INSERT INTO users (email, password_hash, created_at) VALUES ('ops@old.example', 'x', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let store = license_server::Store::open(&path).await.unwrap();
    let user = store
        .user_by_email("ops@old.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.role, license_server::roles::Role::Vendor);
    assert_eq!(user.disabled_at, None);
}
