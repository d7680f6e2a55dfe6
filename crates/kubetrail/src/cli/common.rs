//! Flags shared by the commands that use the store, and their parsers: each bad value is an
//! error naming its flag (clap prefixes it).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use clap::Args;
use kubetrail_api::paths::MAX_PAGE_SIZE;
use kubetrail_api::wire::EventItem;
use kubetrail_api::{Client, ClientOptions};
use kubetrail_model::decode_event;
use kubetrail_store::{Cursor, Field, Filter, GroupCount, Page, Record, Store, TimeRange};
use kubetrail_store_clickhouse::{ClickHouseStore, Connection};
use kubetrail_store_duckdb::DuckDbStore;
use serde::de::DeserializeOwned;

/// Where the local store lives.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Data directory of the embedded store.
    #[arg(
        long,
        env = "KUBETRAIL_DATA_DIR",
        default_value = "kubetrail-data",
        value_name = "DIR"
    )]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Which store backend.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The embedded store in --data-dir.
    #[default]
    Duckdb,
    /// A ClickHouse server (--clickhouse-url).
    Clickhouse,
}

/// The store backend and, for ClickHouse, where it is. Serialized (for `serve`'s
/// configuration layers), only what was given.
#[derive(Debug, Clone, Default, Args, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendArgs {
    /// The store: the embedded one (duckdb), or ClickHouse.
    #[arg(long = "store", value_enum, env = "KUBETRAIL_STORE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<Backend>,
    /// ClickHouse's HTTP interface, e.g. http://127.0.0.1:8123.
    #[arg(long, env = "KUBETRAIL_CLICKHOUSE_URL", value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clickhouse_url: Option<String>,
    /// ClickHouse database (created if missing) [default: kubetrail].
    #[arg(long, value_name = "NAME")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clickhouse_database: Option<String>,
    /// ClickHouse user.
    #[arg(long, value_name = "USER")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clickhouse_user: Option<String>,
    /// File holding the ClickHouse user's password.
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clickhouse_password_file: Option<PathBuf>,
}

impl BackendArgs {
    /// Opens the store: ClickHouse when asked for, else the embedded store in `data_dir`
    /// (which must already hold one unless `create`).
    pub fn open(&self, data_dir: &Path, create: bool) -> Result<Box<dyn Store>> {
        match self.store.unwrap_or_default() {
            Backend::Clickhouse => {
                let Some(url) = &self.clickhouse_url else {
                    bail!("--store clickhouse needs --clickhouse-url URL");
                };
                let password = match &self.clickhouse_password_file {
                    Some(f) => Some(read_token_file(f).context("--clickhouse-password-file")?),
                    None => None,
                };
                let store = ClickHouseStore::open(Connection {
                    url: url.clone(),
                    database: self
                        .clickhouse_database
                        .clone()
                        .unwrap_or_else(|| "kubetrail".into()),
                    user: self.clickhouse_user.clone(),
                    password,
                })
                .with_context(|| format!("opening the ClickHouse store at {url}"))?;
                Ok(Box::new(store))
            }
            Backend::Duckdb => {
                let db = data_dir.join(kubetrail_store_duckdb::DATABASE_FILE);
                if !create && !Path::new(&db).exists() {
                    bail!(
                        "no store in {} (--data-dir): load one with `kubetrail import --data-dir {} FILE...`",
                        data_dir.display(),
                        data_dir.display()
                    );
                }
                let store = DuckDbStore::open(data_dir)
                    .with_context(|| format!("opening the store in {}", data_dir.display()))?;
                Ok(Box::new(store))
            }
        }
    }
}

/// Where questions are answered: the local store, or a running `kubetrail serve`.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Ask a running `kubetrail serve` at this URL instead of the local store.
    #[arg(long, env = "KUBETRAIL_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Bearer token for --server (prefer the KUBETRAIL_TOKEN variable or --token-file: a
    /// command line is visible to other users of the machine).
    #[arg(
        long,
        env = "KUBETRAIL_TOKEN",
        hide_env_values = true,
        requires = "server"
    )]
    pub token: Option<String>,
    /// File holding the bearer token for --server.
    #[arg(
        long,
        value_name = "FILE",
        requires = "server",
        conflicts_with = "token"
    )]
    pub token_file: Option<PathBuf>,
    /// CA certificate (PEM) that signed the server's certificate.
    #[arg(long, value_name = "FILE", requires = "server")]
    pub ca_file: Option<PathBuf>,
}

/// A local store or a server.
pub enum Source {
    /// The embedded store.
    Local(Box<dyn Store>),
    /// A running server.
    Remote(Client),
}

/// The redactor `serve` and `import` take secrets out with: the installation's key in
/// `data_dir` (made on first use) and `extra` paths. Returns it with what the operator should
/// hear about (a new key, a key others can read).
pub fn redactor(
    data_dir: &Path,
    extra: &[kubetrail_redact::ExtraPaths],
) -> Result<(kubetrail_redact::Redactor, Vec<String>)> {
    let loaded = kubetrail_redact::Key::load_or_create(data_dir)?;
    let mut notes = Vec::new();
    if loaded.created {
        notes.push(format!(
            "made a new redaction key in {}: back it up with the data; markers made under another key do not compare equal",
            loaded.path.display()
        ));
    }
    if loaded.readable_by_others {
        notes.push(format!(
            "{} can be read by group or others: whoever reads it can test guesses against redacted values (chmod 600)",
            loaded.path.display()
        ));
    }
    let redactor = kubetrail_redact::Redactor::new(&loaded.key, extra)?;
    Ok((redactor, notes))
}

/// The file of the chain's signing key: `explicit`, else `signing.key` in `data_dir`.
pub fn signing_key_path(data_dir: &Path, explicit: Option<&Path>) -> PathBuf {
    explicit.map_or_else(|| data_dir.join(SIGNING_KEY_FILE), Path::to_path_buf)
}

/// The signing key's default file name in the data directory.
pub const SIGNING_KEY_FILE: &str = "signing.key";

/// Links `store` into the hash chain signed by the key in `key` (default: in `data_dir`),
/// made on first use. Returns the key's public half, and what the operator should hear (a new
/// key, a key others can read).
pub fn link_chain(
    store: &dyn Store,
    data_dir: &Path,
    key: Option<&Path>,
) -> Result<(kubetrail_trust::PublicKey, Vec<String>)> {
    let path = signing_key_path(data_dir, key);
    let loaded = kubetrail_trust::SigningKey::load_or_create(&path)?;
    hold_key(&path)?;
    let mut notes = Vec::new();
    if loaded.created {
        notes.push(format!(
            "made a new chain signing key {} in {}; keep its public key outside the cluster, for `kubetrail verify --public-key`:\n{}",
            kubetrail_store::chain::Sign::key_id(&loaded.key),
            path.display(),
            loaded.key.public_key().to_pem()
        ));
    }
    if loaded.readable_by_others {
        notes.push(format!(
            "{} can be read by group or others: whoever reads it can sign a forged chain (chmod 600)",
            path.display()
        ));
    }
    let public = loaded.key.public_key();
    let chain = kubetrail_store::chain::Chain::new(Box::new(loaded.key));
    store
        .set_chain(std::sync::Arc::new(chain))
        .with_context(|| {
            format!(
                "linking the store into the chain signed by {}",
                path.display()
            )
        })?;
    Ok((public, notes))
}

/// The lock this process holds on its signing key while it lives.
static KEY_LOCK: std::sync::OnceLock<std::fs::File> = std::sync::OnceLock::new();

/// Takes the lock beside the signing key (`FILE.lock`) for as long as the process runs: two
/// writers extending one key's chains from heads each holds in memory would fork them.
fn hold_key(path: &Path) -> Result<()> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    // A key mounted read-only (a Secret) cannot have its lock beside it: it goes unlocked.
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
    else {
        return Ok(());
    };
    match file.try_lock() {
        Ok(()) => {
            let _ = KEY_LOCK.set(file);
            Ok(())
        }
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "the signing key {} is in use by another kubetrail process (serve or import): each writer needs its own key (--signing-key FILE)",
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", lock_path.display()))
        }
    }
}

/// Reads a token file: its first line, trimmed.
pub fn read_token_file(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the token file {}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        bail!("the token file {} is empty", path.display());
    }
    Ok(token)
}

impl SourceArgs {
    /// Opens the local store, or a client of the server.
    pub fn open(&self) -> Result<Source> {
        match self.client()? {
            Some(client) => Ok(Source::Remote(client)),
            None => Ok(Source::Local(self.store.open_existing()?)),
        }
    }

    /// A client of `--server`, when one is given.
    pub fn client(&self) -> Result<Option<Client>> {
        let Some(server) = &self.server else {
            return Ok(None);
        };
        let token = match (&self.token, &self.token_file) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(f)) => Some(read_token_file(f)?),
            (None, None) => None,
        };
        let options = ClientOptions {
            token,
            ca_file: self.ca_file.clone(),
            ..ClientOptions::default()
        };
        Ok(Some(
            Client::new(server, &options).with_context(|| format!("--server {server}"))?,
        ))
    }
}

impl Source {
    /// A page of events, newest first.
    pub fn page(&self, filter: &Filter, cursor: Option<&Cursor>, limit: usize) -> Result<Page> {
        match self {
            Source::Local(store) => Ok(store.query(filter, cursor, limit)?),
            Source::Remote(client) => {
                // The server answers at most MAX_PAGE_SIZE events a request: a longer page is
                // asked for in parts, each continuing the last, as the local store answers it.
                let mut records = Vec::new();
                let mut cursor = cursor.cloned();
                loop {
                    let want = (limit - records.len()).min(MAX_PAGE_SIZE);
                    let page = client.events(filter, cursor.as_ref(), want)?;
                    for item in &page.items {
                        records.push(record_of(item)?);
                    }
                    cursor = match page.next {
                        Some(c) => Some(c.parse::<Cursor>().map_err(anyhow::Error::msg)?),
                        None => None,
                    };
                    if cursor.is_none() || records.len() >= limit {
                        return Ok(Page {
                            records,
                            next: cursor,
                        });
                    }
                }
            }
        }
    }

    /// [`page`](Self::page) for answers that read the typed columns only
    /// ([`Store::query_heads`]); a server sends whole events.
    pub fn page_heads(
        &self,
        filter: &Filter,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page> {
        match self {
            Source::Local(store) => Ok(store.query_heads(filter, cursor, limit)?),
            Source::Remote(_) => self.page(filter, cursor, limit),
        }
    }

    /// `filter` with kubectl's names for resources (`deploy`, `po`, `Deployment`) resolved to
    /// the plurals the events write (an error naming the closest known names for a resource
    /// neither the built-in API nor the stored events have) and source networks
    /// (`--source-ip 10.0.0.0/8`) to the stored addresses in them
    /// ([`kubetrail_report::resolve_filter`]).
    pub fn resolve(&self, mut filter: Filter) -> Result<Filter> {
        kubetrail_report::resolve_filter(&mut filter, |f, field| self.count_by(f, field))?;
        Ok(filter)
    }

    /// Says on stderr which cluster, user or namespace of `filter` no stored event has, with
    /// the closest known ([`kubetrail_report::never_seen`]): for an answer that came back empty.
    pub fn explain_empty(&self, filter: &Filter) -> Result<()> {
        for hint in kubetrail_report::never_seen(filter, |f, field| self.count_by(f, field))? {
            eprintln!("{hint}");
        }
        Ok(())
    }

    /// The events `filter` selects counted by `field`.
    fn count_by(&self, filter: &Filter, field: Field) -> Result<Vec<GroupCount>> {
        match self {
            Source::Local(store) => Ok(kubetrail_report::count_in(store.as_ref(), filter, field)?),
            Source::Remote(client) => Ok(client.aggregate(filter, &[field.as_str()], None)?.groups),
        }
    }

    /// Every request `filter` selects (one event per request), oldest first.
    pub fn requests(&self, filter: &Filter) -> Result<Vec<Record>> {
        kubetrail_report::read_requests(filter, usize::MAX, |f, cursor, n| self.page(f, cursor, n))
    }

    /// A report: computed over the local store, or asked of the server.
    pub fn report<T: DeserializeOwned>(
        &self,
        kind: kubetrail_report::ReportKind,
        filter: &Filter,
        local: impl FnOnce(&dyn Store) -> kubetrail_store::Result<T>,
    ) -> Result<T> {
        match self {
            Source::Local(store) => Ok(local(store.as_ref())?),
            Source::Remote(client) => Ok(client.report(kind.name(), filter)?),
        }
    }
}

/// A record from an event the server sent.
fn record_of(item: &EventItem) -> Result<Record> {
    let raw = item.event.get();
    let event = decode_event(raw.as_bytes()).with_context(|| {
        format!(
            "the server sent an event that does not decode: {:.200}",
            super::table::escape(raw)
        )
    })?;
    let micros = |t: &str| parse_time(t).map(|t| t.timestamp_micros()).ok();
    let received = micros(&item.received).unwrap_or(0);
    // An event without timestamps keeps the time the store gave it, not the time of asking.
    let time = item.time.as_deref().and_then(micros).unwrap_or(received);
    Ok(Record::from_event_at(
        event,
        raw,
        &item.cluster,
        received,
        time,
    ))
}

impl StoreArgs {
    /// Where the store is, for messages.
    pub fn describe(&self) -> String {
        match self.backend.store.unwrap_or_default() {
            Backend::Duckdb => self.data_dir.display().to_string(),
            Backend::Clickhouse => format!(
                "ClickHouse at {} (database {})",
                self.backend.clickhouse_url.as_deref().unwrap_or("?"),
                self.backend
                    .clickhouse_database
                    .as_deref()
                    .unwrap_or("kubetrail")
            ),
        }
    }

    /// Opens (creating) the store for writing.
    pub fn open_for_write(&self) -> Result<Box<dyn Store>> {
        self.backend.open(&self.data_dir, true)
    }

    /// Opens an existing store for questions.
    pub fn open_existing(&self) -> Result<Box<dyn Store>> {
        self.backend.open(&self.data_dir, false)
    }
}

/// Who, where and when: the scope flags `search` and `report` share.
#[derive(Debug, Clone, Args)]
pub struct ScopeArgs {
    /// User who acted (repeatable): the authenticated user, or the user a request
    /// impersonated, so `--user bob` finds what an admin did as bob too. `!name` leaves an
    /// authenticated user out, `!prefix*` every one it starts (`--user '!system:*'`).
    #[arg(long = "user", value_name = "USER")]
    pub users: Vec<String>,
    /// With --user: match the authenticated user only, not an impersonated one.
    #[arg(long, requires = "users")]
    pub authenticated_only: bool,
    /// Requests made as this user by another identity: impersonation (repeatable).
    #[arg(long = "as", value_name = "USER")]
    pub impersonated: Vec<String>,
    /// Namespace (repeatable); without it, every namespace.
    #[arg(
        short = 'n',
        long = "namespace",
        value_name = "NS",
        conflicts_with = "all_namespaces"
    )]
    pub namespaces: Vec<String>,
    /// Every namespace (the default, said explicitly).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Cluster (repeatable).
    #[arg(long = "cluster", value_name = "CLUSTER")]
    pub clusters: Vec<String>,
    #[command(flatten)]
    pub time: TimeArgs,
}

impl ScopeArgs {
    /// The filter these flags describe.
    pub fn filter(&self) -> Result<Filter> {
        let (named, excluded_users) = split_users(&self.users)?;
        Ok(Filter {
            time: self.time.range()?,
            clusters: self.clusters.clone(),
            users: if self.authenticated_only {
                named.clone()
            } else {
                Vec::new()
            },
            identities: if self.authenticated_only {
                Vec::new()
            } else {
                named
            },
            excluded_users,
            impersonated_users: self.impersonated.clone(),
            namespaces: self.namespaces.clone(),
            ..Filter::default()
        })
    }
}

/// `--user` values as (users asked for, users left out): `!name` and `!prefix*` leave out.
pub fn split_users(users: &[String]) -> Result<(Vec<String>, Vec<String>)> {
    let mut named = Vec::new();
    let mut excluded = Vec::new();
    for u in users {
        match u.strip_prefix('!') {
            Some(out) if out.trim_end_matches('*').contains('*') => {
                bail!("--user {u}: only a trailing * is a wildcard (!system:*)")
            }
            Some(out) => excluded.push(out.to_string()),
            None => named.push(u.clone()),
        }
    }
    Ok((named, excluded))
}

/// The time window of a question.
#[derive(Debug, Clone, Args)]
pub struct TimeArgs {
    /// Only events of the last DURATION (e.g. 30m, 24h, 7d, 2w).
    #[arg(long, value_parser = parse_duration, conflicts_with_all = ["from", "to"], value_name = "DURATION")]
    pub since: Option<Duration>,
    /// Only events at or after this RFC 3339 time.
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub from: Option<DateTime<Utc>>,
    /// Only events before this RFC 3339 time.
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub to: Option<DateTime<Utc>>,
}

impl TimeArgs {
    /// The range, relative to now for `--since`.
    pub fn range(&self) -> Result<TimeRange> {
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from >= to
        {
            bail!("--from {from} is not before --to {to}");
        }
        Ok(match self.since {
            Some(d) => TimeRange {
                from_micros: Some(Utc::now().timestamp_micros() - d.as_micros() as i64),
                to_micros: None,
            },
            None => TimeRange {
                from_micros: self.from.map(|t| t.timestamp_micros()),
                to_micros: self.to.map(|t| t.timestamp_micros()),
            },
        })
    }
}

pub use kubetrail_store::text::{parse_duration, parse_time};

/// A known verb.
pub fn parse_verb(s: &str) -> Result<String, String> {
    let f = Filter {
        verbs: vec![s.to_string()],
        ..Filter::default()
    };
    f.validate().map(|_| s.to_string())
}

/// Microseconds since the epoch as RFC 3339 with seconds.
pub fn format_time(micros: i64) -> String {
    DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| micros.to_string())
}
