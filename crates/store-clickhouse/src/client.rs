//! A small client of ClickHouse's HTTP interface (ureq): queries go in the request body with
//! their settings in the URL, answers come back as `JSONCompact`, inserts send
//! `JSONEachRow` rows. Any failure — transport or a ClickHouse exception — is a store error the
//! server answers with 503, so senders retry.

use std::time::Duration;

use base64::Engine;
use kubetrail_store::{Error, Result};
use serde_json::Value;

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct Connection {
    /// `http://127.0.0.1:8123`.
    pub url: String,
    /// Database (created if missing).
    pub database: String,
    /// User (ClickHouse's `default` when `None`).
    pub user: Option<String>,
    /// Password.
    pub password: Option<String>,
}

/// A connected server.
pub struct ClickHouse {
    agent: ureq::Agent,
    conn: Connection,
    version: String,
    major: u32,
}

fn unavailable(what: &str, reason: impl std::fmt::Display) -> Error {
    Error::db(what.to_string(), std::io::Error::other(reason.to_string()))
}

impl ClickHouse {
    /// Connects and reads the server's version.
    pub fn new(conn: Connection) -> Result<ClickHouse> {
        if !conn
            .database
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
            || conn.database.is_empty()
        {
            return Err(Error::Invalid(format!(
                "database name {:?}: letters, digits and _ only",
                conn.database
            )));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(300)))
            .build()
            .new_agent();
        let mut ch = ClickHouse {
            agent,
            conn,
            version: String::new(),
            major: 0,
        };
        let rows = ch.rows_in(None, "SELECT version()")?;
        ch.version = rows
            .first()
            .and_then(|r| r.first())
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        ch.major = ch
            .version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        Ok(ch)
    }

    /// The server's version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Whether the server knows column codecs (19.x and later).
    pub fn has_codecs(&self) -> bool {
        self.major >= 19
    }

    /// The database.
    pub fn database(&self) -> &str {
        &self.conn.database
    }

    fn post(
        &self,
        database: Option<&str>,
        url_query: Option<&str>,
        body: String,
    ) -> Result<String> {
        let mut url = format!(
            "{}/?output_format_json_quote_64bit_integers=0&max_query_size=104857600",
            self.conn.url.trim_end_matches('/')
        );
        if let Some(db) = database {
            url.push_str("&database=");
            url.push_str(db);
        }
        if let Some(q) = url_query {
            url.push_str("&query=");
            url.push_str(&percent(q));
        }
        let mut request = self.agent.post(&url);
        if self.conn.user.is_some() || self.conn.password.is_some() {
            let credentials = format!(
                "{}:{}",
                self.conn.user.as_deref().unwrap_or("default"),
                self.conn.password.as_deref().unwrap_or("")
            );
            let value = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(credentials)
            );
            request = request.header("Authorization", &value);
        }
        let mut response = request
            .send(body)
            .map_err(|e| unavailable("reaching ClickHouse", e))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_string()
            .map_err(|e| unavailable("reading ClickHouse's answer", e))?;
        if status != 200 {
            return Err(unavailable(
                "ClickHouse",
                format!("HTTP {status}: {}", exception_text(&text)),
            ));
        }
        Ok(text)
    }

    /// Runs a statement that returns nothing.
    pub fn execute(&self, sql: &str) -> Result<()> {
        self.post(None, None, sql.to_string()).map(|_| ())
    }

    fn rows_in(&self, database: Option<&str>, sql: &str) -> Result<Vec<Vec<Value>>> {
        let text = self.post(database, None, format!("{sql} FORMAT JSONCompact"))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| unavailable("decoding ClickHouse's answer", e))?;
        Ok(v.get("data")
            .and_then(Value::as_array)
            .map(|rows| {
                rows.iter()
                    .map(|r| r.as_array().cloned().unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Runs a query; its rows, each a list of values.
    pub fn rows(&self, sql: &str) -> Result<Vec<Vec<Value>>> {
        self.rows_in(None, sql)
    }

    /// Runs a query answering one number (0 when it answers no row).
    pub fn scalar(&self, sql: &str) -> Result<i64> {
        Ok(self
            .rows(sql)?
            .first()
            .and_then(|r| r.first())
            .map(int)
            .unwrap_or(0))
    }

    /// Runs `INSERT ... FORMAT JSONEachRow` with `rows` (one JSON object per line) as data.
    pub fn insert(&self, statement: &str, rows: String) -> Result<()> {
        self.post(None, Some(statement), rows).map(|_| ())
    }
}

/// A number as `JSONCompact` writes it (64-bit integers may come quoted).
pub(crate) fn int(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

/// The part of a ClickHouse exception that may be shown and logged: its first line, without
/// the input ClickHouse quotes after `before:` when it cannot parse an inserted row (that is
/// an event's JSON, which may hold secrets), at most 500 characters.
fn exception_text(body: &str) -> String {
    let first = body.lines().next().unwrap_or("");
    let first = match first.find(" before: ") {
        Some(at) => &first[..at],
        None => first,
    };
    first.chars().take(500).collect()
}

/// Percent-encodes a URL query value.
fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exceptions_leave_the_rows_out() {
        let body = "Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected , before: {\"raw\":\"{\\\"token\\\":\\\"s3cr3t\\\"}\"}\nStack trace:\n0. clickhouse-server";
        let shown = exception_text(body);
        assert_eq!(
            shown,
            "Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected ,"
        );
        assert!(!shown.contains("s3cr3t"));
        assert_eq!(
            exception_text("Code: 81, Database x doesn't exist"),
            "Code: 81, Database x doesn't exist"
        );
    }
}
