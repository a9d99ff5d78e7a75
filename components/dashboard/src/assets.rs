//! The files of the page, embedded at build time, and the paths they answer on.

/// One embedded file.
pub struct Asset {
    /// The URL path it is served on.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// The file itself.
    pub body: &'static [u8],
    /// FNV-1a of the body, computed at compile time, for the `ETag`.
    hash: u64,
}

impl Asset {
    /// A strong `ETag`: changes whenever the embedded file does.
    pub fn etag(&self) -> String {
        format!("\"{:016x}\"", self.hash)
    }
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Declares an embedded file: `asset!("/assets/app.js", "assets/app.js", JS)`.
macro_rules! asset {
    ($path:literal, $file:literal, $type:expr) => {{
        const BODY: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $file));
        Asset {
            path: $path,
            content_type: $type,
            body: BODY,
            hash: fnv1a(BODY),
        }
    }};
}

/// Every file the dashboard serves. A path not listed here is a 404.
pub static ALL: &[Asset] = &[
    asset!("/", "index.html", HTML),
    asset!("/assets/app.css", "assets/app.css", CSS),
    asset!("/assets/favicon.svg", "assets/favicon.svg", SVG),
    asset!("/assets/app.js", "assets/app.js", JS),
    asset!("/assets/api.js", "assets/api.js", JS),
    asset!("/assets/format.js", "assets/format.js", JS),
    asset!("/assets/dom.js", "assets/dom.js", JS),
    asset!("/assets/chart.js", "assets/chart.js", JS),
    asset!("/assets/billing.js", "assets/billing.js", JS),
    asset!("/assets/transactions.js", "assets/transactions.js", JS),
    asset!("/assets/credits.js", "assets/credits.js", JS),
    asset!("/assets/payment-method.js", "assets/payment-method.js", JS),
    asset!("/assets/authentication.js", "assets/authentication.js", JS),
    asset!("/assets/stripe.js", "assets/stripe.js", JS),
    asset!("/assets/alerts.js", "assets/alerts.js", JS),
];

/// The file served on `path`, if any. Exact matches only: no directory walking.
pub fn find(path: &str) -> Option<&'static Asset> {
    ALL.iter().find(|a| a.path == path)
}

/// 64-bit FNV-1a; good enough to tell versions of a file apart.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}
