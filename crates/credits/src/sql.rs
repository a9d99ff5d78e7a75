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
