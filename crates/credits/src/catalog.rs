//! The credit packs and plans on sale (API.md "Catalog").

use rust_decimal::Decimal;
use serde::Serialize;

use crate::error::CreditsError;
use crate::money::Eur;

/// A credit pack: a fixed number of tokens for a fixed price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pack {
    Starter,
    Standard,
    Plus,
    Pro,
}

impl Pack {
    pub const ALL: [Pack; 4] = [Pack::Starter, Pack::Standard, Pack::Plus, Pack::Pro];

    /// Looks a pack up by its id (`"standard"`).
    pub fn parse(id: &str) -> Result<Self, CreditsError> {
        Self::ALL.into_iter().find(|p| p.id() == id).ok_or_else(|| {
            CreditsError::invalid(format!(
                "unknown pack {id:?}; packs: starter, standard, plus, pro"
            ))
        })
    }

    #[must_use]
    pub fn id(self) -> &'static str {
        match self {
            Pack::Starter => "starter",
            Pack::Standard => "standard",
            Pack::Plus => "plus",
            Pack::Pro => "pro",
        }
    }

    #[must_use]
    pub fn tokens(self) -> u64 {
        match self {
            Pack::Starter => 1_000_000,
            Pack::Standard => 2_500_000,
            Pack::Plus => 7_000_000,
            Pack::Pro => 15_000_000,
        }
    }

    #[must_use]
    pub fn price(self) -> Eur {
        Eur::from_cents(match self {
            Pack::Starter => 500,
            Pack::Standard => 1000,
            Pack::Plus => 2500,
            Pack::Pro => 5000,
        })
    }

    /// Price per million tokens, rounded half-up to the cent.
    #[must_use]
    pub fn price_per_million(self) -> Eur {
        let millions = Decimal::from(self.tokens()) / Decimal::from(1_000_000);
        self.price().per(millions).expect("packs hold tokens")
    }

    /// The pack as the catalog route shows it.
    #[must_use]
    pub fn listing(self) -> PackListing {
        PackListing {
            id: self.id(),
            tokens: self.tokens(),
            price_eur: self.price(),
            price_per_million_eur: self.price_per_million(),
        }
    }
}

/// One entry of `GET /api/billing/credits/packs`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PackListing {
    pub id: &'static str,
    pub tokens: u64,
    pub price_eur: Eur,
    pub price_per_million_eur: Eur,
}

/// A subscription plan with a monthly token allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Plan {
    Free,
    Pro,
    Team,
}

impl Plan {
    pub const ALL: [Plan; 3] = [Plan::Free, Plan::Pro, Plan::Team];

    /// Looks a plan up by name (`"pro"`).
    pub fn parse(name: &str) -> Result<Self, CreditsError> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| {
                CreditsError::invalid(format!("unknown plan {name:?}; plans: free, pro, team"))
            })
    }

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Pro => "pro",
            Plan::Team => "team",
        }
    }

    #[must_use]
    pub fn monthly_tokens(self) -> u64 {
        match self {
            Plan::Free => 100_000,
            Plan::Pro => 2_000_000,
            Plan::Team => 10_000_000,
        }
    }

    /// Paid plans may buy credits and use auto-recharge.
    #[must_use]
    pub fn may_buy_credits(self) -> bool {
        self != Plan::Free
    }

    /// The plan as the catalog route shows it, at the configured prices.
    #[must_use]
    pub fn listing(self, prices: &PlanPrices) -> PlanListing {
        PlanListing {
            id: self.name(),
            monthly_tokens: self.monthly_tokens(),
            price_eur: prices.monthly(self),
        }
    }
}

/// What the paid plans cost a month. The operator sets them (the service's
/// configuration hands them over as values); the free plan costs nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanPrices {
    pub pro: Eur,
    pub team: Eur,
}

impl PlanPrices {
    /// The monthly price of `plan`.
    #[must_use]
    pub fn monthly(&self, plan: Plan) -> Eur {
        match plan {
            Plan::Free => Eur::ZERO,
            Plan::Pro => self.pro,
            Plan::Team => self.team,
        }
    }
}

/// The prices when none are configured: Pro €20.00, Team €80.00 a month.
impl Default for PlanPrices {
    fn default() -> Self {
        Self {
            pro: Eur::from_cents(2000),
            team: Eur::from_cents(8000),
        }
    }
}

/// One plan of `GET /api/billing/credits/packs` (`"plans"`, beside `"packs"`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlanListing {
    pub id: &'static str,
    pub monthly_tokens: u64,
    pub price_eur: Eur,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema refuses an allocation other than the plan's; it names them too.
    #[test]
    fn the_schema_knows_each_plans_allocation() {
        let schema = crate::schema::MIGRATIONS
            .iter()
            .flat_map(|m| m.statements.iter())
            .find(|s| s.contains("accounts_follow_ledger BEFORE UPDATE"))
            .expect("the accounts guard");
        for plan in [Plan::Free, Plan::Pro, Plan::Team] {
            let case = format!("WHEN '{}' THEN {}", plan.name(), plan.monthly_tokens());
            assert!(schema.contains(&case), "{case}");
        }
    }

    #[test]
    fn packs_match_the_catalog() {
        let rows: Vec<_> = Pack::ALL
            .iter()
            .map(|p| {
                (
                    p.id(),
                    p.tokens(),
                    p.price().to_string(),
                    p.price_per_million().to_string(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("starter", 1_000_000, "5.00".into(), "5.00".into()),
                ("standard", 2_500_000, "10.00".into(), "4.00".into()),
                ("plus", 7_000_000, "25.00".into(), "3.57".into()),
                ("pro", 15_000_000, "50.00".into(), "3.33".into()),
            ]
        );
    }

    #[test]
    fn plans_list_their_allocation_and_the_configured_price() {
        let rows: Vec<_> = Plan::ALL
            .iter()
            .map(|p| {
                let l = p.listing(&PlanPrices::default());
                (l.id, l.monthly_tokens, l.price_eur.to_string())
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("free", 100_000, "0.00".into()),
                ("pro", 2_000_000, "20.00".into()),
                ("team", 10_000_000, "80.00".into()),
            ]
        );
        let prices = PlanPrices {
            pro: Eur::parse("19.99").unwrap(),
            team: Eur::parse("0.00").unwrap(),
        };
        assert_eq!(Plan::Pro.listing(&prices).price_eur.to_string(), "19.99");
        assert_eq!(Plan::Team.listing(&prices).price_eur, Eur::ZERO);
        assert_eq!(Plan::Free.listing(&prices).price_eur, Eur::ZERO);
    }

    #[test]
    fn unknown_names_are_invalid_requests() {
        assert!(matches!(Pack::parse("mega"), Err(CreditsError::Invalid(_))));
        assert!(matches!(Plan::parse("Pro"), Err(CreditsError::Invalid(_))));
        assert_eq!(Plan::parse("team").unwrap(), Plan::Team);
        assert!(!Plan::Free.may_buy_credits());
    }
}
