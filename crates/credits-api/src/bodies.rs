//! Request bodies as API.md states them, and their conversion into domain types:
//! validation happens here, once; what passes cannot hold bad values.

use credits::{
    AccountId, CreditsError, DeductionRequest, Eur, EventId, EventQuery, HistoryQuery,
    HoldLifetime, HoldRequest, Operation, Pack, PaymentMethodId, Plan, Reason, RechargeSettings,
    RefundRequest, Resource, SettledTokens, Timestamp, TokenAmount, TransactionId, TransactionKind,
    UsageGrouping, UsageQuery,
};
use serde::Deserialize;

use crate::error::ApiError;

/// `POST /api/admin/accounts`.
#[derive(Deserialize)]
pub(crate) struct NewAccount {
    account_id: String,
    plan: Option<String>,
    stripe_customer_id: Option<String>,
}

/// A new account as asked for.
pub(crate) struct AccountRequest {
    pub account: AccountId,
    pub plan: Plan,
    /// An existing Stripe customer (`cus_...`) to charge for it.
    pub stripe_customer: Option<String>,
}

impl NewAccount {
    pub(crate) fn validate(self) -> Result<AccountRequest, CreditsError> {
        let plan = self.plan.as_deref().map_or(Ok(Plan::Free), Plan::parse)?;
        let account = AccountId::parse(&self.account_id)?;
        if let Some(customer) = &self.stripe_customer_id {
            let valid = customer.strip_prefix("cus_").is_some_and(|rest| {
                (1..=100).contains(&rest.len())
                    && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            });
            if !valid {
                return Err(CreditsError::Invalid(
                    "stripe_customer_id must be cus_ followed by 1-100 letters, digits or _".into(),
                ));
            }
        }
        Ok(AccountRequest {
            account,
            plan,
            stripe_customer: self.stripe_customer_id,
        })
    }
}

/// `PUT /api/admin/accounts/{id}/plan`.
#[derive(Deserialize)]
pub(crate) struct PlanChange {
    plan: String,
}

impl PlanChange {
    pub(crate) fn validate(self) -> Result<Plan, CreditsError> {
        Plan::parse(&self.plan)
    }
}

#[derive(Deserialize)]
struct ResourceBody {
    project: Option<String>,
    session: Option<String>,
}

/// `POST /api/billing/credits/deductions`.
#[derive(Deserialize)]
pub(crate) struct Deduction {
    account_id: String,
    tokens: u64,
    operation: String,
    resource: Option<ResourceBody>,
}

impl Deduction {
    pub(crate) fn validate(self) -> Result<DeductionRequest, CreditsError> {
        let resource = match &self.resource {
            Some(r) => Resource::parse(r.project.as_deref(), r.session.as_deref())?,
            None => Resource::default(),
        };
        Ok(DeductionRequest::new(
            AccountId::parse(&self.account_id)?,
            TokenAmount::new(self.tokens)?,
            Operation::parse(&self.operation)?,
            resource,
        ))
    }
}

/// `POST /api/billing/credits/holds`.
#[derive(Deserialize)]
pub(crate) struct NewHold {
    account_id: String,
    tokens: u64,
    operation: String,
    resource: Option<ResourceBody>,
    expires_in_seconds: Option<u64>,
}

impl NewHold {
    pub(crate) fn validate(self) -> Result<HoldRequest, CreditsError> {
        let resource = match &self.resource {
            Some(r) => Resource::parse(r.project.as_deref(), r.session.as_deref())?,
            None => Resource::default(),
        };
        Ok(HoldRequest::new(
            AccountId::parse(&self.account_id)?,
            TokenAmount::new(self.tokens)?,
            Operation::parse(&self.operation)?,
            resource,
            HoldLifetime::new(self.expires_in_seconds)?,
        ))
    }
}

/// `POST /api/billing/credits/holds/{id}/settle`.
#[derive(Deserialize)]
pub(crate) struct Settle {
    account_id: String,
    tokens: u64,
}

impl Settle {
    pub(crate) fn validate(self) -> Result<(AccountId, SettledTokens), CreditsError> {
        Ok((
            AccountId::parse(&self.account_id)?,
            SettledTokens::new(self.tokens)?,
        ))
    }
}

/// `POST /api/billing/credits/holds/{id}/void`, and the query of `GET .../holds/{id}`.
#[derive(Deserialize)]
pub(crate) struct HoldOwner {
    account_id: String,
}

impl HoldOwner {
    pub(crate) fn validate(self) -> Result<AccountId, CreditsError> {
        AccountId::parse(&self.account_id)
    }

    pub(crate) fn from_query(pairs: &[(String, String)]) -> Result<AccountId, ApiError> {
        let account = pairs
            .iter()
            .find(|(name, _)| name == "account_id")
            .map(|(_, value)| value.as_str())
            .ok_or_else(|| ApiError::invalid("account_id is required"))?;
        Ok(AccountId::parse(account)?)
    }
}

/// `POST /api/billing/credits/refunds`.
#[derive(Deserialize)]
pub(crate) struct Refund {
    account_id: String,
    deduction_id: String,
    tokens: Option<u64>,
    reason: Option<String>,
}

impl Refund {
    pub(crate) fn validate(self) -> Result<RefundRequest, CreditsError> {
        Ok(RefundRequest::new(
            AccountId::parse(&self.account_id)?,
            TransactionId::parse(&self.deduction_id),
            self.tokens.map(TokenAmount::new).transpose()?,
            self.reason.as_deref().map(Reason::parse).transpose()?,
        ))
    }
}

/// `POST /api/billing/credits/purchases`.
#[derive(Deserialize)]
pub(crate) struct Purchase {
    pack: String,
}

impl Purchase {
    pub(crate) fn validate(self) -> Result<Pack, CreditsError> {
        Pack::parse(&self.pack)
    }
}

/// `PUT /api/billing/payment-method`.
#[derive(Deserialize)]
pub(crate) struct PaymentMethod {
    payment_method: String,
}

impl PaymentMethod {
    pub(crate) fn validate(self) -> Result<PaymentMethodId, CreditsError> {
        PaymentMethodId::parse(&self.payment_method)
    }
}

/// `PUT /api/billing/credits/auto-recharge`.
#[derive(Deserialize)]
pub(crate) struct AutoRecharge {
    enabled: bool,
    pack: Option<String>,
    threshold_tokens: Option<u64>,
    monthly_limit_eur: Option<String>,
}

impl AutoRecharge {
    pub(crate) fn validate(self) -> Result<RechargeSettings, CreditsError> {
        let threshold = self
            .threshold_tokens
            .map(|t| {
                TokenAmount::new(t)
                    .map_err(|_| CreditsError::invalid("threshold_tokens must be at least 1"))
            })
            .transpose()?;
        RechargeSettings::new(
            self.enabled,
            self.pack.as_deref().map(Pack::parse).transpose()?,
            threshold,
            self.monthly_limit_eur
                .as_deref()
                .map(|l| {
                    Eur::parse(l).map_err(|_| {
                        CreditsError::invalid("monthly_limit_eur must be a string like \"50.00\"")
                    })
                })
                .transpose()?,
        )
    }
}

/// `GET /api/billing/credits?limit=&cursor=&type=&project=`.
pub(crate) struct HistoryParams;

impl HistoryParams {
    pub(crate) fn from_query(pairs: &[(String, String)]) -> Result<HistoryQuery, ApiError> {
        let (mut limit, mut cursor, mut kind, mut project) = (None, None, None, None);
        for (name, value) in pairs {
            match name.as_str() {
                "limit" => {
                    limit = Some(value.parse().map_err(|_| {
                        ApiError::invalid("limit must be an integer from 1 to 200")
                    })?);
                }
                "cursor" => cursor = Some(HistoryQuery::parse_cursor(value)?),
                "type" => kind = Some(TransactionKind::parse(value)?),
                "project" => project = Some(value.clone()),
                _ => {}
            }
        }
        Ok(HistoryQuery::new(limit, cursor, kind, project)?)
    }
}

/// `GET /api/billing/credits/usage?from=&to=&group_by=`.
pub(crate) struct UsageParams;

impl UsageParams {
    pub(crate) fn from_query(pairs: &[(String, String)]) -> Result<UsageQuery, ApiError> {
        let (mut from, mut to, mut group_by) = (None, None, UsageGrouping::Day);
        for (name, value) in pairs {
            match name.as_str() {
                "from" => from = Some(Timestamp::parse_time_or_date(value)?),
                "to" => to = Some(Timestamp::parse_time_or_date(value)?),
                "group_by" => group_by = UsageGrouping::parse(value)?,
                _ => {}
            }
        }
        Ok(UsageQuery::new(from, to, group_by)?)
    }
}

/// `GET /api/admin/events?after=&limit=`.
pub(crate) struct EventsParams;

impl EventsParams {
    pub(crate) fn from_query(pairs: &[(String, String)]) -> Result<EventQuery, ApiError> {
        let (mut after, mut limit) = (None, None);
        for (name, value) in pairs {
            match name.as_str() {
                "after" => {
                    after = Some(EventId::parse(value).ok_or_else(|| {
                        ApiError::invalid("after must be an event id this service issued")
                    })?);
                }
                "limit" => {
                    limit = Some(value.parse().map_err(|_| {
                        ApiError::invalid("limit must be an integer from 1 to 500")
                    })?);
                }
                _ => {}
            }
        }
        Ok(EventQuery::new(after, limit)?)
    }
}
