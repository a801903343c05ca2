use std::path::PathBuf;

use clap::{Parser, Subcommand};
use license_server::config::OfflineArgs;
use license_server::store::Location;
use license_server::{cli, ServeArgs};

/// The server allocates small, short-lived buffers on every request from
/// two threads at once; mimalloc serves those faster than glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "license-server",
    version,
    about = "License Server: device authorization, license tokens, admin pages"
)]
struct Cli {
    /// Log lines as text or as JSON objects (one per line, for log
    /// collectors). Logs go to stderr; never a token or a secret.
    #[arg(
        long,
        global = true,
        env = "LICENSE_SERVER_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and the admin pages.
    Serve(ServeArgs),
    /// Seed the demo account into an empty database, then serve.
    Demo(ServeArgs),
    /// Create the database, the first signing key and the first admin user.
    Init {
        #[arg(long, env = "LICENSE_SERVER_DB")]
        db: Location,
        #[arg(long, env = "LICENSE_SERVER_ADMIN_EMAIL")]
        admin_email: String,
        /// Generated and printed when omitted.
        #[arg(long, env = "LICENSE_SERVER_ADMIN_PASSWORD")]
        admin_password: Option<String>,
        /// Organization the admin manages (created if missing).
        #[arg(long, default_value = "My Organization")]
        org: String,
    },
    /// Signing key management.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Copy the database, consistently, while servers keep running (SQLite
    /// `VACUUM INTO`: a compact copy as of one moment).
    Backup {
        #[arg(long, env = "LICENSE_SERVER_DB")]
        db: Location,
        /// The copy to write; must not exist yet.
        #[arg(long)]
        to: PathBuf,
    },
    /// Device management.
    Device {
        #[command(subcommand)]
        command: DeviceCommand,
    },
    /// Users: vendor operators and organization admins.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Air-gapped activation by file (the Offline activation page, for
    /// scripts).
    Offline {
        #[command(subcommand)]
        command: OfflineCommand,
    },
}

#[derive(Subcommand)]
enum OfflineCommand {
    /// Answer a console's activation request with an activation response.
    Respond {
        #[command(flatten)]
        server: OfflineArgs,
        /// The organization, by name.
        #[arg(long)]
        org: String,
        /// The device the console is licensed as, by name.
        #[arg(long)]
        device: String,
        /// Register the device first if the organization has none of this name.
        #[arg(long)]
        register: bool,
        /// The activation request file the console saved.
        #[arg(long)]
        request: PathBuf,
        /// Where to write the response; stdout when omitted.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Take a console's deactivation file: its device is revoked.
    Deactivate {
        #[command(flatten)]
        server: OfflineArgs,
        /// The deactivation file the console saved.
        #[arg(long)]
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user who signs in with a password.
    Add {
        #[arg(long, env = "LICENSE_SERVER_DB")]
        db: Location,
        #[arg(long)]
        email: String,
        /// `vendor` (every organization, grants licenses) or `org-admin`
        /// (authorizes devices of its organizations).
        #[arg(long)]
        role: String,
        /// An organization the user administers (repeat for several).
        #[arg(long = "org")]
        orgs: Vec<String>,
        /// Generated and printed when omitted.
        #[arg(long, env = "LICENSE_SERVER_USER_PASSWORD")]
        password: Option<String>,
    },
    /// Disable a user: no sign-in, sessions end. The last vendor operator stays.
    Disable {
        #[arg(long, env = "LICENSE_SERVER_DB")]
        db: Location,
        #[arg(long)]
        email: String,
    },
    /// Enable a disabled user.
    Enable {
        #[arg(long, env = "LICENSE_SERVER_DB")]
        db: Location,
        #[arg(long)]
        email: String,
    },
    /// List users, their roles and organizations.
    List {
        #[arg(long, env = "LICENSE_SERVER_DB")]
        db: Location,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// New key signs from now on; old public keys stay published until their tokens expire.
    Rotate {
        #[arg(long, env = "LICENSE_SERVER_DB")]
        db: Location,
    },
    /// New refresh-successor key (the secret that derives each refresh
    /// token from the one before) from now on; live token chains go on.
    RotateSuccessor {
        #[arg(long, env = "LICENSE_SERVER_DB")]
        db: Location,
    },
    /// Withdraw a signing key (one believed compromised): it leaves the
    /// JWKS and its private key is erased; what it signed stops verifying
    /// within seconds. A signing key is first replaced by a new one.
    Withdraw {
        #[arg(long, env = "LICENSE_SERVER_DB")]
        db: Location,
        /// The key id (`kid`), as the JWKS lists it.
        kid: String,
    },
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// Approve a pending user code for a device (the Authorize Device page, for scripts).
    Authorize {
        #[arg(long, env = "LICENSE_SERVER_DB")]
        db: Location,
        #[arg(long)]
        org: String,
        #[arg(long)]
        device: String,
        /// Register the device first if the organization has none of this name.
        #[arg(long)]
        register: bool,
        #[arg(long)]
        user_code: String,
        #[arg(long)]
        admin: Option<String>,
    },
}

/// Runs the command; an error is one line on stderr (never a backtrace)
/// and the exit status says which kind: 2 bad usage, 3 the database cannot
/// be opened, 1 anything else.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("license-server: {err:#}");
            let code = err
                .downcast_ref::<cli::CliError>()
                .map_or(1, cli::CliError::exit_code);
            std::process::ExitCode::from(code)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "license_server=info".into()),
        )
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    match cli.command {
        Command::Serve(args) => cli::serve(&args).await?,
        Command::Demo(args) => cli::demo(&args).await?,
        Command::Init {
            db,
            admin_email,
            admin_password,
            org,
        } => {
            let password = cli::init(&db, &admin_email, admin_password.as_deref(), &org).await?;
            println!("initialized {}", db);
            println!("admin email: {admin_email}");
            if admin_password.is_none() {
                println!("admin password: {password}");
            }
        }
        Command::Backup { db, to } => {
            let bytes = cli::backup(&db, &to).await?;
            println!("backed up {} to {} ({bytes} bytes)", db, to.display());
        }
        Command::Keys {
            command: KeysCommand::Rotate { db },
        } => {
            let kid = cli::rotate_keys(&db).await?;
            println!("new signing key {kid}; running servers pick it up within 30 s");
        }
        Command::Keys {
            command: KeysCommand::RotateSuccessor { db },
        } => {
            let id = cli::rotate_successor_key(&db).await?;
            println!("new refresh-successor key {id}; running servers pick it up within 30 s");
        }
        Command::Keys {
            command: KeysCommand::Withdraw { db, kid },
        } => {
            let withdrawn = cli::withdraw_key(&db, &kid).await?;
            if let Some(new) = withdrawn.new_current {
                println!("new signing key {new}");
            }
            println!("withdrew signing key {kid}; running servers drop it within 5 s");
        }
        Command::Device {
            command:
                DeviceCommand::Authorize {
                    db,
                    org,
                    device,
                    register,
                    user_code,
                    admin,
                },
        } => {
            let target = cli::DeviceArg {
                name: &device,
                register,
            };
            println!(
                "{}",
                cli::authorize_device(&db, &org, target, &user_code, admin.as_deref()).await?
            );
        }
        Command::User { command } => match command {
            UserCommand::Add {
                db,
                email,
                role,
                orgs,
                password,
            } => {
                let generated =
                    cli::users::add(&db, &email, &role, &orgs, password.as_deref()).await?;
                println!("added {email}");
                if let Some(p) = generated {
                    println!("password: {p}");
                }
            }
            UserCommand::Disable { db, email } => {
                cli::users::set_disabled(&db, &email, true).await?;
                println!("disabled {email}");
            }
            UserCommand::Enable { db, email } => {
                cli::users::set_disabled(&db, &email, false).await?;
                println!("enabled {email}");
            }
            UserCommand::List { db } => print!("{}", cli::users::list(&db).await?),
        },
        Command::Offline { command } => match command {
            OfflineCommand::Respond {
                server,
                org,
                device,
                register,
                request,
                out,
            } => {
                let target = cli::DeviceArg {
                    name: &device,
                    register,
                };
                let done = cli::offline::respond(&server, &org, target, &request).await?;
                match out {
                    Some(path) => {
                        std::fs::write(&path, &done.text)?;
                        println!("{}", done.summary);
                        println!("wrote {}", path.display());
                    }
                    None => {
                        print!("{}", done.text);
                        eprintln!("{}", done.summary);
                    }
                }
            }
            OfflineCommand::Deactivate { server, file } => {
                println!("{}", cli::offline::deactivate(&server, &file).await?);
            }
        },
    }
    Ok(())
}
