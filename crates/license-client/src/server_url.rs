//! The one normalization of a license server URL, used by the client, the
//! console's form and every comparison with the server's `issuer`.

use url::Url;

use crate::error::{clean, ClientError};

/// The license server URL as every part of the product compares it:
/// `http(s)://host[:port][/path]`, scheme and host lower-cased, the default
/// port and a trailing slash removed. Refuses anything else (no user name,
/// query or fragment; http and https only) with
/// [`ClientError::InvalidInput`].
///
/// ```
/// use license_client::normalize_server_url;
/// assert_eq!(
///     normalize_server_url(" https://Licenses.Example.com:443/ ").unwrap(),
///     "https://licenses.example.com"
/// );
/// assert!(normalize_server_url("ftp://licenses.example.com").is_err());
/// ```
pub fn normalize_server_url(input: &str) -> Result<String, ClientError> {
    parse_server_url(input).map(|url| url_string(&url))
}

/// `http(s)://host[:port][/path]`, lower-cased and without a trailing slash.
pub(crate) fn parse_server_url(input: &str) -> Result<Url, ClientError> {
    let bad = |why: &str| ClientError::InvalidInput {
        reason: format!(
            "The license server URL {:?} is not valid: {why}. Enter a URL like \
             https://licenses.example.com.",
            clean(input)
        ),
    };
    let url = Url::parse(input.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("it must start with https:// or http://"));
    }
    if !url.has_host() {
        return Err(bad("it has no host name"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("it must not contain a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not contain ? or #"));
    }
    Ok(url)
}

pub(crate) fn url_string(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}
