//! Every rule of API.md that the domain crate owns, with each of its error paths,
//! driven natively on a SQLite file. Every test ends with the books balancing.

#![allow(
    clippy::redundant_closure_for_method_calls, // `|c| c.audit()` reads better than a path
    clippy::many_single_char_names,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss,
    clippy::unnecessary_wraps,
    clippy::doc_markdown
)]

mod support;

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use credits::{
    AccountId, CreditsError, Eur, HistoryQuery, Pack, PaymentMethodId, Plan, PurchaseSource,
    RechargeOutcome, RechargeSettings, Timestamp, TokenAmount, Transaction, TransactionKind,
    UsageGrouping, UsageQuery,
};
use serde_json::json;
use support::{
    ChargesThenFails, ChargesThenPanics, DeclinesFirst, World, deduction, idem, refund, split,
};

const VISA: &str = "pm_card_visa";
const DECLINED: &str = "pm_card_chargeDeclined";
const DAY_MS: i64 = 86_400_000;

fn code<T: std::fmt::Debug>(result: Result<T, CreditsError>) -> &'static str {
    result.expect_err("expected an error").code()
}

fn buy(w: &World, account: &AccountId, pack: Pack) -> Transaction {
    w.credits_with(|c| c.purchase(account, pack, None))
        .unwrap()
        .value
        .transaction
}

fn deduct(w: &World, account: &AccountId, tokens: u64) -> Transaction {
    deduct_in(w, account, tokens, None)
}

fn deduct_in(w: &World, account: &AccountId, tokens: u64, project: Option<&str>) -> Transaction {
    w.credits_with(|c| c.deduct(&deduction(account, tokens, project), None))
        .unwrap()
        .value
        .transaction
}

fn settings(pack: Pack, threshold: u64, limit: &str) -> RechargeSettings {
    RechargeSettings::new(
        true,
        Some(pack),
        Some(TokenAmount::new(threshold).unwrap()),
        Some(Eur::parse(limit).unwrap()),
    )
    .unwrap()
}

fn enable_recharge(w: &World, account: &AccountId, pack: Pack, threshold: u64, limit: &str) {
    w.credits_with(|c| c.save_recharge_settings(account, &settings(pack, threshold, limit)))
        .unwrap();
}

fn method(text: &str) -> PaymentMethodId {
    PaymentMethodId::parse(text).unwrap()
}

fn history(w: &World, account: &AccountId, query: &HistoryQuery) -> Vec<Transaction> {
    w.credits_with(|c| c.history(account, query))
        .unwrap()
        .transactions
}

fn all_history(w: &World, account: &AccountId) -> Vec<Transaction> {
    history(
        w,
        account,
        &HistoryQuery::new(Some(200), None, None, None).unwrap(),
    )
}

fn auto_purchases(w: &World, account: &AccountId) -> i64 {
    w.count(&format!(
        "SELECT COUNT(*) FROM ledger WHERE kind = 'purchase' AND source = 'auto_recharge'
         AND account_id = '{account}'"
    ))
}

// ---------------------------------------------------------------- accounts

#[test]
fn a_duplicate_account_id_is_a_conflict() {
    let w = World::new();
    let id = AccountId::parse("acme").unwrap();
    let first = w
        .credits_with(|c| c.create_account(&id, Plan::Pro))
        .unwrap();
    assert_eq!(first.plan, "pro");
    let again = w.credits_with(|c| c.create_account(&id, Plan::Free));
    let err = again.unwrap_err();
    assert_eq!((err.code(), err.status()), ("conflict", 409));
    // The first account and its key are untouched.
    assert_eq!(
        w.credits_with(|c| c.authenticate(&first.api_key)).unwrap(),
        id
    );
    assert_eq!(w.credits_with(|c| c.summary(&id)).unwrap().plan.name, "pro");
    w.assert_books_balance();
}

#[test]
fn an_account_key_authenticates_its_account_only() {
    let w = World::new();
    let acme = AccountId::parse("acme").unwrap();
    let globex = AccountId::parse("globex").unwrap();
    let k1 = w
        .credits_with(|c| c.create_account(&acme, Plan::Free))
        .unwrap()
        .api_key;
    let k2 = w
        .credits_with(|c| c.create_account(&globex, Plan::Pro))
        .unwrap()
        .api_key;
    assert_ne!(k1, k2);
    assert_eq!(w.credits_with(|c| c.authenticate(&k1)).unwrap(), acme);
    assert_eq!(w.credits_with(|c| c.authenticate(&k2)).unwrap(), globex);
    for unknown in ["", "ck_0000", &format!("{k1}x"), &k1[..k1.len() - 1]] {
        let err = w.credits_with(|c| c.authenticate(unknown)).unwrap_err();
        assert_eq!(
            (err.code(), err.status()),
            ("unauthorized", 401),
            "{unknown:?}"
        );
    }
    w.assert_books_balance();
}

#[test]
fn account_keys_are_stored_hashed() {
    let w = World::new();
    let acme = AccountId::parse("acme").unwrap();
    let key = w
        .credits_with(|c| c.create_account(&acme, Plan::Pro))
        .unwrap()
        .api_key;
    let mut bytes = std::fs::read(&w.path).unwrap();
    let wal = w.path.with_extension("db-wal");
    if let Ok(more) = std::fs::read(&wal) {
        bytes.extend(more);
    }
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|win| win == needle);
    assert!(!contains(key.as_bytes()), "the raw key is in the database");
    // The check can see what is stored: the hash is there.
    assert!(contains(credits::secret_hash(&key).as_bytes()));
    w.assert_books_balance();
}

// ---------------------------------------------------------------- plans

#[test]
fn a_plan_change_applies_to_the_current_month_at_once() {
    let w = World::new();
    let acme = w.account("acme", Plan::Pro);
    deduct(&w, &acme, 1_500_000);
    assert_eq!(w.plan_remaining(&acme), 500_000);

    w.credits_with(|c| c.change_plan(&acme, Plan::Team))
        .unwrap();
    let s = w.credits_with(|c| c.summary(&acme)).unwrap();
    assert_eq!(
        (
            s.plan.name.as_str(),
            s.plan.monthly_tokens,
            s.plan.used_tokens
        ),
        ("team", 10_000_000, 1_500_000)
    );
    assert_eq!(s.plan.remaining_tokens, 8_500_000);
    assert_eq!(s.available_tokens, 8_500_000);

    // Down to free: used exceeds the allocation, remaining stops at 0.
    w.credits_with(|c| c.change_plan(&acme, Plan::Free))
        .unwrap();
    let s = w.credits_with(|c| c.summary(&acme)).unwrap();
    assert_eq!((s.plan.remaining_tokens, s.available_tokens), (0, 0));
    assert_eq!(
        code(w.credits_with(|c| c.deduct(&deduction(&acme, 1, None), None))),
        "insufficient_balance"
    );

    let ghost = AccountId::parse("ghost").unwrap();
    assert_eq!(
        code(w.credits_with(|c| c.change_plan(&ghost, Plan::Pro))),
        "not_found"
    );
    w.assert_books_balance();
}

#[test]
fn moving_to_free_disables_auto_recharge() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    enable_recharge(&w, &acme, Pack::Standard, 1_000_000, "50.00");
    assert!(
        w.credits_with(|c| c.recharge_settings(&acme))
            .unwrap()
            .enabled
    );
    w.credits_with(|c| c.change_plan(&acme, Plan::Free))
        .unwrap();
    assert!(
        !w.credits_with(|c| c.recharge_settings(&acme))
            .unwrap()
            .enabled
    );
    // Back on a paid plan it stays off, and nothing is bought.
    w.credits_with(|c| c.change_plan(&acme, Plan::Pro)).unwrap();
    assert!(
        !w.credits_with(|c| c.recharge_settings(&acme))
            .unwrap()
            .enabled
    );
    let report = w.credits_with(|c| c.recharge_check()).unwrap();
    assert_eq!(report.checked, 0);
    assert_eq!(w.balance(&acme), 0);
    w.assert_books_balance();
}

// ---------------------------------------------------------------- payment method

#[test]
fn a_payment_method_is_saved_and_replaced_on_any_plan() {
    let w = World::new();
    let acme = w.account("acme", Plan::Free);
    assert_eq!(
        w.credits_with(|c| c.payment_method(&acme))
            .unwrap()
            .payment_method,
        None
    );
    let saved = w
        .credits_with(|c| c.save_payment_method(&acme, &method(VISA)))
        .unwrap();
    assert_eq!(saved.payment_method.as_deref(), Some(VISA));
    w.credits_with(|c| c.save_payment_method(&acme, &method("pm_card_mastercard")))
        .unwrap();
    assert_eq!(
        w.credits_with(|c| c.payment_method(&acme))
            .unwrap()
            .payment_method
            .as_deref(),
        Some("pm_card_mastercard")
    );
    let ghost = AccountId::parse("ghost").unwrap();
    assert_eq!(
        code(w.credits_with(|c| c.save_payment_method(&ghost, &method(VISA)))),
        "not_found"
    );
    w.assert_books_balance();
}

// ---------------------------------------------------------------- purchases

#[test]
fn the_free_plan_may_not_buy_and_is_told_before_the_payment_method() {
    let w = World::new();
    let bare = w.account("bare", Plan::Free);
    let err = w
        .credits_with(|c| c.purchase(&bare, Pack::Starter, None))
        .unwrap_err();
    assert_eq!((err.code(), err.status()), ("plan_upgrade_required", 403));
    let with_card = w.paying_account("with-card", Plan::Free, VISA);
    assert_eq!(
        code(w.credits_with(|c| c.purchase(&with_card, Pack::Starter, None))),
        "plan_upgrade_required"
    );
    assert_eq!((w.charges(), w.ledger_rows()), (0, 0));
    w.assert_books_balance();
}

#[test]
fn a_purchase_needs_a_payment_method() {
    let w = World::new();
    let acme = w.account("acme", Plan::Pro);
    let err = w
        .credits_with(|c| c.purchase(&acme, Pack::Starter, None))
        .unwrap_err();
    assert_eq!((err.code(), err.status()), ("payment_method_required", 400));
    let ghost = AccountId::parse("ghost").unwrap();
    assert_eq!(
        code(w.credits_with(|c| c.purchase(&ghost, Pack::Starter, None))),
        "not_found"
    );
    assert_eq!((w.charges(), w.ledger_rows()), (0, 0));
    w.assert_books_balance();
}

#[test]
fn a_declined_payment_grants_nothing() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, DECLINED);
    let err = w
        .credits_with(|c| c.purchase(&acme, Pack::Standard, None))
        .unwrap_err();
    assert_eq!((err.code(), err.status()), ("payment_failed", 402));
    assert_eq!(w.balance(&acme), 0);
    assert_eq!(w.ledger_rows(), 0);
    assert_eq!(
        w.count("SELECT COUNT(*) FROM purchases WHERE status = 'failed'"),
        1
    );
    w.assert_books_balance();
}

#[test]
fn a_purchase_grants_the_packs_tokens_and_returns_the_balance() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Team, VISA);
    let mut expected = 0;
    for pack in Pack::ALL {
        let receipt = w.credits_with(|c| c.purchase(&acme, pack, None)).unwrap();
        assert!(!receipt.replayed);
        expected += pack.tokens();
        assert_eq!(receipt.value.credits.balance_tokens, expected);
        match receipt.value.transaction {
            Transaction::Purchase {
                source,
                pack: name,
                tokens,
                amount_eur,
                ..
            } => {
                assert_eq!(source, PurchaseSource::Manual);
                assert_eq!(name, pack.id());
                assert_eq!(tokens, pack.tokens());
                assert_eq!(amount_eur, pack.price());
            }
            other => panic!("not a purchase: {other:?}"),
        }
    }
    assert_eq!(w.balance(&acme), 25_500_000);
    assert_eq!(w.charges(), 4);
    // The plan allocation is untouched by purchases.
    assert_eq!(w.available(&acme), 25_500_000 + 10_000_000);
    w.assert_books_balance();
}

// ---------------------------------------------------------------- deductions

#[test]
fn deductions_use_the_plan_first_then_credits() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    buy(&w, &acme, Pack::Standard);
    let d1 = w
        .credits_with(|c| c.deduct(&deduction(&acme, 1_500_000, Some("p-42")), None))
        .unwrap()
        .value;
    assert_eq!(split(&d1.transaction), (1_500_000, 1_500_000, 0));
    assert_eq!(d1.available_tokens, 500_000 + 2_500_000);
    let d2 = w
        .credits_with(|c| c.deduct(&deduction(&acme, 1_000_000, None), None))
        .unwrap()
        .value;
    assert_eq!(split(&d2.transaction), (1_000_000, 500_000, 500_000));
    assert_eq!(d2.available_tokens, 2_000_000);
    let d3 = deduct(&w, &acme, 700);
    assert_eq!(split(&d3), (700, 0, 700));
    assert_eq!(
        (w.balance(&acme), w.plan_remaining(&acme)),
        (2_000_000 - 700, 0)
    );
    match d1.transaction {
        Transaction::Deduction {
            operation,
            resource,
            ..
        } => {
            assert_eq!(operation, "enrichment");
            assert_eq!(resource.project.as_deref(), Some("p-42"));
            assert_eq!(resource.session.as_deref(), Some("s-1"));
        }
        other => panic!("not a deduction: {other:?}"),
    }
    w.assert_books_balance();
}

#[test]
fn exactly_what_is_available_can_be_deducted_and_one_more_token_cannot() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    buy(&w, &acme, Pack::Starter);
    deduct(&w, &acme, 123);
    let available = w.available(&acme);
    assert_eq!(available, 3_000_000 - 123);

    let rows = w.ledger_rows();
    let err = w
        .credits_with(|c| c.deduct(&deduction(&acme, available + 1, None), None))
        .unwrap_err();
    assert_eq!((err.code(), err.status()), ("insufficient_balance", 402));
    assert_eq!(
        err,
        CreditsError::InsufficientBalance {
            requested: available + 1,
            available
        }
    );
    assert_eq!(w.ledger_rows(), rows, "a refused deduction writes nothing");
    assert_eq!(w.available(&acme), available);

    let all = w
        .credits_with(|c| c.deduct(&deduction(&acme, available, None), None))
        .unwrap()
        .value;
    assert_eq!(all.available_tokens, 0);
    assert_eq!(
        split(&all.transaction),
        (available, 2_000_000 - 123, 1_000_000)
    );
    assert_eq!(
        code(w.credits_with(|c| c.deduct(&deduction(&acme, 1, None), None))),
        "insufficient_balance"
    );
    assert_eq!((w.balance(&acme), w.available(&acme)), (0, 0));

    let ghost = AccountId::parse("ghost").unwrap();
    assert_eq!(
        code(w.credits_with(|c| c.deduct(&deduction(&ghost, 1, None), None))),
        "not_found"
    );
    w.assert_books_balance();
}

#[test]
fn the_allocation_renews_on_the_first_of_the_month_utc_without_carry_over() {
    let w = World::new();
    let acme = w.account("acme", Plan::Free);
    deduct(&w, &acme, 30_000);
    w.clock.set("2026-11-30T23:59:59.999Z");
    assert_eq!(w.plan_remaining(&acme), 70_000);
    assert_eq!(
        code(w.credits_with(|c| c.deduct(&deduction(&acme, 70_001, None), None))),
        "insufficient_balance"
    );
    // 01:00 on Dec 1st in UTC+02:00 is still November in UTC.
    w.clock.set("2026-12-01T01:00:00+02:00");
    assert_eq!(w.plan_remaining(&acme), 70_000);

    w.clock.set("2026-12-01T00:00:00Z");
    let s = w.credits_with(|c| c.summary(&acme)).unwrap();
    assert_eq!((s.plan.used_tokens, s.plan.remaining_tokens), (0, 100_000));
    assert_eq!(s.plan.period_start.to_rfc3339(), "2026-12-01T00:00:00.000Z");
    assert_eq!(s.plan.period_end.to_rfc3339(), "2027-01-01T00:00:00.000Z");
    // November's 70,000 unused tokens did not carry over.
    assert_eq!(
        code(w.credits_with(|c| c.deduct(&deduction(&acme, 100_001, None), None))),
        "insufficient_balance"
    );
    let d = deduct(&w, &acme, 100_000);
    assert_eq!(split(&d), (100_000, 100_000, 0));
    assert_eq!(w.available(&acme), 0);
    w.assert_books_balance();
}

// ---------------------------------------------------------------- refunds

/// A Pro account whose next deduction of 150 takes 100 plan and 50 credit tokens.
fn mixed_deduction(w: &World) -> (AccountId, Transaction) {
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    buy(w, &acme, Pack::Starter);
    deduct(w, &acme, 2_000_000 - 100);
    let d = deduct_in(w, &acme, 150, Some("p-42"));
    assert_eq!(split(&d), (150, 100, 50));
    assert_eq!((w.balance(&acme), w.plan_remaining(&acme)), (999_950, 0));
    (acme, d)
}

#[test]
fn refunds_give_credit_tokens_back_first_then_plan_tokens() {
    let w = World::new();
    let (acme, d) = mixed_deduction(&w);
    let r1 = w
        .credits_with(|c| c.refund(&refund(&acme, &d, Some(30)), None))
        .unwrap();
    assert_eq!(split(&r1.value.transaction), (30, 0, 30));
    assert_eq!((w.balance(&acme), w.plan_remaining(&acme)), (999_980, 0));
    let r2 = w
        .credits_with(|c| c.refund(&refund(&acme, &d, Some(40)), None))
        .unwrap();
    assert_eq!(split(&r2.value.transaction), (40, 20, 20));
    assert_eq!((w.balance(&acme), w.plan_remaining(&acme)), (1_000_000, 20));
    // No amount: all that is left (80 plan tokens).
    let r3 = w
        .credits_with(|c| c.refund(&refund(&acme, &d, None), None))
        .unwrap();
    assert_eq!(split(&r3.value.transaction), (80, 80, 0));
    assert_eq!(
        (w.balance(&acme), w.plan_remaining(&acme)),
        (1_000_000, 100)
    );
    w.assert_books_balance();
}

#[test]
fn a_refund_in_a_later_month_restores_no_plan_tokens() {
    let w = World::new();
    let (acme, d) = mixed_deduction(&w);
    w.clock.set("2026-12-02T08:00:00Z");
    let dec_before = w.credits_with(|c| c.summary(&acme)).unwrap().plan;
    let r = w
        .credits_with(|c| c.refund(&refund(&acme, &d, None), None))
        .unwrap()
        .value;
    // All 150 count as refunded; 50 credits come back, the 100 plan tokens of an
    // ended month restore nothing.
    assert_eq!(split(&r.transaction), (150, 0, 50));
    assert_eq!(w.balance(&acme), 1_000_000);
    assert_eq!(
        w.credits_with(|c| c.summary(&acme)).unwrap().plan,
        dec_before
    );
    let nov_used = w.count(
        "SELECT used_tokens FROM plan_usage WHERE account_id = 'acme' AND period = '2026-11'",
    );
    assert_eq!(nov_used, 2_000_000);
    let err = w
        .credits_with(|c| c.refund(&refund(&acme, &d, Some(1)), None))
        .unwrap_err();
    assert_eq!(
        err,
        CreditsError::RefundExceedsDeduction {
            requested: 1,
            refundable: 0
        }
    );
    w.assert_books_balance();
}

#[test]
fn refunds_never_add_up_to_more_than_the_deduction() {
    let w = World::new();
    let acme = w.account("acme", Plan::Free);
    let d = deduct(&w, &acme, 100);
    let err = w
        .credits_with(|c| c.refund(&refund(&acme, &d, Some(101)), None))
        .unwrap_err();
    assert_eq!(
        (err.code(), err.status()),
        ("refund_exceeds_deduction", 409)
    );
    w.credits_with(|c| c.refund(&refund(&acme, &d, Some(60)), None))
        .unwrap();
    assert_eq!(
        w.credits_with(|c| c.refund(&refund(&acme, &d, Some(41)), None))
            .unwrap_err(),
        CreditsError::RefundExceedsDeduction {
            requested: 41,
            refundable: 40
        }
    );
    let rest = w
        .credits_with(|c| c.refund(&refund(&acme, &d, None), None))
        .unwrap()
        .value;
    assert_eq!(split(&rest.transaction), (40, 40, 0));
    // Nothing left: a default refund is refused too, and writes nothing.
    let rows = w.ledger_rows();
    assert_eq!(
        code(w.credits_with(|c| c.refund(&refund(&acme, &d, None), None))),
        "refund_exceeds_deduction"
    );
    assert_eq!(w.ledger_rows(), rows);
    assert_eq!(w.plan_remaining(&acme), 100_000);
    w.assert_books_balance();
}

#[test]
fn only_a_deduction_of_the_same_account_can_be_refunded() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let globex = w.account("globex", Plan::Free);
    let theirs = deduct(&w, &globex, 100);
    let purchase = buy(&w, &acme, Pack::Starter);
    let mine = deduct(&w, &acme, 100);
    let a_refund = w
        .credits_with(|c| c.refund(&refund(&acme, &mine, Some(1)), None))
        .unwrap()
        .value
        .transaction;

    let rows = w.ledger_rows();
    for other in [&theirs, &purchase, &a_refund] {
        let err = w
            .credits_with(|c| c.refund(&refund(&acme, other, None), None))
            .unwrap_err();
        assert_eq!((err.code(), err.status()), ("not_found", 404), "{other:?}");
    }
    for garbage in [
        "",
        "tx_1",
        "tx_999999999999",
        "nope",
        "tx_-00000000001",
        "../1",
    ] {
        let mut req = refund(&acme, &mine, None);
        req.deduction_id = garbage.to_owned();
        assert_eq!(
            code(w.credits_with(|c| c.refund(&req, None))),
            "not_found",
            "{garbage:?}"
        );
    }
    let ghost = AccountId::parse("ghost").unwrap();
    assert_eq!(
        code(w.credits_with(|c| c.refund(&refund(&ghost, &mine, None), None))),
        "not_found"
    );
    assert_eq!(w.ledger_rows(), rows);
    w.assert_books_balance();
}

#[test]
fn a_refund_carries_its_deductions_operation_and_resource() {
    let w = World::new();
    let acme = w.account("acme", Plan::Free);
    let mut req = deduction(&acme, 500, Some("p-42"));
    req.operation = credits::Operation::parse("hygiene").unwrap();
    let d = w
        .credits_with(|c| c.deduct(&req, None))
        .unwrap()
        .value
        .transaction;
    let r = w
        .credits_with(|c| c.refund(&refund(&acme, &d, Some(200)), None))
        .unwrap()
        .value
        .transaction;
    match r {
        Transaction::Refund {
            refund_of,
            reason,
            operation,
            resource,
            ..
        } => {
            assert_eq!(refund_of, d.id());
            assert_eq!(reason.as_deref(), Some("job failed"));
            assert_eq!(operation, "hygiene");
            assert_eq!(resource.project.as_deref(), Some("p-42"));
            assert_eq!(resource.session.as_deref(), Some("s-1"));
        }
        other => panic!("not a refund: {other:?}"),
    }
    // Without a reason, and a deduction without a project: nulls read back.
    let bare = deduct(&w, &acme, 10);
    let mut req = refund(&acme, &bare, None);
    req.reason = None;
    match w
        .credits_with(|c| c.refund(&req, None))
        .unwrap()
        .value
        .transaction
    {
        Transaction::Refund {
            reason, resource, ..
        } => {
            assert_eq!(reason, None);
            assert_eq!(resource.project, None);
        }
        other => panic!("not a refund: {other:?}"),
    }
    w.assert_books_balance();
}

// ---------------------------------------------------------------- idempotency

#[test]
fn a_repeated_deduction_is_answered_again_and_moves_nothing_twice() {
    let w = World::new();
    let acme = w.account("acme", Plan::Free);
    let body = json!({"account_id": "acme", "tokens": 700});
    let key = idem("job-1", &body);
    let first = w
        .credits_with(|c| c.deduct(&deduction(&acme, 700, None), Some(&key)))
        .unwrap();
    let again = w
        .credits_with(|c| c.deduct(&deduction(&acme, 700, None), Some(&key)))
        .unwrap();
    assert!(!first.replayed);
    assert!(again.replayed);
    assert_eq!(
        again.value, first.value,
        "same transaction, same available_tokens"
    );
    assert_eq!(w.plan_remaining(&acme), 100_000 - 700);
    assert_eq!(w.ledger_rows(), 1);

    // Same key, another body.
    let other = idem("job-1", &json!({"account_id": "acme", "tokens": 701}));
    let err = w
        .credits_with(|c| c.deduct(&deduction(&acme, 701, None), Some(&other)))
        .unwrap_err();
    assert_eq!((err.code(), err.status()), ("idempotency_conflict", 409));
    assert_eq!(w.ledger_rows(), 1);
    w.assert_books_balance();
}

#[test]
fn idempotency_keys_are_scoped_per_account_and_route() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let globex = w.account("globex", Plan::Free);
    let body = json!({"tokens": 5});
    let key = idem("same-key", &body);
    let a = w
        .credits_with(|c| c.deduct(&deduction(&acme, 5, None), Some(&key)))
        .unwrap();
    let g = w
        .credits_with(|c| c.deduct(&deduction(&globex, 5, None), Some(&key)))
        .unwrap();
    assert!(!a.replayed && !g.replayed);
    assert_ne!(a.value.transaction.id(), g.value.transaction.id());
    // The refund and purchase routes have their own keys.
    let r = w
        .credits_with(|c| c.refund(&refund(&acme, &a.value.transaction, None), Some(&key)))
        .unwrap();
    assert!(!r.replayed);
    let p = w
        .credits_with(|c| c.purchase(&acme, Pack::Starter, Some(&key)))
        .unwrap();
    assert!(!p.replayed);
    assert_eq!(w.ledger_rows(), 4);
    assert_eq!(w.balance(&acme), 1_000_000);
    w.assert_books_balance();
}

#[test]
fn a_repeated_refund_is_answered_again() {
    let w = World::new();
    let acme = w.account("acme", Plan::Free);
    let d = deduct(&w, &acme, 100);
    let key = idem("refund-1", &json!({"tokens": 30}));
    let first = w
        .credits_with(|c| c.refund(&refund(&acme, &d, Some(30)), Some(&key)))
        .unwrap();
    let again = w
        .credits_with(|c| c.refund(&refund(&acme, &d, Some(30)), Some(&key)))
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.value, first.value);
    assert_eq!(w.plan_remaining(&acme), 100_000 - 70);
    let other = idem("refund-1", &json!({"tokens": 31}));
    assert_eq!(
        code(w.credits_with(|c| c.refund(&refund(&acme, &d, Some(31)), Some(&other)))),
        "idempotency_conflict"
    );
    assert_eq!(w.ledger_rows(), 2);
    w.assert_books_balance();
}

#[test]
fn a_repeated_purchase_is_answered_again_and_charged_once() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let key = idem("buy-1", &json!({"pack": "standard"}));
    let first = w
        .credits_with(|c| c.purchase(&acme, Pack::Standard, Some(&key)))
        .unwrap();
    let again = w
        .credits_with(|c| c.purchase(&acme, Pack::Standard, Some(&key)))
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.value.transaction, first.value.transaction);
    assert_eq!(w.balance(&acme), 2_500_000);
    assert_eq!(w.charges(), 1);
    let other = idem("buy-1", &json!({"pack": "plus"}));
    assert_eq!(
        code(w.credits_with(|c| c.purchase(&acme, Pack::Plus, Some(&other)))),
        "idempotency_conflict"
    );
    w.assert_books_balance();
}

#[test]
fn a_declined_purchase_is_replayed() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, DECLINED);
    let key = idem("buy-1", &json!({"pack": "starter"}));
    assert_eq!(
        code(w.credits_with(|c| c.purchase(&acme, Pack::Starter, Some(&key)))),
        "payment_failed"
    );
    // Even with a working card now, the same key answers the same decline.
    w.credits_with(|c| c.save_payment_method(&acme, &method(VISA)))
        .unwrap();
    assert_eq!(
        code(w.credits_with(|c| c.purchase(&acme, Pack::Starter, Some(&key)))),
        "payment_failed"
    );
    assert_eq!((w.balance(&acme), w.charges()), (0, 1));
    let fresh = idem("buy-2", &json!({"pack": "starter"}));
    w.credits_with(|c| c.purchase(&acme, Pack::Starter, Some(&fresh)))
        .unwrap();
    assert_eq!(w.balance(&acme), 1_000_000);
    w.assert_books_balance();
}

#[test]
fn an_insufficient_balance_is_not_stored_so_a_retry_can_succeed() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let body = json!({"tokens": 2_500_000});
    let key = idem("job-9", &body);
    assert_eq!(
        code(w.credits_with(|c| c.deduct(&deduction(&acme, 2_500_000, None), Some(&key)))),
        "insufficient_balance"
    );
    buy(&w, &acme, Pack::Starter);
    let retry = w
        .credits_with(|c| c.deduct(&deduction(&acme, 2_500_000, None), Some(&key)))
        .unwrap();
    assert!(!retry.replayed);
    assert_eq!(retry.value.available_tokens, 500_000);
    // Other refusals are not stored either: a refund that was too large.
    let big = idem("refund-9", &json!({"tokens": 3_000_000}));
    assert_eq!(
        code(w.credits_with(|c| c.refund(
            &refund(&acme, &retry.value.transaction, Some(3_000_000)),
            Some(&big)
        ))),
        "refund_exceeds_deduction"
    );
    let ok = w
        .credits_with(|c| {
            c.refund(
                &refund(&acme, &retry.value.transaction, Some(2_500_000)),
                Some(&big),
            )
        })
        .unwrap();
    assert!(!ok.replayed);
    w.assert_books_balance();
}

// ---------------------------------------------------------------- history

fn kinds(txs: &[Transaction]) -> Vec<&'static str> {
    txs.iter()
        .map(|t| match t {
            Transaction::Purchase { .. } => "purchase",
            Transaction::Deduction { .. } => "deduction",
            Transaction::Refund { .. } => "refund",
        })
        .collect()
}

#[test]
fn history_is_newest_first_and_filters_by_type_and_project() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let p = buy(&w, &acme, Pack::Starter);
    w.clock.advance_ms(1000);
    let d1 = deduct_in(&w, &acme, 10, Some("alpha"));
    let d2 = deduct_in(&w, &acme, 20, Some("beta"));
    let r1 = w
        .credits_with(|c| c.refund(&refund(&acme, &d1, Some(5)), None))
        .unwrap()
        .value
        .transaction;
    let d3 = deduct_in(&w, &acme, 30, None);

    let all = all_history(&w, &acme);
    assert_eq!(
        all,
        vec![d3.clone(), r1.clone(), d2.clone(), d1.clone(), p.clone()]
    );
    assert_eq!(
        kinds(&all),
        ["deduction", "refund", "deduction", "deduction", "purchase"]
    );
    let ids: Vec<String> = all.iter().map(|t| t.id().to_string()).collect();
    let mut sorted = ids.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "ids sort by creation time");

    let q = |kind, project: Option<&str>| {
        HistoryQuery::new(None, None, kind, project.map(str::to_owned)).unwrap()
    };
    assert_eq!(
        history(&w, &acme, &q(Some(TransactionKind::Deduction), None)),
        vec![d3, d2.clone(), d1.clone()]
    );
    assert_eq!(
        history(&w, &acme, &q(Some(TransactionKind::Purchase), None)),
        vec![p]
    );
    assert_eq!(
        history(&w, &acme, &q(Some(TransactionKind::Refund), None)),
        vec![r1.clone()]
    );
    assert_eq!(
        history(&w, &acme, &q(None, Some("alpha"))),
        vec![r1.clone(), d1.clone()]
    );
    assert_eq!(
        history(
            &w,
            &acme,
            &q(Some(TransactionKind::Deduction), Some("alpha"))
        ),
        vec![d1]
    );
    assert_eq!(
        history(&w, &acme, &q(Some(TransactionKind::Refund), Some("beta"))),
        vec![]
    );
    assert_eq!(history(&w, &acme, &q(None, Some("nope"))), vec![]);

    // Another account sees none of it.
    let globex = w.account("globex", Plan::Free);
    assert!(all_history(&w, &globex).is_empty());
    let statement = w
        .credits_with(|c| c.statement(&acme, &HistoryQuery::default()))
        .unwrap();
    assert_eq!(statement.page.transactions.len(), 5);
    assert_eq!(statement.page.next_cursor, None);
    w.assert_books_balance();
}

#[test]
fn the_page_size_is_bounded() {
    let w = World::new();
    let acme = w.account("acme", Plan::Free);
    for bad in [0, 201, u32::MAX] {
        assert_eq!(
            code(HistoryQuery::new(Some(bad), None, None, None)),
            "invalid_request",
            "{bad}"
        );
    }
    for _ in 0..205 {
        deduct(&w, &acme, 1);
    }
    let len = |limit| {
        let q = HistoryQuery::new(limit, None, None, None).unwrap();
        w.credits_with(|c| c.history(&acme, &q))
            .unwrap()
            .transactions
            .len()
    };
    assert_eq!((len(Some(1)), len(None), len(Some(200))), (1, 50, 200));
    w.assert_books_balance();
}

#[test]
fn paging_returns_every_transaction_once_while_new_ones_are_written() {
    let w = World::new();
    let acme = w.account("acme", Plan::Free);
    let globex = w.account("globex", Plan::Free);
    for i in 1..=23 {
        deduct_in(&w, &acme, i, Some(if i % 2 == 0 { "even" } else { "odd" }));
        deduct(&w, &globex, 1);
    }
    for filter in [None, Some("odd")] {
        // What exists when paging starts, newest first.
        let expected: Vec<_> = all_history(&w, &acme)
            .into_iter()
            .filter(|t| match (t, filter) {
                (_, None) => true,
                (Transaction::Deduction { resource, .. }, Some(p)) => {
                    resource.project.as_deref() == Some(p)
                }
                _ => false,
            })
            .map(|t| t.id())
            .collect();
        assert!(expected.len() >= 12);
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let q = HistoryQuery::new(Some(4), cursor, None, filter.map(str::to_owned)).unwrap();
            let page = w.credits_with(|c| c.history(&acme, &q)).unwrap();
            assert!(page.transactions.len() <= 4);
            seen.extend(page.transactions.iter().map(Transaction::id));
            // Writes between pages, matching the filter, to this account and another.
            deduct_in(&w, &acme, 1, Some("odd"));
            deduct(&w, &globex, 1);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, expected, "filter {filter:?}");
    }
    w.assert_books_balance();
}

#[test]
fn a_malformed_or_foreign_cursor_is_an_invalid_request() {
    let w = World::new();
    let acme = w.account("acme", Plan::Free);
    let globex = w.account("globex", Plan::Free);
    let mine = deduct(&w, &acme, 1);
    let theirs = deduct(&w, &globex, 1);
    for cursor in [
        "garbage".to_owned(),
        String::new(),
        "tx_1".to_owned(),
        "tx_999999999999".to_owned(),
        theirs.id().to_string(),
    ] {
        let q = HistoryQuery::new(None, Some(cursor.clone()), None, None).unwrap();
        let err = w.credits_with(|c| c.history(&acme, &q)).unwrap_err();
        assert_eq!(
            (err.code(), err.status()),
            ("invalid_request", 400),
            "{cursor:?}"
        );
    }
    let q = HistoryQuery::new(None, Some(mine.id().to_string()), None, None).unwrap();
    assert!(
        w.credits_with(|c| c.history(&acme, &q))
            .unwrap()
            .transactions
            .is_empty()
    );
    w.assert_books_balance();
}

// ---------------------------------------------------------------- usage

fn usage(
    w: &World,
    account: &AccountId,
    from: Option<&str>,
    to: Option<&str>,
    by: UsageGrouping,
) -> Vec<(Option<String>, i64)> {
    let query = UsageQuery {
        from: from.map(|t| Timestamp::parse_time_or_date(t).unwrap()),
        to: to.map(|t| Timestamp::parse_time_or_date(t).unwrap()),
        group_by: by,
    };
    w.credits_with(|c| c.usage(account, &query))
        .unwrap()
        .groups
        .into_iter()
        .map(|g| (g.key, g.tokens))
        .collect()
}

fn key(k: &str) -> Option<String> {
    Some(k.to_owned())
}

#[test]
fn usage_groups_by_day_project_and_operation_net_of_refunds() {
    let w = World::new();
    let acme = w.account("acme", Plan::Free);
    w.clock.set("2026-11-03T10:00:00Z");
    let a = deduct_in(&w, &acme, 100, Some("alpha"));
    let mut hygiene = deduction(&acme, 40, Some("beta"));
    hygiene.operation = credits::Operation::parse("hygiene").unwrap();
    w.credits_with(|c| c.deduct(&hygiene, None)).unwrap();
    w.clock.set("2026-11-04T23:59:59.999Z");
    deduct_in(&w, &acme, 7, None);
    w.credits_with(|c| c.refund(&refund(&acme, &a, Some(30)), None))
        .unwrap();

    let (from, to) = (Some("2026-11-01"), Some("2026-12-01"));
    assert_eq!(
        usage(&w, &acme, from, to, UsageGrouping::Day),
        [(key("2026-11-03"), 140), (key("2026-11-04"), 7 - 30)]
    );
    assert_eq!(
        usage(&w, &acme, from, to, UsageGrouping::Project),
        [(None, 7), (key("alpha"), 70), (key("beta"), 40)]
    );
    assert_eq!(
        usage(&w, &acme, from, to, UsageGrouping::Operation),
        [(key("enrichment"), 77), (key("hygiene"), 40)]
    );
    // A range holding the refund but not its deduction goes below zero.
    assert_eq!(
        usage(
            &w,
            &acme,
            Some("2026-11-04"),
            Some("2026-11-05"),
            UsageGrouping::Project
        ),
        [(None, 7), (key("alpha"), -30)]
    );
    // Half-open: `to` excludes the instant itself.
    assert_eq!(
        usage(
            &w,
            &acme,
            Some("2026-11-03T10:00:00Z"),
            Some("2026-11-04T23:59:59.999Z"),
            UsageGrouping::Day
        ),
        [(key("2026-11-03"), 140)]
    );
    // Other accounts are not counted, nor is an empty range.
    let globex = w.account("globex", Plan::Free);
    assert!(usage(&w, &globex, from, to, UsageGrouping::Day).is_empty());
    w.assert_books_balance();
}

#[test]
fn usage_defaults_to_the_current_month_and_needs_from_before_to() {
    let w = World::new();
    let acme = w.account("acme", Plan::Free);
    w.clock.set("2026-10-31T23:59:59Z");
    deduct(&w, &acme, 11);
    w.clock.set("2026-11-01T00:00:00Z");
    deduct(&w, &acme, 22);
    w.clock.set("2026-11-25T10:00:00Z");
    let report = w
        .credits_with(|c| {
            c.usage(
                &acme,
                &UsageQuery {
                    from: None,
                    to: None,
                    group_by: UsageGrouping::Operation,
                },
            )
        })
        .unwrap();
    assert_eq!(report.from.to_rfc3339(), "2026-11-01T00:00:00.000Z");
    assert_eq!(report.to.to_rfc3339(), "2026-12-01T00:00:00.000Z");
    assert_eq!(report.groups.len(), 1);
    assert_eq!(report.groups[0].tokens, 22);

    for (from, to) in [("2026-11-05", "2026-11-05"), ("2026-11-06", "2026-11-05")] {
        let query = UsageQuery {
            from: Some(Timestamp::parse_time_or_date(from).unwrap()),
            to: Some(Timestamp::parse_time_or_date(to).unwrap()),
            group_by: UsageGrouping::Day,
        };
        assert_eq!(
            code(w.credits_with(|c| c.usage(&acme, &query))),
            "invalid_request"
        );
    }
    // Only `from`, after the current month's end: still from >= to.
    let query = UsageQuery {
        from: Some(Timestamp::parse_time_or_date("2027-01-01").unwrap()),
        to: None,
        group_by: UsageGrouping::Day,
    };
    assert_eq!(
        code(w.credits_with(|c| c.usage(&acme, &query))),
        "invalid_request"
    );
    assert_eq!(code(UsageGrouping::parse("week")), "invalid_request");
    let ghost = AccountId::parse("ghost").unwrap();
    let query = UsageQuery {
        from: None,
        to: None,
        group_by: UsageGrouping::Day,
    };
    assert_eq!(
        code(w.credits_with(|c| c.usage(&ghost, &query))),
        "not_found"
    );
    w.assert_books_balance();
}

// ---------------------------------------------------------------- auto-recharge

#[test]
fn recharge_settings_are_validated_and_default_to_off() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let view = w.credits_with(|c| c.recharge_settings(&acme)).unwrap();
    assert!(!view.enabled);
    assert_eq!((view.pack, view.threshold_tokens), (None, None));
    assert_eq!(view.monthly_limit_eur.to_string(), "50.00");
    assert_eq!(view.spent_this_month_eur.to_string(), "0.00");
    assert_eq!(view.last_error, None);

    let t = Some(TokenAmount::new(1).unwrap());
    assert_eq!(
        code(RechargeSettings::new(true, None, t, None)),
        "invalid_request"
    );
    assert_eq!(
        code(RechargeSettings::new(true, Some(Pack::Starter), None, None)),
        "invalid_request"
    );
    assert!(TokenAmount::new(0).is_err(), "threshold_tokens >= 1");
    assert!(Eur::parse("-1.00").is_err() && Eur::parse("5").is_err());

    // Disabled needs neither; the limit defaults to 50.00; 0.00 is valid.
    let off = RechargeSettings::new(false, None, None, None).unwrap();
    let view = w
        .credits_with(|c| c.save_recharge_settings(&acme, &off))
        .unwrap();
    assert!(!view.enabled);
    assert_eq!(view.monthly_limit_eur.to_string(), "50.00");
    let on = RechargeSettings::new(true, Some(Pack::Plus), t, Some(Eur::parse("0.00").unwrap()))
        .unwrap();
    let view = w
        .credits_with(|c| c.save_recharge_settings(&acme, &on))
        .unwrap();
    assert!(view.enabled);
    assert_eq!(
        (view.pack.as_deref(), view.threshold_tokens),
        (Some("plus"), Some(1))
    );
    assert_eq!(view.monthly_limit_eur.to_string(), "0.00");
    assert_eq!(
        w.credits_with(|c| c.recharge_settings(&acme)).unwrap(),
        view
    );
    w.assert_books_balance();
}

#[test]
fn enabling_auto_recharge_needs_a_paid_plan_then_a_payment_method() {
    let w = World::new();
    let free = w.account("free", Plan::Free);
    let on = settings(Pack::Starter, 1000, "50.00");
    let err = w
        .credits_with(|c| c.save_recharge_settings(&free, &on))
        .unwrap_err();
    assert_eq!((err.code(), err.status()), ("plan_upgrade_required", 403));
    let free_card = w.paying_account("free-card", Plan::Free, VISA);
    assert_eq!(
        code(w.credits_with(|c| c.save_recharge_settings(&free_card, &on))),
        "plan_upgrade_required"
    );
    let pro = w.account("pro", Plan::Pro);
    let err = w
        .credits_with(|c| c.save_recharge_settings(&pro, &on))
        .unwrap_err();
    assert_eq!((err.code(), err.status()), ("payment_method_required", 400));
    let ghost = AccountId::parse("ghost").unwrap();
    assert_eq!(
        code(w.credits_with(|c| c.save_recharge_settings(&ghost, &on))),
        "not_found"
    );
    // Turning it off is allowed on any plan.
    let off = RechargeSettings::new(false, None, None, None).unwrap();
    w.credits_with(|c| c.save_recharge_settings(&free, &off))
        .unwrap();
    assert_eq!(w.credits_with(|c| c.recharge_check()).unwrap().checked, 0);
    w.assert_books_balance();
}

#[test]
fn saving_buys_nothing_and_the_next_evaluation_buys_below_the_threshold() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    // The plan allocation (2,000,000) does not count: credits are 0 < threshold.
    enable_recharge(&w, &acme, Pack::Standard, 1_000_000, "50.00");
    assert_eq!((w.balance(&acme), w.charges()), (0, 0));
    let outcome = w
        .credits_with(|c| c.evaluate_recharge(&acme, None))
        .unwrap();
    assert_eq!(outcome, RechargeOutcome::Recharged { tokens: 2_500_000 });
    assert_eq!(w.balance(&acme), 2_500_000);
    // Not below any more: nothing more to buy.
    assert_eq!(
        w.credits_with(|c| c.evaluate_recharge(&acme, None))
            .unwrap(),
        RechargeOutcome::NotNeeded
    );
    let view = w.credits_with(|c| c.recharge_settings(&acme)).unwrap();
    assert_eq!(view.spent_this_month_eur.to_string(), "10.00");
    match &all_history(&w, &acme)[0] {
        Transaction::Purchase { source, pack, .. } => {
            assert_eq!(
                (*source, pack.as_str()),
                (PurchaseSource::AutoRecharge, "standard")
            );
        }
        other => panic!("not a purchase: {other:?}"),
    }
    w.assert_books_balance();
}

#[test]
fn a_balance_equal_to_the_threshold_is_not_below_it() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    buy(&w, &acme, Pack::Starter);
    enable_recharge(&w, &acme, Pack::Starter, 1_000_000, "50.00");
    assert_eq!(
        w.credits_with(|c| c.evaluate_recharge(&acme, None))
            .unwrap(),
        RechargeOutcome::NotNeeded
    );
    // A deduction from the plan only leaves credits where they were.
    let d = w
        .credits_with(|c| c.deduct(&deduction(&acme, 2_000_000, None), None))
        .unwrap()
        .value;
    assert_eq!(d.available_tokens, 1_000_000);
    assert_eq!(auto_purchases(&w, &acme), 0);
    w.assert_books_balance();
}

#[test]
fn a_deduction_crossing_the_threshold_recharges_and_reports_it() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    buy(&w, &acme, Pack::Standard);
    enable_recharge(&w, &acme, Pack::Standard, 1_000_000, "50.00");
    // 2,000,000 plan + 1,600,000 credits: leaves 900,000 credits, below 1,000,000.
    let d = w
        .credits_with(|c| c.deduct(&deduction(&acme, 3_600_000, None), None))
        .unwrap()
        .value;
    assert_eq!(split(&d.transaction), (3_600_000, 2_000_000, 1_600_000));
    assert_eq!(d.available_tokens, 900_000 + 2_500_000);
    assert_eq!(w.balance(&acme), 3_400_000);
    assert_eq!(auto_purchases(&w, &acme), 1);
    let triggered = w.count("SELECT triggered_by FROM purchases WHERE source = 'auto_recharge'");
    assert_eq!(triggered, d.transaction.id().seq());
    // A replay of the deduction answers the same availability.
    let key = idem("k", &json!({"tokens": 1}));
    let first = w
        .credits_with(|c| c.deduct(&deduction(&acme, 3_000_000, None), Some(&key)))
        .unwrap();
    let again = w
        .credits_with(|c| c.deduct(&deduction(&acme, 3_000_000, None), Some(&key)))
        .unwrap();
    assert_eq!(again.value, first.value);
    assert_eq!(first.value.available_tokens, 400_000 + 2_500_000);
    w.assert_books_balance();
}

#[test]
fn auto_recharge_never_spends_past_the_monthly_limit() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    // Threshold far above what packs bring: each evaluation buys one more pack.
    enable_recharge(&w, &acme, Pack::Standard, 100_000_000, "25.00");
    let outcomes: Vec<_> = (0..4)
        .map(|_| {
            w.credits_with(|c| c.evaluate_recharge(&acme, None))
                .unwrap()
        })
        .collect();
    let bought = RechargeOutcome::Recharged { tokens: 2_500_000 };
    assert_eq!(
        outcomes,
        [
            bought,
            bought,
            RechargeOutcome::Skipped,
            RechargeOutcome::Skipped
        ]
    );
    assert_eq!(w.balance(&acme), 5_000_000);
    let view = w.credits_with(|c| c.recharge_settings(&acme)).unwrap();
    assert_eq!(view.spent_this_month_eur.to_string(), "20.00");
    // A new month has a new limit.
    w.clock.set("2026-12-01T00:00:00Z");
    assert_eq!(
        w.credits_with(|c| c.evaluate_recharge(&acme, None))
            .unwrap(),
        bought
    );
    assert_eq!(
        w.credits_with(|c| c.recharge_settings(&acme))
            .unwrap()
            .spent_this_month_eur
            .to_string(),
        "10.00"
    );

    let zero = w.paying_account("zero", Plan::Pro, VISA);
    enable_recharge(&w, &zero, Pack::Starter, 1, "0.00");
    let report = w.credits_with(|c| c.recharge_check()).unwrap();
    assert_eq!(report.skipped, ["zero"]);
    assert_eq!(auto_purchases(&w, &zero), 0);
    w.assert_books_balance();
}

#[test]
fn still_below_after_one_pack_the_next_evaluation_buys_again() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    enable_recharge(&w, &acme, Pack::Starter, 2_500_000, "50.00");
    for expected in [1_000_000, 2_000_000, 3_000_000] {
        let report = w.credits_with(|c| c.recharge_check()).unwrap();
        assert_eq!(report.recharged, ["acme"], "one pack per evaluation");
        assert_eq!(w.balance(&acme), expected);
    }
    let report = w.credits_with(|c| c.recharge_check()).unwrap();
    assert_eq!(
        (report.checked, report.recharged.len(), report.skipped.len()),
        (1, 0, 0)
    );
    w.assert_books_balance();
}

#[test]
fn evaluations_that_see_the_same_balance_buy_one_pack() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    enable_recharge(&w, &acme, Pack::Starter, 500_000, "50.00");
    // The first evaluation's instance dies after charging: its purchase is pending
    // and the balance has not moved.
    let lost = ChargesThenFails(w.sandbox());
    assert!(
        w.credits_paying_with(&lost, |c| c.evaluate_recharge(&acme, None))
            .is_err()
    );
    assert_eq!(w.balance(&acme), 0);
    // Evaluations seeing that same balance buy nothing more.
    for _ in 0..3 {
        assert_eq!(
            w.credits_with(|c| c.evaluate_recharge(&acme, None))
                .unwrap(),
            RechargeOutcome::Skipped
        );
        let d = w
            .credits_with(|c| c.deduct(&deduction(&acme, 1, None), None))
            .unwrap()
            .value;
        assert_eq!(d.available_tokens, w.available(&acme));
    }
    assert_eq!(w.count("SELECT COUNT(*) FROM purchases"), 1);
    w.clock.advance_ms(61_000);
    let report = w.credits_with(|c| c.recharge_check()).unwrap();
    assert_eq!(report.checked, 1);
    assert!(
        report.recharged.is_empty(),
        "the stale purchase was settled, not a new one bought"
    );
    assert_eq!(
        (w.balance(&acme), w.charges(), auto_purchases(&w, &acme)),
        (1_000_000, 1, 1)
    );
    w.assert_books_balance();
}

#[test]
fn declines_wait_a_day_and_three_in_a_row_disable_auto_recharge() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, DECLINED);
    enable_recharge(&w, &acme, Pack::Starter, 500_000, "50.00");

    let report = w.credits_with(|c| c.recharge_check()).unwrap();
    assert_eq!(
        (report.checked, report.failed.clone()),
        (1, vec!["acme".to_owned()])
    );
    let view = w.credits_with(|c| c.recharge_settings(&acme)).unwrap();
    let err = view.last_error.expect("last_error after a decline");
    assert_eq!(err.code, "payment_failed");
    assert_eq!(err.at, w.now());
    assert!(view.enabled);
    assert_eq!(view.spent_this_month_eur.to_string(), "0.00");

    // Waiting: skipped (also right after a deduction), until 24 hours have passed.
    w.clock.advance_ms(DAY_MS - 1);
    assert_eq!(
        w.credits_with(|c| c.recharge_check()).unwrap().skipped,
        ["acme"]
    );
    w.credits_with(|c| c.deduct(&deduction(&acme, 1, None), None))
        .unwrap();
    assert_eq!(w.count("SELECT COUNT(*) FROM purchases"), 1);
    w.clock.advance_ms(1);
    assert_eq!(
        w.credits_with(|c| c.recharge_check()).unwrap().failed,
        ["acme"]
    );
    w.clock.advance_ms(DAY_MS);
    assert_eq!(
        w.credits_with(|c| c.recharge_check()).unwrap().failed,
        ["acme"]
    );

    let view = w.credits_with(|c| c.recharge_settings(&acme)).unwrap();
    assert!(!view.enabled, "disabled after 3 declines in a row");
    let message = view.last_error.unwrap().message;
    assert!(
        message.contains("disabled") && message.contains('3'),
        "{message}"
    );
    let report = w.credits_with(|c| c.recharge_check()).unwrap();
    assert_eq!(report.checked, 0);
    assert_eq!((w.balance(&acme), w.ledger_rows()), (0, 1));
    w.assert_books_balance();
}

#[test]
fn saving_a_payment_method_ends_the_wait_and_restarts_the_count() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, DECLINED);
    enable_recharge(&w, &acme, Pack::Starter, 500_000, "50.00");
    w.credits_with(|c| c.recharge_check()).unwrap();
    w.clock.advance_ms(DAY_MS);
    w.credits_with(|c| c.recharge_check()).unwrap();
    // Two declines; saving the (same) method clears the error and the wait.
    w.credits_with(|c| c.save_payment_method(&acme, &method(DECLINED)))
        .unwrap();
    assert_eq!(
        w.credits_with(|c| c.recharge_settings(&acme))
            .unwrap()
            .last_error,
        None
    );
    for _ in 0..2 {
        assert_eq!(
            w.credits_with(|c| c.recharge_check()).unwrap().failed,
            ["acme"]
        );
        w.clock.advance_ms(DAY_MS);
    }
    assert!(
        w.credits_with(|c| c.recharge_settings(&acme))
            .unwrap()
            .enabled,
        "the count restarted"
    );
    w.credits_with(|c| c.save_payment_method(&acme, &method(VISA)))
        .unwrap();
    assert_eq!(
        w.credits_with(|c| c.recharge_check()).unwrap().recharged,
        ["acme"]
    );
    w.assert_books_balance();
}

#[test]
fn saving_the_settings_ends_the_wait_and_restarts_the_count() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, DECLINED);
    enable_recharge(&w, &acme, Pack::Starter, 500_000, "50.00");
    for _ in 0..2 {
        assert_eq!(
            w.credits_with(|c| c.recharge_check()).unwrap().failed,
            ["acme"]
        );
        w.clock.advance_ms(DAY_MS);
    }
    w.credits_with(|c| c.recharge_check()).unwrap();
    assert!(
        !w.credits_with(|c| c.recharge_settings(&acme))
            .unwrap()
            .enabled
    );
    // Re-enabling (the same settings) right away: no wait, a fresh count of three.
    enable_recharge(&w, &acme, Pack::Starter, 500_000, "50.00");
    let view = w.credits_with(|c| c.recharge_settings(&acme)).unwrap();
    assert!(view.enabled && view.last_error.is_none());
    assert_eq!(
        w.credits_with(|c| c.recharge_check()).unwrap().failed,
        ["acme"]
    );
    // Saving again mid-wait ends the wait.
    enable_recharge(&w, &acme, Pack::Starter, 500_000, "50.00");
    assert_eq!(
        w.credits_with(|c| c.recharge_check()).unwrap().failed,
        ["acme"]
    );
    enable_recharge(&w, &acme, Pack::Starter, 500_000, "50.00");
    assert_eq!(
        w.credits_with(|c| c.recharge_check()).unwrap().failed,
        ["acme"]
    );
    assert!(
        w.credits_with(|c| c.recharge_settings(&acme))
            .unwrap()
            .enabled
    );
    w.assert_books_balance();
}

#[test]
fn a_successful_recharge_clears_the_last_error() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    enable_recharge(&w, &acme, Pack::Starter, 500_000, "50.00");
    let flaky = DeclinesFirst(Cell::new(1));
    let check = || {
        w.credits_paying_with(&flaky, |c| c.recharge_check())
            .unwrap()
    };
    assert_eq!(check().failed, ["acme"]);
    assert!(
        w.credits_with(|c| c.recharge_settings(&acme))
            .unwrap()
            .last_error
            .is_some()
    );
    w.clock.advance_ms(DAY_MS);
    assert_eq!(check().recharged, ["acme"]);
    let view = w.credits_with(|c| c.recharge_settings(&acme)).unwrap();
    assert_eq!(view.last_error, None);
    assert_eq!(view.spent_this_month_eur.to_string(), "5.00");
    assert_eq!(w.balance(&acme), 1_000_000);
    w.assert_books_balance();
}

#[test]
fn the_recharge_check_reports_each_account() {
    let w = World::new();
    let names = ["acme", "globex", "initech", "hooli", "umbrella", "free"];
    let [acme, globex, initech, hooli, umbrella, free] = names.map(|n| {
        w.paying_account(
            n,
            if n == "free" { Plan::Free } else { Plan::Pro },
            if n == "initech" { DECLINED } else { VISA },
        )
    });
    enable_recharge(&w, &acme, Pack::Starter, 500_000, "50.00"); // recharged
    enable_recharge(&w, &globex, Pack::Starter, 500_000, "0.00"); // skipped: limit
    enable_recharge(&w, &initech, Pack::Starter, 500_000, "50.00"); // failed
    buy(&w, &hooli, Pack::Starter);
    enable_recharge(&w, &hooli, Pack::Starter, 500_000, "50.00"); // not below
    let _ = (&umbrella, &free); // never enabled
    let report = w.credits_with(|c| c.recharge_check()).unwrap();
    assert_eq!(report.checked, 4);
    assert_eq!(report.recharged, ["acme"]);
    assert_eq!(report.skipped, ["globex"]);
    assert_eq!(report.failed, ["initech"]);
    // Next run: initech waits, acme is above the threshold now.
    let report = w.credits_with(|c| c.recharge_check()).unwrap();
    assert_eq!((report.checked, report.recharged.len()), (4, 0));
    assert_eq!(report.skipped, ["globex", "initech"]);
    assert!(report.failed.is_empty());
    w.assert_books_balance();
}

// ---------------------------------------------------------------- crash recovery

#[test]
fn a_purchase_lost_after_charging_is_granted_exactly_once_later() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let lost = ChargesThenFails(w.sandbox());
    let err = w
        .credits_paying_with(&lost, |c| c.purchase(&acme, Pack::Standard, None))
        .unwrap_err();
    assert_eq!(err.code(), "internal_error");
    assert_eq!((w.balance(&acme), w.charges()), (0, 1));
    assert_eq!(
        w.count("SELECT COUNT(*) FROM purchases WHERE status = 'pending'"),
        1
    );
    w.assert_books_balance();

    // Not stale yet: left alone.
    let now = w.now();
    assert_eq!(
        w.credits_with(|c| c.settle_stale_purchases(now.plus_millis(-60_000)))
            .unwrap(),
        0
    );
    assert_eq!(
        w.credits_with(|c| c.settle_stale_purchases(now)).unwrap(),
        1
    );
    assert_eq!(
        w.credits_with(|c| c.settle_stale_purchases(now)).unwrap(),
        0
    );
    assert_eq!(
        (w.balance(&acme), w.charges(), w.ledger_rows()),
        (2_500_000, 1, 1)
    );
    w.assert_books_balance();
}

#[test]
fn a_purchase_retried_with_its_key_after_a_crash_is_granted_once() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let key = idem("buy-1", &json!({"pack": "plus"}));
    let dies = ChargesThenPanics(w.sandbox());
    let crashed = catch_unwind(AssertUnwindSafe(|| {
        w.credits_paying_with(&dies, |c| c.purchase(&acme, Pack::Plus, Some(&key)))
    }));
    assert!(crashed.is_err());
    assert_eq!((w.balance(&acme), w.charges()), (0, 1));
    let retry = w
        .credits_with(|c| c.purchase(&acme, Pack::Plus, Some(&key)))
        .unwrap();
    assert!(retry.replayed);
    assert_eq!(retry.value.credits.balance_tokens, 7_000_000);
    let again = w
        .credits_with(|c| c.purchase(&acme, Pack::Plus, Some(&key)))
        .unwrap();
    assert_eq!(again.value.transaction, retry.value.transaction);
    w.clock.advance_ms(120_000);
    assert_eq!(w.credits_with(|c| c.recharge_check()).unwrap().checked, 0);
    assert_eq!(
        (w.balance(&acme), w.charges(), w.ledger_rows()),
        (7_000_000, 1, 1)
    );
    w.assert_books_balance();
}

#[test]
fn an_auto_recharge_that_died_after_charging_is_granted_once_by_a_later_check() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    enable_recharge(&w, &acme, Pack::Standard, 1_000_000, "50.00");
    let dies = ChargesThenPanics(w.sandbox());
    let crashed = catch_unwind(AssertUnwindSafe(|| {
        w.credits_paying_with(&dies, |c| c.recharge_check())
    }));
    assert!(crashed.is_err());
    assert_eq!((w.balance(&acme), w.charges()), (0, 1));
    // While it is pending, nothing else is bought for this balance.
    assert_eq!(
        w.credits_with(|c| c.recharge_check()).unwrap().skipped,
        ["acme"]
    );
    w.clock.advance_ms(60_000);
    let report = w.credits_with(|c| c.recharge_check()).unwrap();
    assert!(report.recharged.is_empty() && report.skipped.is_empty() && report.failed.is_empty());
    assert_eq!(
        (w.balance(&acme), w.charges(), auto_purchases(&w, &acme)),
        (2_500_000, 1, 1)
    );
    assert_eq!(
        w.credits_with(|c| c.recharge_settings(&acme))
            .unwrap()
            .spent_this_month_eur
            .to_string(),
        "10.00"
    );
    w.assert_books_balance();
}

/// A provider that cannot be reached for one payment method (its outcome stays
/// unknown) and is the sandbox for every other.
struct UnreachableFor<'a>(&'static str, credits::SandboxPayments<'a>);

impl credits::PaymentProvider for UnreachableFor<'_> {
    fn charge(&self, charge: &credits::Charge<'_>) -> Result<credits::ChargeOutcome, CreditsError> {
        if charge.payment_method == self.0 {
            return Err(CreditsError::Internal("provider timed out".into()));
        }
        self.1.charge(charge)
    }
}

#[test]
fn a_purchase_that_cannot_be_settled_does_not_stop_the_recharge_check() {
    let w = World::new();
    let stuck = w.paying_account("stuck", Plan::Pro, "pm_card_unreachable");
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    enable_recharge(&w, &acme, Pack::Starter, 500_000, "50.00");
    let provider = || UnreachableFor("pm_card_unreachable", w.sandbox());
    assert_eq!(
        code(w.credits_paying_with(&provider(), |c| c.purchase(&stuck, Pack::Starter, None))),
        "internal_error"
    );
    w.clock.advance_ms(61_000);
    // The stuck purchase stays pending; everyone else is still served.
    let report = w
        .credits_paying_with(&provider(), |c| c.recharge_check())
        .unwrap();
    assert_eq!(report.recharged, ["acme"]);
    assert_eq!(
        w.count("SELECT COUNT(*) FROM purchases WHERE status = 'pending'"),
        1
    );
    assert_eq!((w.balance(&stuck), w.balance(&acme)), (0, 1_000_000));
    // Once the provider answers again, the purchase is granted, once.
    let report = w.credits_with(|c| c.recharge_check()).unwrap();
    assert!(report.recharged.is_empty());
    assert_eq!((w.balance(&stuck), w.charges()), (1_000_000, 2));
    w.assert_books_balance();
}
