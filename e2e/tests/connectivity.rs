//! Test connection on the real console: pointed at a port nothing listens
//! on, the Not licensed screen's check names the failed step, says what to
//! do, and gives the rule to ask the network team for.

use anyhow::{ensure, Result};
use e2e::{click, finish, free_port, launch, screenshot, step, text_of, wait_text, STEP};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_to_a_closed_port_shows_the_failed_step_and_the_rule() -> Result<()> {
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let (driver, client) = launch(&url).await?;
    let result = async {
        wait_text(&client, "[data-testid=license-status]", STEP, |t| {
            t == "Not licensed"
        })
        .await?;
        click(&client, "[data-testid=test-connection]").await?;
        let summary = wait_text(&client, "[data-testid=connection-summary]", STEP, |t| {
            t.contains("failed")
        })
        .await?;
        ensure!(
            summary.contains(&format!("Connection failed (127.0.0.1:{port})")),
            "the summary names the failed step: {summary}"
        );
        let connect = text_of(&client, "[data-testid=connection-step][data-kind=connect]").await?;
        ensure!(
            connect.contains("Failed") && connect.contains("refused"),
            "the connection row says it failed, in words: {connect}"
        );
        let rule = text_of(&client, "[data-testid=connection-rule]").await?;
        ensure!(
            rule.contains(&format!("127.0.0.1 | {port} (HTTP) | 127.0.0.1")),
            "the rule names host, port and address: {rule}"
        );
        // The table is below the form: bring it into view for the picture.
        step("scroll to the check", STEP, async {
            client
                .execute(
                    "document.querySelector('[data-testid=connection-check]')\
                     .scrollIntoView({ block: 'start' });",
                    vec![],
                )
                .await?;
            Ok(())
        })
        .await?;
        screenshot(&client, "connectivity-failure").await?;
        Ok(())
    }
    .await;
    finish(driver, client, result).await
}
