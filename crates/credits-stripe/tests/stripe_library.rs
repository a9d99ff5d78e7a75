//! Webhook signatures cross-checked with Stripe's official library: headers made
//! by stripe-node's `generateTestHeaderString` (`tests/stripe-node`, installed
//! from npm on first run) are accepted; a changed body, another secret, a
//! timestamp over 300 s away or no `v1` is refused. Stripe's own check agrees on
//! every case but one: it accepts a timestamp from the future, which API.md
//! refuses beyond 300 s.

use std::path::Path;
use std::process::Command;

use credits_stripe::verify_signature;
use serde_json::Value;

/// Runs `tests/stripe-node/sign.mjs` (after `npm ci` when its modules are missing
/// or older than the lock file) and returns what it printed.
fn library_cases() -> Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/stripe-node");
    let installed = dir.join("node_modules/.package-lock.json");
    let lock = dir.join("package-lock.json");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&installed).is_none() || modified(&installed) < modified(&lock) {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&dir)
            .status()
            .expect("npm (Node.js) is needed for this test");
        assert!(status.success(), "npm ci in {}", dir.display());
    }
    let out = Command::new("node")
        .arg("sign.mjs")
        .current_dir(&dir)
        .output()
        .expect("node");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn headers_made_by_stripes_library_are_verified_as_api_md_says() {
    let run = library_cases();
    let secret = run["secret"].as_str().unwrap();
    let now = run["now"].as_i64().unwrap();
    let expected = [
        ("signed by the library", true),
        ("the body changed after signing", false),
        ("another secret", false),
        ("299 s old", true),
        ("301 s old", false),
        ("301 s ahead", false),
        ("a scheme other than v1", false),
    ];
    let cases = run["cases"].as_array().unwrap();
    assert_eq!(cases.len(), expected.len());
    for (case, (name, accepted)) in cases.iter().zip(expected) {
        assert_eq!(case["name"], name);
        let payload = case["payload"].as_str().unwrap().as_bytes();
        let header = case["header"].as_str().unwrap();
        let ours = verify_signature(payload, header, secret, now);
        assert_eq!(ours.is_ok(), accepted, "{name}: {header} -> {ours:?}");
        if name != "301 s ahead" {
            assert_eq!(
                case["stripe_accepts"], accepted,
                "Stripe's library on {name}"
            );
        }
    }
}
