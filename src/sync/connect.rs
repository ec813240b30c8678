//! Connecting to the clinic database: the URL, the password (from the URL
//! or the OS keyring, never logged), TLS when the URL asks for it, and the
//! task that drives the connection and turns NOTIFY into a wake-up.
//!
//! A URL is only ever shown as `user@host:port/database`, without its
//! password.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{AsyncMessage, Client, Config};

use super::{Result, SyncError};
use crate::settings::secrets::{self, Secret};

/// The channel the server's triggers NOTIFY on commit.
pub const CHANNEL: &str = "clinicdesk_changes";

/// A parsed database URL.
#[derive(Clone)]
pub struct Target {
    config: Config,
    tls: bool,
    unencrypted_remote: bool,
    root_cert: Option<PathBuf>,
    display: String,
    account: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        write!(f, "Target({}, tls: {})", self.display, self.tls)
    }
}

impl Target {
    /// `user@host:port/database`: safe to show and log.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// `user@host`: the keyring account of the database password.
    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn has_password(&self) -> bool {
        self.config.get_password().is_some()
    }

    pub fn uses_tls(&self) -> bool {
        self.tls
    }

    /// Another machine's database reached without TLS, because the URL said
    /// `sslmode=disable`: allowed, and shown as a warning.
    pub fn unencrypted_remote(&self) -> bool {
        self.unencrypted_remote
    }
}

/// Parses `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?params]` (or the
/// `key=value` form). Besides tokio-postgres' parameters it understands
/// libpq's `sslmode=verify-ca|verify-full` (TLS, which is always verified
/// here) and `sslrootcert=FILE` (a CA to trust besides the system's).
pub fn parse_url(url: &str) -> Result<Target> {
    let url = url.trim();
    if url.is_empty() {
        return Err(SyncError::BadUrl("it is empty".into()));
    }
    let mut root_cert = None;
    let mut verify = false;
    let cleaned = match url.split_once('?') {
        Some((base, query)) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let mut kept = Vec::new();
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                match (key, value) {
                    ("sslrootcert", v) => root_cert = Some(PathBuf::from(percent_decode(v))),
                    ("sslmode", "verify-ca" | "verify-full") => {
                        verify = true;
                        kept.push("sslmode=require".to_owned());
                    }
                    _ => kept.push(pair.to_owned()),
                }
            }
            if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) }
        }
        _ => url.to_owned(),
    };
    // tokio-postgres' messages name the option at fault, never the value.
    let mut config: Config = cleaned.parse().map_err(|e: tokio_postgres::Error| {
        let text = e.to_string();
        SyncError::BadUrl(text.replace("invalid connection string: ", ""))
    })?;
    if config.get_user().is_none() {
        let user = std::env::var("USER").unwrap_or_else(|_| "postgres".into());
        config.user(&user);
    }
    if config.get_hosts().is_empty() {
        config.host("localhost");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    // Notice a dead network in seconds rather than hours.
    config.keepalives_idle(Duration::from_secs(15));
    config.keepalives_interval(Duration::from_secs(5));
    config.keepalives_retries(3);
    // Patient data crosses the network only encrypted: TLS for any host but
    // this machine, unless the URL turns it off in so many words (then the
    // status bar says so). On loopback or a Unix socket, TLS when asked.
    let local = config.get_hosts().iter().all(is_this_machine);
    let tls = match config.get_ssl_mode() {
        SslMode::Disable => false,
        // tokio-postgres defaults to Prefer when the URL says nothing.
        SslMode::Prefer => !local || cleaned.contains("sslmode=prefer"),
        _ => true,
    };
    config.ssl_mode(if tls { SslMode::Require } else { SslMode::Disable });
    let unencrypted_remote = !tls && !local;
    let _ = verify; // rustls always verifies; verify-* only asks for TLS.
    let user = config.get_user().unwrap_or_default().to_owned();
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or(&user).to_owned();
    let display = format!("{user}@{host}:{port}/{db}");
    let account = format!("{user}@{host}");
    Ok(Target { config, tls, unencrypted_remote, root_cert, display, account })
}

/// A host on this machine: loopback by name or address, or a Unix socket.
fn is_this_machine(host: &Host) -> bool {
    match host {
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            let name = name.trim_start_matches('[').trim_end_matches(']');
            name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An open connection: the client (shared with the tasks that prefetch
/// snapshot chunks), and a wake-up that fires on every NOTIFY (after
/// LISTEN) and when the connection ends.
pub struct Connection {
    pub client: Arc<Client>,
    pub notified: Arc<Notify>,
    closed: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Connection {
    /// Subscribes to the change notifications.
    pub async fn listen(&self) -> Result<()> {
        self.client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        Ok(())
    }

    /// The client for transactions (`server init`, `server load`); `None`
    /// while a prefetch task still shares it.
    pub fn client_mut(&mut self) -> Option<&mut Client> {
        Arc::get_mut(&mut self.client)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::Relaxed) || self.client.is_closed()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connects, with the URL's password or `password` (from the keyring).
pub async fn connect(target: &Target, password: Option<&str>) -> Result<Connection> {
    let mut config = target.config.clone();
    if let Some(p) = password
        && config.get_password().is_none()
    {
        config.password(p);
    }
    let notified = Arc::new(Notify::new());
    let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let map = |e: tokio_postgres::Error| connect_error(target, e);
    if target.tls {
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(target.root_cert.as_deref())?);
        let (client, connection) = config.connect(tls).await.map_err(map)?;
        let task = tokio::spawn(drive(connection, notified.clone(), closed.clone()));
        Ok(Connection { client: Arc::new(client), notified, closed, task })
    } else {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(map)?;
        let task = tokio::spawn(drive(connection, notified.clone(), closed.clone()));
        Ok(Connection { client: Arc::new(client), notified, closed, task })
    }
}

/// Connects; when the server asks for a password the URL does not have,
/// takes it from the keyring (once; `cache` keeps it for reconnections).
pub async fn connect_with_keyring(target: &Target, cache: &mut Option<String>) -> Result<Connection> {
    match connect(target, cache.as_deref()).await {
        Err(SyncError::PasswordNeeded { target: t, account, .. }) if cache.is_none() && !target.has_password() => {
            let secret = Secret::Database { account: target.account.clone() };
            let found = tokio::task::spawn_blocking(move || secrets::load(&secret))
                .await
                .map_err(|e| SyncError::Protocol(format!("keyring lookup failed: {e}")))?;
            match found {
                Ok(Some(password)) => {
                    *cache = Some(password);
                    connect(target, cache.as_deref()).await
                }
                Ok(None) => Err(SyncError::PasswordNeeded {
                    target: t,
                    account,
                    why: " and the keyring holds none for this account".into(),
                }),
                Err(e) => Err(SyncError::PasswordNeeded { target: t, account, why: format!(" ({e})") }),
            }
        }
        other => other,
    }
}

fn connect_error(target: &Target, e: tokio_postgres::Error) -> SyncError {
    // tokio-postgres shows the kind of error; the cause is its source.
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    if text.contains("password missing") {
        return SyncError::PasswordNeeded {
            target: target.display.clone(),
            account: target.account.clone(),
            why: String::new(),
        };
    }
    if let Some(db) = e.as_db_error() {
        use tokio_postgres::error::SqlState;
        let code = db.code();
        if *code == SqlState::INVALID_PASSWORD || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
            return SyncError::LoginRefused { target: target.display.clone(), detail: db.message().to_owned() };
        }
        return SyncError::Unreachable { target: target.display.clone(), detail: db.message().to_owned() };
    }
    let detail = text;
    if detail.contains("TLS") || detail.contains("tls") || detail.contains("certificate") {
        return SyncError::Tls { target: target.display.clone(), detail };
    }
    SyncError::Unreachable { target: target.display.clone(), detail }
}

/// Drives the connection: without this task no query makes progress.
async fn drive<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    notified: Arc<Notify>,
    closed: Arc<std::sync::atomic::AtomicBool>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    while let Some(message) = messages.next().await {
        match message {
            Ok(AsyncMessage::Notification(_)) => notified.notify_one(),
            Ok(_) => {}
            Err(e) => {
                tracing::debug!("clinic database connection ended: {e}");
                break;
            }
        }
    }
    closed.store(true, std::sync::atomic::Ordering::Relaxed);
    // Wake the engine so it notices at once.
    notified.notify_one();
}

/// TLS with the system's roots (and `root_cert` when given); the server's
/// certificate is always verified.
fn tls_config(root_cert: Option<&Path>) -> Result<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = root_cert {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| SyncError::File { path: path.to_owned(), detail: e.to_string() })?;
        for cert in certs {
            let cert = cert.map_err(|e| SyncError::File { path: path.to_owned(), detail: e.to_string() })?;
            roots
                .add(cert)
                .map_err(|e| SyncError::File { path: path.to_owned(), detail: format!("not a usable CA: {e}") })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SyncError::Tls { target: String::new(), detail: e.to_string() })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_never_shows_the_password() {
        let t = parse_url("postgres://anna:s3cr%40t@db.clinic:6543/crm").unwrap();
        assert_eq!(t.display(), "anna@db.clinic:6543/crm");
        assert_eq!(t.account(), "anna@db.clinic");
        assert!(t.has_password());
        assert!(!format!("{t:?}").contains("s3cr"));
    }

    #[test]
    fn another_machine_is_reached_over_tls_unless_the_url_says_disable() {
        for url in ["postgres://a@db.clinic/d", "postgres://a@10.0.0.5/d?sslmode=prefer", "host=db.clinic user=a"] {
            let t = parse_url(url).unwrap();
            assert!(t.uses_tls() && !t.unencrypted_remote(), "{url}");
        }
        let t = parse_url("postgres://a@db.clinic/d?sslmode=disable").unwrap();
        assert!(!t.uses_tls() && t.unencrypted_remote());
        for local in ["postgres://a@localhost/d", "postgres://a@127.0.0.1:5433/d", "postgres://a@[::1]/d"] {
            let t = parse_url(local).unwrap();
            assert!(!t.uses_tls() && !t.unencrypted_remote(), "{local}");
        }
        assert!(!parse_url("host=/run/postgresql user=a").unwrap().unencrypted_remote());
    }

    #[test]
    fn on_this_machine_tls_only_when_asked() {
        assert!(parse_url("postgres://a@h/d?sslmode=require").unwrap().uses_tls());
        assert!(parse_url("postgres://a@h/d?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem").unwrap().uses_tls());
        assert_eq!(
            parse_url("postgres://a@h/d?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem").unwrap().root_cert,
            Some(PathBuf::from("/tmp/ca.pem"))
        );
        assert!(!parse_url("postgres://a@localhost/d").unwrap().uses_tls());
        assert!(!parse_url("postgres://a@h/d?sslmode=disable").unwrap().uses_tls());
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_them() {
        for bad in [
            "",
            "postgres://a:pw@h:notaport/d",
            "postgres://a:pw@h/d?sslmode=sometimes",
            "postgres://a:pw@h/d?frobnicate=1",
        ] {
            let e = parse_url(bad).unwrap_err();
            assert!(matches!(e, SyncError::BadUrl(_)), "{bad}: {e}");
            assert!(!e.to_string().contains("pw@"), "{e}");
        }
    }
}
