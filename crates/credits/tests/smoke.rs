mod support;

use credits::{Pack, Plan};
use support::{World, deduction};

#[test]
fn buy_deduct_refund() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, "pm_card_visa");
    let p = w
        .credits_with(|c| c.purchase(&acme, Pack::Standard, None))
        .unwrap();
    assert_eq!(p.value.credits.balance_tokens, 2_500_000);
    let d = w
        .credits_with(|c| c.deduct(&deduction(&acme, 2_000_100, Some("p")), None))
        .unwrap();
    println!("{}", serde_json::to_string_pretty(&d.value).unwrap());
    assert_eq!(d.value.available_tokens, 2_500_000 - 100);
    w.assert_books_balance();
    let s = w
        .credits_with(|c| c.statement(&acme, &credits::HistoryQuery::default()))
        .unwrap();
    println!("{}", serde_json::to_string_pretty(&s).unwrap());
}
