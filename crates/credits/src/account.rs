//! Accounts: creation with a one-time key, authentication, plan and payment method.

use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::catalog::Plan;
use crate::error::{CreditsError, Result};
use crate::ids::{AccountId, random_hex};
use crate::payment::PaymentMethodId;
use crate::service::Credits;
use crate::store::Value;
use crate::tokens;

/// What `POST /api/admin/accounts` answers; the only time the key is shown.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedAccount {
    pub account_id: AccountId,
    pub plan: &'static str,
    pub api_key: String,
}

/// What `PUT /api/billing/payment-method` answers.
#[derive(Debug, Clone, Serialize)]
pub struct SavedPaymentMethod {
    pub payment_method: Option<String>,
}

/// SHA-256 of a secret, hex: what is stored and compared instead of the secret.
#[must_use]
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares two secrets in time independent of where they differ.
#[must_use]
pub fn secrets_match(given: &str, expected: &str) -> bool {
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    a.ct_eq(&b).into()
}

impl Credits<'_> {
    /// Creates an account and issues its key (256 random bits, stored hashed).
    pub fn create_account(&self, account: &AccountId, plan: Plan) -> Result<CreatedAccount> {
        let api_key = format!("ck_{}", random_hex(32)?);
        let rows = self.db.execute(
            // Not `ON CONFLICT DO NOTHING`: the schema refuses any insert over an
            // existing account (`accounts_start_empty`) before a conflict clause runs.
            "INSERT INTO accounts (id, plan, monthly_tokens, key_hash, created_at)
             SELECT ?1, ?2, ?3, ?4, ?5 WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE id = ?1)
             RETURNING id",
            &[
                account.as_str().into(),
                plan.name().into(),
                Value::Integer(tokens::to_sql(plan.monthly_tokens())?),
                secret_hash(&api_key).into(),
                Value::Integer(self.now().millis()),
            ],
        )?;
        if rows.is_empty() {
            return Err(CreditsError::AccountExists(account.to_string()));
        }
        Ok(CreatedAccount {
            account_id: account.clone(),
            plan: plan.name(),
            api_key,
        })
    }

    /// The account an account key belongs to. Keys never change, so the lookup is
    /// cached in the key-value store (a cache miss falls back to SQL).
    pub fn authenticate(&self, api_key: &str) -> Result<AccountId> {
        let hash = secret_hash(api_key);
        let cache_key = format!("account-key:{hash}");
        if let Ok(Some(cached)) = self.cache.get(&cache_key)
            && let Ok(id) = AccountId::parse(&String::from_utf8_lossy(&cached))
        {
            return Ok(id);
        }
        let rows = self.db.execute(
            "SELECT id, key_hash FROM accounts WHERE key_hash = ?1",
            &[hash.as_str().into()],
        )?;
        let row = rows.first().ok_or(CreditsError::UnknownAccountKey)?;
        let stored: &str = row.text(1)?;
        if !bool::from(stored.as_bytes().ct_eq(hash.as_bytes())) {
            return Err(CreditsError::UnknownAccountKey);
        }
        let id = AccountId::parse(row.text(0)?)?;
        // A cache that cannot be written only costs the next request a query.
        let _ = self.cache.set(&cache_key, id.as_str().as_bytes());
        Ok(id)
    }

    /// Moves an account to another plan; it applies to the current month at once.
    /// Moving to the free plan disables auto-recharge, before the plan changes: a
    /// crash in between leaves it disabled on the old plan, never enabled on free.
    pub fn change_plan(&self, account: &AccountId, plan: Plan) -> Result<()> {
        if !plan.may_buy_credits() {
            self.db.execute(
                "UPDATE auto_recharge SET enabled = 0 WHERE account_id = ?1",
                &[account.as_str().into()],
            )?;
        }
        let rows = self.db.execute(
            "UPDATE accounts SET plan = ?2, monthly_tokens = ?3 WHERE id = ?1 RETURNING id",
            &[
                account.as_str().into(),
                plan.name().into(),
                Value::Integer(tokens::to_sql(plan.monthly_tokens())?),
            ],
        )?;
        if rows.is_empty() {
            return Err(CreditsError::NotFound("account"));
        }
        Ok(())
    }

    /// Saves the payment method for purchases and auto-recharge, then ends any wait
    /// after a declined auto-recharge and restarts the decline count.
    pub fn save_payment_method(
        &self,
        account: &AccountId,
        method: &PaymentMethodId,
    ) -> Result<SavedPaymentMethod> {
        let rows = self.db.execute(
            "UPDATE accounts SET payment_method = ?2 WHERE id = ?1 RETURNING payment_method",
            &[account.as_str().into(), method.as_str().into()],
        )?;
        let row = rows.first().ok_or(CreditsError::NotFound("account"))?;
        let saved = SavedPaymentMethod {
            payment_method: row.opt_text(0)?.map(str::to_owned),
        };
        self.clear_recharge_declines(account)?;
        Ok(saved)
    }

    /// Forgets `method` if it is the account's saved one (the card was removed at
    /// the provider); a purchase then asks for a new one. Answers whether it was.
    pub fn forget_payment_method(&self, account: &AccountId, method: &str) -> Result<bool> {
        let rows = self.db.execute(
            "UPDATE accounts SET payment_method = NULL
             WHERE id = ?1 AND payment_method = ?2 RETURNING id",
            &[account.as_str().into(), method.into()],
        )?;
        Ok(!rows.is_empty())
    }

    /// A new payment method or a successful auto-recharge ends the wait after a
    /// decline, restarts the count and clears the last error.
    pub(crate) fn clear_recharge_declines(&self, account: &AccountId) -> Result<()> {
        self.db.execute(
            "UPDATE auto_recharge SET declines = 0, retry_after = NULL,
                    last_error_code = NULL, last_error_message = NULL, last_error_at = NULL
             WHERE account_id = ?1 AND (declines > 0 OR last_error_code IS NOT NULL)",
            &[account.as_str().into()],
        )?;
        Ok(())
    }

    /// The saved payment method, if any.
    pub fn payment_method(&self, account: &AccountId) -> Result<SavedPaymentMethod> {
        let rows = self.db.execute(
            "SELECT payment_method FROM accounts WHERE id = ?1",
            &[account.as_str().into()],
        )?;
        let row = rows.first().ok_or(CreditsError::NotFound("account"))?;
        Ok(SavedPaymentMethod {
            payment_method: row.opt_text(0)?.map(str::to_owned),
        })
    }

    /// Fails with `not_found` unless the account exists.
    pub(crate) fn require_account(&self, account: &AccountId) -> Result<AccountRow> {
        let rows = self.db.execute(
            "SELECT plan, payment_method FROM accounts WHERE id = ?1",
            &[account.as_str().into()],
        )?;
        let row = rows.first().ok_or(CreditsError::NotFound("account"))?;
        Ok(AccountRow {
            plan: Plan::parse(row.text(0)?)
                .map_err(|_| CreditsError::Internal("unknown stored plan".into()))?,
            payment_method: row.opt_text(1)?.map(str::to_owned),
        })
    }
}

/// The parts of an account the rules check before money moves.
pub(crate) struct AccountRow {
    pub plan: Plan,
    pub payment_method: Option<String>,
}
