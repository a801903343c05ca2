//! Air-gapped activation by file: the Offline activation page and
//! `license-server offline respond|deactivate` answer a console's request
//! with a response the console verifies (`license_core::offline`), take its
//! deactivation once, and refuse every bad file with its message, changing
//! nothing.

mod common;

use std::process::Command;

use common::*;
use ed25519_dalek::SigningKey;
use license_core::dpop::key_thumbprint;
use license_core::jwk::JwkSet;
use license_core::offline::{
    read_request, sign_request, verify_response, RequestClaims, RequestKind, ResponseCheck,
    VerifiedActivation,
};
use license_server::roles::Role;
use license_server::store::OrgInput;
use license_server::Clock;
use license_server::CONSOLE_CLIENT_ID;

const BIN: &str = env!("CARGO_BIN_EXE_license-server");
const DAY: i64 = 86_400;
const STORE_001: &str = "Store 001 POS Server";

/// A console install: its key, as the keychain would hold it.
fn install() -> SigningKey {
    SigningKey::generate(&mut rand::rngs::OsRng)
}

fn claims(kind: RequestKind, server_url: &str, request_id: &str) -> RequestClaims {
    RequestClaims {
        kind,
        request_id: request_id.into(),
        server_url: server_url.into(),
        console_version: "1.4.0".into(),
        iat: 1_700_000_000,
        server_id: None,
        license_id: None,
    }
}

/// An activation request of `key` for the server at `server_url`.
fn request(key: &SigningKey, server_url: &str, request_id: &str) -> String {
    sign_request(key, &claims(RequestKind::Activate, server_url, request_id))
}

/// A deactivation of `key` giving up the offline license `license_id`.
fn deactivation(key: &SigningKey, server_url: &str, license_id: &str) -> String {
    let mut c = claims(RequestKind::Deactivate, server_url, "deactivate-1");
    c.license_id = Some(license_id.into());
    sign_request(key, &c)
}

/// The page's text as a reader sees it (askama escapes these).
fn unescape(html: &str) -> String {
    html.replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The contents of the textarea `id`.
fn textarea(html: &str, id: &str) -> String {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no textarea {id} in:\n{html}"));
    let open = html[start..].find('>').unwrap() + start + 1;
    let close = html[open..].find("</textarea>").unwrap() + open;
    unescape(&html[open..close])
}

async fn jwks(server: &TestServer) -> JwkSet {
    api()
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The response verified as the console that made `request_id` does, with
/// the server's published keys as its anchor.
async fn verify(
    server: &TestServer,
    text: &str,
    key: &SigningKey,
    request_id: &str,
) -> VerifiedActivation {
    let anchor = jwks(server).await;
    let jkt = key_thumbprint(key);
    let check = ResponseCheck {
        server_url: &server.base,
        client_id: CONSOLE_CLIENT_ID,
        jkt: &jkt,
        pending_request: Some(request_id),
        anchor: &anchor,
    };
    verify_response(text, &check, server.clock.now()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Posts the activation request form: `device` is a device's name,
/// `new:NAME` to register one, or `id:ID` for any id.
async fn respond(
    server: &TestServer,
    client: &reqwest::Client,
    request: &str,
    device: &str,
) -> (u16, String) {
    let page = page_text(server, client, "/admin/offline").await;
    let (device, new_name) = match (device.strip_prefix("new:"), device.strip_prefix("id:")) {
        (Some(name), _) => ("new".to_owned(), name),
        (None, Some(id)) => (id.to_owned(), ""),
        (None, None) => (option_value(&page, device), ""),
    };
    let fields = [
        ("request", request),
        ("device", device.as_str()),
        ("new_device_name", new_name),
    ];
    post_form(
        server,
        client,
        "/admin/offline",
        "/admin/offline/respond",
        &fields,
    )
    .await
}

async fn deactivate(server: &TestServer, client: &reqwest::Client, file: &str) -> (u16, String) {
    let fields = [("file", file)];
    post_form(
        server,
        client,
        "/admin/offline",
        "/admin/offline/deactivate",
        &fields,
    )
    .await
}

/// What a refused file could have changed: the activations, the devices,
/// the audit log.
async fn snapshot(server: &TestServer) -> String {
    let db = &server.state.db;
    let mut out = format!("{:?}\n", db.devices(1).await.unwrap());
    out += &format!("{}\n", db.audit_log(1, 1000).await.unwrap().len());
    for id in 1..10 {
        out += &format!("{:?}\n", db.offline_activation(id).await.unwrap());
    }
    out
}

/// A bad file is refused with the core's message, 400, nothing changed.
fn assert_refused((status, body): (u16, String), message: &str) {
    assert_eq!(status, 400, "{body}");
    let shown = unescape(&body).to_lowercase();
    assert!(
        shown.contains(&message.to_lowercase()),
        "expected {message:?} in:\n{body}"
    );
}

#[tokio::test]
async fn the_page_answers_a_request_the_console_accepts() {
    let server = start().await;
    let client = browser();
    sign_in(&server, &client).await;
    let page = page_text(&server, &client, "/admin/offline").await;
    for text in [
        "Activation request",
        "Deactivation file",
        "Register a new device",
    ] {
        assert!(page.contains(text), "{text} missing:\n{page}");
    }
    assert!(page.contains(">Offline activation</a>"), "nav entry");

    let key = install();
    let (status, body) = respond(
        &server,
        &client,
        &request(&key, &server.base, "req-1"),
        STORE_001,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Activation response"), "{body}");
    let text = textarea(&body, "activation-response");
    let verified = verify(&server, &text, &key, "req-1").await;

    let db = &server.state.db;
    let device = db.device_by_name(1, STORE_001).await.unwrap().unwrap();
    let now = server.state.now();
    let org = db.org(1).await.unwrap().unwrap();
    assert_eq!(org.offline_days, 30, "the default offline period");
    assert_eq!(verified.offline.exp, (now + 30 * DAY).min(org.valid_until));
    assert_eq!(verified.offline.sub, device.server_id);
    assert_eq!(verified.offline.request_id, "req-1");
    assert_eq!(verified.offline.cnf.jkt, key_thumbprint(&key));
    assert_eq!(verified.document.exp, verified.offline.exp);
    assert_eq!(verified.document.account.server_id, device.server_id);
    assert_eq!(verified.document.account.organization, "Demo Store");
    assert!(!verified.document.account.packages.is_empty());
    assert!(body.contains(&format!(
        "id=\"offline-expiry\">{}",
        fmt_utc(verified.offline.exp)
    )));
    assert!(device.authorized_at.is_some() && device.revoked_at.is_none());

    // The download: the same file, as an attachment named after the device.
    let stored = db
        .offline_activation_by_license(&verified.offline.jti)
        .await
        .unwrap()
        .unwrap();
    let link = format!("/admin/offline/{}/response", stored.id);
    assert!(body.contains(&format!("href=\"{link}\"")), "{body}");
    let file = client.get(server.url(&link)).send().await.unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(
        file.headers()["content-disposition"],
        "attachment; filename=\"activation-response-Store-001-POS-Server.json\""
    );
    assert_eq!(file.text().await.unwrap(), text);
    let audit = db.audit_log(1, 10).await.unwrap();
    assert_eq!(audit[0].action, "offline.activated");
    assert!(audit[0].detail.contains(&device.server_id), "{audit:?}");
}

fn fmt_utc(unix: i64) -> String {
    license_server::offline::fmt_time(unix)
}

/// A renewal is another request from the same install for the same device:
/// a new offline license; a new device can be registered on the way.
#[tokio::test]
async fn renewal_gives_a_new_license_and_new_devices_can_be_registered() {
    let server = start().await;
    let client = browser();
    sign_in(&server, &client).await;
    let key = install();
    let (_, first) = respond(
        &server,
        &client,
        &request(&key, &server.base, "req-1"),
        STORE_001,
    )
    .await;
    let first = verify(
        &server,
        &textarea(&first, "activation-response"),
        &key,
        "req-1",
    )
    .await;
    server.advance(7 * DAY);
    // A week later: the session ended, the admin signs in again.
    let client = browser();
    sign_in(&server, &client).await;
    let (status, second) = respond(
        &server,
        &client,
        &request(&key, &server.base, "req-2"),
        STORE_001,
    )
    .await;
    assert_eq!(status, 200, "{second}");
    let second = verify(
        &server,
        &textarea(&second, "activation-response"),
        &key,
        "req-2",
    )
    .await;
    assert_ne!(first.offline.jti, second.offline.jti);
    assert_eq!(first.offline.sub, second.offline.sub);
    assert_eq!(second.offline.exp, first.offline.exp + 7 * DAY);

    // A renewal names its device (the console sends its Server ID): answered
    // for another device, or a new one, it is refused and changes nothing.
    let mut renewal = claims(RequestKind::Activate, &server.base, "req-3");
    renewal.server_id = Some(first.offline.sub.clone());
    let renewal = sign_request(&key, &renewal);
    let before = snapshot(&server).await;
    for other in ["Back Office Server", "new:Ship 8 Server"] {
        let refused = respond(&server, &client, &renewal, other).await;
        assert_refused(
            refused,
            &format!("renews the license of Server ID {}", first.offline.sub),
        );
    }
    assert_eq!(snapshot(&server).await, before);
    let (status, body) = respond(&server, &client, &renewal, STORE_001).await;
    assert_eq!(status, 200, "{body}");

    let kiosk = install();
    let (status, body) = respond(
        &server,
        &client,
        &request(&kiosk, &server.base, "k-1"),
        "new:Kiosk 7",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let kiosk_license = verify(
        &server,
        &textarea(&body, "activation-response"),
        &kiosk,
        "k-1",
    )
    .await;
    let device = server
        .state
        .db
        .device_by_name(1, "Kiosk 7")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kiosk_license.offline.sub, device.server_id);
    let actions: Vec<String> = server
        .state
        .db
        .audit_log(1, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["offline.activated", "device.registered"]);
    // The same name again is refused.
    let (status, body) = respond(
        &server,
        &client,
        &request(&kiosk, &server.base, "k-2"),
        "new:Kiosk 7",
    )
    .await;
    assert_refused((status, body), "a device named \"Kiosk 7\" exists already");
}

/// The vendor operator sets the offline period (1..=366 days, audited); the
/// offline expiry never passes the organization's validity.
#[tokio::test]
async fn the_offline_period_is_the_vendors_and_capped_by_the_validity() {
    let server = start().await;
    let vendor = browser();
    sign_in_vendor(&server, &vendor).await;
    for bad in ["0", "367", "ten", ""] {
        let fields = [("offline_days", bad)];
        let (status, body) = post_form(
            &server,
            &vendor,
            "/admin/packages",
            "/admin/account/offline-days",
            &fields,
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains("Offline period"), "{body}");
    }
    assert_eq!(
        server.state.db.org(1).await.unwrap().unwrap().offline_days,
        30
    );
    let set = |days: &'static str| {
        let (server, vendor) = (&server, &vendor);
        async move {
            let fields = [("offline_days", days)];
            let (status, body) = post_form(
                server,
                vendor,
                "/admin/packages",
                "/admin/account/offline-days",
                &fields,
            )
            .await;
            assert_eq!(status, 303, "{body}");
        }
    };
    set("366").await;
    let page = page_text(&server, &vendor, "/admin/packages").await;
    assert!(page.contains("value=\"366\""), "{page}");
    let audit = server.state.db.audit_log(1, 1).await.unwrap();
    assert_eq!(audit[0].action, "organization.offline_days");
    assert!(audit[0].detail.contains("366 days (was 30)"), "{audit:?}");

    let key = install();
    let (status, body) = respond(
        &server,
        &vendor,
        &request(&key, &server.base, "r"),
        STORE_001,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let verified = verify(&server, &textarea(&body, "activation-response"), &key, "r").await;
    let org = server.state.db.org(1).await.unwrap().unwrap();
    let now = server.state.now();
    assert!(now + 366 * DAY > org.valid_until);
    assert_eq!(
        verified.offline.exp, org.valid_until,
        "capped by the validity"
    );

    set("10").await;
    let (_, body) = respond(
        &server,
        &vendor,
        &request(&key, &server.base, "s"),
        STORE_001,
    )
    .await;
    let verified = verify(&server, &textarea(&body, "activation-response"), &key, "s").await;
    assert_eq!(verified.offline.exp, now + 10 * DAY);
}

#[tokio::test]
async fn deactivation_revokes_the_device_once() {
    let server = start().await;
    let client = browser();
    sign_in(&server, &client).await;
    let key = install();
    let (_, body) = respond(
        &server,
        &client,
        &request(&key, &server.base, "req-1"),
        STORE_001,
    )
    .await;
    let license = verify(
        &server,
        &textarea(&body, "activation-response"),
        &key,
        "req-1",
    )
    .await;
    let file = deactivation(&key, &server.base, &license.offline.jti);

    // Signed by another install: refused, nothing changed.
    let before = snapshot(&server).await;
    let stranger = deactivation(&install(), &server.base, &license.offline.jti);
    let refused = deactivate(&server, &client, &stranger).await;
    assert_refused(refused, "signed by another installation");
    assert_eq!(snapshot(&server).await, before);

    let (status, body) = deactivate(&server, &client, &file).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("Device Store 001 POS Server deactivated"),
        "{body}"
    );
    let db = &server.state.db;
    let device = db.device_by_name(1, STORE_001).await.unwrap().unwrap();
    assert!(device.revoked_at.is_some(), "the device is revoked");
    let stored = db
        .offline_activation_by_license(&license.offline.jti)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.deactivated_at.is_some());
    assert_eq!(
        db.audit_log(1, 1).await.unwrap()[0].action,
        "offline.deactivated"
    );

    let before = snapshot(&server).await;
    let again = deactivate(&server, &client, &file).await;
    assert_refused(again, "was deactivated already");
    assert_eq!(snapshot(&server).await, before);
    // A revoked device gets no new offline license.
    let refused = respond(
        &server,
        &client,
        &request(&key, &server.base, "req-2"),
        &format!("id:{}", device.id),
    )
    .await;
    assert_refused(refused, "is revoked");
}

/// Every bad file: 400 with the message `license_core::offline` gives, and
/// nothing written.
#[tokio::test]
async fn bad_files_are_refused_with_their_message_and_change_nothing() {
    let server = start().await;
    let client = browser();
    sign_in(&server, &client).await;
    let key = install();
    let good = request(&key, &server.base, "req-1");
    let truncated = good[..good.len() / 2].to_owned();
    // One character of the claims changed (still base64url).
    let mut edited: Vec<char> = good.chars().collect();
    let at = good.find('.').unwrap() + 10;
    edited[at] = if edited[at] == 'A' { 'B' } else { 'A' };
    let edited: String = edited.into_iter().collect();
    let other_server = request(&key, "https://license.other.example", "req-1");
    let wrong_kind = deactivation(&key, &server.base, "lic-1");
    let before = snapshot(&server).await;
    for (what, file) in [
        ("truncated", truncated.as_str()),
        ("edited", edited.as_str()),
        ("another server's", other_server.as_str()),
        ("a deactivation", wrong_kind.as_str()),
        ("empty", "   "),
    ] {
        let message = read_request(file, RequestKind::Activate, &server.base)
            .expect_err(what)
            .to_string();
        let refused = respond(&server, &client, file, STORE_001).await;
        assert_refused(refused, &message);
        assert_eq!(snapshot(&server).await, before, "{what} changed something");
    }
    // Edited and another server's say so in words.
    let message = read_request(&edited, RequestKind::Activate, &server.base)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("was changed") || message.contains("not an activation request"),
        "{message}"
    );
    let message = read_request(&other_server, RequestKind::Activate, &server.base)
        .unwrap_err()
        .to_string();
    assert!(message.contains("license.other.example"), "{message}");

    // Deactivation files too.
    let elsewhere = deactivation(&key, "https://license.other.example", "x");
    for (what, file) in [
        ("truncated", &wrong_kind[..wrong_kind.len() - 5]),
        ("an activation request", good.as_str()),
        ("another server's", elsewhere.as_str()),
        ("an unknown license", wrong_kind.as_str()),
    ] {
        let refused = deactivate(&server, &client, file).await;
        assert_eq!(refused.0, 400, "{what}: {}", refused.1);
        assert!(refused.1.contains("id=\"deactivate-error\""), "{what}");
        assert_eq!(snapshot(&server).await, before, "{what} changed something");
    }
}

/// A suspended organization, or one whose validity ended, gets no offline
/// license.
#[tokio::test]
async fn suspended_or_expired_organizations_are_refused() {
    let server = start().await;
    let client = browser();
    sign_in(&server, &client).await;
    let key = install();
    let db = &server.state.db;
    let now = server.state.now();
    db.set_org_suspended(1, Some(now)).await.unwrap();
    let refused = respond(
        &server,
        &client,
        &request(&key, &server.base, "r"),
        STORE_001,
    )
    .await;
    assert_refused(refused, "Demo Store is suspended");
    db.set_org_suspended(1, None).await.unwrap();
    let mut input = db.org(1).await.unwrap().unwrap().input();
    input.valid_until = now - DAY;
    input.valid_from = now - 10 * DAY;
    db.update_org(1, &input).await.unwrap();
    let before = snapshot(&server).await;
    let refused = respond(
        &server,
        &client,
        &request(&key, &server.base, "r"),
        STORE_001,
    )
    .await;
    assert_refused(refused, "the license of Demo Store ended on");
    assert_eq!(snapshot(&server).await, before);
}

/// An organization admin of another organization can neither download a
/// response nor deactivate a license of Demo Store.
#[tokio::test]
async fn another_organizations_admin_gets_nothing() {
    let server = start().await;
    let client = browser();
    sign_in(&server, &client).await;
    let key = install();
    let (_, body) = respond(
        &server,
        &client,
        &request(&key, &server.base, "r"),
        STORE_001,
    )
    .await;
    let license = verify(&server, &textarea(&body, "activation-response"), &key, "r").await;
    let db = &server.state.db;
    let id = db
        .offline_activation_by_license(&license.offline.jti)
        .await
        .unwrap()
        .unwrap()
        .id;

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
                valid_until: now + 365 * DAY,
            },
            now,
        )
        .await
        .unwrap();
    let password = "a long enough password";
    let hash = license_server::secrets::hash_password(password).unwrap();
    let user = db
        .create_user("it@other.example", &hash, Role::OrgAdmin, now)
        .await
        .unwrap();
    db.add_member(user, other).await.unwrap();
    let stranger = browser();
    sign_in_as(&server, &stranger, "it@other.example", password).await;
    let page = page_text(&server, &stranger, "/admin/offline").await;
    assert!(
        page.contains("Other Co") && !page.contains(STORE_001),
        "{page}"
    );
    let r = stranger
        .get(server.url(&format!("/admin/offline/{id}/response")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let before = snapshot(&server).await;
    let refused = deactivate(
        &server,
        &stranger,
        &deactivation(&key, &server.base, &license.offline.jti),
    )
    .await;
    assert_refused(refused, "did not give to this organization");
    assert_eq!(snapshot(&server).await, before);
    // Signed out: sent to sign in.
    let r = browser()
        .get(server.url(&format!("/admin/offline/{id}/response")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

fn cli(server: &TestServer, args: &[&str]) -> std::process::Output {
    let (command, rest) = args.split_first().unwrap();
    Command::new(BIN)
        .args(["offline", command, "--db", &server.db_arg()])
        .args(["--issuer", &server.base])
        .args(rest)
        .env_remove("LICENSE_SERVER_ISSUER")
        .output()
        .unwrap()
}

fn said(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn the_cli_responds_and_deactivates() {
    let server = start().await;
    // The CLI reads the system clock; the responses are checked at it.
    server.clock.set(time::OffsetDateTime::now_utc());
    let dir = tempfile::tempdir().unwrap();
    let key = install();
    let request_file = dir.path().join("request.txt");
    std::fs::write(&request_file, request(&key, &server.base, "cli-1") + "\n").unwrap();
    let out_file = dir.path().join("response.json");
    let req = request_file.to_str().unwrap();

    let unknown = cli(
        &server,
        &[
            "respond",
            "--org",
            "Demo Store",
            "--device",
            "Kiosk 9",
            "--request",
            req,
        ],
    );
    assert!(!unknown.status.success());
    assert!(
        said(&unknown).contains("unknown device \"Kiosk 9\""),
        "{}",
        said(&unknown)
    );

    let out = cli(
        &server,
        &[
            "respond",
            "--org",
            "Demo Store",
            "--device",
            "Kiosk 9",
            "--register",
            "--request",
            req,
            "--out",
            out_file.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", said(&out));
    assert!(
        said(&out).contains("offline license valid until"),
        "{}",
        said(&out)
    );
    let text = std::fs::read_to_string(&out_file).unwrap();
    server.clock.set(time::OffsetDateTime::now_utc());
    let license = verify(&server, &text, &key, "cli-1").await;
    let device = server
        .state
        .db
        .device_by_name(1, "Kiosk 9")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(license.offline.sub, device.server_id);

    // Without --out, the response goes to stdout.
    std::fs::write(&request_file, request(&key, &server.base, "cli-2")).unwrap();
    let out = cli(
        &server,
        &[
            "respond",
            "--org",
            "Demo Store",
            "--device",
            "Kiosk 9",
            "--request",
            req,
        ],
    );
    assert!(out.status.success(), "{}", said(&out));
    server.clock.set(time::OffsetDateTime::now_utc());
    let renewed = verify(
        &server,
        &String::from_utf8_lossy(&out.stdout),
        &key,
        "cli-2",
    )
    .await;
    assert_ne!(renewed.offline.jti, license.offline.jti);

    // A bad file: the message, nothing written.
    let before = snapshot(&server).await;
    std::fs::write(
        &request_file,
        request(&key, "https://license.other.example", "x"),
    )
    .unwrap();
    let bad = cli(
        &server,
        &[
            "respond",
            "--org",
            "Demo Store",
            "--device",
            "Kiosk 9",
            "--request",
            req,
        ],
    );
    assert!(!bad.status.success());
    assert!(
        said(&bad).contains("this file is for the license server https://license.other.example"),
        "{}",
        said(&bad)
    );
    assert_eq!(snapshot(&server).await, before);

    let file = dir.path().join("deactivation.txt");
    std::fs::write(
        &file,
        deactivation(&key, &server.base, &renewed.offline.jti),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let done = cli(&server, &["deactivate", "--file", file]);
    assert!(done.status.success(), "{}", said(&done));
    assert!(said(&done).contains("device Kiosk 9 ("), "{}", said(&done));
    let device = server.state.db.device(device.id).await.unwrap().unwrap();
    assert!(device.revoked_at.is_some());
    let again = cli(&server, &["deactivate", "--file", file]);
    assert!(!again.status.success());
    assert!(
        said(&again).contains("deactivated already"),
        "{}",
        said(&again)
    );
}

/// Posts `parts` (name, file name if a file, content) to `path` as
/// `multipart/form-data`, as a browser does for a form with a file chosen,
/// with the CSRF token of the Offline activation page.
async fn upload(
    server: &TestServer,
    client: &reqwest::Client,
    path: &str,
    parts: &[(&str, Option<&str>, &[u8])],
) -> (u16, String) {
    let html = page_text(server, client, "/admin/offline").await;
    let csrf = hidden(&html, "csrf");
    let boundary = "----license-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    let csrf_part: (&str, Option<&str>, &[u8]) = ("csrf", None, csrf.as_bytes());
    for (name, file, content) in std::iter::once(&csrf_part).chain(parts) {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(file) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n\
                     Content-Type: text/plain\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let r = client
        .post(server.url(path))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The files themselves, chosen in the page's file fields: a request file
/// answered (the empty text field beside it does not count), a file that
/// is not text refused, the deactivation file taken.
#[tokio::test]
async fn the_files_can_be_uploaded_instead_of_pasted() {
    let server = start().await;
    let client = browser();
    sign_in(&server, &client).await;
    let key = install();
    let request = request(&key, &server.base, "req-up");

    let before = snapshot(&server).await;
    let binary = upload(
        &server,
        &client,
        "/admin/offline/respond",
        &[
            ("request", None, b""),
            (
                "request_file",
                Some("photo.jpg"),
                &[0xff, 0xd8, 0xff, 0xe0, 0x00],
            ),
            ("device", None, b"new"),
            ("new_device_name", None, b"Ship 9 Server"),
        ],
    )
    .await;
    assert_refused(binary, "not a text file");
    assert_eq!(snapshot(&server).await, before);

    let (status, body) = upload(
        &server,
        &client,
        "/admin/offline/respond",
        &[
            ("request", None, b""),
            (
                "request_file",
                Some("activation-request-req-up.txt"),
                request.as_bytes(),
            ),
            ("device", None, b"new"),
            ("new_device_name", None, b"Ship 9 Server"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let license = verify(
        &server,
        &textarea(&body, "activation-response"),
        &key,
        "req-up",
    )
    .await;

    let file = deactivation(&key, &server.base, &license.offline.jti);
    let (status, body) = upload(
        &server,
        &client,
        "/admin/offline/deactivate",
        &[
            ("file", None, b""),
            (
                "file_upload",
                Some("license-deactivation.txt"),
                file.as_bytes(),
            ),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Device Ship 9 Server deactivated"), "{body}");
}
