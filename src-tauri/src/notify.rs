//! Desktop notifications (notify-rust). What is owed and when comes from
//! `license_core::notices_due`; this module only shows them.

use license_core::{Notice, Severity};

/// Where notices are shown. The real one is [`Desktop`].
pub trait Notifier: Send + Sync + std::fmt::Debug {
    /// Shows one notice; `Err` when no notification service took it.
    fn show(&self, notice: &Notice) -> Result<(), String>;
}

/// The desktop's notification service (org.freedesktop.Notifications on Linux).
#[derive(Debug, Clone, Copy, Default)]
pub struct Desktop;

impl Notifier for Desktop {
    fn show(&self, notice: &Notice) -> Result<(), String> {
        let urgency = match notice.kind.severity() {
            Severity::Info => notify_rust::Urgency::Normal,
            Severity::Warning => notify_rust::Urgency::Normal,
            Severity::Critical => notify_rust::Urgency::Critical,
        };
        let mut n = notify_rust::Notification::new();
        n.appname("License Console")
            .summary(&notice.title)
            .body(&notice.body)
            .icon("dialog-information");
        #[cfg(all(unix, not(target_os = "macos")))]
        {
            n.urgency(urgency);
        }
        #[cfg(not(all(unix, not(target_os = "macos"))))]
        let _ = urgency;
        n.show().map(|_| ()).map_err(|e| e.to_string())
    }
}
