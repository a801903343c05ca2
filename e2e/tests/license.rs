//! Acquiring, refreshing and removing a license: the real console in a real
//! window, the real license server, gnome-keyring in a private bus.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use e2e::{
    attr, binary, click, files_containing, keychain_items, screenshot, step, text_of, wait_text,
    Driver, LicenseServer, STEP,
};
use fantoccini::{Client, Locator};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const DEVICE: &str = "Store 001 POS Server";

async fn launch(server_url: &str) -> Result<(Driver, Client)> {
    let driver = Driver::start(&[("LICENSE_CONSOLE_SERVER_URL", server_url.to_string())])?;
    let client = driver.launch(&binary("license-console")?).await?;
    Ok((driver, client))
}

async fn finish(driver: Driver, client: Client, result: Result<()>) -> Result<()> {
    if result.is_err() {
        let _ = screenshot(&client, &format!("failed-{}", std::process::id())).await;
    }
    let _ = step("close the session", STEP, async {
        Ok(client.close().await?)
    })
    .await;
    driver.stop();
    result
}

/// Next, read the User Code, authorize it on the server, Complete Authorization.
/// Returns the Server ID the server assigned.
async fn acquire(client: &Client, server: &LicenseServer, shot: Option<&str>) -> Result<String> {
    let prefilled = step("read the server URL field", STEP, async {
        let input = client
            .wait()
            .for_element(Locator::Css("[data-testid=server-url]"))
            .await?;
        Ok(input.prop("value").await?.unwrap_or_default())
    })
    .await?;
    assert_eq!(
        prefilled, server.url,
        "the server URL is prefilled from settings"
    );
    click(client, "[data-testid=next]").await?;
    let code = wait_text(client, "[data-testid=user-code]", STEP, |t| t.len() == 9).await?;
    assert!(
        code.chars().nth(4) == Some('-')
            && code.chars().filter(|c| c.is_ascii_uppercase()).count() == 8,
        "user code {code:?} looks like XXXX-XXXX"
    );
    if let Some(name) = shot {
        screenshot(client, name).await?;
    }
    let server_id = server.authorize(DEVICE, &code)?;
    click(client, "[data-testid=complete]").await?;
    wait_text(
        client,
        "[data-testid=field-server-id]",
        Duration::from_secs(30),
        |t| t == server_id,
    )
    .await?;
    Ok(server_id)
}

fn parse_time(s: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).with_context(|| format!("parse time {s:?}"))
}

fn secret_field(items: &str, field: &str) -> Result<String> {
    let key = format!("\"{field}\":\"");
    let start = items
        .find(&key)
        .with_context(|| format!("no {field} in keychain"))?
        + key.len();
    let end = items[start..].find('"').context("unterminated secret")? + start;
    Ok(items[start..end].to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acquire_refresh_and_remove_a_license() -> Result<()> {
    let server = LicenseServer::start_demo(&[])?;
    let (driver, client) = launch(&server.url).await?;
    let result = async {
        let server_id = acquire(&client, &server, Some("user-code")).await?;

        // The panel shows the demo account as the server has it.
        assert_eq!(
            text_of(&client, "[data-testid=license-status]").await?,
            "Licensed"
        );
        assert_eq!(text_of(&client, "#panel-title").await?, "Demo Store");
        assert_eq!(
            text_of(&client, "[data-testid=field-hub-name]").await?,
            "Demo Hub"
        );
        assert_eq!(
            text_of(&client, "[data-testid=field-hub-url]").await?,
            "https://hub.demo-store.example"
        );
        assert_eq!(
            text_of(&client, "[data-testid=field-features]").await?,
            "xms"
        );
        let rows = step("count license rows", STEP, async {
            Ok(client
                .find_all(Locator::Css("[data-testid=license-row]"))
                .await?
                .len())
        })
        .await?;
        assert!(
            rows >= 7,
            "every license kind of the demo account is shown ({rows} rows)"
        );
        let expiry = text_of(&client, "[data-testid=field-token-expiry]").await?;
        assert_ne!(expiry.trim(), "—", "token expiry is shown");
        screenshot(&client, "panel").await?;

        // Tokens are in the keychain, and in no file under HOME.
        let items = keychain_items()?;
        assert!(
            items.contains(&server_id),
            "keychain entry names the Server ID: {items}"
        );
        let license_token = secret_field(&items, "license_token")?;
        let refresh_token = secret_field(&items, "refresh_token")?;
        assert!(license_token.starts_with("eyJ"), "a JWT is in the keychain");
        for home in [driver.home().to_path_buf(), std::env::var("HOME")?.into()] {
            for secret in [&license_token, &refresh_token] {
                let hits = files_containing(&home, secret);
                assert!(hits.is_empty(), "token text found on disk: {hits:?}");
            }
        }
        for secret in [&license_token, &refresh_token] {
            let hits = files_containing(&e2e::target_dir().join("e2e"), secret);
            assert!(hits.is_empty(), "token text found on disk: {hits:?}");
        }

        // Refresh moves the last verification time forward.
        let before = attr(&client, "[data-testid=field-last-verified]", "data-iso")
            .await?
            .context("last verification time")?;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        click(&client, "[data-testid=refresh]").await?;
        wait_text(&client, "[data-testid=refresh-result]", STEP, |t| {
            t.contains("License verified")
        })
        .await?;
        let after = attr(&client, "[data-testid=field-last-verified]", "data-iso")
            .await?
            .context("last verification time")?;
        assert!(
            parse_time(&after)? > parse_time(&before)?,
            "refresh moved last verification from {before} to {after}"
        );
        // Refresh rotated the tokens; the old license token is replaced.
        let items = keychain_items()?;
        let current_token = secret_field(&items, "license_token")?;
        assert_ne!(current_token, license_token);

        // Remove license: back to Not licensed, tokens gone, revoked at the server.
        click(&client, "[data-testid=remove]").await?;
        click(&client, "[data-testid=remove-confirm]").await?;
        wait_text(&client, "[data-testid=license-status]", STEP, |t| {
            t == "Not licensed"
        })
        .await?;
        let items = keychain_items()?;
        assert!(
            !items.contains("license_token"),
            "keychain entry deleted: {items}"
        );
        let response = reqwest::Client::new()
            .get(format!("{}/api/v1/license", server.url))
            .bearer_auth(&current_token)
            .send()
            .await?;
        assert_eq!(
            response.status(),
            401,
            "the server refuses the revoked token"
        );
        screenshot(&client, "removed").await?;
        Ok(())
    }
    .await;
    finish(driver, client, result).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_with_the_server_unreachable_says_so() -> Result<()> {
    // A port nothing listens on.
    let port = e2e::free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let (driver, client) = launch(&url).await?;
    let result = async {
        click(&client, "[data-testid=next]").await?;
        let code = attr(&client, "[data-testid=error]", "data-code").await?;
        assert_eq!(code.as_deref(), Some("offline"));
        let text = text_of(&client, "[data-testid=error]").await?;
        assert!(text.contains("address and port"), "advice shown: {text}");
        screenshot(&client, "next-offline").await?;
        Ok(())
    }
    .await;
    finish(driver, client, result).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_stopped_refresh_goes_to_grace_then_back_to_licensed() -> Result<()> {
    let mut server = LicenseServer::start_demo(&[])?;
    let (driver, client) = launch(&server.url).await?;
    let result = async {
        acquire(&client, &server, None).await?;
        let verified = attr(&client, "[data-testid=field-last-verified]", "data-iso")
            .await?
            .context("last verification time")?;

        server.stop();
        click(&client, "[data-testid=refresh]").await?;
        let code = attr(&client, "[data-testid=error]", "data-code").await?;
        assert_eq!(
            code.as_deref(),
            Some("offline"),
            "Refresh says the server is offline"
        );
        let countdown = wait_text(&client, "[data-testid=grace-countdown]", STEP, |t| {
            t.starts_with("2d 23h") || t.starts_with("3d 00h")
        })
        .await?;
        // The countdown ends at last successful verification + 3 days.
        let left = parse_countdown(&countdown)?;
        let ends = parse_time(&verified)? + time::Duration::days(3);
        let expected = (ends - OffsetDateTime::now_utc()).whole_seconds();
        assert!(
            (left - expected).abs() <= 5,
            "countdown {countdown} ({left} s) vs last verification + 3 days ({expected} s)"
        );
        screenshot(&client, "grace").await?;

        server.restart()?;
        click(&client, "[data-testid=refresh]").await?;
        wait_text(&client, "[data-testid=refresh-result]", STEP, |t| {
            t.contains("License verified")
        })
        .await?;
        assert_eq!(
            text_of(&client, "[data-testid=license-status]").await?,
            "Licensed"
        );
        let gone = step("grace banner disappears", STEP, async {
            Ok(client
                .find(Locator::Css("[data-testid=grace]"))
                .await
                .is_err())
        })
        .await?;
        assert!(gone, "the countdown disappears once verified");
        Ok(())
    }
    .await;
    finish(driver, client, result).await
}

fn parse_countdown(text: &str) -> Result<i64> {
    let mut total = 0i64;
    for part in text.split_whitespace() {
        let (num, unit) = part.split_at(part.len() - 1);
        let n: i64 = num
            .parse()
            .with_context(|| format!("countdown part {part:?}"))?;
        total += n * match unit {
            "d" => 86_400,
            "h" => 3_600,
            "m" => 60,
            "s" => 1,
            _ => bail!("unknown unit in {part:?}"),
        };
    }
    Ok(total)
}
