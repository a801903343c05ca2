//! Signing keys, for vendor operators: which key signs, which older ones
//! still verify, rotation of the signing and refresh-successor keys, and
//! withdrawal of a key believed compromised. The same as `license-server
//! keys …` on the command line; both go through `crate::keys`.

use askama::Template;
use axum::extract::{Path, State};

use super::audit::record_vendor;
use super::page::{fmt_time, render, see_other, Layout, PageResult};
use super::session::{Confirmed, ManageKeys, Permitted, Session};
use crate::error::Error;
use crate::keys::{self, KeyRing};
use crate::store::KeyRow;
use crate::AppState;

struct KeyView {
    kid: String,
    state: &'static str,
    /// The pill's class: ok, warn or bad.
    tone: &'static str,
    published: bool,
    created: String,
    retired: String,
    /// Until when tokens it signed may still be presented.
    last_exp: String,
    private_key: &'static str,
    may_withdraw: bool,
}

impl KeyView {
    fn of(row: KeyRow, ring: &KeyRing) -> KeyView {
        let (state, tone) = match (row.withdrawn_at, row.retired_at) {
            (Some(_), _) => ("Withdrawn", "bad"),
            (None, None) => ("Signing", "ok"),
            (None, Some(_)) => ("Retired", "warn"),
        };
        KeyView {
            published: ring.jwks.find(&row.kid).is_some(),
            created: fmt_time(Some(row.created_at)),
            retired: fmt_time(row.withdrawn_at.or(row.retired_at)),
            last_exp: fmt_time((row.last_exp > 0).then_some(row.last_exp)),
            private_key: match row.secret_key.is_empty() {
                true => "erased",
                false => "kept",
            },
            may_withdraw: row.withdrawn_at.is_none(),
            kid: row.kid,
            state,
            tone,
        }
    }
}

struct SuccessorView {
    id: i64,
    created: String,
    use_: &'static str,
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    l: Layout,
    keys: Vec<KeyView>,
    successors: Vec<SuccessorView>,
}

pub(super) async fn page(
    State(state): State<AppState>,
    Permitted { session, .. }: Permitted<ManageKeys>,
) -> PageResult {
    let org = session.current_org(&state).await?;
    let ring = state.keys.ring();
    let mut rows = state.db.keys().await?;
    rows.reverse();
    let successors = state.db.successor_key_times().await?;
    Ok(render(&KeysPage {
        l: Layout::of(&session, org.as_ref(), "keys"),
        keys: rows.into_iter().map(|r| KeyView::of(r, &ring)).collect(),
        successors: successors
            .into_iter()
            .enumerate()
            .map(|(i, (id, at))| SuccessorView {
                id,
                created: fmt_time(Some(at)),
                use_: match i {
                    0 => "Derives new refresh tokens",
                    _ => "Checks retries of older refresh tokens",
                },
            })
            .collect(),
    }))
}

/// After a key change: this replica signs and verifies with the new keys at
/// once (others within their reload interval), and the admin sees the keys.
async fn applied(state: &AppState, session: &Session, action: &str, detail: String) -> PageResult {
    record_vendor(state, session, action, detail).await?;
    keys::reload_keys(state, state.now()).await;
    see_other("/admin/keys")
}

/// "Rotate signing key": a new key signs from now on.
pub(super) async fn rotate(
    State(state): State<AppState>,
    Permitted { session, .. }: Permitted<ManageKeys>,
    _: Confirmed,
) -> PageResult {
    let kid = keys::rotate(&state.db, state.now()).await?;
    applied(
        &state,
        &session,
        "keys.rotated",
        format!("new signing key {kid}"),
    )
    .await
}

/// "Rotate refresh-successor key".
pub(super) async fn rotate_successor(
    State(state): State<AppState>,
    Permitted { session, .. }: Permitted<ManageKeys>,
    _: Confirmed,
) -> PageResult {
    let id = keys::rotate_successor_key(&state.db, state.now()).await?;
    let detail = format!("new refresh-successor key {id}");
    applied(&state, &session, "keys.successor_rotated", detail).await
}

#[derive(Template)]
#[template(path = "key_withdraw.html")]
struct WithdrawPage {
    l: Layout,
    key: KeyView,
}

/// "Withdraw": asks first, on a page of its own.
pub(super) async fn confirm_withdraw(
    State(state): State<AppState>,
    Permitted { session, .. }: Permitted<ManageKeys>,
    Path(kid): Path<String>,
) -> PageResult {
    let row = state
        .db
        .keys()
        .await?
        .into_iter()
        .find(|r| r.kid == kid && r.withdrawn_at.is_none())
        .ok_or(Error::NotFound)?;
    let org = session.current_org(&state).await?;
    Ok(render(&WithdrawPage {
        l: Layout::of(&session, org.as_ref(), "keys"),
        key: KeyView::of(row, &state.keys.ring()),
    }))
}

pub(super) async fn withdraw(
    State(state): State<AppState>,
    Permitted { session, .. }: Permitted<ManageKeys>,
    Path(kid): Path<String>,
    _: Confirmed,
) -> PageResult {
    let withdrawn = keys::withdraw(&state.db, &kid, state.now())
        .await?
        .ok_or(Error::NotFound)?;
    applied(&state, &session, "keys.withdrawn", withdrawn.describe(&kid)).await
}
