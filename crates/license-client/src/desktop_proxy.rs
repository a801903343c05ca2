//! The desktop's proxy settings, for a console whose environment names no
//! proxy: GNOME's `org.gnome.system.proxy` (what GNOME Settings → Network →
//! Proxy writes), read with `gsettings`. They are turned into the variables
//! the environment would hold (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`), so
//! one decision, [`crate::connectivity::select_proxy`], picks the proxy for
//! the client ([`crate::ClientConfig::desktop_proxy`]) and for the
//! connectivity check alike.
//!
//! Not followed: the automatic mode (a PAC file) and SOCKS hosts; the
//! connectivity check then shows no proxy, and `HTTPS_PROXY` is the way.

use std::process::{Command, Stdio};

/// Where [`DesktopProxy`] settings came from, as the connectivity check
/// names them.
pub const GNOME_SOURCE: &str = "GNOME proxy settings";

/// The variables a process environment uses for proxies; when any is set,
/// the environment decides and the desktop's settings are not read.
pub const PROXY_VARIABLES: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The desktop's proxy settings as environment variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesktopProxy {
    /// Where they came from ([`GNOME_SOURCE`]).
    pub source: String,
    vars: Vec<(&'static str, String)>,
}

impl DesktopProxy {
    /// The value the variable `name` would have.
    pub fn get(&self, name: &str) -> Option<String> {
        self.vars
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }

    /// From GNOME's settings as `get(schema, key)` returns them (the text
    /// `gsettings get` prints). `None` unless the mode is `'manual'` with an
    /// HTTP or HTTPS proxy host.
    pub fn from_gnome(get: &mut dyn FnMut(&str, &str) -> Option<String>) -> Option<Self> {
        const BASE: &str = "org.gnome.system.proxy";
        if string(&get(BASE, "mode")?)? != "manual" {
            return None;
        }
        let http = format!("{BASE}.http");
        let credentials = if get(&http, "use-authentication").as_deref() == Some("true") {
            let user = get(&http, "authentication-user").and_then(|v| string(&v));
            let password = get(&http, "authentication-password").and_then(|v| string(&v));
            match user.filter(|u| !u.is_empty()) {
                Some(user) => format!(
                    "{}:{}@",
                    encode(&user),
                    encode(&password.unwrap_or_default())
                ),
                None => String::new(),
            }
        } else {
            String::new()
        };
        let mut vars = Vec::new();
        for (scheme, variable) in [("https", "HTTPS_PROXY"), ("http", "HTTP_PROXY")] {
            let schema = format!("{BASE}.{scheme}");
            let host = get(&schema, "host").and_then(|v| string(&v));
            let port = get(&schema, "port").and_then(|v| v.trim().parse::<u16>().ok());
            if let (Some(host), Some(port)) = (host.filter(|h| !h.trim().is_empty()), port) {
                if port > 0 {
                    let host = host.trim();
                    let host = if host.contains(':') && !host.starts_with('[') {
                        format!("[{host}]")
                    } else {
                        host.to_owned()
                    };
                    vars.push((variable, format!("http://{credentials}{host}:{port}")));
                }
            }
        }
        if vars.is_empty() {
            return None;
        }
        let ignore = get(BASE, "ignore-hosts")
            .map(|v| strings(&v))
            .unwrap_or_default();
        if !ignore.is_empty() {
            vars.push(("NO_PROXY", ignore.join(",")));
        }
        Some(Self {
            source: GNOME_SOURCE.to_owned(),
            vars,
        })
    }

    /// The desktop's settings when the environment (`env`) names no proxy:
    /// GNOME's, read with the `gsettings` command. `None` when the
    /// environment decides, without `gsettings`, or with no manual proxy.
    pub fn when_environment_has_none(env: &dyn Fn(&str) -> Option<String>) -> Option<Self> {
        let named = PROXY_VARIABLES
            .iter()
            .any(|name| env(name).is_some_and(|v| !v.trim().is_empty()));
        if named {
            return None;
        }
        Self::from_gnome(&mut |schema, key| {
            gsettings_get(&mut Command::new("gsettings"), schema, key)
        })
    }
}

/// Runs `command get SCHEMA KEY` (the `gsettings` command, with whatever
/// environment the caller gave it) and returns what it printed; `None` if
/// it could not run or failed (no such schema: not a GNOME desktop).
pub fn gsettings_get(command: &mut Command, schema: &str, key: &str) -> Option<String> {
    let output = command
        .args(["get", schema, key])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// A GVariant string as `gsettings` prints it (`'text'`, with `\'` and `\\`
/// escapes), unquoted; `None` if it is not one.
fn string(printed: &str) -> Option<String> {
    let printed = printed.trim();
    let inner = printed
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| printed.strip_prefix('"').and_then(|s| s.strip_suffix('"')))?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// A GVariant array of strings as `gsettings` prints it
/// (`['localhost', '127.0.0.0/8']`, or `@as []`).
fn strings(printed: &str) -> Vec<String> {
    let printed = printed.trim().trim_start_matches("@as").trim();
    let Some(inner) = printed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) else {
        return Vec::new();
    };
    inner
        .split(',')
        .filter_map(string)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `%XX` encoding of a URL's user name or password.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gnome(settings: &[(&str, &str, &str)]) -> Option<DesktopProxy> {
        DesktopProxy::from_gnome(&mut |schema, key| {
            settings
                .iter()
                .find(|(s, k, _)| *s == schema && *k == key)
                .map(|(_, _, v)| v.to_string())
        })
    }

    const MANUAL: (&str, &str, &str) = ("org.gnome.system.proxy", "mode", "'manual'");

    #[test]
    fn manual_https_and_http_hosts_become_the_variables() {
        let p = gnome(&[
            MANUAL,
            (
                "org.gnome.system.proxy.https",
                "host",
                "'proxy.corp.example'",
            ),
            ("org.gnome.system.proxy.https", "port", "3128"),
            ("org.gnome.system.proxy.http", "host", "'web.corp.example'"),
            ("org.gnome.system.proxy.http", "port", "8080"),
            (
                "org.gnome.system.proxy",
                "ignore-hosts",
                "['localhost', '127.0.0.0/8', '::1', '.corp.example']",
            ),
        ])
        .unwrap();
        assert_eq!(p.source, GNOME_SOURCE);
        assert_eq!(
            p.get("HTTPS_PROXY").as_deref(),
            Some("http://proxy.corp.example:3128")
        );
        assert_eq!(
            p.get("HTTP_PROXY").as_deref(),
            Some("http://web.corp.example:8080")
        );
        assert_eq!(
            p.get("NO_PROXY").as_deref(),
            Some("localhost,127.0.0.0/8,::1,.corp.example")
        );
        assert_eq!(p.get("ALL_PROXY"), None);
    }

    #[test]
    fn credentials_are_encoded_into_the_url() {
        let p = gnome(&[
            MANUAL,
            ("org.gnome.system.proxy.https", "host", "'p'"),
            ("org.gnome.system.proxy.https", "port", "1"),
            ("org.gnome.system.proxy.http", "use-authentication", "true"),
            (
                "org.gnome.system.proxy.http",
                "authentication-user",
                "'ann'",
            ),
            (
                "org.gnome.system.proxy.http",
                "authentication-password",
                "'it\\'s @secret'",
            ),
        ])
        .unwrap();
        assert_eq!(
            p.get("HTTPS_PROXY").as_deref(),
            Some("http://ann:it%27s%20%40secret@p:1")
        );
    }

    #[test]
    fn other_modes_and_empty_hosts_are_no_proxy() {
        for mode in ["'none'", "'auto'"] {
            assert_eq!(
                gnome(&[
                    ("org.gnome.system.proxy", "mode", mode),
                    ("org.gnome.system.proxy.https", "host", "'p'"),
                    ("org.gnome.system.proxy.https", "port", "1"),
                ]),
                None,
                "{mode}"
            );
        }
        assert_eq!(
            gnome(&[
                MANUAL,
                ("org.gnome.system.proxy.https", "host", "''"),
                ("org.gnome.system.proxy.https", "port", "0"),
                ("org.gnome.system.proxy.socks", "host", "'s'"),
                ("org.gnome.system.proxy.socks", "port", "1080"),
            ]),
            None,
            "SOCKS alone is not followed"
        );
        assert_eq!(gnome(&[]), None, "no GNOME schema: no desktop proxy");
    }

    #[test]
    fn a_proxy_in_the_environment_wins() {
        let env = |name: &str| (name == "https_proxy").then(|| "http://env:1".to_owned());
        assert_eq!(DesktopProxy::when_environment_has_none(&env), None);
    }

    #[test]
    fn gvariant_text_is_read() {
        assert_eq!(string("'a\\\\b'").as_deref(), Some("a\\b"));
        assert_eq!(string("3128"), None);
        assert_eq!(strings("@as []"), Vec::<String>::new());
        assert_eq!(strings("['a', 'b']"), vec!["a", "b"]);
    }
}
