//! Ledger entries as the history shows them.

use serde::Serialize;

use crate::error::CreditsError;
use crate::ids::TransactionId;
use crate::labels::Resource;
use crate::money::Eur;
use crate::store::Row;
use crate::time::Timestamp;

/// The ledger columns a [`Transaction`] is read from, in this order; statements
/// that return transactions select or return exactly these first.
macro_rules! tx_columns {
    () => {
        $crate::transaction::tx_columns!("")
    };
    ($table:literal) => {
        concat!(
            $table,
            "seq, ",
            $table,
            "kind, ",
            $table,
            "tokens, ",
            $table,
            "plan_tokens, ",
            $table,
            "credit_tokens, ",
            $table,
            "source, ",
            $table,
            "pack, ",
            $table,
            "amount_cents, ",
            $table,
            "operation, ",
            $table,
            "project, ",
            $table,
            "session, ",
            $table,
            "refund_of, ",
            $table,
            "reason, ",
            $table,
            "created_at, ",
            $table,
            "hold_id"
        )
    };
}
pub(crate) use tx_columns;

/// How many columns [`tx_columns!`] names; extra columns of a row start here.
pub(crate) const TX_COLUMN_COUNT: usize = 15;

/// Who started a purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseSource {
    Manual,
    AutoRecharge,
}

impl PurchaseSource {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::AutoRecharge => "auto_recharge",
        }
    }
}

/// The kinds of ledger entry, as the `type` filter names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionKind {
    Purchase,
    Deduction,
    Refund,
}

impl TransactionKind {
    pub fn parse(text: &str) -> Result<Self, CreditsError> {
        match text {
            "purchase" => Ok(Self::Purchase),
            "deduction" => Ok(Self::Deduction),
            "refund" => Ok(Self::Refund),
            _ => Err(CreditsError::invalid(
                "type must be purchase, deduction or refund",
            )),
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Purchase => "purchase",
            Self::Deduction => "deduction",
            Self::Refund => "refund",
        }
    }
}

/// One entry of the history.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Transaction {
    Purchase {
        id: TransactionId,
        source: PurchaseSource,
        pack: String,
        tokens: u64,
        amount_eur: Eur,
        created_at: Timestamp,
    },
    Deduction {
        id: TransactionId,
        operation: String,
        tokens: u64,
        plan_tokens: u64,
        credit_tokens: u64,
        resource: Resource,
        created_at: Timestamp,
        /// The hold this deduction settled.
        #[serde(skip_serializing_if = "Option::is_none")]
        hold_id: Option<String>,
    },
    Refund {
        id: TransactionId,
        refund_of: TransactionId,
        tokens: u64,
        plan_tokens: u64,
        credit_tokens: u64,
        reason: Option<String>,
        operation: String,
        resource: Resource,
        created_at: Timestamp,
    },
}

impl Transaction {
    /// Reads the [`tx_columns!`] of a row.
    pub(crate) fn from_row(row: &Row) -> Result<Self, CreditsError> {
        let id = TransactionId::from_seq(row.int(0)?);
        let created_at = Timestamp::from_millis(row.int(13)?);
        let resource = || -> Result<Resource, CreditsError> {
            Ok(Resource::stored(
                row.opt_text(9)?.map(str::to_owned),
                row.opt_text(10)?.map(str::to_owned),
            ))
        };
        Ok(match row.text(1)? {
            "purchase" => Transaction::Purchase {
                id,
                source: match row.text(5)? {
                    "auto_recharge" => PurchaseSource::AutoRecharge,
                    _ => PurchaseSource::Manual,
                },
                pack: row.text(6)?.to_owned(),
                tokens: row.tokens(2)?,
                amount_eur: Eur::from_cents(row.int(7)?),
                created_at,
            },
            "deduction" => Transaction::Deduction {
                id,
                operation: row.text(8)?.to_owned(),
                tokens: row.tokens(2)?,
                plan_tokens: row.tokens(3)?,
                credit_tokens: row.tokens(4)?,
                resource: resource()?,
                created_at,
                hold_id: row.opt_text(14)?.map(str::to_owned),
            },
            "refund" => Transaction::Refund {
                id,
                refund_of: TransactionId::from_seq(row.int(11)?),
                tokens: row.tokens(2)?,
                plan_tokens: row.tokens(3)?,
                credit_tokens: row.tokens(4)?,
                reason: row.opt_text(12)?.map(str::to_owned),
                operation: row.text(8)?.to_owned(),
                resource: resource()?,
                created_at,
            },
            other => {
                return Err(CreditsError::Internal(format!(
                    "unknown ledger kind {other:?}"
                )));
            }
        })
    }

    #[must_use]
    pub fn id(&self) -> TransactionId {
        match self {
            Self::Purchase { id, .. } | Self::Deduction { id, .. } | Self::Refund { id, .. } => *id,
        }
    }
}
