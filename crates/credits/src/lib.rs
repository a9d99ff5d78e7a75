//! Prepaid AI-token credits: plans, packs, ledger, refunds, holds and auto-recharge.
//!
//! The business rules of the product, with no Spin in sight: storage, payments and
//! time come in through small ports ([`Database`], [`KeyValue`],
//! [`PaymentProvider`], [`Clock`]), so the same code and SQL run natively in tests
//! and inside the Spin components.

#[macro_use]
mod sql;

mod account;
mod audit;
mod busy;
mod catalog;
mod clock;
mod error;
mod events;
mod history;
mod hold;
mod idempotency;
mod ids;
mod labels;
mod ledger;
mod money;
mod payment;
mod purchase;
mod recharge;
pub mod schema;
mod service;
mod store;
mod time;
mod tokens;
mod transaction;
mod usage;

pub use account::{CreatedAccount, SavedPaymentMethod, secret_hash, secrets_match};
pub use busy::{SQLITE_BUSY_WAIT, wait_while_busy};
pub use catalog::{Pack, PackListing, Plan, PlanListing, PlanPrices};
pub use clock::{Clock, FixedClock, SystemClock};
pub use error::{CreditsError, Result};
pub use events::{
    DeliveryOutcome, DeliveryReport, DeliveryState, Event, EventId, EventPage, EventQuery,
    EventTransport, EventsTarget, RecordedEvent, Redelivery, SignedEvent, signature,
};
pub use history::{AccountSummary, HistoryPage, HistoryQuery, PlanUsage, Statement};
pub use hold::{
    Hold, HoldDetails, HoldId, HoldLifetime, HoldReceipt, HoldRequest, HoldStatus, SettleReceipt,
    SettledTokens, VoidReceipt,
};
pub use idempotency::{Idempotency, IdempotencyKey, fingerprint};
pub use ids::{AccountId, TransactionId};
pub use labels::{Operation, Reason, Resource};
pub use ledger::{DeductionReceipt, DeductionRequest, RefundReceipt, RefundRequest};
pub use money::Eur;
pub use payment::{ABANDONED, Charge, ChargeOutcome, PaymentMethodId, PaymentProvider};
pub use purchase::{CreditBalance, PendingPurchaseView, PurchaseReceipt};
pub use recharge::{
    RechargeError, RechargeOutcome, RechargeReport, RechargeSettings, RechargeSettingsView,
};
pub use service::{Credits, DeferredRecharge, Replayable};
pub use store::{Database, DbError, DbErrorKind, Durability, KeyValue, NoCache, Row, Value};
pub use time::{Month, Timestamp};
pub use tokens::{MAX_JSON_TOKENS, TokenAmount};
pub use transaction::{PurchaseSource, Transaction, TransactionKind};
pub use usage::{UsageGroup, UsageGrouping, UsageQuery, UsageReport};
