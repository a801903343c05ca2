//! A flood of wrong sign-ins for the demo's organization admin: 1,000 at
//! once, each on its own connection, first all sharing one sign-in form from
//! one address, then from 1,000 addresses (`X-Forwarded-For` through a
//! trusted proxy, as a botnet would come). Prints how many were checked
//! (401: an argon2 run) and how many were turned away (429), how long the
//! flood took, and the server's peak memory after it.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::{vm_hwm_kib, Conn};

pub const FLOOD: usize = 1000;

/// The sign-in form's CSRF token (also the double-submit cookie's value).
fn csrf_of(body: &[u8]) -> String {
    let html = String::from_utf8_lossy(body);
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("csrf field") + marker.len();
    let end = html[start..].find('"').expect("csrf end") + start;
    html[start..end].to_owned()
}

fn get_login(host: &str) -> Vec<u8> {
    format!("GET /admin/login HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
}

fn post_login(host: &str, csrf: &str, email: &str, forwarded: Option<&str>) -> Vec<u8> {
    let body = format!("csrf={csrf}&email={email}&password=wrong+password&next=%2Fadmin");
    let xff = forwarded
        .map(|a| format!("X-Forwarded-For: {a}\r\n"))
        .unwrap_or_default();
    format!(
        "POST /admin/login HTTP/1.1\r\nHost: {host}\r\nCookie: ls_login_csrf={csrf}\r\n{xff}\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One flood; `shared` = one form for all, else a fresh form each and a
/// distinct address each.
async fn flood(addr: &str, pid: u32, email: &str, shared: bool) {
    let mut forms = Vec::with_capacity(FLOOD);
    let mut conns = Vec::with_capacity(FLOOD);
    let mut first = Conn::new(addr);
    let (_, body) = first.send(&get_login(addr)).await.expect("login page");
    let shared_csrf = csrf_of(&body);
    for _ in 0..FLOOD {
        let mut c = Conn::new(addr);
        let csrf = if shared {
            shared_csrf.clone()
        } else {
            let (_, body) = c.send(&get_login(addr)).await.expect("login page");
            csrf_of(&body)
        };
        forms.push(csrf);
        conns.push(c);
    }
    let start = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .zip(forms)
        .enumerate()
        .map(|(i, (mut c, csrf))| {
            let forwarded =
                (!shared).then(|| format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256));
            let request = post_login(addr, &csrf, email, forwarded.as_deref());
            tokio::task::spawn_local(async move {
                let sent = Instant::now();
                let status = c.send(&request).await.map(|(s, _)| s).unwrap_or(0);
                (status, sent.elapsed())
            })
        })
        .collect();
    let mut statuses = BTreeMap::new();
    let mut slowest = Duration::ZERO;
    for t in tasks {
        let (status, took) = t.await.expect("task");
        *statuses.entry(status).or_insert(0u32) += 1;
        slowest = slowest.max(took);
    }
    let label = if shared {
        "1 shared form, 1 address"
    } else {
        "1,000 forms, 1,000 addresses"
    };
    println!(
        "sign-in flood ({label}): {FLOOD} wrong sign-ins at once in {:.2} s, slowest {:.0} ms; \
         answers {statuses:?} (401 = password checked, 429 = turned away before argon2); \
         server VmHWM {:.1} MiB",
        start.elapsed().as_secs_f64(),
        slowest.as_secs_f64() * 1000.0,
        vm_hwm_kib(pid) as f64 / 1024.0
    );
}

/// Both floods, on the local task set this runs in.
pub async fn run(addr: &str, pid: u32, email: &str) {
    println!(
        "server VmHWM before the sign-in floods: {:.1} MiB",
        vm_hwm_kib(pid) as f64 / 1024.0
    );
    let local = tokio::task::LocalSet::new();
    local.run_until(flood(addr, pid, email, true)).await;
    // The second flood targets another account's worth of backoff: wait
    // out the first one's (at most a minute) so that it starts fresh.
    tokio::time::sleep(Duration::from_secs(61)).await;
    local.run_until(flood(addr, pid, email, false)).await;
}
