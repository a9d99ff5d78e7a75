//! Prepaid token credits: the business rules, with no Spin in sight.
