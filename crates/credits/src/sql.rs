//! SQL fragments several statements share.

/// The plan allocation left in month `?2` of the account in `accounts`: all of it
/// in a month without plan use yet, none in a month before the newest with plan
/// use (it is over; only a clock moved back could ask).
macro_rules! plan_left {
    () => {
        "CASE WHEN plan_period IS NULL OR plan_period < ?2 THEN monthly_tokens
              WHEN plan_period = ?2 THEN MAX(0, monthly_tokens - plan_used)
              ELSE 0 END"
    };
}

/// What the live holds of account `$account` reserve at time `$now`: `plan_held`,
/// the plan tokens of month `?2` (a hold of an ended month reserves nothing of
/// this one), and `credit_held`. A hold stops reserving at `expires_at` whether or
/// not anything has marked it expired.
macro_rules! held {
    ($account:literal, $now:literal) => {
        concat!(
            "SELECT COALESCE(SUM(CASE WHEN period = ?2 THEN plan_tokens ELSE 0 END), 0) AS plan_held,
                    COALESCE(SUM(credit_tokens), 0) AS credit_held
             FROM holds WHERE account_id = ",
            $account,
            " AND status = 'held' AND expires_at > ",
            $now
        )
    };
}

/// The credit tokens live holds of account `$account` reserve at time `$now`.
macro_rules! credit_held {
    ($account:literal, $now:literal) => {
        concat!(
            "(SELECT COALESCE(SUM(credit_tokens), 0) FROM holds WHERE account_id = ",
            $account,
            " AND status = 'held' AND expires_at > ",
            $now,
            ")"
        )
    };
}
