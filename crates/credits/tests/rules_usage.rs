//! Usage for charts: net of refunds, grouped by day, project or operation.
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

use credits::{AccountId, Plan, Timestamp, UsageGrouping, UsageQuery};
use support::rules::{deduct, deduct_in};
use support::{World, deduction_for, refund, refused};

fn usage(
    w: &World,
    account: &AccountId,
    from: Option<&str>,
    to: Option<&str>,
    by: UsageGrouping,
) -> Vec<(Option<String>, i64)> {
    let query = UsageQuery::new(
        from.map(|t| Timestamp::parse_time_or_date(t).unwrap()),
        to.map(|t| Timestamp::parse_time_or_date(t).unwrap()),
        by,
    )
    .unwrap();
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
    let hygiene = deduction_for(&acme, 40, Some("beta"), "hygiene");
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
                &UsageQuery::new(None, None, UsageGrouping::Operation).unwrap(),
            )
        })
        .unwrap();
    assert_eq!(report.from.to_rfc3339(), "2026-11-01T00:00:00.000Z");
    assert_eq!(report.to.to_rfc3339(), "2026-12-01T00:00:00.000Z");
    assert_eq!(report.groups.len(), 1);
    assert_eq!(report.groups[0].tokens, 22);

    for (from, to) in [("2026-11-05", "2026-11-05"), ("2026-11-06", "2026-11-05")] {
        // The query itself refuses the range now.
        let query = UsageQuery::new(
            Some(Timestamp::parse_time_or_date(from).unwrap()),
            Some(Timestamp::parse_time_or_date(to).unwrap()),
            UsageGrouping::Day,
        );
        assert_eq!(refused(query), "Invalid", "{from} {to}");
    }
    // Only `from`, after the current month's end: still from >= to.
    let query = UsageQuery::new(
        Some(Timestamp::parse_time_or_date("2027-01-01").unwrap()),
        None,
        UsageGrouping::Day,
    )
    .unwrap();
    assert_eq!(
        refused(w.credits_with(|c| c.usage(&acme, &query))),
        "Invalid"
    );
    assert_eq!(refused(UsageGrouping::parse("week")), "Invalid");
    let ghost = AccountId::parse("ghost").unwrap();
    let query = UsageQuery::new(None, None, UsageGrouping::Day).unwrap();
    assert_eq!(
        refused(w.credits_with(|c| c.usage(&ghost, &query))),
        "NotFound"
    );
    w.assert_books_balance();
}
