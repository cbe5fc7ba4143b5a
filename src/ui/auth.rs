//! Access and CSRF.
//!
//! - Access: with a token (`NIGHTJAR_UI_TOKEN`, required off loopback),
//!   every request must carry it, as `Authorization: Bearer <token>` or as
//!   the cookie that `/login?token=<token>` sets (HttpOnly, SameSite=Strict).
//!   Comparisons take the same time whatever the input.
//! - CSRF: actions are POST only and carry this process's CSRF token, as
//!   the form field `csrf` or the `X-CSRF-Token` header; anything else is
//!   refused with 403. The token is random per process (a restart
//!   invalidates open forms), and a cross-site page cannot read it.

use std::io::Read;
use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::state::AppState;

/// The cookie `/login` sets.
pub const COOKIE: &str = "nightjar_ui_token";

/// The header API clients send the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// 32 random bytes from the OS, hex.
pub fn new_csrf_token() -> anyhow::Result<String> {
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Equal, in a time that depends only on the lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn presented_token(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        && let Some(t) = v.strip_prefix("Bearer ")
    {
        return Some(t.trim().to_string());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// Whether the Host a browser sent names this machine's loopback: without
/// a token, a page of another site that rebinds its DNS name to 127.0.0.1
/// could otherwise read pages (and the CSRF token) from the browser.
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return true; // HTTP/1.0 clients and tools; browsers always send one
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The access check, on every route but `/login`.
pub async fn require_token(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if st.opts.token.is_none() && !loopback_host(req.headers()) {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            "this nightjar UI serves loopback only (Host: localhost or 127.0.0.1); to serve other names, \
             bind it elsewhere with NIGHTJAR_UI_TOKEN set\n",
        )
            .into_response();
    }
    if let Some(token) = &st.opts.token
        && req.uri().path() != "/login"
    {
        let ok = presented_token(req.headers()).is_some_and(|t| ct_eq(t.as_bytes(), token.as_bytes()));
        if !ok {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "unauthorized: this nightjar UI needs its token (NIGHTJAR_UI_TOKEN): send `Authorization: Bearer <token>`, \
                 or open /login?token=<token> once in the browser\n",
            )
                .into_response();
        }
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    resp
}

#[derive(serde::Deserialize)]
pub struct LoginQuery {
    token: String,
}

/// `GET /login?token=...`: sets the access cookie and goes to the DAG list.
pub async fn login(State(st): State<Arc<AppState>>, Query(q): Query<LoginQuery>) -> Response {
    let Some(token) = &st.opts.token else {
        return Redirect::to("/").into_response();
    };
    if !ct_eq(q.token.as_bytes(), token.as_bytes()) {
        return (StatusCode::UNAUTHORIZED, "unauthorized: wrong token\n").into_response();
    }
    let cookie = format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict", q.token);
    let mut resp = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// Whether a presented CSRF token is this process's.
pub fn csrf_ok(st: &AppState, presented: Option<&str>) -> bool {
    presented.is_some_and(|p| ct_eq(p.as_bytes(), st.csrf.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_equality() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }

    #[test]
    fn tokens_come_from_the_header_or_the_cookie() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer s3cret"));
        assert_eq!(presented_token(&h).as_deref(), Some("s3cret"));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=b; nightjar_ui_token=t0k"));
        assert_eq!(presented_token(&h).as_deref(), Some("t0k"));
        assert_eq!(presented_token(&HeaderMap::new()), None);
    }

    #[test]
    fn only_loopback_hosts_pass_without_a_token() {
        let host = |h: &'static str| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, HeaderValue::from_static(h));
            loopback_host(&m)
        };
        assert!(host("127.0.0.1:8080") && host("localhost:8080") && host("[::1]:8080") && host("localhost"));
        assert!(!host("evil.example:8080") && !host("192.0.2.2:8080"));
    }

    #[test]
    fn csrf_tokens_are_random() {
        let (a, b) = (new_csrf_token().unwrap(), new_csrf_token().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
