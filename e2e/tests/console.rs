//! The console in a real window, seen through WebDriver.

use e2e::{binary, finish, screenshot, step, text_of, Driver, STEP};

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

/// A desktop in dark mode gets the dark palette (CSS `prefers-color-scheme`,
/// which WebKitGTK takes from the GTK theme).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dark_desktop_gets_the_dark_palette() -> anyhow::Result<()> {
    let background = |client: fantoccini::Client| async move {
        step("read the page background", STEP, async {
            let v = client
                .execute(
                    "return getComputedStyle(document.documentElement).backgroundColor;",
                    vec![],
                )
                .await?;
            Ok(v.as_str().unwrap_or_default().to_owned())
        })
        .await
    };
    for (theme, expected, shot) in [
        ("Adwaita", "rgb(245, 246, 248)", "theme-light"),
        ("Adwaita:dark", "rgb(15, 20, 25)", "theme-dark"),
    ] {
        let driver = Driver::start(&[("GTK_THEME", theme.to_owned())])?;
        let client = driver.launch(&binary("license-console")?).await?;
        let result = async {
            text_of(&client, "[data-testid=license-status]").await?;
            let found = background(client.clone()).await?;
            anyhow::ensure!(found == expected, "{theme}: background {found}");
            screenshot(&client, shot).await?;
            anyhow::Ok(())
        }
        .await;
        finish(driver, client, result).await?;
    }
    Ok(())
}
