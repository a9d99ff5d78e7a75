//! A deterministic simulation of the domain crate, after TigerBeetle's VOPR.
//!
//! From one seed, several simulated instances (each its own connection to one
//! SQLite file) run deductions, refunds, purchases, holds, plan changes, settings,
//! recharge checks, event deliveries and idempotent replays, interleaved statement
//! by statement. Each operation runs on its instance's thread, but every statement
//! (and every call to the payment provider) first waits for a turn that the
//! scheduler hands out from the seed, so exactly one thread runs at a time and the
//! whole run replays exactly from its seed.
//!
//! Faults, all drawn from the seed: a statement fails without running, reports
//! busy, or the instance dies just before or just after it (its operation stops
//! there and the instance reconnects); the provider declines, times out before
//! charging, charges and loses the answer, or charges and the instance dies; the
//! clock jumps across minutes, hold expiries, days and months.
//!
//! After every step the invariants are checked (see [`Sim::check`]); after the
//! run, recovery (recharge checks without faults, the clock moved on) runs until
//! nothing is pending, and every successful charge must then be granted once.
//!
//! `SIM_SEED=<n>` replays one seed, `SIM_SEEDS=<count>` runs that many seeds from
//! `SIM_SEED_FROM` (default 1),
//! `SIM_STEPS=<n>` sets the length of each run.

#![allow(
    clippy::redundant_closure_for_method_calls, // `|c| c.audit()` reads better than a path
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::too_many_lines,
    clippy::needless_pass_by_value,
    clippy::doc_markdown
)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use credits::{
    AccountId, Charge, ChargeOutcome, Clock, Credits, CreditsError, Database, DbError, DbErrorKind,
    DeductionRequest, DeliveryOutcome, Durability, Eur, EventTransport, EventsTarget, FixedClock,
    HoldId, HoldLifetime, HoldRequest, Idempotency, IdempotencyKey, NoCache, Operation, Pack,
    PaymentMethodId, PaymentProvider, Plan, Reason, RechargeSettings, RefundRequest, Resource, Row,
    SettledTokens, SignedEvent, Timestamp, TokenAmount, Transaction, TransactionId, Value,
    wait_while_busy,
};
use credits_sqlite::NativeDb;
use proptest::prelude::Rng;
use proptest::test_runner::{RngAlgorithm, TestRng};
use serde_json::json;

/// Instances serving at once.
const INSTANCES: usize = 3;
/// Account ids `acct-0` .. `acct-4`; the last is created during the run (racing).
const ACCOUNTS: usize = 5;
/// Seeds run by default (1..=this), and the steps of each: the 1,000 seeds CI runs,
/// about 100 s in a debug build on 2 idle cores (190 s beside other builds);
/// `scripts/simulate.sh` runs 100,000.
const DEFAULT_SEEDS: u64 = 1_000;
const DEFAULT_STEPS: u64 = 120;
/// Recovery rounds after a run before "still pending" is a failure.
const RECOVERY_ROUNDS: usize = 60;
/// The clock starts late in a month, so months turn early in a run.
const START: &str = "2026-01-30T22:00:00Z";

// ---------------------------------------------------------------------------
// The seeded dice.

/// Every random choice of a run, from its seed (ChaCha, as proptest keeps it).
struct Dice(TestRng);

impl Dice {
    fn new(seed: u64) -> Self {
        let mut bytes = [0u8; 32];
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            let word = seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        Self(TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
    }

    /// `0..n` (the modulo bias of a 64-bit draw is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.0.next_u64() % n.max(1)
    }

    fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    fn per_mille(&mut self, p: u64) -> bool {
        self.below(1000) < p
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.index(items.len())].clone()
    }

    /// An index into `weights`, each as likely as its weight.
    fn weighted(&mut self, weights: &[u64]) -> usize {
        let mut roll = self.below(weights.iter().sum());
        for (i, w) in weights.iter().enumerate() {
            if roll < *w {
                return i;
            }
            roll -= w;
        }
        weights.len() - 1
    }
}

// ---------------------------------------------------------------------------
// What the instances share: the dice, the clock, the turn, the provider's books.

/// The payload of an instance that died: unwinding stops its operation exactly
/// where a crash would, and `resume_unwind` skips the panic hook (no noise).
struct Killed;

#[derive(Debug)]
enum Phase {
    /// No operation.
    Idle,
    /// Running between two statements; the scheduler waits for it.
    Running,
    /// Waiting for its turn to run its next statement (or provider call).
    Parked,
    /// Finished with this answer, not yet read by the scheduler.
    Done(Box<Answer>),
}

struct Gate {
    phases: Vec<Phase>,
    grant: Option<usize>,
    /// The run is over (a failure): parked operations die.
    abort: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Charged {
    Succeeded,
    Declined,
}

/// One charge as the provider remembers it, by idempotency key.
struct ChargeRecord {
    method: String,
    cents: i64,
    outcome: Charged,
}

#[derive(Default)]
struct Counters {
    statements: u64,
    busy: u64,
    failed: u64,
    kills: u64,
    declines: u64,
    timeouts: u64,
    lost_answers: u64,
    ops: u64,
}

struct Shared {
    dice: Mutex<Dice>,
    /// Off during setup and recovery.
    faults: AtomicBool,
    clock: AtomicI64,
    gate: Mutex<Gate>,
    turn: Condvar,
    charges: Mutex<BTreeMap<String, ChargeRecord>>,
    /// Broken rules seen where they happen (the provider), reported at the next check.
    violations: Mutex<Vec<String>>,
    /// The last things that happened, for a failure's report.
    trace: Mutex<VecDeque<String>>,
    /// A digest of everything that happened, to prove a seed replays exactly.
    digest: Mutex<u64>,
    counters: Mutex<Counters>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another thread failed; the data is still usable
    // for the report.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn new(seed: u64) -> Self {
        Self {
            dice: Mutex::new(Dice::new(seed)),
            faults: AtomicBool::new(false),
            clock: AtomicI64::new(Timestamp::parse_rfc3339(START).unwrap().millis()),
            gate: Mutex::new(Gate {
                phases: (0..INSTANCES).map(|_| Phase::Idle).collect(),
                grant: None,
                abort: false,
            }),
            turn: Condvar::new(),
            charges: Mutex::new(BTreeMap::new()),
            violations: Mutex::new(Vec::new()),
            trace: Mutex::new(VecDeque::new()),
            digest: Mutex::new(0xcbf2_9ce4_8422_2325),
            counters: Mutex::new(Counters::default()),
        }
    }

    fn faults(&self) -> bool {
        self.faults.load(Ordering::SeqCst)
    }

    fn roll(&self, p: u64) -> bool {
        lock(&self.dice).per_mille(p)
    }

    fn note(&self, line: String) {
        {
            let mut digest = lock(&self.digest);
            for b in line.bytes() {
                *digest = (*digest ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        let mut trace = lock(&self.trace);
        if trace.len() == 60 {
            trace.pop_front();
        }
        trace.push_back(line);
    }

    fn count(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut lock(&self.counters));
    }

    /// Blocks instance `me` until the scheduler gives it the turn.
    fn wait_turn(&self, me: usize) {
        let mut gate = lock(&self.gate);
        gate.phases[me] = Phase::Parked;
        self.turn.notify_all();
        while gate.grant != Some(me) && !gate.abort {
            gate = self
                .turn
                .wait(gate)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        gate.phases[me] = Phase::Running;
        if gate.abort {
            drop(gate);
            resume_unwind(Box::new(Killed));
        }
        gate.grant = None;
    }

    fn finish(&self, me: usize, answer: Answer) {
        let mut gate = lock(&self.gate);
        gate.phases[me] = Phase::Done(Box::new(answer));
        self.turn.notify_all();
    }

    /// Waits until no instance is running: each is idle, parked or done.
    fn quiet(&self) -> MutexGuard<'_, Gate> {
        let mut gate = lock(&self.gate);
        while gate.phases.iter().any(|p| matches!(p, Phase::Running)) {
            gate = self
                .turn
                .wait(gate)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        gate
    }

    fn now(&self) -> i64 {
        self.clock.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------------------
// The ports as the instances see them.

#[derive(Debug, Clone, Copy)]
enum StatementFault {
    None,
    Busy,
    Fail,
    DieBefore,
    DieAfter,
}

/// A connection whose every statement waits for its turn and may fail or kill.
struct SimDb<'a> {
    db: &'a NativeDb,
    shared: &'a Shared,
    me: usize,
}

impl Database for SimDb<'_> {
    /// Waits while busy as every adapter does, each try a turn of its own: an
    /// injected busy reaches the rules only as a real one would, after 5 s.
    fn execute(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        wait_while_busy(|| self.try_once(sql, params))
    }

    fn set_durability(&self, durability: Durability) -> Result<(), DbError> {
        self.db.set_durability(durability)
    }
}

impl SimDb<'_> {
    fn try_once(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        self.shared.wait_turn(self.me);
        let fault = if self.shared.faults() {
            match lock(&self.shared.dice).weighted(&[950, 20, 14, 8, 8]) {
                0 => StatementFault::None,
                1 => StatementFault::Busy,
                2 => StatementFault::Fail,
                3 => StatementFault::DieBefore,
                _ => StatementFault::DieAfter,
            }
        } else {
            StatementFault::None
        };
        let head: String = sql.split_whitespace().take(4).collect::<Vec<_>>().join(" ");
        self.shared
            .note(format!("  i{} {fault:?}: {head}", self.me));
        self.shared.count(|c| c.statements += 1);
        match fault {
            StatementFault::None => self.db.execute(sql, params),
            StatementFault::Busy => {
                self.shared.count(|c| c.busy += 1);
                Err(DbError::new(DbErrorKind::Busy, "sim: database is locked"))
            }
            StatementFault::Fail => {
                self.shared.count(|c| c.failed += 1);
                Err(DbError::other("sim: disk I/O error"))
            }
            StatementFault::DieBefore => {
                self.shared.count(|c| c.kills += 1);
                resume_unwind(Box::new(Killed))
            }
            StatementFault::DieAfter => {
                self.shared.count(|c| c.kills += 1);
                // The statement commits; its answer dies with the instance.
                let _ = self.db.execute(sql, params);
                resume_unwind(Box::new(Killed))
            }
        }
    }
}

/// A provider that remembers every charge by its idempotency key, as Stripe does:
/// the same key answers the first outcome and never charges again.
struct SimProvider<'a> {
    shared: &'a Shared,
    me: usize,
}

impl PaymentProvider for SimProvider<'_> {
    fn charge(&self, charge: &Charge<'_>) -> Result<ChargeOutcome, CreditsError> {
        // A turn like a statement: others may run between the charge and the grant.
        self.shared.wait_turn(self.me);
        let fault = if self.shared.faults() {
            lock(&self.shared.dice).weighted(&[700, 100, 80, 80, 40])
        } else {
            0
        };
        let key = charge.idempotency_key.to_owned();
        let mut charges = lock(&self.shared.charges);
        if fault == 2 {
            drop(charges);
            self.shared.count(|c| c.timeouts += 1);
            self.shared
                .note(format!("  i{} provider timed out before charging", self.me));
            return Err(CreditsError::ProviderUnavailable("sim: timed out".into()));
        }
        let outcome = if let Some(earlier) = charges.get(&key) {
            if earlier.cents != charge.amount.cents() || earlier.method != charge.payment_method {
                lock(&self.shared.violations).push(format!(
                    "charge {key} retried as {} cents with {} after {} cents with {}",
                    charge.amount.cents(),
                    charge.payment_method,
                    earlier.cents,
                    earlier.method
                ));
            }
            earlier.outcome
        } else {
            let outcome = if fault == 1 {
                self.shared.count(|c| c.declines += 1);
                Charged::Declined
            } else {
                Charged::Succeeded
            };
            charges.insert(
                key,
                ChargeRecord {
                    method: charge.payment_method.to_owned(),
                    cents: charge.amount.cents(),
                    outcome,
                },
            );
            outcome
        };
        drop(charges);
        self.shared.note(format!(
            "  i{} provider {outcome:?} (fault {fault})",
            self.me
        ));
        match fault {
            3 => {
                self.shared.count(|c| c.lost_answers += 1);
                Err(CreditsError::ProviderUnavailable(
                    "sim: connection reset after charging".into(),
                ))
            }
            4 => {
                self.shared.count(|c| c.kills += 1);
                resume_unwind(Box::new(Killed))
            }
            _ => Ok(outcome.answer()),
        }
    }

    fn find_charge(&self, key: &str) -> Result<Option<ChargeOutcome>, CreditsError> {
        self.shared.wait_turn(self.me);
        if self.shared.faults() && self.shared.roll(100) {
            self.shared.count(|c| c.timeouts += 1);
            return Err(CreditsError::ProviderUnavailable(
                "sim: search timed out".into(),
            ));
        }
        let found = lock(&self.shared.charges)
            .get(key)
            .map(|c| c.outcome.answer());
        self.shared
            .note(format!("  i{} provider search: {found:?}", self.me));
        Ok(found)
    }
}

impl Charged {
    fn answer(self) -> ChargeOutcome {
        match self {
            Self::Succeeded => ChargeOutcome::Succeeded,
            Self::Declined => ChargeOutcome::Declined {
                message: "Your card was declined.".into(),
            },
        }
    }
}

/// The shared clock; each reading moves it on by a millisecond, so no two
/// operations share an instant (ties would order rows by their random ids).
struct SimClock<'a>(&'a Shared);

impl Clock for SimClock<'_> {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.clock.fetch_add(1, Ordering::SeqCst))
    }
}

/// A receiver of events that is down now and then.
struct SimTransport<'a>(&'a Shared);

impl EventTransport for SimTransport<'_> {
    fn deliver(&self, _url: &str, event: &SignedEvent) -> DeliveryOutcome {
        if self.0.faults() && self.0.roll(250) {
            DeliveryOutcome::Failed(format!("sim: HTTP 503 for {}", event.id))
        } else {
            DeliveryOutcome::Delivered
        }
    }
}

// ---------------------------------------------------------------------------
// Operations and their answers.

#[derive(Debug, Clone)]
struct Key {
    /// `(account, kind, n)`: keys are per account and per kind of request.
    slot: (usize, &'static str, u8),
    /// Settle and void keys count per hold (the same key may end another hold).
    scope: String,
    body: serde_json::Value,
}

type KeyId = ((usize, &'static str, u8), String);

impl Key {
    fn id(&self) -> KeyId {
        (self.slot, self.scope.clone())
    }
}

impl Key {
    fn idem(&self) -> Idempotency {
        let (acct, kind, n) = self.slot;
        Idempotency::new(
            IdempotencyKey::parse(&format!("{kind}-{acct}-{n}")).unwrap(),
            &self.body,
        )
    }
}

#[derive(Debug, Clone)]
enum Op {
    CreateAccount {
        acct: usize,
        plan: Plan,
    },
    Deduct {
        acct: usize,
        tokens: u64,
        key: Option<Key>,
    },
    Refund {
        acct: usize,
        of: TransactionId,
        tokens: Option<u64>,
        key: Option<Key>,
    },
    Purchase {
        acct: usize,
        pack: Pack,
        key: Option<Key>,
    },
    CreateHold {
        acct: usize,
        tokens: u64,
        secs: Option<u64>,
        key: Option<Key>,
    },
    SettleHold {
        acct: usize,
        hold: HoldId,
        tokens: u64,
        key: Option<Key>,
    },
    VoidHold {
        acct: usize,
        hold: HoldId,
        key: Option<Key>,
    },
    ChangePlan {
        acct: usize,
        plan: Plan,
    },
    PaymentMethod {
        acct: usize,
        method: &'static str,
    },
    Recharge {
        acct: usize,
        enabled: bool,
        pack: Pack,
        threshold: u64,
        limit_cents: i64,
    },
    Evaluate {
        acct: usize,
    },
    RechargeCheck,
    DeliverEvents,
}

impl Op {
    fn key(&self) -> Option<&Key> {
        match self {
            Op::Deduct { key, .. }
            | Op::Refund { key, .. }
            | Op::Purchase { key, .. }
            | Op::CreateHold { key, .. }
            | Op::SettleHold { key, .. }
            | Op::VoidHold { key, .. } => key.as_ref(),
            _ => None,
        }
    }
}

/// What an operation that changes the books answered, as a replay must repeat it.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Tx(Transaction),
    Hold(HoldId),
    Settled(Option<Transaction>, HoldId),
    Voided(HoldId),
    Declined,
}

#[derive(Debug)]
enum Answer {
    Done {
        outcome: Option<Outcome>,
        replayed: bool,
    },
    Refused(CreditsError),
    Killed,
    Panicked(String),
}

fn account_id(acct: usize) -> AccountId {
    AccountId::parse(&format!("acct-{acct}")).unwrap()
}

fn plan_named(n: u64) -> Plan {
    [Plan::Free, Plan::Pro, Plan::Team][n as usize % 3]
}

const PACKS: [Pack; 4] = [Pack::Starter, Pack::Standard, Pack::Plus, Pack::Pro];
const METHODS: [&str; 2] = ["pm_card_visa", "pm_card_mastercard"];
const TARGET: &str = "http://127.0.0.1:9/events";

fn done<T>(
    result: Result<T, CreditsError>,
    outcome: impl FnOnce(&T) -> Option<Outcome>,
    replayed: impl FnOnce(&T) -> bool,
) -> Answer {
    match result {
        Ok(value) => Answer::Done {
            outcome: outcome(&value),
            replayed: replayed(&value),
        },
        Err(CreditsError::PaymentDeclined(_)) => Answer::Done {
            outcome: Some(Outcome::Declined),
            replayed: false,
        },
        Err(e) => Answer::Refused(e),
    }
}

/// Runs one operation on an instance's service.
fn run(op: &Op, c: &Credits<'_>, shared: &Shared) -> Answer {
    let idem = op.key().map(Key::idem);
    let idem = idem.as_ref();
    let resource = || Resource::parse(Some("sim"), Some("s-1")).unwrap();
    let operation = || Operation::parse("enrichment").unwrap();
    match op {
        Op::CreateAccount { acct, plan } => done(
            c.create_account(&account_id(*acct), *plan),
            |_| None,
            |_| false,
        ),
        Op::Deduct { acct, tokens, .. } => {
            let req = DeductionRequest::new(
                account_id(*acct),
                TokenAmount::new(*tokens).unwrap(),
                operation(),
                resource(),
            );
            done(
                c.deduct(&req, idem),
                |r| Some(Outcome::Tx(r.value.transaction.clone())),
                |r| r.replayed,
            )
        }
        Op::Refund {
            acct, of, tokens, ..
        } => {
            let req = RefundRequest::new(
                account_id(*acct),
                Some(*of),
                tokens.map(|t| TokenAmount::new(t).unwrap()),
                Some(Reason::parse("job failed").unwrap()),
            );
            done(
                c.refund(&req, idem),
                |r| Some(Outcome::Tx(r.value.transaction.clone())),
                |r| r.replayed,
            )
        }
        Op::Purchase { acct, pack, .. } => done(
            c.purchase(&account_id(*acct), *pack, idem),
            |r| Some(Outcome::Tx(r.value.transaction.clone())),
            |r| r.replayed,
        ),
        Op::CreateHold {
            acct, tokens, secs, ..
        } => {
            let req = HoldRequest::new(
                account_id(*acct),
                TokenAmount::new(*tokens).unwrap(),
                operation(),
                resource(),
                HoldLifetime::new(*secs).unwrap(),
            );
            done(
                c.create_hold(&req, idem),
                |r| Some(Outcome::Hold(r.value.hold.id.clone())),
                |r| r.replayed,
            )
        }
        Op::SettleHold {
            acct, hold, tokens, ..
        } => done(
            c.settle_hold(
                &account_id(*acct),
                Some(hold),
                SettledTokens::new(*tokens).unwrap(),
                idem,
            ),
            |r| {
                Some(Outcome::Settled(
                    r.value.transaction.clone(),
                    r.value.hold.id.clone(),
                ))
            },
            |r| r.replayed,
        ),
        Op::VoidHold { acct, hold, .. } => done(
            c.void_hold(&account_id(*acct), Some(hold), idem),
            |r| Some(Outcome::Voided(r.value.hold.id.clone())),
            |r| r.replayed,
        ),
        Op::ChangePlan { acct, plan } => done(
            c.change_plan(&account_id(*acct), *plan),
            |()| None,
            |()| false,
        ),
        Op::PaymentMethod { acct, method } => done(
            c.save_payment_method(&account_id(*acct), &PaymentMethodId::parse(method).unwrap()),
            |_| None,
            |_| false,
        ),
        Op::Recharge {
            acct,
            enabled,
            pack,
            threshold,
            limit_cents,
        } => {
            let settings = RechargeSettings::new(
                *enabled,
                Some(*pack),
                Some(TokenAmount::new(*threshold).unwrap()),
                Some(Eur::from_cents(*limit_cents)),
            )
            .unwrap();
            done(
                c.save_recharge_settings(&account_id(*acct), &settings),
                |_| None,
                |_| false,
            )
        }
        Op::Evaluate { acct } => done(
            c.evaluate_recharge(&account_id(*acct), None),
            |_| None,
            |_| false,
        ),
        Op::RechargeCheck => done(c.recharge_check(), |_| None, |_| false),
        Op::DeliverEvents => {
            let target = EventsTarget {
                url: TARGET.into(),
                secret: "whsec_sim".into(),
            };
            done(
                c.deliver_events(&target, &SimTransport(shared)),
                |_| None,
                |_| false,
            )
        }
    }
}

// ---------------------------------------------------------------------------
// The instances.

type Job = Box<dyn FnOnce(&Credits<'_>, &Shared) -> Answer + Send>;

fn spawn_instance(shared: Arc<Shared>, me: usize, path: PathBuf) -> (Sender<Job>, JoinHandle<()>) {
    let (tx, rx) = channel::<Job>();
    let handle = thread::spawn(move || {
        let mut db = NativeDb::open(&path).unwrap();
        while let Ok(job) = rx.recv() {
            let answer = {
                let sim = SimDb {
                    db: &db,
                    shared: &shared,
                    me,
                };
                let provider = SimProvider {
                    shared: &shared,
                    me,
                };
                let clock = SimClock(&shared);
                let credits = Credits::new(&sim, &NoCache, &provider, &clock);
                match catch_unwind(AssertUnwindSafe(|| job(&credits, &shared))) {
                    Ok(answer) => answer,
                    Err(payload) if payload.is::<Killed>() => Answer::Killed,
                    Err(payload) => Answer::Panicked(
                        payload
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                            .unwrap_or_default(),
                    ),
                }
            };
            if matches!(answer, Answer::Killed | Answer::Panicked(_)) {
                // The instance restarts with a fresh connection.
                db = NativeDb::open(&path).unwrap();
            }
            shared.finish(me, answer);
        }
    });
    (tx, handle)
}

// ---------------------------------------------------------------------------
// The model: only what it takes to pick operations and to judge replays.

/// What one idempotency key has answered so far.
struct KeyState {
    /// The request first sent with this key; replays repeat it.
    first_request: Op,
    /// The first terminal answer and the body it came with.
    answered: Option<(serde_json::Value, Outcome)>,
}

struct InFlight {
    op: Op,
    /// The key's first answer as known when this operation started.
    known: Option<(serde_json::Value, Outcome)>,
}

#[derive(Default)]
struct Model {
    created: [bool; ACCOUNTS],
    deductions: Vec<Vec<TransactionId>>,
    holds: Vec<Vec<HoldId>>,
    keys: BTreeMap<KeyId, KeyState>,
    /// Per account and plan period, the largest allocation seen in force.
    allocation: BTreeMap<(String, String), i64>,
    /// Per account, each auto-recharge limit seen and when it was first seen.
    limits: BTreeMap<String, Vec<(i64, i64)>>,
}

struct Failure {
    seed: u64,
    step: u64,
    message: String,
    trace: Vec<String>,
}

struct Sim {
    seed: u64,
    shared: Arc<Shared>,
    observer: NativeDb,
    senders: Vec<Sender<Job>>,
    handles: Vec<JoinHandle<()>>,
    inflight: Vec<Option<InFlight>>,
    model: Model,
    step: u64,
    _dir: tempfile::TempDir,
}

/// One row's integer column, as the checks read it.
fn int(row: &Row, i: usize) -> i64 {
    row.int(i).unwrap_or(i64::MIN)
}

fn text(row: &Row, i: usize) -> String {
    row.opt_text(i).ok().flatten().unwrap_or("").to_owned()
}

impl Sim {
    fn new(seed: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credits.db");
        let observer = NativeDb::open(&path).unwrap();
        let shared = Arc::new(Shared::new(seed));
        let mut sim = Self {
            seed,
            shared: Arc::clone(&shared),
            observer,
            senders: Vec::new(),
            handles: Vec::new(),
            inflight: (0..INSTANCES).map(|_| None).collect(),
            model: Model {
                deductions: vec![Vec::new(); ACCOUNTS],
                holds: vec![Vec::new(); ACCOUNTS],
                ..Model::default()
            },
            step: 0,
            _dir: dir,
        };
        sim.with_observer(|c| c.migrate()).unwrap();
        for me in 0..INSTANCES {
            let (tx, handle) = spawn_instance(Arc::clone(&shared), me, path.clone());
            sim.senders.push(tx);
            sim.handles.push(handle);
        }
        sim
    }

    fn with_observer<T>(&self, f: impl FnOnce(&Credits<'_>) -> T) -> T {
        let clock = FixedClock(Timestamp::from_millis(self.shared.now()));
        let provider = SimProvider {
            shared: &self.shared,
            me: usize::MAX,
        };
        let credits = Credits::new(&self.observer, &NoCache, &provider, &clock);
        f(&credits)
    }

    fn query(&self, sql: &str) -> Result<Vec<Row>, String> {
        self.observer
            .execute(sql, &[])
            .map_err(|e| format!("check query failed: {e}: {sql}"))
    }

    fn fail(&self, message: String) -> Failure {
        // Parked operations die, so the instance threads end.
        lock(&self.shared.gate).abort = true;
        self.shared.turn.notify_all();
        Failure {
            seed: self.seed,
            step: self.step,
            message,
            trace: lock(&self.shared.trace).iter().cloned().collect(),
        }
    }

    // -- Choosing operations ------------------------------------------------

    fn some_account(&self, dice: &mut Dice) -> usize {
        let created: Vec<usize> = (0..ACCOUNTS).filter(|a| self.model.created[*a]).collect();
        if created.is_empty() || dice.per_mille(30) {
            dice.index(ACCOUNTS)
        } else {
            dice.pick(&created)
        }
    }

    fn tokens(dice: &mut Dice) -> u64 {
        match dice.below(3) {
            0 => 1 + dice.below(1_000),
            1 => 1_000 + dice.below(500_000),
            _ => 500_000 + dice.below(6_000_000),
        }
    }

    /// A keyed request: a replay of the key's first request (same body) most of
    /// the time, else a new request under the same key (another body).
    fn keyed(&mut self, dice: &mut Dice, acct: usize, kind: &'static str, fresh: Op) -> Op {
        if dice.per_mille(450) {
            return fresh;
        }
        let slot = (acct, kind, dice.below(3) as u8);
        let scope = match &fresh {
            Op::SettleHold { hold, .. } | Op::VoidHold { hold, .. } => hold.as_str().to_owned(),
            _ => String::new(),
        };
        if let Some(state) = self.model.keys.get(&(slot, scope.clone()))
            && dice.per_mille(750)
        {
            return state.first_request.clone();
        }
        let body = match &fresh {
            Op::Deduct { tokens, .. } => json!({ "tokens": tokens }),
            Op::Refund { of, tokens, .. } => json!({ "of": of.seq(), "tokens": tokens }),
            Op::Purchase { pack, .. } => json!({ "pack": pack.id() }),
            Op::CreateHold { tokens, secs, .. } => json!({ "tokens": tokens, "secs": secs }),
            Op::SettleHold { hold, tokens, .. } => {
                json!({ "hold": hold.as_str(), "tokens": tokens })
            }
            Op::VoidHold { hold, .. } => json!({ "hold": hold.as_str() }),
            _ => return fresh,
        };
        let key = Some(Key {
            slot,
            scope: scope.clone(),
            body,
        });
        let op = match fresh {
            Op::Deduct { acct, tokens, .. } => Op::Deduct { acct, tokens, key },
            Op::Refund {
                acct, of, tokens, ..
            } => Op::Refund {
                acct,
                of,
                tokens,
                key,
            },
            Op::Purchase { acct, pack, .. } => Op::Purchase { acct, pack, key },
            Op::CreateHold {
                acct, tokens, secs, ..
            } => Op::CreateHold {
                acct,
                tokens,
                secs,
                key,
            },
            Op::SettleHold {
                acct, hold, tokens, ..
            } => Op::SettleHold {
                acct,
                hold,
                tokens,
                key,
            },
            Op::VoidHold { acct, hold, .. } => Op::VoidHold { acct, hold, key },
            other => other,
        };
        self.model
            .keys
            .entry((slot, scope))
            .or_insert_with(|| KeyState {
                first_request: op.clone(),
                answered: None,
            });
        op
    }

    fn choose_op(&mut self) -> Op {
        let shared = Arc::clone(&self.shared);
        let mut dice = lock(&shared.dice);
        let acct = self.some_account(&mut dice);
        let weights = [1, 16, 6, 6, 5, 4, 3, 1, 1, 2, 1, 3, 2];
        match dice.weighted(&weights) {
            0 => Op::CreateAccount {
                acct: ACCOUNTS - 1,
                plan: plan_named(dice.below(3)),
            },
            1 => {
                let tokens = Self::tokens(&mut dice);
                self.keyed(
                    &mut dice,
                    acct,
                    "d",
                    Op::Deduct {
                        acct,
                        tokens,
                        key: None,
                    },
                )
            }
            2 => {
                let Some(of) = (!self.model.deductions[acct].is_empty())
                    .then(|| dice.pick(&self.model.deductions[acct]))
                else {
                    return Op::RechargeCheck;
                };
                let tokens = match dice.below(3) {
                    0 => None,
                    1 => Some(1 + dice.below(2_000)),
                    _ => Some(1 + dice.below(3_000_000)),
                };
                self.keyed(
                    &mut dice,
                    acct,
                    "r",
                    Op::Refund {
                        acct,
                        of,
                        tokens,
                        key: None,
                    },
                )
            }
            3 => {
                let pack = dice.pick(&PACKS);
                self.keyed(
                    &mut dice,
                    acct,
                    "p",
                    Op::Purchase {
                        acct,
                        pack,
                        key: None,
                    },
                )
            }
            4 => {
                let tokens = Self::tokens(&mut dice);
                let secs = match dice.below(3) {
                    0 => None,
                    1 => Some(1 + dice.below(120)),
                    _ => Some(1 + dice.below(86_400)),
                };
                self.keyed(
                    &mut dice,
                    acct,
                    "h",
                    Op::CreateHold {
                        acct,
                        tokens,
                        secs,
                        key: None,
                    },
                )
            }
            5 | 6 => {
                let Some(hold) = (!self.model.holds[acct].is_empty())
                    .then(|| dice.pick(&self.model.holds[acct]))
                else {
                    return Op::DeliverEvents;
                };
                if dice.per_mille(600) {
                    let tokens = match dice.below(3) {
                        0 => 0,
                        1 => 1 + dice.below(1_000),
                        _ => dice.below(6_000_000),
                    };
                    self.keyed(
                        &mut dice,
                        acct,
                        "s",
                        Op::SettleHold {
                            acct,
                            hold,
                            tokens,
                            key: None,
                        },
                    )
                } else {
                    self.keyed(
                        &mut dice,
                        acct,
                        "v",
                        Op::VoidHold {
                            acct,
                            hold,
                            key: None,
                        },
                    )
                }
            }
            7 => Op::ChangePlan {
                acct,
                plan: plan_named(dice.below(3)),
            },
            8 => Op::PaymentMethod {
                acct,
                method: dice.pick(&METHODS),
            },
            9 => Op::Recharge {
                acct,
                enabled: dice.per_mille(800),
                pack: dice.pick(&PACKS),
                threshold: dice.pick(&[1_000, 500_000, 2_000_000, 20_000_000]),
                limit_cents: dice.pick(&[0, 500, 1_000, 2_500, 5_000, 12_000]),
            },
            10 => Op::Evaluate { acct },
            11 => Op::RechargeCheck,
            _ => Op::DeliverEvents,
        }
    }

    // -- Running ------------------------------------------------------------

    fn start(&mut self, me: usize, op: Op) {
        let known = op
            .key()
            .and_then(|k| self.model.keys.get(&k.id()))
            .and_then(|s| s.answered.clone());
        self.shared.note(format!("i{me} starts {}", describe(&op)));
        self.shared.count(|c| c.ops += 1);
        lock(&self.shared.gate).phases[me] = Phase::Running;
        let job_op = op.clone();
        self.inflight[me] = Some(InFlight { op, known });
        self.senders[me]
            .send(Box::new(move |c, shared| run(&job_op, c, shared)))
            .unwrap();
    }

    /// Reads the answers of finished operations; judges replays.
    fn collect(&mut self, gate: &mut Gate) -> Result<(), String> {
        for me in 0..INSTANCES {
            if !matches!(gate.phases[me], Phase::Done(_)) {
                continue;
            }
            let Phase::Done(answer) = std::mem::replace(&mut gate.phases[me], Phase::Idle) else {
                unreachable!()
            };
            let flight = self.inflight[me].take().expect("an operation was running");
            self.shared
                .note(format!("i{me} answers {}", summarize(&answer)));
            self.judge(&flight, *answer)?;
        }
        Ok(())
    }

    fn judge(&mut self, flight: &InFlight, answer: Answer) -> Result<(), String> {
        let op = &flight.op;
        match &answer {
            Answer::Panicked(message) => return Err(format!("{op:?} panicked: {message}")),
            Answer::Refused(CreditsError::Internal(message)) => {
                return Err(format!("{op:?} answered an internal error: {message}"));
            }
            Answer::Refused(CreditsError::Invalid(message)) => {
                return Err(format!("{op:?} refused as invalid: {message}"));
            }
            _ => {}
        }
        if let Answer::Done {
            outcome: Some(outcome),
            ..
        } = &answer
        {
            match (op, outcome) {
                (Op::Deduct { acct, .. }, Outcome::Tx(tx))
                | (Op::SettleHold { acct, .. }, Outcome::Settled(Some(tx), _)) => {
                    // A replay names a deduction the model knows already.
                    let known = &mut self.model.deductions[*acct];
                    if !known.contains(&tx.id()) {
                        known.push(tx.id());
                    }
                }
                (Op::CreateHold { acct, .. }, Outcome::Hold(hold)) => {
                    let known = &mut self.model.holds[*acct];
                    if !known.contains(hold) {
                        known.push(hold.clone());
                    }
                }
                _ => {}
            }
        }
        if let Op::CreateAccount { acct, .. } = op
            && matches!(
                answer,
                Answer::Done { .. } | Answer::Refused(CreditsError::AccountExists(_))
            )
        {
            self.model.created[*acct] = true;
        }
        let Some(key) = op.key() else {
            return Ok(());
        };
        let state = self
            .model
            .keys
            .get_mut(&key.id())
            .expect("keys are recorded");
        match &answer {
            Answer::Done {
                outcome: Some(outcome),
                replayed,
            } => {
                if let Some((body, first)) = &state.answered {
                    if *body != key.body {
                        return Err(format!(
                            "key {:?} answered {outcome:?} for body {} after {first:?} for body {body}",
                            key.slot, key.body
                        ));
                    }
                    // Money taken is granted, even after the purchase was failed
                    // as never charged: an instance paused (here, for an hour of
                    // the simulated clock) between its insert and its charge can
                    // still charge under the key. The checks below prove every
                    // grant was charged.
                    let late_money = *first == Outcome::Declined
                        && matches!(outcome, Outcome::Tx(Transaction::Purchase { .. }));
                    if first != outcome && !late_money {
                        return Err(format!(
                            "key {:?} replayed as {outcome:?}, first answer was {first:?}",
                            key.slot
                        ));
                    }
                    if flight.known.is_some() && !replayed && *outcome != Outcome::Declined {
                        return Err(format!(
                            "key {:?} answered {outcome:?} again without marking it replayed",
                            key.slot
                        ));
                    }
                } else {
                    state.answered = Some((key.body.clone(), outcome.clone()));
                }
            }
            Answer::Refused(CreditsError::IdempotencyKeyReused) => {
                if let Some((body, _)) = &flight.known
                    && *body == key.body
                {
                    return Err(format!(
                        "key {:?} with its first body {body} refused as reused",
                        key.slot
                    ));
                }
            }
            Answer::Refused(e) => {
                // A replay of a known answer must give it again, unless the
                // instance failed (storage) or the provider gave no answer.
                if let Some((body, first)) = &flight.known
                    && *body == key.body
                    && !matches!(
                        e,
                        CreditsError::Storage(_) | CreditsError::ProviderUnavailable(_)
                    )
                {
                    return Err(format!(
                        "key {:?} replay refused ({e:?}) after answering {first:?}",
                        key.slot
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }

    // -- The invariants -----------------------------------------------------

    /// Every invariant that must hold between any two statements.
    fn check(&mut self) -> Result<(), String> {
        let mut broken: Vec<String> = std::mem::take(&mut *lock(&self.shared.violations));
        match self.with_observer(|c| c.audit()) {
            Ok(found) => broken.extend(found),
            Err(e) => broken.push(format!("audit failed: {e}")),
        }
        for row in self.query("SELECT id, credit_balance FROM accounts WHERE credit_balance < 0")? {
            broken.push(format!(
                "{}: negative balance {}",
                text(&row, 0),
                int(&row, 1)
            ));
        }
        // Plan use within the allocation: the largest seen in force in that period
        // (a plan lowered mid-month may leave use above the new allocation).
        let month = Timestamp::from_millis(self.shared.now()).month().key();
        for row in self.query(
            "SELECT id, COALESCE(plan_period, ''), plan_used, monthly_tokens FROM accounts",
        )? {
            let id = text(&row, 0);
            for period in [text(&row, 1), month.clone()] {
                let seen = self
                    .model
                    .allocation
                    .entry((id.clone(), period))
                    .or_insert(0);
                *seen = (*seen).max(int(&row, 3));
            }
            let allowed = self.model.allocation[&(id.clone(), text(&row, 1))];
            if int(&row, 2) > allowed {
                broken.push(format!(
                    "{id}: plan use {} in {} above the allocation {allowed}",
                    int(&row, 2),
                    text(&row, 1)
                ));
            }
        }
        // A purchase is granted at most once, and only after a successful charge
        // of its amount.
        for row in self.query(
            "SELECT purchase_id, COUNT(*) FROM ledger WHERE kind = 'purchase'
             GROUP BY purchase_id HAVING COUNT(*) > 1",
        )? {
            broken.push(format!(
                "purchase {} granted {} times",
                text(&row, 0),
                int(&row, 1)
            ));
        }
        let granted = self.query(
            "SELECT l.purchase_id, p.amount_cents FROM ledger l
             JOIN purchases p ON p.id = l.purchase_id WHERE l.kind = 'purchase'",
        )?;
        let purchases: BTreeSet<String> = self
            .query("SELECT id FROM purchases")?
            .iter()
            .map(|r| text(r, 0))
            .collect();
        {
            let charges = lock(&self.shared.charges);
            for row in &granted {
                let id = text(row, 0);
                match charges.get(&id) {
                    Some(c) if c.outcome == Charged::Succeeded && c.cents == int(row, 1) => {}
                    Some(c) => broken.push(format!(
                        "purchase {id} of {} cents granted after a charge {:?} of {} cents",
                        int(row, 1),
                        c.outcome,
                        c.cents
                    )),
                    None => broken.push(format!("purchase {id} granted without a charge")),
                }
            }
            for key in charges.keys() {
                if !purchases.contains(key) {
                    broken.push(format!("charge {key} without a purchase"));
                }
            }
        }
        // A replayed request never moves tokens twice.
        for row in self.query(
            "SELECT account_id, kind, idempotency_key, COUNT(*) FROM ledger
             WHERE idempotency_key IS NOT NULL GROUP BY 1, 2, 3 HAVING COUNT(*) > 1",
        )? {
            broken.push(format!(
                "{} {} key {} has {} entries",
                text(&row, 0),
                text(&row, 1),
                text(&row, 2),
                int(&row, 3)
            ));
        }
        // Each account's events are numbered 1..n.
        for row in self.query(
            "SELECT account_id, COUNT(*), COUNT(DISTINCT sequence), MIN(sequence), MAX(sequence)
             FROM events GROUP BY account_id",
        )? {
            let (n, distinct, min, max) = (int(&row, 1), int(&row, 2), int(&row, 3), int(&row, 4));
            if !(n == distinct && min == 1 && max == n) {
                broken.push(format!(
                    "{}: {n} events numbered {min}..{max} ({distinct} distinct)",
                    text(&row, 0)
                ));
            }
        }
        // Auto-recharge spending per month within the largest limit in force
        // since that month began (a limit lowered later binds later purchases).
        let now = self.shared.now();
        for row in self.query("SELECT account_id, monthly_limit_cents FROM auto_recharge")? {
            let seen = self.model.limits.entry(text(&row, 0)).or_default();
            if seen.last().map(|(_, l)| *l) != Some(int(&row, 1)) {
                seen.push((now, int(&row, 1)));
            }
        }
        for row in self.query(
            "SELECT account_id, period, SUM(amount_cents) FROM purchases
             WHERE source = 'auto_recharge' AND status <> 'failed' GROUP BY 1, 2",
        )? {
            let (id, period, spent) = (text(&row, 0), text(&row, 1), int(&row, 2));
            let Some(start) = month_start(&period) else {
                broken.push(format!("{id}: auto-recharge in period {period:?}"));
                continue;
            };
            let history = self.model.limits.get(&id).cloned().unwrap_or_default();
            let before = history
                .iter()
                .rev()
                .find(|(at, _)| *at < start)
                .map(|(_, l)| *l);
            let allowed = history
                .iter()
                .filter(|(at, _)| *at >= start)
                .map(|(_, l)| *l)
                .chain(before)
                .max()
                .unwrap_or(0);
            if spent > allowed {
                broken.push(format!(
                    "{id}: auto-recharge spent {spent} cents in {period}, limit {allowed}"
                ));
            }
        }
        if broken.is_empty() {
            Ok(())
        } else {
            Err(broken.join("\n"))
        }
    }

    // -- The run ------------------------------------------------------------

    fn jump_clock(&self, dice: &mut Dice) {
        let now = self.shared.now();
        let to = match dice.below(7) {
            0 => now + 1_000,
            1 => now + 61_000,
            2 => now + 10 * 60_000 + 1,
            3 => now + 2 * 3_600_000,
            4 => now + 86_400_000,
            5 => now + 9 * 86_400_000,
            _ => Timestamp::from_millis(now).month().end().millis() + dice.below(3_600_000) as i64,
        };
        self.shared.clock.store(to, Ordering::SeqCst);
        self.shared.note(format!(
            "clock to {}",
            Timestamp::from_millis(to).to_rfc3339()
        ));
    }

    /// One step: reads what finished, checks, then runs one statement, starts an
    /// operation, or moves the clock.
    fn step(&mut self, may_start: bool) -> Result<bool, String> {
        let shared = Arc::clone(&self.shared);
        let mut gate = shared.quiet();
        self.collect(&mut gate)?;
        drop(gate);
        self.check()?;
        let gate = lock(&shared.gate);
        let parked: Vec<usize> = (0..INSTANCES)
            .filter(|i| matches!(gate.phases[*i], Phase::Parked))
            .collect();
        let idle: Vec<usize> = (0..INSTANCES)
            .filter(|i| matches!(gate.phases[*i], Phase::Idle))
            .collect();
        drop(gate);
        if parked.is_empty() && (!may_start || idle.is_empty()) {
            return Ok(false);
        }
        let mut dice = lock(&shared.dice);
        let action = dice.weighted(&[
            if parked.is_empty() { 0 } else { 12 },
            if may_start && !idle.is_empty() { 4 } else { 0 },
            u64::from(may_start),
        ]);
        match action {
            0 => {
                let me = dice.pick(&parked);
                drop(dice);
                let mut gate = lock(&shared.gate);
                gate.phases[me] = Phase::Running;
                gate.grant = Some(me);
                shared.turn.notify_all();
            }
            1 => {
                let me = dice.pick(&idle);
                drop(dice);
                let op = self.choose_op();
                self.start(me, op);
            }
            _ => self.jump_clock(&mut dice),
        }
        Ok(true)
    }

    /// Runs one operation alone, without faults, to its answer.
    fn run_alone(&mut self, op: Op) -> Result<(), String> {
        self.start(0, op);
        while self.step(false)? {}
        Ok(())
    }

    fn setup(&mut self) -> Result<(), String> {
        let plans: Vec<(Plan, bool)> = {
            let mut dice = lock(&self.shared.dice);
            (0..ACCOUNTS - 1)
                .map(|_| (plan_named(dice.below(3)), dice.per_mille(800)))
                .collect()
        };
        for (acct, (plan, method)) in plans.into_iter().enumerate() {
            self.run_alone(Op::CreateAccount { acct, plan })?;
            if method {
                self.run_alone(Op::PaymentMethod {
                    acct,
                    method: METHODS[acct % 2],
                })?;
            }
        }
        Ok(())
    }

    /// After the run: recharge checks without faults, the clock moving on past
    /// every wait, until no purchase is pending; then every successful charge must
    /// be granted once and every decline recorded.
    fn recover(&mut self) -> Result<usize, String> {
        self.shared.faults.store(false, Ordering::SeqCst);
        for round in 0..RECOVERY_ROUNDS {
            let pending = self.query("SELECT COUNT(*) FROM purchases WHERE status = 'pending'")?;
            if int(&pending[0], 0) == 0 {
                let statuses: BTreeMap<String, String> = self
                    .query("SELECT id, status FROM purchases")?
                    .iter()
                    .map(|r| (text(r, 0), text(r, 1)))
                    .collect();
                let charges = lock(&self.shared.charges);
                for (key, charge) in charges.iter() {
                    let status = statuses.get(key).map_or("missing", String::as_str);
                    let expected = match charge.outcome {
                        Charged::Succeeded => "succeeded",
                        Charged::Declined => "failed",
                    };
                    if status != expected {
                        return Err(format!(
                            "charge {key} {:?} but its purchase is {status} after recovery",
                            charge.outcome
                        ));
                    }
                }
                for (id, status) in &statuses {
                    if status == "succeeded" && !charges.contains_key(id) {
                        return Err(format!("purchase {id} succeeded without a charge"));
                    }
                }
                return Ok(round);
            }
            let to = self.shared.now() + 2 * 3_600_000;
            self.shared.clock.store(to, Ordering::SeqCst);
            self.run_alone(Op::RechargeCheck)?;
        }
        Err(format!(
            "purchases still pending after {RECOVERY_ROUNDS} recovery rounds"
        ))
    }

    fn run(mut self, steps: u64) -> Result<Summary, Failure> {
        if let Err(m) = self.setup() {
            return Err(self.fail(format!("setup: {m}")));
        }
        self.shared.faults.store(true, Ordering::SeqCst);
        while self.step < steps {
            self.step += 1;
            if let Err(m) = self.step(true) {
                return Err(self.fail(m));
            }
        }
        // Let what is in flight finish (faults still on), then recover.
        loop {
            match self.step(false) {
                Ok(true) => self.step += 1,
                Ok(false) => break,
                Err(m) => return Err(self.fail(m)),
            }
        }
        let rounds = match self.recover() {
            Ok(rounds) => rounds,
            Err(m) => return Err(self.fail(format!("recovery: {m}"))),
        };
        let summary = Summary {
            digest: *lock(&self.shared.digest),
            rounds,
            counters: std::mem::take(&mut *lock(&self.shared.counters)),
            purchases: self
                .query("SELECT COUNT(*) FROM purchases")
                .map_or(0, |r| int(&r[0], 0)),
            ledger: self
                .query("SELECT COUNT(*) FROM ledger")
                .map_or(0, |r| int(&r[0], 0)),
        };
        self.senders.clear();
        for handle in self.handles.drain(..) {
            handle.join().unwrap();
        }
        Ok(summary)
    }
}

/// The first instant of a `YYYY-MM` period, in milliseconds.
fn month_start(period: &str) -> Option<i64> {
    Timestamp::parse_rfc3339(&format!("{period}-01T00:00:00Z"))
        .ok()
        .map(Timestamp::millis)
}

/// An operation for the trace, without the random ids (so the digest replays).
fn describe(op: &Op) -> String {
    let key = op
        .key()
        .map(|k| format!(" key {:?} {}", k.slot, k.body))
        .unwrap_or_default();
    let head = match op {
        Op::SettleHold { acct, tokens, .. } => format!("SettleHold acct {acct} tokens {tokens}"),
        Op::VoidHold { acct, .. } => format!("VoidHold acct {acct}"),
        other => {
            let mut s = format!("{other:?}");
            if let Some(at) = s.find(", key") {
                s.truncate(at);
            }
            s
        }
    };
    let key = if matches!(op, Op::SettleHold { .. } | Op::VoidHold { .. }) {
        op.key()
            .map(|k| format!(" key {:?}", k.slot))
            .unwrap_or_default()
    } else {
        key
    };
    format!("{head}{key}")
}

fn summarize(answer: &Answer) -> String {
    match answer {
        Answer::Done { outcome, replayed } => {
            let what = match outcome {
                None => "ok".to_owned(),
                Some(Outcome::Tx(tx)) => format!("tx {}", tx.id().seq()),
                Some(Outcome::Hold(_)) => "hold".to_owned(),
                Some(Outcome::Settled(tx, _)) => {
                    format!("settled {:?}", tx.as_ref().map(|t| t.id().seq()))
                }
                Some(Outcome::Voided(_)) => "voided".to_owned(),
                Some(Outcome::Declined) => "declined".to_owned(),
            };
            format!("{what}{}", if *replayed { " (replayed)" } else { "" })
        }
        Answer::Refused(e) => format!("refused: {e}"),
        Answer::Killed => "killed".to_owned(),
        Answer::Panicked(m) => format!("panicked: {m}"),
    }
}

struct Summary {
    digest: u64,
    rounds: usize,
    counters: Counters,
    purchases: i64,
    ledger: i64,
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {v:?}"))
    })
}

fn steps() -> u64 {
    env_u64("SIM_STEPS").unwrap_or(DEFAULT_STEPS)
}

fn report(failure: &Failure, steps: u64) -> String {
    let mut out = format!(
        "simulation failed at seed {} step {}:\n{}\n\nlast events:\n",
        failure.seed, failure.step, failure.message
    );
    for line in &failure.trace {
        let _ = writeln!(out, "  {line}");
    }
    let _ = write!(
        out,
        "\nreplay: SIM_SEED={} SIM_STEPS={steps} cargo test -p credits --test simulation",
        failure.seed
    );
    out
}

fn simulate(seed: u64, steps: u64) -> Summary {
    Sim::new(seed)
        .run(steps)
        .unwrap_or_else(|f| panic!("{}", report(&f, steps)))
}

#[test]
fn seeds_keep_every_invariant() {
    let steps = steps();
    let seeds: Vec<u64> = if let Some(seed) = env_u64("SIM_SEED") {
        vec![seed]
    } else {
        // SIM_SEED_FROM lets a script split one long range across processes.
        let from = env_u64("SIM_SEED_FROM").unwrap_or(1);
        (from..from + env_u64("SIM_SEEDS").unwrap_or(DEFAULT_SEEDS)).collect()
    };
    let started = Instant::now();
    let mut total = Counters::default();
    let (mut purchases, mut ledger, mut rounds) = (0, 0, 0);
    for seed in &seeds {
        let s = simulate(*seed, steps);
        let c = &s.counters;
        total.ops += c.ops;
        total.statements += c.statements;
        total.busy += c.busy;
        total.failed += c.failed;
        total.kills += c.kills;
        total.declines += c.declines;
        total.timeouts += c.timeouts;
        total.lost_answers += c.lost_answers;
        purchases += s.purchases;
        ledger += s.ledger;
        rounds = rounds.max(s.rounds);
    }
    eprintln!(
        "{} seeds x {steps} steps in {:.1?}: {} operations, {} statements ({} busy, {} failed), \
         {} instances killed; provider: {} declines, {} timeouts, {} lost answers; \
         {purchases} purchases, {ledger} ledger entries; recovery took up to {rounds} rounds",
        seeds.len(),
        started.elapsed(),
        total.ops,
        total.statements,
        total.busy,
        total.failed,
        total.kills,
        total.declines,
        total.timeouts,
        total.lost_answers,
    );
}

/// The same seed replays exactly: the same statements, faults and answers.
#[test]
fn a_seed_replays_exactly() {
    let a = simulate(7, 120);
    let b = simulate(7, 120);
    assert_eq!(a.digest, b.digest);
    assert_eq!((a.purchases, a.ledger), (b.purchases, b.ledger));
}
