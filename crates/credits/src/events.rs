//! Events to the platform: what happened to an account, recorded by the statement
//! that made the change (the schema's triggers, see `schema::V6`), then delivered
//! signed, at least once, retried on a schedule.
//!
//! The table is an outbox: a request that dies after its change still leaves the
//! event to deliver, and one that dies before it leaves none. Delivery claims each
//! due event in the database before sending it, so instances delivering at once
//! never send one event twice in the same attempt window.

use std::fmt;

use hmac::{Hmac, Mac};
use serde::{Serialize, Serializer};
use sha2::Sha256;

use crate::error::{CreditsError, Result};
use crate::service::Credits;
use crate::store::{Row, Value};
use crate::time::Timestamp;

/// Page size bounds of the event list.
pub const MAX_EVENT_PAGE: u32 = 500;
pub const DEFAULT_EVENT_PAGE: u32 = 100;

/// How long a claimed event is left to the instance sending it (longer than the
/// 10 s a receiver has to answer).
const CLAIM_MILLIS: i64 = 30_000;
/// Events sent per delivery run: bounded work after a request's answer.
const BATCH: i64 = 20;
/// Retries after about 1 min, 5 min, 30 min, 2 h, then every 6 h ...
const RETRY_MINUTES: [i64; 4] = [1, 5, 30, 120];
const LATER_RETRY_MINUTES: i64 = 360;
/// ... for 3 days from the event's creation.
const GIVE_UP_MILLIS: i64 = 3 * 24 * 3_600_000;

/// An event id: `evt_` and the event's place in the global order, zero-padded so
/// ids sort as text. Only the service token sees events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventId(i64);

impl EventId {
    const PREFIX: &'static str = "evt_";

    /// Reads an id this service issued; anything else is `None`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let n: i64 = text.strip_prefix(Self::PREFIX)?.parse().ok()?;
        let id = Self(n);
        (n > 0 && id.to_string() == text).then_some(id)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:012}", Self::PREFIX, self.0)
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An event as it is delivered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub id: EventId,
    #[serde(rename = "type")]
    pub kind: String,
    pub account_id: String,
    pub sequence: i64,
    pub created_at: Timestamp,
    pub data: serde_json::Value,
}

/// Where an event's delivery stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryState {
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// An event with its delivery, as `GET /api/admin/events` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedEvent {
    #[serde(flatten)]
    pub event: Event,
    pub delivery: DeliveryState,
}

/// Which page of the event list: after which event, how many (checked here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventQuery {
    after: Option<EventId>,
    limit: u32,
}

impl EventQuery {
    /// `limit` must be 1–500 (default 100).
    pub fn new(after: Option<EventId>, limit: Option<u32>) -> Result<Self> {
        let limit = limit.unwrap_or(DEFAULT_EVENT_PAGE);
        if !(1..=MAX_EVENT_PAGE).contains(&limit) {
            return Err(CreditsError::invalid(format!(
                "limit must be an integer from 1 to {MAX_EVENT_PAGE}"
            )));
        }
        Ok(Self { after, limit })
    }
}

impl Default for EventQuery {
    fn default() -> Self {
        Self {
            after: None,
            limit: DEFAULT_EVENT_PAGE,
        }
    }
}

/// One page of events, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventPage {
    pub events: Vec<RecordedEvent>,
    pub next_after: Option<EventId>,
}

/// What `POST /api/admin/events/{id}/redeliver` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Redelivery {
    pub event: RecordedEvent,
}

/// Where events go and what signs them.
#[derive(Clone, PartialEq, Eq)]
pub struct EventsTarget {
    pub url: String,
    pub secret: String,
}

impl fmt::Debug for EventsTarget {
    // The secret never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventsTarget")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// One signed event, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEvent {
    pub id: String,
    pub body: String,
    /// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
    pub signature: String,
}

/// What a receiver did with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// A 2xx answer.
    Delivered,
    /// Any other answer, no answer in time, or no connection: why.
    Failed(String),
}

/// The transport port: sends one signed event to `url`.
pub trait EventTransport {
    fn deliver(&self, url: &str, event: &SignedEvent) -> DeliveryOutcome;
}

/// What one delivery run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    pub delivered: u64,
    pub failed: u64,
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under secret>`.
#[must_use]
pub fn signature(secret: &str, unix_seconds: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(format!("{unix_seconds}.{body}").as_bytes());
    format!(
        "t={unix_seconds},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// The wait before attempt `attempts + 1`, in milliseconds.
fn retry_delay_millis(attempts: i64) -> i64 {
    let index = usize::try_from(attempts.max(1) - 1).unwrap_or(usize::MAX);
    RETRY_MINUTES
        .get(index)
        .copied()
        .unwrap_or(LATER_RETRY_MINUTES)
        * 60_000
}

/// An event's `data`. Since schema version 6 the triggers record what an event is
/// about and leave `data` empty (JSON built in a trigger is parsed on every new
/// connection and compiled into every deduction); it is built here, as it was
/// then. What may change after the event (a threshold, a failure message) was
/// recorded with it; the rest (an entry, a purchase's terms and grant) never
/// changes. Events recorded before version 6 keep the `data` they were given.
macro_rules! event_data {
    () => {
        "IIF(data <> '', data, CASE
           WHEN type = 'credits.low' THEN json_object(
               'balance_tokens', (SELECT credit_balance_after FROM ledger l
                                  WHERE l.account_id = events.account_id AND l.seq = entry_seq),
               'threshold_tokens', threshold_tokens,
               'transaction_id', printf('tx_%012d', entry_seq))
           WHEN type = 'credits.depleted' AND entry_seq IS NOT NULL THEN json_object(
               'available_tokens', 0, 'transaction_id', printf('tx_%012d', entry_seq))
           WHEN type = 'credits.depleted' THEN json_object('available_tokens', 0, 'hold_id', subject_id)
           ELSE (SELECT json_object('purchase', json_object(
                     'id', p.id, 'source', p.source, 'pack', p.pack, 'tokens', p.tokens,
                     'amount_eur', printf('%d.%02d', p.amount_cents / 100, p.amount_cents % 100),
                     'status', substr(events.type, instr(events.type, '.') + 1),
                     'transaction_id', IIF(events.type LIKE '%.succeeded',
                                           printf('tx_%012d', p.granted_seq), NULL),
                     'failure_message', events.failure_message))
                 FROM purchases p WHERE p.id = subject_id AND p.account_id = events.account_id)
         END)"
    };
}

/// The columns [`recorded_from_row`] reads, in this order.
macro_rules! event_columns {
    () => {
        concat!(
            "id, type, account_id, sequence, created_at, ",
            event_data!(),
            ", status, attempts, last_error"
        )
    };
}

fn recorded_from_row(row: &Row) -> Result<RecordedEvent> {
    let data = serde_json::from_str(row.text(5)?)
        .map_err(|e| CreditsError::Internal(format!("stored event data: {e}")))?;
    Ok(RecordedEvent {
        event: Event {
            id: EventId(row.int(0)?),
            kind: row.text(1)?.to_owned(),
            account_id: row.text(2)?.to_owned(),
            sequence: row.int(3)?,
            created_at: Timestamp::from_millis(row.int(4)?),
            data,
        },
        delivery: DeliveryState {
            status: row.text(6)?.to_owned(),
            attempts: row.int(7)?,
            last_error: row.opt_text(8)?.map(str::to_owned),
        },
    })
}

impl Credits<'_> {
    /// Recorded events after the query's `after`, oldest first.
    pub fn events(&self, query: &EventQuery) -> Result<EventPage> {
        let EventQuery { after, limit } = *query;
        let rows = self.db.execute(
            concat!(
                "SELECT ",
                event_columns!(),
                " FROM events WHERE id > ?1 ORDER BY id LIMIT ?2"
            ),
            &[
                Value::Integer(after.map_or(0, |a| a.0)),
                Value::Integer(i64::from(limit) + 1),
            ],
        )?;
        let more = rows.len() > limit as usize;
        let events = rows
            .iter()
            .take(limit as usize)
            .map(recorded_from_row)
            .collect::<Result<Vec<_>>>()?;
        let next_after = if more {
            events.last().map(|e| e.event.id)
        } else {
            None
        };
        Ok(EventPage { events, next_after })
    }

    /// Makes an event due now, whatever its delivery did so far; the next delivery
    /// run (right after this request's answer) sends it.
    pub fn redeliver(&self, id: Option<EventId>) -> Result<Redelivery> {
        let Some(id) = id else {
            return Err(CreditsError::NotFound("event"));
        };
        let rows = self.db.execute(
            concat!(
                "UPDATE events SET status = 'pending', next_attempt_at = ?2, claimed_until = NULL
                 WHERE id = ?1 RETURNING ",
                event_columns!()
            ),
            &[Value::Integer(id.0), Value::Integer(self.now().millis())],
        )?;
        let row = rows.first().ok_or(CreditsError::NotFound("event"))?;
        self.note_events_due();
        Ok(Redelivery {
            event: recorded_from_row(row)?,
        })
    }

    /// Sends the events that are due to `target`, each claimed first, and records
    /// what each receiver answered: delivered, or retried later on the schedule,
    /// or failed after 3 days.
    pub fn deliver_events(
        &self,
        target: &EventsTarget,
        transport: &dyn EventTransport,
    ) -> Result<DeliveryReport> {
        let now = self.now();
        let claimed = self.db.execute(
            concat!(
                "UPDATE events SET claimed_until = ?1 + ?2, attempts = attempts + 1
                 WHERE id IN (SELECT id FROM events
                              WHERE status = 'pending' AND next_attempt_at <= ?1
                                AND (claimed_until IS NULL OR claimed_until <= ?1)
                              ORDER BY next_attempt_at, id LIMIT ?3)
                 RETURNING ",
                event_columns!()
            ),
            &[
                Value::Integer(now.millis()),
                Value::Integer(CLAIM_MILLIS),
                Value::Integer(BATCH),
            ],
        )?;
        let mut report = DeliveryReport::default();
        let unix_seconds = now.millis().div_euclid(1000);
        for row in &claimed {
            let recorded = recorded_from_row(row)?;
            let body = serde_json::to_string(&recorded.event)
                .map_err(|e| CreditsError::Internal(format!("event body: {e}")))?;
            let signed = SignedEvent {
                id: recorded.event.id.to_string(),
                signature: signature(&target.secret, unix_seconds, &body),
                body,
            };
            match transport.deliver(&target.url, &signed) {
                DeliveryOutcome::Delivered => {
                    self.db.execute(
                        "UPDATE events SET status = 'delivered', claimed_until = NULL, last_error = NULL
                         WHERE id = ?1",
                        &[Value::Integer(recorded.event.id.0)],
                    )?;
                    report.delivered += 1;
                }
                DeliveryOutcome::Failed(why) => {
                    let next = now.millis() + retry_delay_millis(recorded.delivery.attempts);
                    let gives_up = next > recorded.event.created_at.millis() + GIVE_UP_MILLIS;
                    self.db.execute(
                        "UPDATE events SET status = ?2, next_attempt_at = ?3, claimed_until = NULL,
                                           last_error = ?4
                         WHERE id = ?1",
                        &[
                            Value::Integer(recorded.event.id.0),
                            if gives_up { "failed" } else { "pending" }.into(),
                            Value::Integer(next),
                            why.as_str().into(),
                        ],
                    )?;
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_round_trip() {
        let id = EventId(42);
        assert_eq!(id.to_string(), "evt_000000000042");
        assert_eq!(EventId::parse("evt_000000000042"), Some(id));
        for bad in [
            "evt_42",
            "evt_000000000000",
            "tx_000000000042",
            "evt_-00000000042",
        ] {
            assert_eq!(EventId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_schedule_is_1_5_30_120_minutes_then_every_6_hours() {
        let minutes: Vec<i64> = (1..=7).map(|a| retry_delay_millis(a) / 60_000).collect();
        assert_eq!(minutes, [1, 5, 30, 120, 360, 360, 360]);
    }

    #[test]
    fn signatures_are_hmac_sha256_of_time_dot_body() {
        // Computed independently: Python's hmac.new(b"whsec_test", b"1764000000.{}", sha256).
        assert_eq!(
            signature("whsec_test", 1_764_000_000, "{}"),
            "t=1764000000,v1=4f96748d68fa89f609c83851e8a98602c0d9762fcc5bc7c698c980211b7522ed"
        );
        assert_ne!(
            signature("another", 1_764_000_000, "{}"),
            signature("whsec_test", 1_764_000_000, "{}")
        );
    }
}
