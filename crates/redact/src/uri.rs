//! Credentials in a `requestURI`'s query: bearer tokens (`access_token=`, `token=`, ...) and
//! passwords, each value replaced by its marker, the rest of the URI byte for byte.

use percent_encoding::percent_decode_str;

use crate::Redactor;

/// Query parameters whose values are credentials, compared without regard to ASCII case.
pub const SECRET_PARAMETERS: &[&str] = &[
    "access_token",
    "token",
    "id_token",
    "refresh_token",
    "password",
    "passwd",
    "client_secret",
];

fn is_secret_name(name: &str) -> bool {
    let name = percent_decode_str(name).decode_utf8_lossy();
    SECRET_PARAMETERS
        .iter()
        .any(|p| name.eq_ignore_ascii_case(p))
}

impl Redactor {
    /// `uri` with the values of [`SECRET_PARAMETERS`] replaced by markers of their decoded
    /// bytes; `None` when it has none.
    pub fn redact_uri(&self, uri: &str) -> Option<String> {
        let (path, query) = uri.split_once('?')?;
        let mut out = String::with_capacity(uri.len() + 48);
        out.push_str(path);
        out.push('?');
        let mut changed = false;
        for (i, part) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match part.split_once('=') {
                Some((name, value))
                    if !value.is_empty() && !crate::is_marker(value) && is_secret_name(name) =>
                {
                    let value = value.replace('+', " ");
                    let bytes: Vec<u8> = percent_decode_str(&value).collect();
                    out.push_str(name);
                    out.push('=');
                    out.push_str(&self.marker(&bytes));
                    changed = true;
                }
                _ => out.push_str(part),
            }
        }
        changed.then_some(out)
    }
}
