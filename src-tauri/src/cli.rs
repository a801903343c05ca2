//! The console from the command line, for scripted and air-gapped sites:
//! `license-console status`, `refresh`, and the activation-by-file steps
//! (`offline request`, `offline load`, `offline deactivate`). The same
//! [`Licensing`] as the window, on the same state file and keychain; it
//! refuses while the window runs (the window holds [`StateLock`]).
//!
//! Anything else on the command line starts the window, as before: the
//! first argument must be one of the subcommands to mean one.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use crate::clock::SystemClock;
use crate::commands::offline::{request_file_name, DEACTIVATION_FILE_NAME};
use crate::error::CommandError;
use crate::licensing::{AuthorizationView, Events, Licensing};
use crate::store::{StateFile, StateLock};
use crate::vault::Keychain;
use crate::view::{LicenseStatusCode, LicenseView};

/// The console's identifier: its state folder's name under the user's data
/// folder (as Tauri's `app_data_dir` makes it from `tauri.conf.json`).
pub const IDENTIFIER: &str = "com.licenseconsole.console";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cli {
    /// No subcommand: the window.
    Window,
    /// `help`, `--help`, `-h`.
    Help,
    /// `--version`.
    Version,
    /// `status`: the panel's facts as text.
    Status,
    /// `refresh`: verify with the license server now.
    Refresh,
    /// `offline request [--server-url URL] [--out FILE|-]`.
    Request {
        /// The license server (else the one saved, else
        /// `LICENSE_CONSOLE_SERVER_URL`).
        server_url: Option<String>,
        /// Where to write the request (`-`: standard output).
        out: Option<PathBuf>,
    },
    /// `offline load FILE|-`.
    Load {
        /// The activation response (`-`: standard input).
        file: PathBuf,
    },
    /// `offline deactivate [--out FILE|-]`.
    Deactivate {
        /// Where to write the deactivation file (`-`: standard output).
        out: Option<PathBuf>,
    },
}

/// The usage text.
pub const USAGE: &str = "\
Usage: license-console [SUBCOMMAND]

Without a subcommand, the License Console opens its window.

Subcommands (the window must not be running):
  status                       the license as the panel shows it
  refresh                      verify the license with the license server now
  offline request [--server-url URL] [--out FILE|-]
                               save an activation request (air-gapped sites;
                               also the renewal of an offline license)
  offline load FILE|-          load the activation response the
                               Authorization server made for it
  offline deactivate [--out FILE|-]
                               give the offline license up and write the file
                               that frees the device at the Authorization server
  help                         this text

Exit status: 0 done (status: licensed), 1 refused or failed, 2 bad usage,
3 the window is running.";

/// Reads the arguments after the program's name.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Cli, String> {
    let args: Vec<String> = args.into_iter().collect();
    let Some(first) = args.first() else {
        return Ok(Cli::Window);
    };
    let rest = &args[1..];
    let cli = match first.as_str() {
        "help" | "--help" | "-h" => Cli::Help,
        "--version" | "-V" => Cli::Version,
        "status" => no_more(rest, Cli::Status)?,
        "refresh" => no_more(rest, Cli::Refresh)?,
        "offline" => parse_offline(rest)?,
        // The window, as before: desktop launchers and the single-instance
        // plugin may pass arguments of their own.
        _ => Cli::Window,
    };
    Ok(cli)
}

fn no_more(rest: &[String], cli: Cli) -> Result<Cli, String> {
    match rest.first() {
        None => Ok(cli),
        Some(extra) => Err(format!("unexpected argument `{extra}`")),
    }
}

fn parse_offline(args: &[String]) -> Result<Cli, String> {
    let Some(what) = args.first() else {
        return Err("`offline` needs one of: request, load, deactivate".into());
    };
    let mut server_url = None;
    let mut out = None;
    let mut file = None;
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        let mut value = |name: &str| {
            rest.next()
                .cloned()
                .ok_or_else(|| format!("`{name}` needs a value"))
        };
        match (what.as_str(), arg.as_str()) {
            ("request", "--server-url") => server_url = Some(value(arg)?),
            ("request" | "deactivate", "--out") => out = Some(PathBuf::from(value(arg)?)),
            ("load", path) if file.is_none() && (path == "-" || !path.starts_with('-')) => {
                file = Some(PathBuf::from(path));
            }
            _ => return Err(format!("unexpected argument `{arg}` for `offline {what}`")),
        }
    }
    match what.as_str() {
        "request" => Ok(Cli::Request { server_url, out }),
        "deactivate" => Ok(Cli::Deactivate { out }),
        "load" => file
            .map(|file| Cli::Load { file })
            .ok_or_else(|| "`offline load` needs the response file (or `-`)".into()),
        other => Err(format!(
            "unknown `offline {other}`: use request, load or deactivate"
        )),
    }
}

/// Events of a subcommand go nowhere: it prints what it did at the end.
struct Quiet;

impl Events for Quiet {
    fn license_changed(&self, _: &LicenseView) {}
    fn authorization_failed(&self, _: &CommandError) {}
    fn authorization_waiting(&self, _: &AuthorizationView) {}
}

/// Why a subcommand stopped.
enum Failure {
    Usage(String),
    WindowRunning,
    Refused(String),
}

/// Runs a subcommand (not [`Cli::Window`]) and says how it went.
pub fn run(cli: Cli) -> ExitCode {
    match cli {
        Cli::Window => return ExitCode::SUCCESS,
        Cli::Help => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Cli::Version => {
            println!("license-console {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(Failure::Refused(format!("cannot start: {e}"))),
    };
    match runtime.block_on(run_subcommand(cli)) {
        Ok(code) => code,
        Err(failure) => fail(failure),
    }
}

fn fail(failure: Failure) -> ExitCode {
    match failure {
        Failure::Usage(message) => {
            eprintln!("license-console: {message}\n\n{USAGE}");
            ExitCode::from(2)
        }
        Failure::WindowRunning => {
            eprintln!(
                "license-console: the License Console's window is running; use it, or quit it (tray menu: Quit) and run this again."
            );
            ExitCode::from(3)
        }
        Failure::Refused(message) => {
            eprintln!("license-console: {message}");
            ExitCode::from(1)
        }
    }
}

/// Prints a usage error and the usage; for `main`.
pub fn usage_error(message: &str) -> ExitCode {
    fail(Failure::Usage(message.to_owned()))
}

fn state_dir() -> Result<PathBuf, Failure> {
    dirs::data_dir()
        .map(|dir| dir.join(IDENTIFIER))
        .ok_or_else(|| Failure::Refused("this user has no data folder (is HOME set?)".into()))
}

impl From<CommandError> for Failure {
    fn from(err: CommandError) -> Self {
        Self::Refused(err.message)
    }
}

async fn run_subcommand(cli: Cli) -> Result<ExitCode, Failure> {
    let dir = state_dir()?;
    let _lock = match StateLock::try_take(&dir) {
        Ok(Some(lock)) => lock,
        Ok(None) => return Err(Failure::WindowRunning),
        Err(e) => {
            return Err(Failure::Refused(format!(
                "cannot lock {}: {e}",
                dir.display()
            )))
        }
    };
    let licensing = Licensing::open(
        Arc::new(SystemClock),
        Arc::new(Keychain),
        StateFile::in_dir(&dir),
        Arc::new(Quiet),
        std::env::var("LICENSE_CONSOLE_SERVER_URL").ok(),
    )
    .await?;
    match cli {
        Cli::Status => {
            let view = licensing.view().await;
            print!("{}", describe(&view));
            Ok(if licensed(&view) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Cli::Refresh => {
            let view = licensing.refresh().await?;
            print!("{}", describe(&view));
            Ok(ExitCode::SUCCESS)
        }
        Cli::Request { server_url, out } => {
            // The file named is made first: a request that could not be
            // written would replace the one the site is waiting on.
            let sink = out.map(|out| Sink::create(&out)).transpose()?;
            let (pending, text) = licensing.activation_request(server_url.as_deref()).await?;
            let sink = match sink {
                Some(sink) => sink,
                None => Sink::create(Path::new(&request_file_name(&pending.request_id)))?,
            };
            sink.write(&text)?;
            Ok(ExitCode::SUCCESS)
        }
        Cli::Load { file } => {
            let text = read_in(&file)?;
            let view = licensing.load_activation_response(&text).await?;
            print!("{}", describe(&view));
            Ok(ExitCode::SUCCESS)
        }
        Cli::Deactivate { out } => {
            let out = out.unwrap_or_else(|| PathBuf::from(DEACTIVATION_FILE_NAME));
            let sink = Sink::create(&out)?;
            let text = licensing.deactivate_offline().await?;
            sink.write(&text)?;
            println!("Upload it on the Authorization server's Offline activation page to free the device.");
            Ok(ExitCode::SUCCESS)
        }
        Cli::Window | Cli::Help | Cli::Version => Ok(ExitCode::SUCCESS),
    }
}

/// Where a file the console makes goes: a new file (never over an existing
/// one, made before the work so a name that cannot be used stops it), or
/// standard output for `-`.
enum Sink {
    Stdout,
    File(PathBuf, std::fs::File),
}

impl Sink {
    fn create(path: &Path) -> Result<Self, Failure> {
        if path == Path::new("-") {
            return Ok(Self::Stdout);
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map(|file| Self::File(path.to_path_buf(), file))
            .map_err(|e| Failure::Refused(format!("cannot write {}: {e}", path.display())))
    }

    fn write(self, text: &str) -> Result<(), Failure> {
        match self {
            Self::Stdout => writeln!(std::io::stdout().lock(), "{text}")
                .map_err(|e| Failure::Refused(format!("cannot write to standard output: {e}"))),
            Self::File(path, mut file) => match file
                .write_all(text.as_bytes())
                .and_then(|()| file.sync_all())
            {
                Ok(()) => {
                    println!("wrote {}", path.display());
                    Ok(())
                }
                Err(e) => Err(Failure::Refused(format!(
                    "cannot write {}: {e} (the file's text follows)\n{text}",
                    path.display()
                ))),
            },
        }
    }
}

/// Largest file taken as an activation response.
const MAX_RESPONSE_BYTES: u64 = 1 << 20;

fn read_in(path: &Path) -> Result<String, Failure> {
    let mut text = String::new();
    let read = if path == Path::new("-") {
        std::io::stdin()
            .take(MAX_RESPONSE_BYTES)
            .read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX_RESPONSE_BYTES).read_to_string(&mut text))
    };
    read.map_err(|e| Failure::Refused(format!("cannot read {}: {e}", path.display())))?;
    Ok(text)
}

/// Whether the license is in force (the exit status of `status`).
fn licensed(view: &LicenseView) -> bool {
    matches!(
        view.status,
        LicenseStatusCode::Licensed | LicenseStatusCode::RequiresRenewal
    )
}

/// The panel's main facts, one per line.
pub fn describe(view: &LicenseView) -> String {
    let mut lines = vec![format!("Status: {}", view.status_label)];
    let mut add = |label: &str, value: &Option<String>| {
        if let Some(value) = value {
            lines.push(format!("{label}: {value}"));
        }
    };
    add("Organization", &view.organization);
    add("Server ID", &view.server_id);
    add("License server", &view.server_url);
    add("Renewal date", &view.renewal_date);
    add("Valid until", &view.valid_until);
    add("Offline license until", &view.offline_until);
    add("Token expiry", &view.token_expires_at);
    add("Last verification", &view.last_verified);
    add("Grace period ends", &view.grace_ends_at);
    if !view.features.is_empty() {
        lines.push(format!("Features: {}", view.features.join(", ")));
    }
    lines.push(format!(
        "Licenses: {} used of {}",
        view.used_count, view.license_count
    ));
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn subcommands_and_their_options() {
        assert_eq!(parse(args("")), Ok(Cli::Window));
        assert_eq!(parse(args("status")), Ok(Cli::Status));
        assert_eq!(parse(args("--help")), Ok(Cli::Help));
        assert_eq!(
            parse(args(
                "offline request --server-url https://l.example --out r.txt"
            )),
            Ok(Cli::Request {
                server_url: Some("https://l.example".into()),
                out: Some("r.txt".into())
            })
        );
        assert_eq!(
            parse(args("offline load -")),
            Ok(Cli::Load { file: "-".into() })
        );
        assert_eq!(
            parse(args("offline deactivate")),
            Ok(Cli::Deactivate { out: None })
        );
        // Arguments that are no subcommand start the window, as before.
        assert_eq!(parse(args("--some-launcher-flag")), Ok(Cli::Window));
    }

    #[test]
    fn bad_usage_is_named() {
        for (line, says) in [
            ("offline", "needs one of"),
            ("offline load", "needs the response file"),
            ("offline load a b", "unexpected argument `b`"),
            ("offline request --out", "`--out` needs a value"),
            (
                "offline deactivate --server-url x",
                "unexpected argument `--server-url`",
            ),
            ("offline renew", "unknown `offline renew`"),
            ("status now", "unexpected argument `now`"),
        ] {
            let err = parse(args(line)).expect_err(line);
            assert!(err.contains(says), "{line}: {err}");
        }
    }

    #[test]
    fn the_identifier_is_the_apps() {
        let conf: serde_json::Value =
            serde_json::from_str(include_str!("../../tauri.conf.json")).unwrap();
        assert_eq!(conf["identifier"], IDENTIFIER);
    }
}
