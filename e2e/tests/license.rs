//! Acquiring, refreshing and removing a license: the real console in a real
//! window, the real license server, gnome-keyring in a private bus.

use std::time::Duration;

use anyhow::{Context, Result};
use e2e::{
    acquire, attr, click, files_containing, finish, keychain_items, launch, parse_countdown,
    parse_time, screenshot, secret_field, step, text_of, wait_text, LicenseServer, STEP,
};
use fantoccini::Locator;
use time::OffsetDateTime;

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
        let items = keychain_items(&server_id, &server.url)?;
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
        let items = keychain_items(&server_id, &server.url)?;
        let current_token = secret_field(&items, "license_token")?;
        assert_ne!(current_token, license_token);

        // Remove license: back to Not licensed, tokens gone, revoked at the server.
        click(&client, "[data-testid=remove]").await?;
        click(&client, "[data-testid=remove-confirm]").await?;
        wait_text(&client, "[data-testid=license-status]", STEP, |t| {
            t == "Not licensed"
        })
        .await?;
        let items = keychain_items(&server_id, &server.url)?;
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
