//! Puts the credits service together — the one place that does: the stores the
//! platform hands over, the payment provider the configuration names, and the
//! request's clock. The HTTP routes and the scheduled component both start here.

use credits::{
    Clock, Credits, CreditsError, Database, DeliveryReport, EventTransport, EventsTarget,
    FixedClock, KeyValue, PaymentProvider, RechargeReport, SystemClock, Timestamp,
};
use credits_sandbox::SandboxPayments;

/// What the platform gives one request or tick.
#[derive(Clone, Copy)]
pub struct Stores<'a> {
    /// The source of truth for money (Spin's `default` `SQLite` database).
    pub db: &'a dyn Database,
    /// Rebuildable lookups (the account-key cache).
    pub cache: &'a dyn KeyValue,
}

/// Which payment provider charges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PaymentConfig {
    /// Stripe's test-mode outcomes without a network (the default).
    #[default]
    Sandbox,
}

/// How the service is configured (from Spin variables, in a component).
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub payments: PaymentConfig,
    /// Where events are delivered; `None` (no `events_url`): recorded, not sent.
    pub events: Option<EventsTarget>,
}

/// Runs `f` on the service over `stores` as of `now`.
pub fn with_credits<T>(
    stores: Stores<'_>,
    config: &Config,
    now: Timestamp,
    f: impl FnOnce(&Credits<'_>) -> T,
) -> T {
    let clock = FixedClock(now);
    let payments: Box<dyn PaymentProvider + '_> = match config.payments {
        PaymentConfig::Sandbox => Box::new(SandboxPayments::new(stores.db, now)),
    };
    f(&Credits::new(
        stores.db,
        stores.cache,
        payments.as_ref(),
        &clock,
    ))
}

/// The scheduled auto-recharge evaluation, at the system's time.
// The method path does not fit the closure's higher-ranked lifetime.
#[allow(clippy::redundant_closure_for_method_calls)]
pub fn recharge_check(stores: Stores<'_>, config: &Config) -> Result<RechargeReport, CreditsError> {
    with_credits(stores, config, SystemClock.now(), |c| c.recharge_check())
}

/// Delivers the events that are due, at `now` (the request's time), if the
/// configuration names a receiver.
pub fn deliver_events(
    stores: Stores<'_>,
    config: &Config,
    now: Timestamp,
    transport: &dyn EventTransport,
) -> Result<DeliveryReport, CreditsError> {
    let Some(target) = &config.events else {
        return Ok(DeliveryReport::default());
    };
    with_credits(stores, config, now, |c| c.deliver_events(target, transport))
}

/// Every broken invariant of the books, the domain's and the payment provider's.
#[allow(clippy::redundant_closure_for_method_calls)]
pub fn audit(
    stores: Stores<'_>,
    config: &Config,
    now: Timestamp,
) -> Result<Vec<String>, CreditsError> {
    let mut broken = with_credits(stores, config, now, |c| c.audit())?;
    match config.payments {
        PaymentConfig::Sandbox => broken.extend(credits_sandbox::audit(stores.db)?),
    }
    Ok(broken)
}
