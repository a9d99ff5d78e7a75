//! Races of holds: threads, each with its own SQLite connection to one database
//! file, as instances of the component would be. Holds and deductions never
//! reserve more than there is, a hold ends exactly once, a retried request holds
//! once; no storage error reaches a caller and the books balance after each race.

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

use std::path::Path;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use credits::{
    AccountId, CreditsError, Database, Hold, HoldStatus, Pack, Plan, SettledTokens, Value,
};
use serde_json::json;
use support::rules::{VISA, buy, hold_request};
use support::{World, deduction, idem, kind};

const THREADS: usize = 8;

/// Runs `f` on `THREADS` threads, each on its own connection, released together.
fn race<T: Send>(path: &Path, f: impl Fn(usize, &World) -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(THREADS);
    thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let (barrier, f) = (&barrier, &f);
                s.spawn(move || {
                    let world = World::open(path);
                    barrier.wait();
                    f(i, &world)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Only the refusals a rule gives may reach a caller: never a storage error.
fn expect_refusal(err: &CreditsError, variant: &str) {
    assert_eq!(
        kind(err),
        variant,
        "unexpected error reached a caller: {err:?}"
    );
}

/// A Pro account with 3,000,000 tokens: its whole plan and a Starter pack.
fn acme(w: &World) -> AccountId {
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    buy(w, &acme, Pack::Starter);
    acme
}

/// What the account's deductions took and its live holds reserve, read in one
/// statement so that it is one instant of the books.
fn taken_and_held(w: &World) -> (i64, i64) {
    let rows =
        w.db.execute(
            "SELECT (SELECT COALESCE(SUM(tokens), 0) FROM ledger
                     WHERE account_id = 'acme' AND kind = 'deduction'),
                    (SELECT COALESCE(SUM(tokens), 0) FROM holds
                     WHERE account_id = 'acme' AND status = 'held' AND expires_at > ?1)",
            &[Value::Integer(w.now().millis())],
        )
        .unwrap();
    (rows[0].int(0).unwrap(), rows[0].int(1).unwrap())
}

#[test]
#[allow(clippy::too_many_lines)]
fn racing_holds_and_deductions_for_the_last_tokens_never_reserve_more_than_there_is() {
    let w = World::new();
    let acme = acme(&w);
    // 8 × 60 attempts of 7,000 tokens for 3,000,000: half of them holds.
    let per = 7_000;
    let results = race(&w.path, |i, world| {
        let mut holds = Vec::new();
        let mut deducted = 0u64;
        for _ in 0..60 {
            if i % 2 == 0 {
                match world.credits_with(|c| c.create_hold(&hold_request(&acme, per, None), None)) {
                    Ok(r) => holds.push(r.value.hold),
                    Err(e) => expect_refusal(&e, "InsufficientBalance"),
                }
            } else {
                match world.credits_with(|c| c.deduct(&deduction(&acme, per, None), None)) {
                    Ok(_) => deducted += 1,
                    Err(e) => expect_refusal(&e, "InsufficientBalance"),
                }
            }
        }
        (holds, deducted)
    });
    let holds: Vec<Hold> = results.iter().flat_map(|(h, _)| h.clone()).collect();
    let deducted: u64 = results.iter().map(|(_, d)| d).sum();
    assert_eq!(holds.len() as u64 + deducted, 3_000_000 / per);
    assert_eq!(w.available(&acme), 3_000_000 % per);
    let s = w.credits_with(|c| c.summary(&acme)).unwrap();
    assert_eq!(s.held_tokens, holds.len() as u64 * per);
    assert_eq!(
        taken_and_held(&w),
        ((deducted * per) as i64, (holds.len() as u64 * per) as i64)
    );
    w.assert_books_balance();

    // Then the holds end (settled for half, or voided) while deductions race for
    // what they release, and one thread watches that nothing is ever over.
    let done = AtomicBool::new(false);
    let holds_per_thread: Vec<Vec<Hold>> = results.into_iter().map(|(h, _)| h).collect();
    let results = race(&w.path, |i, world| {
        let mut took = 0u64;
        match i {
            0 => {
                let mut samples = 0;
                while !done.load(Ordering::Relaxed) || samples < 50 {
                    let (taken, held) = taken_and_held(world);
                    assert!(taken + held <= 3_000_000, "{taken} taken + {held} held");
                    samples += 1;
                }
            }
            _ if i % 2 == 0 => {
                for (n, h) in holds_per_thread[i].iter().enumerate() {
                    if n % 3 == 0 {
                        world
                            .credits_with(|c| c.void_hold(&acme, Some(&h.id), None))
                            .unwrap();
                    } else {
                        let r = world
                            .credits_with(|c| {
                                c.settle_hold(
                                    &acme,
                                    Some(&h.id),
                                    SettledTokens::new(per / 2).unwrap(),
                                    None,
                                )
                            })
                            .unwrap();
                        assert!(r.value.transaction.is_some());
                    }
                }
            }
            _ => {
                for _ in 0..120 {
                    match world.credits_with(|c| c.deduct(&deduction(&acme, 1_000, None), None)) {
                        Ok(_) => took += 1_000,
                        Err(e) => expect_refusal(&e, "InsufficientBalance"),
                    }
                }
                if i == THREADS - 1 {
                    done.store(true, Ordering::Relaxed);
                }
            }
        }
        took
    });
    // Thread 0's own holds were not ended by the race: end them now.
    for h in &holds_per_thread[0] {
        w.credits_with(|c| c.void_hold(&acme, Some(&h.id), None))
            .unwrap();
    }
    let (taken, held) = taken_and_held(&w);
    assert_eq!(held, 0);
    let settled = holds_per_thread[2..]
        .iter()
        .step_by(2)
        .flat_map(|hs| hs.iter().enumerate().filter(|(n, _)| n % 3 != 0))
        .count() as u64;
    let phase_two: u64 = results.iter().sum();
    assert_eq!(
        taken as u64,
        deducted * per + settled * (per / 2) + phase_two
    );
    assert!(taken <= 3_000_000);
    assert_eq!(w.available(&acme), 3_000_000 - taken as u64);
    assert_eq!(
        w.count("SELECT COUNT(*) FROM ledger WHERE hold_id IS NOT NULL") as u64,
        settled
    );
    w.assert_books_balance();
}

#[test]
fn racing_settle_void_and_expiry_end_a_hold_exactly_once() {
    let w = World::new();
    let acme = acme(&w);
    let mut endings = [0usize; 3];
    for round in 0..24 {
        let h = w
            .credits_with(|c| c.create_hold(&hold_request(&acme, 10_000, Some(60)), None))
            .unwrap()
            .value
            .hold;
        // Threads 0-2 settle different amounts, 3-5 void, 6 records expiries with
        // a clock past this one's, 7 tries to settle past its expiry.
        let now = w.now().millis();
        let wins = race(&w.path, |i, world| {
            world.clock.advance_ms(now - world.now().millis());
            if i >= 6 {
                world.clock.advance_ms(60_000);
            }
            let result = match i {
                0..=2 => world
                    .credits_with(|c| {
                        c.settle_hold(
                            &acme,
                            Some(&h.id),
                            SettledTokens::new(1_000 * (i as u64 + 1)).unwrap(),
                            None,
                        )
                    })
                    .map(|_| ()),
                3..=5 => world
                    .credits_with(|c| c.void_hold(&acme, Some(&h.id), None))
                    .map(|_| ()),
                6 => {
                    world.credits_with(|c| c.recharge_check()).unwrap();
                    return 0;
                }
                _ => world
                    .credits_with(|c| {
                        c.settle_hold(&acme, Some(&h.id), SettledTokens::new(1).unwrap(), None)
                    })
                    .map(|_| ()),
            };
            match result {
                Ok(()) => {
                    assert!(i < 6, "thread {i} ended a hold past its expiry");
                    1
                }
                Err(e) => {
                    expect_refusal(&e, "HoldNotHeld");
                    0
                }
            }
        });
        let won: usize = wins.iter().sum();
        let status = w
            .credits_with(|c| c.hold(&acme, Some(&h.id)))
            .unwrap()
            .hold
            .status;
        let entries = w.count(&format!(
            "SELECT COUNT(*) FROM ledger WHERE hold_id = '{}'",
            h.id
        ));
        match status {
            HoldStatus::Settled => {
                assert_eq!((won, entries), (1, 1), "round {round}");
                endings[0] += 1;
            }
            HoldStatus::Voided => {
                assert_eq!((won, entries), (1, 0), "round {round}");
                endings[1] += 1;
            }
            HoldStatus::Expired => {
                assert_eq!((won, entries), (0, 0), "round {round}");
                endings[2] += 1;
            }
            HoldStatus::Held => panic!("round {round}: still held"),
        }
        // The thread that recorded expiries ran with a clock 60 s ahead; the
        // next round's hold must not already be past that.
        w.clock.advance_ms(60_000);
    }
    assert_eq!(endings.iter().sum::<usize>(), 24, "{endings:?}");
    assert_eq!(
        w.count("SELECT COUNT(*) FROM holds WHERE status = 'held'"),
        0
    );
    w.assert_books_balance();
}

#[test]
fn retries_racing_the_first_request_hold_settle_and_void_once() {
    let w = World::new();
    let acme = acme(&w);
    let key = idem("call-1", &json!({"account_id": "acme", "tokens": 8_000}));
    let created = race(&w.path, |_, world| {
        (0..4)
            .map(|_| {
                world
                    .credits_with(|c| c.create_hold(&hold_request(&acme, 8_000, None), Some(&key)))
                    .unwrap()
            })
            .collect::<Vec<_>>()
    });
    let created: Vec<_> = created.into_iter().flatten().collect();
    assert_eq!(created.iter().filter(|r| !r.replayed).count(), 1);
    assert!(created.iter().all(|r| r.value == created[0].value));
    assert_eq!(w.count("SELECT COUNT(*) FROM holds"), 1);
    assert_eq!(w.available(&acme), 3_000_000 - 8_000);
    let h = created[0].value.hold.clone();

    let settle_key = idem(
        "call-1-end",
        &json!({"account_id": "acme", "tokens": 6_512}),
    );
    let settled = race(&w.path, |_, world| {
        (0..4)
            .map(|_| {
                world
                    .credits_with(|c| {
                        c.settle_hold(
                            &acme,
                            Some(&h.id),
                            SettledTokens::new(6_512).unwrap(),
                            Some(&settle_key),
                        )
                    })
                    .unwrap()
            })
            .collect::<Vec<_>>()
    });
    let settled: Vec<_> = settled.into_iter().flatten().collect();
    assert_eq!(settled.iter().filter(|r| !r.replayed).count(), 1);
    assert!(settled.iter().all(|r| r.value == settled[0].value));
    assert_eq!(
        w.count("SELECT COUNT(*) FROM ledger WHERE kind = 'deduction'"),
        1
    );
    assert_eq!(w.available(&acme), 3_000_000 - 6_512);

    let v = w
        .credits_with(|c| c.create_hold(&hold_request(&acme, 1_000, None), None))
        .unwrap()
        .value
        .hold;
    let void_key = idem("call-2-end", &json!({"account_id": "acme"}));
    let voided = race(&w.path, |_, world| {
        (0..4)
            .map(|_| {
                world
                    .credits_with(|c| c.void_hold(&acme, Some(&v.id), Some(&void_key)))
                    .unwrap()
            })
            .collect::<Vec<_>>()
    });
    let voided: Vec<_> = voided.into_iter().flatten().collect();
    assert_eq!(voided.iter().filter(|r| !r.replayed).count(), 1);
    assert!(voided.iter().all(|r| r.value == voided[0].value));
    assert_eq!(voided[0].value.hold.status, HoldStatus::Voided);
    assert_eq!(w.available(&acme), 3_000_000 - 6_512);
    w.assert_books_balance();
}

#[test]
fn racing_holds_with_one_key_each_for_the_last_tokens_hold_what_fits_once() {
    let w = World::new();
    let acme = acme(&w);
    // 8 threads each retry their own key 5 times; 3,000,000 fits 7 of 8 holds of
    // 400,000. A refusal means the 7 are there, so the refused key is refused on
    // every retry, and the others answer their one hold every time.
    let results = race(&w.path, |i, world| {
        let key = idem(&format!("k-{i}"), &json!({"tokens": 400_000}));
        (0..5)
            .map(|_| {
                world
                    .credits_with(|c| {
                        c.create_hold(&hold_request(&acme, 400_000, None), Some(&key))
                    })
                    .map(|r| r.value.hold.id)
                    .map_err(|e| {
                        expect_refusal(&e, "InsufficientBalance");
                    })
            })
            .collect::<Vec<_>>()
    });
    let mut refused_keys = 0;
    for answers in &results {
        if let Ok(id) = &answers[0] {
            assert!(answers.iter().all(|a| a.as_ref() == Ok(id)), "{answers:?}");
        } else {
            assert!(answers.iter().all(Result::is_err), "{answers:?}");
            refused_keys += 1;
        }
    }
    assert_eq!(refused_keys, 1);
    assert_eq!(w.count("SELECT COUNT(*) FROM holds"), 7);
    assert_eq!(w.available(&acme), 3_000_000 - 7 * 400_000);
    w.assert_books_balance();
}
