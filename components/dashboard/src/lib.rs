//! The billing dashboard: serves `/` and `/assets/...` from files embedded at build time.
//!
//! The page needs no auth to load: it asks for an account key and talks to the public
//! API itself. Nothing here touches storage; the component is a static file server
//! with the API's error shape and strict security headers.
// The export glue Spin's SDK generates is unsafe code (FFI exports); ours is not.
#![allow(unsafe_code)]

mod assets;

use assets::Asset;
use http::{HeaderValue, Method, Response, StatusCode, header};

/// Only our own files may run, load or be connected to; nothing may frame the page.
/// The one exception is Stripe.js, which Stripe requires to be loaded from
/// `https://js.stripe.com` (never bundled or self-hosted) and which draws the card
/// form and the bank's confirmation in frames from there: that origin, exactly,
/// for scripts and frames. The page adds its script only when the account pays
/// through Stripe.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; \
script-src 'self' https://js.stripe.com; frame-src https://js.stripe.com; style-src 'self'; \
img-src 'self' data:; connect-src 'self' https://api.stripe.com; object-src 'none'; base-uri 'none'; \
frame-ancestors 'none'; form-action 'self'";

/// The component's export. The SDK's macro expands to the `unsafe` ABI glue the
/// workspace lints deny elsewhere (and takes the request by value); it is allowed in
/// this module only.
#[allow(
    unsafe_code,
    clippy::needless_pass_by_value,
    clippy::same_length_and_capacity
)]
mod entry {
    use http::{Request, Response, header};

    /// Entry point: every request routed to this component by `spin.toml`.
    #[spin_sdk::http_component]
    fn handle(req: Request<()>) -> Response<Vec<u8>> {
        let if_none_match = req
            .headers()
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok());
        super::respond(req.method(), req.uri().path(), if_none_match)
    }
}

/// Routes a request: unknown path (404), then wrong method (405), then the file.
fn respond(method: &Method, path: &str, if_none_match: Option<&str>) -> Response<Vec<u8>> {
    let Some(asset) = assets::find(path) else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no such page or asset: {path}"),
        );
    };
    if method != Method::GET && method != Method::HEAD {
        let mut response = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            &format!("{method} is not allowed here; use GET or HEAD"),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    serve(asset, method == Method::HEAD, if_none_match)
}

/// Answers with an embedded file, or `304` when the browser's copy is current.
fn serve(asset: &Asset, head: bool, if_none_match: Option<&str>) -> Response<Vec<u8>> {
    let etag = asset.etag();
    let fresh = if_none_match.is_some_and(|tags| {
        tags.split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.trim_start_matches("W/") == etag)
    });
    let (status, body) = if fresh {
        (StatusCode::NOT_MODIFIED, Vec::new())
    } else if head {
        (StatusCode::OK, Vec::new())
    } else {
        (StatusCode::OK, asset.body.to_vec())
    };
    // No Content-Length for HEAD: the WASI HTTP host checks it against the (empty) body.
    with_security_headers(Response::builder().status(status))
        .header(header::CONTENT_TYPE, asset.content_type)
        // Revalidate every time: file names carry no version, and a 304 is cheap.
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::ETAG, etag)
        .body(body)
        .expect("static headers are valid")
}

/// The API's error shape: `{"error": {"code": ..., "message": ...}}`.
fn error(status: StatusCode, code: &str, message: &str) -> Response<Vec<u8>> {
    let body = format!(
        r#"{{"error":{{"code":"{}","message":"{}"}}}}"#,
        json_escape(code),
        json_escape(message)
    );
    with_security_headers(Response::builder().status(status))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(body.into_bytes())
        .expect("static headers are valid")
}

/// Headers every answer carries, errors included.
fn with_security_headers(builder: http::response::Builder) -> http::response::Builder {
    builder
        .header("content-security-policy", CONTENT_SECURITY_POLICY)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::REFERRER_POLICY, "no-referrer")
        .header(header::X_FRAME_OPTIONS, "DENY")
}

/// Escapes a string for a JSON string literal (the path comes from the client).
fn json_escape(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 || c == '<' || c == '>' || c == '&' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Response<Vec<u8>> {
        respond(&Method::GET, path, None)
    }

    fn header<'a>(r: &'a Response<Vec<u8>>, name: &str) -> &'a str {
        r.headers().get(name).unwrap().to_str().unwrap()
    }

    #[test]
    fn index_is_html_with_a_strict_policy() {
        let r = get("/");
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");
        assert!(header(&r, "content-security-policy").contains("script-src 'self'"));
        assert_eq!(header(&r, "x-content-type-options"), "nosniff");
        assert!(String::from_utf8_lossy(r.body()).contains("<script type=\"module\""));
    }

    #[test]
    fn only_stripe_js_is_let_in_and_only_for_scripts_and_frames() {
        let r = get("/");
        let policy = header(&r, "content-security-policy");
        let directive = |name: &str| {
            policy
                .split(';')
                .map(str::trim)
                .find_map(|d| d.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
                .unwrap_or_else(|| panic!("no {name} in {policy}"))
        };
        assert_eq!(directive("script-src"), "'self' https://js.stripe.com");
        assert_eq!(directive("frame-src"), "https://js.stripe.com");
        // Stripe.js calls Stripe's API from the page when it confirms.
        assert_eq!(directive("connect-src"), "'self' https://api.stripe.com");
        assert_eq!(policy.matches("stripe").count(), 3, "{policy}");
        assert!(
            !policy.contains('*') && !policy.contains("https: "),
            "{policy}"
        );
    }

    #[test]
    fn assets_have_their_types() {
        assert_eq!(
            header(&get("/assets/app.js"), "content-type"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            header(&get("/assets/app.css"), "content-type"),
            "text/css; charset=utf-8"
        );
        assert_eq!(
            header(&get("/assets/favicon.svg"), "content-type"),
            "image/svg+xml"
        );
    }

    #[test]
    fn every_module_the_page_imports_is_served() {
        for asset in assets::ALL {
            let text = String::from_utf8_lossy(asset.body);
            for line in text
                .lines()
                .filter(|l| l.trim_start().starts_with("import "))
            {
                let spec = line.split(['\'', '"']).nth(1).unwrap();
                let path = format!("/assets/{}", spec.trim_start_matches("./"));
                assert_eq!(get(&path).status(), 200, "{} imports {spec}", asset.path);
            }
        }
    }

    #[test]
    fn unknown_asset_is_the_api_not_found() {
        let r = get("/assets/nope.js");
        assert_eq!(r.status(), 404);
        assert_eq!(header(&r, "content-type"), "application/json");
        let body = String::from_utf8(r.body().clone()).unwrap();
        assert!(
            body.starts_with(r#"{"error":{"code":"not_found","message":"#),
            "{body}"
        );
        assert_eq!(get("/assets/../lib.rs").status(), 404);
        assert_eq!(get("/index.html").status(), 404);
    }

    #[test]
    fn other_methods_are_refused_after_the_route() {
        let r = respond(&Method::POST, "/", None);
        assert_eq!(r.status(), 405);
        assert_eq!(header(&r, "allow"), "GET, HEAD");
        assert!(String::from_utf8_lossy(r.body()).contains("method_not_allowed"));
        assert_eq!(
            respond(&Method::DELETE, "/assets/missing", None).status(),
            404
        );
    }

    #[test]
    fn head_has_headers_and_no_body() {
        let r = respond(&Method::HEAD, "/", None);
        assert_eq!(r.status(), 200);
        assert!(r.body().is_empty());
        assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");
    }

    #[test]
    fn a_current_etag_gets_not_modified() {
        let etag = header(&get("/assets/app.js"), "etag").to_owned();
        let r = respond(&Method::GET, "/assets/app.js", Some(&etag));
        assert_eq!(r.status(), 304);
        assert!(r.body().is_empty());
        assert_eq!(
            respond(&Method::GET, "/assets/app.js", Some("\"x\"")).status(),
            200
        );
    }

    #[test]
    fn error_messages_are_escaped() {
        let r = get("/assets/\"<x>");
        let body = String::from_utf8(r.body().clone()).unwrap();
        assert!(body.contains(r#"\"\u003cx\u003e"#), "{body}");
    }
}
