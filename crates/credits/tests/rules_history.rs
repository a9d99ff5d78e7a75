//! Transaction history: newest first, filters, pages and cursors.
//!
//! Rules of API.md that the domain crate owns, with each of their error paths,
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

use credits::{CreditsError, HistoryQuery, Pack, Plan, Transaction, TransactionKind};
use support::rules::{VISA, all_history, buy, deduct, deduct_in, history};
use support::{World, refund, refused};

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
            refused(HistoryQuery::new(Some(bad), None, None, None)),
            "Invalid",
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
                (Transaction::Deduction { resource, .. }, Some(p)) => resource.project() == Some(p),
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
    // Ids are numbered per account: globex's second entry names none of acme's.
    deduct(&w, &globex, 1);
    let theirs = deduct(&w, &globex, 1);
    for cursor in [
        "garbage".to_owned(),
        String::new(),
        "tx_1".to_owned(),
        "tx_999999999999".to_owned(),
        theirs.id().to_string(),
    ] {
        // Malformed: refused as it is read; another account's: when the page is.
        let err = HistoryQuery::parse_cursor(&cursor)
            .and_then(|id| HistoryQuery::new(None, Some(id), None, None))
            .and_then(|q| w.credits_with(|c| c.history(&acme, &q)))
            .unwrap_err();
        assert!(
            matches!(err, CreditsError::Invalid(_)),
            "{cursor:?}: {err:?}"
        );
    }
    let q = HistoryQuery::new(None, Some(mine.id()), None, None).unwrap();
    assert!(
        w.credits_with(|c| c.history(&acme, &q))
            .unwrap()
            .transactions
            .is_empty()
    );
    w.assert_books_balance();
}
