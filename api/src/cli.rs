//! The command line: one binary for serving, migrating, exporting the schema
//! and platform administration.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use migration::{Migrator, MigratorTrait};

use crate::{
    auth::{keyring::Keyring, password::check_policy},
    config::Settings,
    graphql::{SchemaOptions, build_schema},
    persisted::Mode,
    startup::{Application, shutdown_signal},
    state::AppState,
    store::{self, tenants::NewTenant, users::normalize_email},
};

#[derive(Debug, Parser)]
#[command(name = "aggios", version, about = "Multi-tenant GraphQL API platform for agencies")]
pub struct Cli {
    /// A TOML settings file (default: ./aggios.toml when present).
    #[arg(long, global = true, env = "AGGIOS_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API server.
    Serve,
    /// Apply, revert or list database migrations (as the schema owner).
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Write the GraphQL schema (SDL) to a file, or to stdout with `-`.
    ExportSchema {
        #[arg(long, short, default_value = "schema.graphql")]
        output: PathBuf,
    },
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        action: TenantAction,
    },
    /// Manage the keys that sign access tokens (auth.keyring_file).
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Object storage upkeep.
    Storage {
        #[command(subcommand)]
        action: StorageAction,
    },
    /// Manage platform administrators.
    PlatformAdmin {
        #[command(subcommand)]
        action: PlatformAdminAction,
    },
    /// One GET of a health endpoint, for a container's HEALTHCHECK (the
    /// image has no shell or curl): exit 0 on a 2xx answer, 1 otherwise.
    /// Reads no settings and connects to nothing else.
    Healthcheck {
        #[arg(long, default_value = "http://127.0.0.1:8080/healthz")]
        url: url::Url,
        #[arg(long, default_value_t = 2)]
        timeout_secs: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Create the keyring with one signing key (refuses to overwrite).
    Generate,
    /// Add a new signing key; older keys keep verifying until dropped.
    Rotate {
        /// How many keys to keep in all (the newest), at least 2.
        #[arg(long, default_value_t = 3)]
        keep: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum StorageAction {
    /// Remove bytes no document version points at (uploads that never
    /// committed, deleted documents), older than the grace period.
    Sweep {
        /// Override `storage.sweep_grace_secs`.
        #[arg(long)]
        grace_secs: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PlatformAdminAction {
    /// Create a platform administrator; the password is read from stdin.
    Create {
        #[arg(long)]
        email: String,
    },
    /// Deactivate a platform administrator: they can no longer sign in, and
    /// the access tokens they hold stop working on every replica within a
    /// second.
    Deactivate {
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Apply pending migrations (all, or the next N).
    Up {
        #[arg(long)]
        steps: Option<u32>,
    },
    /// Revert applied migrations (the last one, or the last N).
    Down {
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// List migrations and whether each is applied.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum TenantAction {
    /// Create a tenant and print it as JSON.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        subdomain: String,
        #[arg(long)]
        custom_domain: Option<String>,
    },
    /// Set a tenant's storage quota, in bytes.
    Quota {
        #[arg(long)]
        subdomain: String,
        #[arg(long)]
        bytes: i64,
    },
    /// An agency's trusted documents (its persisted query list).
    TrustedDocuments {
        #[command(subcommand)]
        action: TrustedDocumentsAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum TrustedDocumentsAction {
    /// Upload a manifest (Apollo's persisted query manifest or Relay's
    /// persisted-queries.json): it becomes the next version, the active one.
    Upload {
        #[arg(long)]
        subdomain: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// Set what the agency asks of its API keys: off, log-unknown or require.
    Mode {
        #[arg(long)]
        subdomain: String,
        #[arg(long, value_parser = parse_mode)]
        mode: Mode,
    },
    /// List the agency's manifests, the latest (active) first.
    List {
        #[arg(long)]
        subdomain: String,
    },
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    Mode::parse(&s.replace('-', "_").to_ascii_uppercase()).ok_or_else(|| format!("`{s}` is not a mode: use off, log-unknown or require"))
}

/// Whether a command needs the settings (everything except export-schema).
impl Command {
    pub fn needs_settings(&self) -> bool {
        !matches!(self, Command::ExportSchema { .. } | Command::Healthcheck { .. })
    }
}

pub async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve(settings).await,
        Command::Healthcheck { url, timeout_secs } => {
            let status = tokio::time::timeout(std::time::Duration::from_secs(timeout_secs), health_get(&url))
                .await
                .map_err(|_| anyhow::anyhow!("{url}: no answer within {timeout_secs}s"))??;
            anyhow::ensure!((200..300).contains(&status), "{url} answered {status}");
            Ok(())
        }
        Command::Migrate { action } => migrate(action, &settings).await,
        Command::ExportSchema { output } => export_schema(&output, settings.is_production()),
        Command::Keys { action } => keys(action, &settings).await,
        Command::Storage { action: StorageAction::Sweep { grace_secs } } => {
            let grace = std::time::Duration::from_secs(grace_secs.unwrap_or(settings.storage.sweep_grace_secs));
            let state = AppState::connect(settings).await?;
            let done = crate::files::sweep::sweep(&state.files, grace).await?;
            println!(
                "{}",
                serde_json::json!({ "tenants": done.tenants, "objectsSeen": done.objects_seen, "removed": done.removed, "grantsExpired": done.grants_expired })
            );
            Ok(())
        }
        Command::Tenant { action: TenantAction::Quota { subdomain, bytes } } => {
            let state = AppState::connect(settings).await?;
            let tenant = store::tenants::by_subdomain(state.db.platform(), &subdomain)
                .await
                .map_err(|e| anyhow::anyhow!("could not read the tenant: {}", describe(e)))?
                .ok_or_else(|| anyhow::anyhow!("no tenant has the subdomain {subdomain}"))?;
            store::tenants::set_quota(state.db.platform(), tenant.id, bytes)
                .await
                .map_err(|e| anyhow::anyhow!("could not set the quota: {}", describe(e)))?;
            println!("{}", serde_json::json!({ "id": tenant.id, "storageQuotaBytes": bytes }));
            Ok(())
        }
        Command::Tenant { action: TenantAction::TrustedDocuments { action } } => trusted_documents(action, settings).await,
        Command::PlatformAdmin { action: PlatformAdminAction::Create { email } } => create_platform_admin(email, settings).await,
        Command::PlatformAdmin { action: PlatformAdminAction::Deactivate { email } } => deactivate_platform_admin(email, settings).await,
        Command::Tenant { action: TenantAction::Create { name, subdomain, custom_domain } } => {
            let state = AppState::connect(settings).await?;
            let tenant = store::tenants::create(
                state.db.platform(),
                uuid::Uuid::now_v7(),
                NewTenant { name, subdomain, custom_domain },
            )
            .await
            .map_err(|e| anyhow::anyhow!("could not create the tenant: {}", describe(e)))?;
            // Replicas may have cached this host as unknown.
            state.tenants.forget(&crate::tenancy::Tenant::from(tenant.clone())).await;
            println!(
                "{}",
                serde_json::json!({ "id": tenant.id, "name": tenant.name, "subdomain": tenant.subdomain, "customDomain": tenant.custom_domain })
            );
            Ok(())
        }
    }
}

/// Uploads, the mode and listings run through the agency's own scoped
/// handle, as the platform (audited with no actor).
async fn trusted_documents(action: TrustedDocumentsAction, settings: Settings) -> anyhow::Result<()> {
    use store::{audit::Event, trusted_documents::Uploader};
    let subdomain = match &action {
        TrustedDocumentsAction::Upload { subdomain, .. } | TrustedDocumentsAction::Mode { subdomain, .. } | TrustedDocumentsAction::List { subdomain } => subdomain.clone(),
    };
    let state = AppState::connect(settings).await?;
    let tenant = store::tenants::by_subdomain(state.db.platform(), &subdomain)
        .await
        .map_err(|e| anyhow::anyhow!("could not read the tenant: {}", describe(e)))?
        .ok_or_else(|| anyhow::anyhow!("no tenant has the subdomain {subdomain}"))?;
    let db = state.db.scoped(tenant.id);
    let trusted = &state.persisted.trusted;
    let outcome = async {
        match action {
            TrustedDocumentsAction::Upload { file, .. } => {
                let started = std::time::Instant::now();
                let text = std::fs::read(&file).map_err(|e| crate::error::ApiError::internal(anyhow::anyhow!("reading {}: {e}", file.display())))?;
                let manifest: serde_json::Value = serde_json::from_slice(&text)
                    .map_err(|e| crate::error::ApiError::BadUserInput { field: "manifest", message: format!("{} is not JSON: {e}", file.display()) })?;
                let uploader = Uploader { user_id: None, label: "platform".into() };
                let m = trusted.upload(&db, &manifest, uploader).await?;
                let changes = serde_json::json!({ "version": m.version, "format": m.format, "operationCount": m.operation_count });
                let event = Event { action: "trusted_documents.upload", target_type: "trusted_document_manifest", target_id: Some(m.id), changes: Some(changes) };
                store::audit::record(&db, (None, None), "cli", event).await?;
                Ok(serde_json::json!({ "id": m.id, "version": m.version, "format": m.format, "operationCount": m.operation_count, "storedMs": started.elapsed().as_millis() as u64 }))
            }
            TrustedDocumentsAction::Mode { mode, .. } => {
                trusted.set_mode(&db, mode, None).await?;
                let event = Event { action: "trusted_documents.mode", target_type: "tenant", target_id: Some(tenant.id), changes: Some(serde_json::json!({ "mode": mode.as_str() })) };
                store::audit::record(&db, (None, None), "cli", event).await?;
                Ok(serde_json::json!({ "subdomain": subdomain, "mode": mode.as_str() }))
            }
            TrustedDocumentsAction::List { .. } => {
                let rows = store::trusted_documents::list(&db).await?;
                Ok(serde_json::Value::Array(
                    rows.into_iter()
                        .enumerate()
                        .map(|(i, m)| serde_json::json!({ "id": m.id, "version": m.version, "format": m.format, "operationCount": m.operation_count, "uploadedBy": m.uploaded_by, "createdAt": m.created_at, "active": i == 0 }))
                        .collect(),
                ))
            }
        }
    }
    .await;
    let finished = db.finish(outcome.is_ok()).await;
    let out = outcome.map_err(|e| anyhow::anyhow!("{}", describe(e)))?;
    finished.context("committing")?;
    println!("{out}");
    Ok(())
}

async fn keys(action: KeysAction, settings: &Settings) -> anyhow::Result<()> {
    let path = settings.keyring_file();
    let id = match action {
        KeysAction::Generate => Keyring::generate(&path)?,
        KeysAction::Rotate { keep } => Keyring::rotate(&path, keep)?,
    };
    println!("{} now signs with key {id}", path.display());
    Ok(())
}

async fn create_platform_admin(email: String, settings: Settings) -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin().read_line(&mut password).context("reading the password from stdin")?;
    let password = password.trim_end_matches(['\r', '\n']);
    let email = normalize_email(&email).map_err(|e| anyhow::anyhow!("{}", describe(e)))?;
    check_policy(password, &[&email]).map_err(|e| anyhow::anyhow!("{}", describe(e)))?;
    let state = AppState::connect(settings).await?;
    let hash = state.auth.passwords.hash(password).await.map_err(|e| anyhow::anyhow!("{}", describe(e)))?;
    let admin = store::platform::create_admin(state.db.platform(), email, hash)
        .await
        .map_err(|e| anyhow::anyhow!("could not create the administrator: {}", describe(e)))?;
    println!("{}", serde_json::json!({ "id": admin.id, "email": admin.email }));
    Ok(())
}

async fn deactivate_platform_admin(email: String, settings: Settings) -> anyhow::Result<()> {
    let email = normalize_email(&email).map_err(|e| anyhow::anyhow!("{}", describe(e)))?;
    let state = AppState::connect(settings).await?;
    let conn = state.db.platform();
    let admin = store::platform::admin_by_email(conn, &email)
        .await
        .map_err(|e| anyhow::anyhow!("{}", describe(e)))?
        .ok_or_else(|| anyhow::anyhow!("no platform administrator has the email {email}"))?;
    store::platform::set_admin_active(conn, admin.id, false).await.map_err(|e| anyhow::anyhow!("{}", describe(e)))?;
    state.auth.revocations.cut_admin(conn, admin.id).await.map_err(|e| anyhow::anyhow!("{}", describe(e)))?;
    println!("{}", serde_json::json!({ "id": admin.id, "email": admin.email, "isActive": false }));
    Ok(())
}

fn describe(err: crate::error::ApiError) -> String {
    let gql: async_graphql::Error = err.into();
    gql.message
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    let state = app.state();
    let addr = app.local_addr().context("the listener has no address")?;
    tracing::info!(
        %addr,
        database = state.db.backend_name(),
        cache = state.cache.backend_name(),
        storage = state.objects.backend_name(),
        "Aggios is listening"
    );
    println!("Aggios is listening on http://{addr}");
    println!("  GraphQL:    http://{addr}/graphql");
    println!("  Playground: http://{addr}/playground");
    if let Some(at) = app.metrics_addr() {
        println!("  Metrics:    http://{at}/metrics");
    }
    crate::files::sweep::spawn_periodic(state.files.clone());
    app.run_until(shutdown_signal()).await?;
    Ok(())
}

/// The status code of one plain-HTTP `GET url`.
async fn health_get(url: &url::Url) -> anyhow::Result<u16> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    anyhow::ensure!(url.scheme() == "http", "{url}: only http:// is checked (the server's own port, inside its container)");
    let host = url.host_str().context("the URL has no host")?;
    let port = url.port_or_known_default().unwrap_or(80);
    let mut stream = tokio::net::TcpStream::connect((host, port)).await.with_context(|| format!("connecting to {host}:{port}"))?;
    let request = format!("GET {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n", &url[url::Position::BeforePath..]);
    stream.write_all(request.as_bytes()).await?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).await?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).with_context(|| format!("{url}: not an HTTP answer"))
}

async fn migrate(action: MigrateAction, settings: &Settings) -> anyhow::Result<()> {
    let conn = store::connect_owner(settings).await?;
    match action {
        MigrateAction::Up { steps } => Migrator::up(&conn, steps).await?,
        MigrateAction::Down { steps } => Migrator::down(&conn, Some(steps)).await?,
        MigrateAction::Status => {
            for m in Migrator::get_migration_with_status(&conn).await? {
                println!("{:<10} {}", format!("{:?}", m.status()), m.name());
            }
        }
    }
    Ok(())
}

fn export_schema(output: &std::path::Path, production: bool) -> anyhow::Result<()> {
    // The limits do not show in the SDL.
    let sdl = build_schema(SchemaOptions { production, limits: Default::default() }).sdl();
    if output.as_os_str() == "-" {
        print!("{sdl}");
    } else {
        std::fs::write(output, sdl).with_context(|| format!("writing {}", output.display()))?;
    }
    Ok(())
}
