//! What the rule tests (`tests/rules_*.rs`) share: the sandbox's payment methods
//! and one-line ways to buy, deduct, turn auto-recharge on and read history.

use credits::{
    AccountId, Eur, HistoryQuery, Pack, PaymentMethodId, RechargeSettings, TokenAmount, Transaction,
};

use super::{World, deduction};

/// A payment method the sandbox charges.
pub const VISA: &str = "pm_card_visa";
/// The payment method the sandbox declines.
pub const DECLINED: &str = "pm_card_chargeDeclined";

pub fn buy(w: &World, account: &AccountId, pack: Pack) -> Transaction {
    w.credits_with(|c| c.purchase(account, pack, None))
        .unwrap()
        .value
        .transaction
}

pub fn deduct(w: &World, account: &AccountId, tokens: u64) -> Transaction {
    deduct_in(w, account, tokens, None)
}

pub fn deduct_in(
    w: &World,
    account: &AccountId,
    tokens: u64,
    project: Option<&str>,
) -> Transaction {
    w.credits_with(|c| c.deduct(&deduction(account, tokens, project), None))
        .unwrap()
        .value
        .transaction
}

pub fn settings(pack: Pack, threshold: u64, limit: &str) -> RechargeSettings {
    RechargeSettings::new(
        true,
        Some(pack),
        Some(TokenAmount::new(threshold).unwrap()),
        Some(Eur::parse(limit).unwrap()),
    )
    .unwrap()
}

pub fn enable_recharge(w: &World, account: &AccountId, pack: Pack, threshold: u64, limit: &str) {
    w.credits_with(|c| c.save_recharge_settings(account, &settings(pack, threshold, limit)))
        .unwrap();
}

pub fn method(text: &str) -> PaymentMethodId {
    PaymentMethodId::parse(text).unwrap()
}

pub fn history(w: &World, account: &AccountId, query: &HistoryQuery) -> Vec<Transaction> {
    w.credits_with(|c| c.history(account, query))
        .unwrap()
        .transactions
}

pub fn all_history(w: &World, account: &AccountId) -> Vec<Transaction> {
    history(
        w,
        account,
        &HistoryQuery::new(Some(200), None, None, None).unwrap(),
    )
}

pub fn auto_purchases(w: &World, account: &AccountId) -> i64 {
    w.count(&format!(
        "SELECT COUNT(*) FROM ledger WHERE kind = 'purchase' AND source = 'auto_recharge'
         AND account_id = '{account}'"
    ))
}

/// A hold of `tokens` for a chat call in project `p-42`, for `seconds` (the
/// default lifetime when `None`).
pub fn hold_request(
    account: &AccountId,
    tokens: u64,
    seconds: Option<u64>,
) -> credits::HoldRequest {
    credits::HoldRequest::new(
        account.clone(),
        TokenAmount::new(tokens).unwrap(),
        credits::Operation::parse("chat").unwrap(),
        credits::Resource::parse(Some("p-42"), Some("s-9")).unwrap(),
        credits::HoldLifetime::new(seconds).unwrap(),
    )
}

pub fn hold(w: &World, account: &AccountId, tokens: u64) -> credits::Hold {
    w.credits_with(|c| c.create_hold(&hold_request(account, tokens, None), None))
        .unwrap()
        .value
        .hold
}

pub fn settle(
    w: &World,
    account: &AccountId,
    hold: &credits::Hold,
    tokens: u64,
) -> credits::SettleReceipt {
    w.credits_with(|c| {
        c.settle_hold(
            account,
            Some(&hold.id),
            credits::SettledTokens::new(tokens).unwrap(),
            None,
        )
    })
    .unwrap()
    .value
}

pub fn void(w: &World, account: &AccountId, hold: &credits::Hold) -> credits::VoidReceipt {
    w.credits_with(|c| c.void_hold(account, Some(&hold.id), None))
        .unwrap()
        .value
}

/// What live holds reserve, as the summary shows it.
pub fn held_tokens(w: &World, account: &AccountId) -> u64 {
    w.credits_with(|c| c.summary(account)).unwrap().held_tokens
}
