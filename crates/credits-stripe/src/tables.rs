//! What the adapter keeps in the app's database, in tables it owns and creates
//! on first use (as the sandbox does): each account's Stripe customer, the cards
//! it saved (to show them without asking Stripe on every page), and the webhook
//! events that took effect.

use credits::{AccountId, Charge, CreditsError, Database, DbError, DbErrorKind, Row, Value};

use crate::client::StripeClient;
use crate::customers::CardDisplay;
use crate::provider::Customers;
use crate::transport::StripeTransport;

/// The adapter's tables. `IF NOT EXISTS`: instances racing to create them agree.
const CREATE_TABLES: [&str; 4] = [
    // One customer per account, the first one linked stays; one account per
    // customer, or one account could charge another's cards.
    "CREATE TABLE IF NOT EXISTS stripe_customers (
        account_id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL
    ) WITHOUT ROWID",
    "CREATE UNIQUE INDEX IF NOT EXISTS stripe_customers_customer
        ON stripe_customers (customer_id)",
    "CREATE TABLE IF NOT EXISTS stripe_cards (
        payment_method TEXT PRIMARY KEY,
        brand TEXT NOT NULL,
        last4 TEXT NOT NULL,
        exp_month INTEGER NOT NULL,
        exp_year INTEGER NOT NULL
    ) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS stripe_events (
        event_id TEXT PRIMARY KEY,
        received_at INTEGER NOT NULL
    ) WITHOUT ROWID",
];

/// The adapter's rows in the app's database.
#[derive(Clone, Copy)]
pub struct StripeTables<'a> {
    db: &'a dyn Database,
}

impl<'a> StripeTables<'a> {
    #[must_use]
    pub fn new(db: &'a dyn Database) -> Self {
        Self { db }
    }

    /// Runs one statement; on a database that lacks the tables, creates them and
    /// runs it again (the failed statement wrote nothing).
    fn execute(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        match self.db.execute(sql, params) {
            Err(e) if e.kind == DbErrorKind::MissingSchema => {
                for create in CREATE_TABLES {
                    self.db.execute(create, &[])?;
                }
                self.db.execute(sql, params)
            }
            other => other,
        }
    }

    /// The account's Stripe customer, if it has one yet.
    pub fn customer(&self, account: &AccountId) -> Result<Option<String>, DbError> {
        let rows = self.execute(
            "SELECT customer_id FROM stripe_customers WHERE account_id = ?1",
            &[account.as_str().into()],
        )?;
        rows.first()
            .map(|row| row.text(0).map(str::to_owned))
            .transpose()
    }

    /// Links `customer` to the account unless it has one already; answers the
    /// account's customer either way (the first linked wins a race).
    pub fn link_customer(&self, account: &AccountId, customer: &str) -> Result<String, DbError> {
        let rows = self.execute(
            "INSERT INTO stripe_customers (account_id, customer_id) VALUES (?1, ?2)
             ON CONFLICT (account_id) DO UPDATE SET account_id = excluded.account_id
             RETURNING customer_id",
            &[account.as_str().into(), customer.into()],
        )?;
        match rows.first() {
            Some(row) => Ok(row.text(0)?.to_owned()),
            None => Err(DbError::other("the customer link returned no row")),
        }
    }

    /// The account whose customer `customer` is, if any.
    pub fn account_of_customer(&self, customer: &str) -> Result<Option<String>, DbError> {
        let rows = self.execute(
            "SELECT account_id FROM stripe_customers WHERE customer_id = ?1",
            &[customer.into()],
        )?;
        rows.first()
            .map(|row| row.text(0).map(str::to_owned))
            .transpose()
    }

    /// Remembers how a saved card shows (Stripe's answer wins over an older one).
    pub fn remember_card(&self, payment_method: &str, card: &CardDisplay) -> Result<(), DbError> {
        self.execute(
            "INSERT INTO stripe_cards (payment_method, brand, last4, exp_month, exp_year)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (payment_method) DO UPDATE SET brand = excluded.brand,
                 last4 = excluded.last4, exp_month = excluded.exp_month,
                 exp_year = excluded.exp_year",
            &[
                payment_method.into(),
                card.brand.as_str().into(),
                card.last4.as_str().into(),
                Value::Integer(i64::from(card.exp_month)),
                Value::Integer(i64::from(card.exp_year)),
            ],
        )?;
        Ok(())
    }

    /// How the card `payment_method` shows, if it was saved through Stripe.
    pub fn card(&self, payment_method: &str) -> Result<Option<CardDisplay>, DbError> {
        let rows = self.execute(
            "SELECT brand, last4, exp_month, exp_year FROM stripe_cards WHERE payment_method = ?1",
            &[payment_method.into()],
        )?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let month = |i| {
            row.int(i)
                .and_then(|v| u32::try_from(v).map_err(|_| DbError::other("card date")))
        };
        Ok(Some(CardDisplay {
            brand: row.text(0)?.to_owned(),
            last4: row.text(1)?.to_owned(),
            exp_month: month(2)?,
            exp_year: month(3)?,
        }))
    }

    /// Whether the webhook event `event_id` has taken effect.
    pub fn event_done(&self, event_id: &str) -> Result<bool, DbError> {
        let rows = self.execute(
            "SELECT 1 FROM stripe_events WHERE event_id = ?1",
            &[event_id.into()],
        )?;
        Ok(!rows.is_empty())
    }

    /// Records that `event_id` took effect, after its effect is written: a crash
    /// between the two makes Stripe deliver it again, and every effect is one
    /// that a second application leaves as the first left it.
    pub fn event_done_at(&self, event_id: &str, at_millis: i64) -> Result<(), DbError> {
        self.execute(
            "INSERT INTO stripe_events (event_id, received_at) VALUES (?1, ?2)
             ON CONFLICT (event_id) DO NOTHING",
            &[event_id.into(), Value::Integer(at_millis)],
        )?;
        Ok(())
    }

    /// Forgets the events that took effect before `before_millis`. Only a repeat
    /// needs the record: Stripe retries a delivery for three days and resends only
    /// events under 30 days old. (No index on `received_at`: the scan runs once a
    /// recharge check, an index would be parsed by every request's connection.)
    pub fn forget_events_before(&self, before_millis: i64) -> Result<(), DbError> {
        self.execute(
            "DELETE FROM stripe_events WHERE received_at < ?1",
            &[Value::Integer(before_millis)],
        )?;
        Ok(())
    }
}

/// The accounts' customers from the database, each created in Stripe the first
/// time a charge needs it (under the key `customer-<account_id>`, so instances
/// racing create one customer between them) and then kept.
pub struct StoredCustomers<'a, T> {
    tables: StripeTables<'a>,
    client: StripeClient<T>,
}

impl<'a, T: StripeTransport> StoredCustomers<'a, T> {
    pub fn new(db: &'a dyn Database, client: StripeClient<T>) -> Self {
        Self {
            tables: StripeTables::new(db),
            client,
        }
    }

    /// The account's customer, created now if it has none.
    pub fn customer_of(&self, account: &AccountId) -> Result<String, CreditsError> {
        if let Some(customer) = self.tables.customer(account)? {
            return Ok(customer);
        }
        let created = self
            .client
            .create_customer(account.as_str())
            .map_err(|e| CreditsError::ProviderUnavailable(e.to_string()))?;
        Ok(self.tables.link_customer(account, &created)?)
    }
}

impl<T: StripeTransport> Customers for StoredCustomers<'_, T> {
    fn customer(&self, charge: &Charge<'_>) -> Result<String, CreditsError> {
        self.customer_of(charge.account)
    }
}
