//! Desktop notifications: the notices `license_core::notices_due` says are
//! owed, each shown once, across restarts.

use std::sync::Arc;

use license_core::{notices_due, Notice};

use super::{Licensing, HIGHEST_SEEN_SAVE_EVERY};
use crate::error::{CommandError, ErrorCode};
use crate::notify::Notifier;

impl Licensing {
    /// Shows the notices owed now through `notifier` and remembers each one
    /// shown, across restarts, so none is sent twice. A notice that could
    /// not be shown stays owed.
    pub async fn deliver_notices(
        &self,
        notifier: Arc<dyn Notifier>,
    ) -> Result<Vec<Notice>, CommandError> {
        let due = {
            let mut inner = self.inner.lock().await;
            let now = self.clock.now();
            inner.persisted.state.observe(now);
            // Persist the highest time seen even when nothing is owed (it is
            // what detects a clock set back after a restart), but not on every
            // tick: within the clock tolerance, losing it costs nothing.
            let due_to_save = inner
                .highest_saved
                .is_none_or(|saved| now - saved >= HIGHEST_SEEN_SAVE_EVERY);
            if due_to_save {
                self.save(&mut inner)?;
            }
            let mut due = notices_due(
                &Self::effective_state(&inner),
                &inner.persisted.delivered,
                now,
            );
            // Owed until shown once (then it is in `delivered`).
            if let Some(notice) = &inner.tamper_notice {
                if !inner.persisted.delivered.0.contains(&notice.id) {
                    due.push(notice.clone());
                }
            }
            due
        };
        if due.is_empty() {
            return Ok(due);
        }
        // The desktop's notification service is a blocking D-Bus call.
        let shown = tokio::task::spawn_blocking(move || {
            due.into_iter()
                .filter(|notice| match notifier.show(notice) {
                    Ok(()) => true,
                    Err(err) => {
                        tracing::warn!(id = %notice.id, error = %err, "notification not shown");
                        false
                    }
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| {
            CommandError::new(
                ErrorCode::Internal,
                format!("notification task failed: {e}"),
            )
        })?;
        let mut inner = self.inner.lock().await;
        for notice in &shown {
            inner.persisted.delivered.mark(notice);
        }
        self.save(&mut inner)?;
        Ok(shown)
    }
}
