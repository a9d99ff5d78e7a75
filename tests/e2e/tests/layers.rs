//! The workspace's layers, as Cargo resolves them: what each crate may not
//! reach through its normal dependencies (dev-dependencies are free). A newcomer
//! reads the architecture in the README; this keeps it true.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use serde_json::Value;

/// Every package name reachable from `root` through normal and build
/// dependencies, `root` included.
fn reachable(metadata: &Value, root: &str) -> BTreeSet<String> {
    let names: HashMap<&str, &str> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: HashMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .expect("resolve.nodes")
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let start = names
        .iter()
        .find_map(|(id, name)| (*name == root).then_some(*id))
        .unwrap_or_else(|| panic!("{root} is not in the workspace"));
    let mut seen = BTreeSet::new();
    let mut todo = vec![start];
    while let Some(id) = todo.pop() {
        if !seen.insert(names[id].to_owned()) {
            continue;
        }
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let not_dev_only = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].as_str() != Some("dev"));
            if not_dev_only {
                todo.push(dep["pkg"].as_str().unwrap());
            }
        }
    }
    seen
}

fn metadata() -> Value {
    let output = Command::new(env!("CARGO"))
        // `--locked`: read the lock file as committed, never rewrite it.
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cargo metadata answers JSON")
}

fn assert_never_reaches(metadata: &Value, krate: &str, forbidden: &[&str]) {
    let closure = reachable(metadata, krate);
    let found: Vec<&&str> = forbidden.iter().filter(|f| closure.contains(**f)).collect();
    assert!(found.is_empty(), "{krate} depends on {found:?}");
}

#[test]
fn each_layer_reaches_only_what_it_needs() {
    let metadata = metadata();
    // The domain knows nothing of Spin, HTTP, Stripe or a SQLite build.
    assert_never_reaches(
        &metadata,
        "credits",
        &[
            "spin-sdk",
            "http",
            "credits-stripe",
            "credits-api",
            "rusqlite",
            "wasmtime",
        ],
    );
    // The service is put together with no transport: the routes and the cron
    // component both start from it.
    assert_never_reaches(
        &metadata,
        "credits-service",
        &["credits-api", "spin-sdk", "http", "rusqlite", "wasmtime"],
    );
    // The HTTP contract runs on plain `http` types, on any host.
    assert_never_reaches(
        &metadata,
        "credits-api",
        &["spin-sdk", "rusqlite", "wasmtime"],
    );
    // The Spin adapters serve no route; the scheduled check links no HTTP contract.
    assert_never_reaches(
        &metadata,
        "credits-spin",
        &["credits-api", "credits-spin-http"],
    );
    assert_never_reaches(
        &metadata,
        "recharge-cron",
        &["credits-api", "credits-spin-http"],
    );
    // ... while it still starts where the routes start.
    assert!(reachable(&metadata, "recharge-cron").contains("credits-service"));
}
