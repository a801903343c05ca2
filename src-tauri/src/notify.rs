//! Desktop notifications (notify-rust). What is owed and when comes from
//! `license_core::notices_due`; this module only shows them.

use license_core::{Notice, Severity};

/// Where notices are shown. The real one is [`Desktop`].
pub trait Notifier: Send + Sync + std::fmt::Debug {
    /// Shows one notice; `Err` when no notification service took it.
    fn show(&self, notice: &Notice) -> Result<(), String>;
}

/// The desktop's notification service (org.freedesktop.Notifications on
/// Linux). `on_click` runs when the user clicks a notification, where the
/// platform reports that (Linux and BSD desktops).
#[derive(Clone)]
pub struct Desktop {
    on_click: std::sync::Arc<dyn Fn() + Send + Sync>,
}

impl Desktop {
    /// Notifications whose click runs `on_click` (focus the console).
    pub fn new(on_click: impl Fn() + Send + Sync + 'static) -> Self {
        Self {
            on_click: std::sync::Arc::new(on_click),
        }
    }
}

impl std::fmt::Debug for Desktop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Desktop")
    }
}

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
            n.urgency(urgency).action("default", "Open License Console");
            let handle = n.show().map_err(|e| e.to_string())?;
            let on_click = std::sync::Arc::clone(&self.on_click);
            // The handle blocks until the notification is clicked or closed.
            std::thread::spawn(move || {
                handle.wait_for_action(|action| {
                    if action == "default" {
                        on_click();
                    }
                });
            });
            Ok(())
        }
        #[cfg(not(all(unix, not(target_os = "macos"))))]
        {
            let _ = urgency;
            n.show().map(|_| ()).map_err(|e| e.to_string())
        }
    }
}
