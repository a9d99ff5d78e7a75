//! Spin cron component: the scheduled auto-recharge evaluation. The same domain
//! call answers `POST /api/internal/recharge-check` (the `recharge-check` component)
//! for platforms without the cron trigger.
// The export glue Spin's SDK generates is unsafe code (FFI exports); ours is not.
#![allow(unsafe_code)]

spin_sdk::wit_bindgen::generate!({
    world: "spin-cron",
    path: "wit",
    runtime_path: "spin_sdk::wit_bindgen::rt",
});

struct RechargeCron;

impl Guest for RechargeCron {
    fn handle_cron_event(metadata: Metadata) -> Result<(), Error> {
        let report = credits_spin::recharge_check().map_err(Error::Other)?;
        println!(
            "recharge-check at {}: checked {}, recharged {:?}, skipped {:?}, failed {:?}",
            metadata.timestamp, report.checked, report.recharged, report.skipped, report.failed
        );
        Ok(())
    }
}

export!(RechargeCron);
