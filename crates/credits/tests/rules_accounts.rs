//! Accounts: creating one, its key, and how the key is stored.
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

use credits::{AccountId, CreditsError, Plan};
use support::World;

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
    assert!(matches!(err, CreditsError::AccountExists(_)), "{err:?}");
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
        assert!(
            matches!(err, CreditsError::UnknownAccountKey),
            "{unknown:?}: {err:?}"
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
