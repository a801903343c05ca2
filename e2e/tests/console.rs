//! The console in a real window, seen through WebDriver.

use e2e::{binary, screenshot, step, text_of, Driver, STEP};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlicensed_console_shows_its_not_licensed_screen() -> anyhow::Result<()> {
    let driver = Driver::start(&[])?;
    let client = driver.launch(&binary("license-console")?).await?;

    let result = async {
        let title = step("read the window title", STEP, async {
            Ok(client.title().await?)
        })
        .await?;
        assert_eq!(title, "License Console");

        let heading = text_of(&client, "h1").await?;
        assert_eq!(heading, "Manage license account");
        let status = text_of(&client, "[data-testid=license-status]").await?;
        assert_eq!(status, "Not licensed");
        let main_text = text_of(&client, "#not-licensed-title").await?;
        assert_eq!(main_text, "This server is not licensed yet");

        // The footer is filled by a command round trip to the Rust side.
        let version = text_of(&client, "[data-testid=app-version]").await?;
        assert!(version.starts_with("License Console "), "footer: {version}");

        let shot = screenshot(&client, "not-licensed").await?;
        let size = std::fs::metadata(&shot)?.len();
        assert!(
            size > 5_000,
            "screenshot {} is only {size} bytes",
            shot.display()
        );
        anyhow::Ok(())
    }
    .await;

    let _ = step("close the session", STEP, async {
        Ok(client.close().await?)
    })
    .await;
    driver.stop();
    result
}
