//! Puts the credits service together — the one place that does: the stores the
//! platform hands over, the payment provider the configuration names, and the
//! request's clock. The HTTP routes and the scheduled component both start here.

use credits::{
    Clock, Credits, CreditsError, Database, DeliveryReport, Eur, EventTransport, EventsTarget,
    FixedClock, KeyValue, PaymentProvider, PlanPrices, RechargeReport, SystemClock, Timestamp,
};
use credits_sandbox::SandboxPayments;
use credits_stripe::{StoredCustomers, StripePayments, StripeTables, StripeTransport};

mod payments;
mod stripe_routes;

pub use credits_stripe::CardDisplay;
use payments::Unconfigured;
pub use payments::{NoNetwork, PaymentConfig, StripeConfig};
pub use stripe_routes::{
    PaymentSetup, WebhookOutcome, card_of, check_stripe_customer_free, link_stripe_customer,
    payment_setup, stripe_webhook, verify_payment_method,
};

/// What the platform gives one request or tick.
#[derive(Clone, Copy)]
pub struct Stores<'a> {
    /// The source of truth for money (Spin's `default` `SQLite` database).
    pub db: &'a dyn Database,
    /// Rebuildable lookups (the account-key cache).
    pub cache: &'a dyn KeyValue,
    /// How requests reach Stripe (Spin's outbound HTTP in a component; `NoNetwork`
    /// where nothing may be sent).
    pub stripe: &'a dyn StripeTransport,
}

/// How the service is configured (from Spin variables, in a component).
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub payments: PaymentConfig,
    /// Where events are delivered; `None` (no `events_url`): recorded, not sent.
    pub events: Option<EventsTarget>,
    /// The paid plans' monthly prices (`plan_price_pro_eur`, `plan_price_team_eur`).
    pub plan_prices: PlanPricing,
    /// `payment_provider` is `"stripe"`, so saved cards show (read from the
    /// database: a component that only shows them needs no Stripe secret).
    pub shows_cards: bool,
}

/// The plans' monthly prices as configured, or what is wrong with the
/// configuration: a route that shows them answers `500 internal_error` naming the
/// variable rather than a made-up price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanPricing(Result<PlanPrices, String>);

impl Default for PlanPricing {
    fn default() -> Self {
        Self(Ok(PlanPrices::default()))
    }
}

impl PlanPricing {
    /// The variables that price the paid plans, as `"20.00"` (spin.toml declares
    /// them with the defaults of [`PlanPrices::default`]).
    pub const VARIABLES: [&'static str; 2] = ["plan_price_pro_eur", "plan_price_team_eur"];

    /// Reads the prices with `get` (a variable's value; `None`: not set, so the
    /// default price). A set value must be a euro amount like `"20.00"`.
    pub fn from_variables(get: impl Fn(&str) -> Option<String>) -> Self {
        let mut prices = PlanPrices::default();
        let [pro, team] = Self::VARIABLES;
        for (name, slot) in [(pro, &mut prices.pro), (team, &mut prices.team)] {
            let Some(text) = get(name) else { continue };
            match Eur::parse(text.trim()) {
                Ok(price) => *slot = price,
                Err(_) => {
                    return Self(Err(format!(
                        "the variable {name} is {text:?}, not a monthly price in euros like \"20.00\""
                    )));
                }
            }
        }
        Self(Ok(prices))
    }

    /// The prices, or why the configuration has none.
    ///
    /// # Errors
    /// The message naming the variable whose value is not a price.
    pub fn prices(&self) -> Result<&PlanPrices, &str> {
        self.0.as_ref().map_err(String::as_str)
    }
}

/// Runs `f` on the service over `stores` as of `now`.
pub fn with_credits<T>(
    stores: Stores<'_>,
    config: &Config,
    now: Timestamp,
    f: impl FnOnce(&Credits<'_>) -> T,
) -> T {
    let clock = FixedClock(now);
    let payments: Box<dyn PaymentProvider + '_> = match &config.payments {
        PaymentConfig::Sandbox => Box::new(SandboxPayments::new(stores.db, now)),
        PaymentConfig::Stripe(stripe) => Box::new(StripePayments::new(
            stripe.client(stores.stripe),
            StoredCustomers::new(stores.db, stripe.client(stores.stripe)),
        )),
        PaymentConfig::Unusable(why) => Box::new(Unconfigured(why)),
    };
    f(&Credits::new(
        stores.db,
        stores.cache,
        payments.as_ref(),
        &clock,
    ))
}

/// The scheduled auto-recharge evaluation, at the system's time, and the upkeep
/// that comes with it.
pub fn recharge_check(stores: Stores<'_>, config: &Config) -> Result<RechargeReport, CreditsError> {
    with_credits(stores, config, SystemClock.now(), |credits| {
        recharge_check_with(credits, stores, config)
    })
}

/// What a recharge check is, on a service already put together (the
/// on-demand route's, on the request's clock): the evaluation of every account,
/// then the upkeep, which always goes by the system's time.
pub fn recharge_check_with(
    credits: &Credits<'_>,
    stores: Stores<'_>,
    config: &Config,
) -> Result<RechargeReport, CreditsError> {
    let report = credits.recharge_check();
    forget_old_webhook_events(stores, config, SystemClock.now());
    report
}

/// How long a Stripe webhook event that took effect is remembered, so that a
/// repeat of it is ignored: Stripe retries a delivery for three days and resends
/// only events under 30 days old.
const WEBHOOK_EVENTS_KEPT_MILLIS: i64 = 30 * 24 * 60 * 60 * 1000;

/// Upkeep run with every recharge check (scheduled or requested): forgets the
/// Stripe webhook events Stripe no longer repeats, so their table stays small.
/// `now` is the system's time, never a test clock's: a clock ahead would forget
/// events Stripe may still repeat. A failure is left to the next check, since
/// nothing else depends on it.
fn forget_old_webhook_events(stores: Stores<'_>, config: &Config, now: Timestamp) {
    if let PaymentConfig::Stripe(_) = config.payments {
        let forgotten = StripeTables::new(stores.db)
            .forget_events_before(now.millis() - WEBHOOK_EVENTS_KEPT_MILLIS);
        if let Err(e) = forgotten {
            eprintln!("forgetting old Stripe webhook events: {e}");
        }
    }
}

/// Runs an auto-recharge evaluation a request left for after its answer, at
/// the request's time. Answers whether events may be due (its purchase records one).
pub fn evaluate_deferred_recharge(
    stores: Stores<'_>,
    config: &Config,
    now: Timestamp,
    recharge: &credits::DeferredRecharge,
) -> Result<bool, CreditsError> {
    with_credits(stores, config, now, |c| {
        c.evaluate_recharge(&recharge.account, recharge.triggered_by)?;
        Ok(c.events_may_be_due())
    })
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
        PaymentConfig::Stripe(_) | PaymentConfig::Unusable(_) => {}
    }
    Ok(broken)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_prices_come_from_the_variables_or_their_defaults() {
        let none = PlanPricing::from_variables(|_| None);
        assert_eq!(none.prices(), Ok(&PlanPrices::default()));
        assert_eq!(none, PlanPricing::default());

        let set = PlanPricing::from_variables(|name| {
            (name == "plan_price_team_eur").then(|| "99.50".to_owned())
        });
        let prices = set.prices().unwrap();
        assert_eq!(
            (prices.pro.to_string(), prices.team.to_string()),
            ("20.00".into(), "99.50".into())
        );
    }

    #[test]
    fn a_price_that_is_not_one_names_its_variable() {
        for bad in ["20", "twenty", "-5.00", "", "20.001"] {
            let pricing = PlanPricing::from_variables(|name| {
                (name == "plan_price_pro_eur").then(|| bad.to_owned())
            });
            let message = pricing.prices().unwrap_err();
            assert!(message.contains("plan_price_pro_eur"), "{message}");
            assert!(message.contains(&format!("{bad:?}")), "{message}");
        }
    }

    /// The stores of a host that sends nothing to Stripe, over `db`.
    fn offline(db: &credits_sqlite::NativeDb) -> Stores<'_> {
        Stores {
            db,
            cache: &credits::NoCache,
            stripe: &NoNetwork,
        }
    }

    fn paying_with(payments: PaymentConfig) -> Config {
        Config {
            payments,
            ..Config::default()
        }
    }

    fn recharge_check_on(db: &credits_sqlite::NativeDb, payments: PaymentConfig) {
        recharge_check(offline(db), &paying_with(payments)).unwrap();
    }

    fn stripe() -> PaymentConfig {
        PaymentConfig::Stripe(StripeConfig {
            secret_key: credits_stripe::SecretKey::new("sk_test_upkeep"),
            webhook_secret: credits_stripe::SecretKey::new("whsec_upkeep"),
            publishable_key: String::new(),
            api_base: "http://127.0.0.1:9".into(),
        })
    }

    fn stripe_tables(db: &credits_sqlite::NativeDb) -> i64 {
        db.execute(
            "SELECT COUNT(*) FROM sqlite_schema WHERE name LIKE 'stripe%'",
            &[],
        )
        .unwrap()[0]
            .int(0)
            .unwrap()
    }

    #[test]
    fn webhook_events_are_remembered_for_30_days_to_the_millisecond() {
        let db = credits_sqlite::NativeDb::in_memory().unwrap();
        let events = StripeTables::new(&db);
        let now = Timestamp::parse_rfc3339("2026-11-26T12:00:00Z").unwrap();
        let cutoff = now.millis() - WEBHOOK_EVENTS_KEPT_MILLIS;
        events.event_done_at("evt_too_old", cutoff - 1).unwrap();
        events.event_done_at("evt_just_kept", cutoff).unwrap();

        forget_old_webhook_events(offline(&db), &paying_with(stripe()), now);

        assert!(!events.event_done("evt_too_old").unwrap());
        assert!(events.event_done("evt_just_kept").unwrap());
    }

    #[test]
    fn the_scheduled_recharge_check_forgets_old_webhook_events() {
        let db = credits_sqlite::NativeDb::in_memory().unwrap();
        let events = StripeTables::new(&db);
        let day = 24 * 60 * 60 * 1000;
        let now = SystemClock.now().millis();
        events
            .event_done_at("evt_31_days_ago", now - 31 * day)
            .unwrap();
        events
            .event_done_at("evt_29_days_ago", now - 29 * day)
            .unwrap();

        recharge_check_on(&db, stripe());

        assert!(!events.event_done("evt_31_days_ago").unwrap());
        assert!(events.event_done("evt_29_days_ago").unwrap());
    }

    #[test]
    fn with_stripe_a_first_recharge_check_creates_the_missing_stripe_tables() {
        let db = credits_sqlite::NativeDb::in_memory().unwrap();
        recharge_check_on(&db, stripe());
        assert_eq!(stripe_tables(&db), 4);
    }

    #[test]
    fn with_the_sandbox_a_recharge_check_leaves_stripes_tables_alone() {
        let db = credits_sqlite::NativeDb::in_memory().unwrap();
        recharge_check_on(&db, PaymentConfig::Sandbox);
        assert_eq!(stripe_tables(&db), 0);
    }
}
