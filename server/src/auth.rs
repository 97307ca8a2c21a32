//! The API's two guards. Browser guards ([`same_origin`]): loopback host names only on a
//! loopback server, same-origin requests only, no `Origin: null`. Token auth
//! ([`require_token`]): when `booflow serve` has a token (`--token` / `BOOFLOW_TOKEN`;
//! required on a non-loopback address, at least [`crate::MIN_TOKEN_LEN`] bytes there),
//! `/api/*` and `/metrics` need `Authorization: Bearer <token>` or `?token=<token>`
//! (browsers cannot set headers on a WebSocket). The pane's static files are public: they
//! hold no data.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use anyhow::bail;
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq as _;

use crate::error::ApiError;
use crate::state::AppState;

/// The token a request carries, from its header or query string.
fn presented(request: &Request) -> Option<String> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION)
        && let Ok(text) = value.to_str()
        && let Some(token) = text.strip_prefix("Bearer ")
    {
        return Some(token.trim().to_string());
    }
    // Percent-decoded, as the pane encodes it.
    Query::<HashMap<String, String>>::try_from_uri(request.uri())
        .ok()
        .and_then(|Query(mut params)| params.remove("token"))
}

/// Whether `host` (a `Host` header or an origin's authority) names this machine's loopback:
/// exactly `localhost`, an IPv4 literal in 127.0.0.0/8 or `[::1]`, each with an optional
/// `:port` (digits). Names are matched whole, never by prefix: `127.attacker.example` is a
/// DNS name an attacker controls, not a loopback address (DNS rebinding; the README's
/// server section).
pub(crate) fn loopback_host(host: &str) -> bool {
    // Split off the port: after `]` for an IPv6 literal, after the first `:` otherwise.
    let (name, port, v6) = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((name, port)) => (name, port, true),
            None => return false,
        },
        None => match host.find(':') {
            Some(colon) => (&host[..colon], &host[colon..], false),
            None => (host, "", false),
        },
    };
    let port_ok = match port.strip_prefix(':') {
        None => port.is_empty(),
        Some(digits) => {
            !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && digits.parse::<u16>().is_ok()
        }
    };
    if !port_ok {
        return false;
    }
    if v6 {
        return name.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
    }
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// Guards the API against other web pages: a browser on this machine visiting a hostile
/// site must not be able to drive the server (cross-site requests; DNS rebinding, where a
/// hostile name resolves to 127.0.0.1). A loopback-bound server answers only to loopback
/// host names ([`loopback_host`]); a request that carries an `Origin` must come from the
/// pane's own origin, and `Origin: null` (sandboxed iframes, `file://` pages, cross-origin
/// redirects) is refused, since any page can make itself `null`. Non-browser clients
/// (curl, scripts) send no `Origin` and are unaffected.
///
/// Applied to every route of the API router (`/api/*`, the `/api/ws` upgrade, `/metrics`),
/// so a route added there is guarded too. Errors: 403 `{"error": "…"}` saying which rule
/// refused the request.
pub async fn same_origin(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    // Read out before any await: a borrow of the request would make the future non-Send.
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    // `Some(None)`: an Origin that is not text, which no browser sends; refused below
    // rather than taken for "no Origin".
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .map(|v| v.to_str().ok().map(str::to_string));
    if state.loopback && !loopback_host(&host) {
        return forbidden(format!(
            "Host '{host}' is not this server's address; open it as http://127.0.0.1:<port> or http://localhost:<port>"
        ));
    }
    match origin {
        None => {}
        Some(None) => return forbidden("the Origin header is not valid text".to_string()),
        Some(Some(origin)) if origin.trim().eq_ignore_ascii_case("null") => {
            return forbidden(
                "requests with 'Origin: null' (a sandboxed iframe, a file:// page) are refused: \
                 such a page could be anyone's; use the pane this server serves"
                    .to_string(),
            );
        }
        Some(Some(origin)) => {
            let authority = origin.split_once("://").map(|(_, a)| a).unwrap_or(&origin);
            if !authority.eq_ignore_ascii_case(&host) {
                return forbidden(format!(
                    "cross-origin request from {origin} refused; use the pane this server serves"
                ));
            }
        }
    }
    next.run(request).await
}

fn forbidden(message: String) -> Response {
    ApiError::new(StatusCode::FORBIDDEN, message).into_response()
}

/// Compares in constant time for equal lengths (`subtle`), so the time taken does not tell
/// how much of a guess was right. The length itself is not secret: it is at least
/// [`crate::MIN_TOKEN_LEN`] bytes on any non-loopback server.
fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Requires the server's token (when it has one) on every route of the API router: 401
/// `{"error": "…"}` when it is missing or wrong. A non-loopback bind needs a token of at
/// least [`crate::MIN_TOKEN_LEN`] bytes (docs/DESIGN.md §6: binding a non-loopback address
/// requires a token).
pub async fn require_token(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = &state.token else {
        return next.run(request).await;
    };
    match presented(&request) {
        Some(token) if same(&token, expected) => next.run(request).await,
        Some(_) => ApiError::new(StatusCode::UNAUTHORIZED, "the token is wrong").into_response(),
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this server needs a token: send 'Authorization: Bearer <token>' or add ?token=<token>",
        )
        .into_response(),
    }
}

/// Checks `booflow serve`'s token before the socket is bound. Returns a warning to print
/// for a token shorter than [`crate::MIN_TOKEN_LEN`] bytes on a loopback address (only this
/// machine can guess at it there).
///
/// Errors, each naming `--token`/`BOOFLOW_TOKEN`: a token that is all whitespace (anywhere);
/// on a non-loopback `bind`, no token or one shorter than [`crate::MIN_TOKEN_LEN`] bytes
/// (docs/DESIGN.md §6: a non-loopback address requires a token; a short one can be guessed over
/// the network).
pub(crate) fn check_token(bind: SocketAddr, token: Option<&str>) -> anyhow::Result<Option<String>> {
    let min = crate::MIN_TOKEN_LEN;
    let loopback = bind.ip().is_loopback();
    match token {
        Some(token) if token.trim().is_empty() => bail!(
            "--token / BOOFLOW_TOKEN is all whitespace; pass a secret of at least {min} bytes (e.g. `openssl rand -hex 16`)"
        ),
        None if !loopback => bail!(
            "--bind {bind}: a non-loopback address needs a token; pass --token <secret> or set BOOFLOW_TOKEN (at least {min} bytes, e.g. `openssl rand -hex 16`)"
        ),
        Some(token) if token.len() < min && !loopback => bail!(
            "--bind {bind}: the token (--token / BOOFLOW_TOKEN) is {} bytes; a non-loopback address needs at least {min} bytes (e.g. `openssl rand -hex 16`)",
            token.len()
        ),
        Some(token) if token.len() < min => Ok(Some(format!(
            "the token (--token / BOOFLOW_TOKEN) is {} bytes, shorter than the {min} a non-loopback address requires; fine on loopback only",
            token.len()
        ))),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_loopback_names_are_loopback() {
        for host in [
            "localhost",
            "LOCALHOST:7420",
            "127.0.0.1",
            "127.0.0.1:7420",
            "127.1.2.3:80",
            "[::1]",
            "[::1]:7420",
        ] {
            assert!(loopback_host(host), "{host} is loopback");
        }
        for host in [
            "",
            "127.attacker.example",
            "127.attacker.example:7420",
            "127.0.0.1.attacker.example",
            "localhost.attacker.example",
            "attacker.localhost",
            "128.0.0.1",
            "127.1",
            "127.0.0.01",
            "127.0.0.1:",
            "127.0.0.1:port",
            "127.0.0.1:99999",
            "127.0.0.1:80:80",
            "localhost:7420@attacker.example",
            "::1",
            "[::1",
            "[::2]:7420",
            "[::1]x",
        ] {
            assert!(!loopback_host(host), "{host} is not loopback");
        }
    }

    #[test]
    fn tokens_are_checked_against_the_bind_address() {
        let public: SocketAddr = "0.0.0.0:7420".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:7420".parse().unwrap();
        let long = "0123456789abcdef";
        assert_eq!(check_token(public, Some(long)).unwrap(), None);
        assert_eq!(check_token(local, None).unwrap(), None);
        let error = check_token(public, Some("x")).unwrap_err().to_string();
        assert!(
            error.contains("--token") && error.contains("BOOFLOW_TOKEN") && error.contains("16"),
            "{error}"
        );
        assert!(check_token(public, None).is_err());
        let warning = check_token(local, Some("x")).unwrap().expect("a warning");
        assert!(warning.contains("16"), "{warning}");
        for blank in [" ", "\t", &" ".repeat(20)] {
            assert!(check_token(local, Some(blank)).is_err(), "{blank:?}");
            assert!(check_token(public, Some(blank)).is_err(), "{blank:?}");
        }
    }

    #[test]
    fn tokens_compare_equal_only_when_identical() {
        assert!(same("0123456789abcdef", "0123456789abcdef"));
        assert!(!same("0123456789abcdef", "0123456789abcdeF"));
        assert!(!same("0123456789abcdef", "0123456789abcde"));
        assert!(!same("", "x"));
    }
}
