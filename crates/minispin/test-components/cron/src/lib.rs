//! A cron component for minispin's tests: each tick bumps `cron-count` and writes `cron-last` in the default key-value store.

spin_sdk::wit_bindgen::generate!({
    path: "../../wit/spin-cron",
    world: "spin-cron",
    runtime_path: "spin_sdk::wit_bindgen::rt",
});

use spin_sdk::key_value::Store;

struct Cron;

impl Guest for Cron {
    fn handle_cron_event(metadata: Metadata) -> Result<(), Error> {
        let store = Store::open_default().map_err(|e| Error::Other(format!("{e:?}")))?;
        let count = store
            .get("cron-count")
            .map_err(|e| Error::Other(format!("{e:?}")))?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        store
            .set("cron-count", (count + 1).to_string().as_bytes())
            .and_then(|()| store.set("cron-last", metadata.timestamp.to_string().as_bytes()))
            .map_err(|e| Error::Other(format!("{e:?}")))
    }
}

export!(Cron);
