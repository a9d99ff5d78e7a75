// A purchase the cardholder's bank wants confirmed (402 authentication_required, with
// Stripe): Stripe.js runs the bank's check (3-D Secure) on the purchase's
// PaymentIntent; then the purchase request is repeated with the same Idempotency-Key,
// which cannot buy twice, until the API has heard from Stripe (its webhook): granted
// (201) or declined (402 payment_failed).

/** How often, and how many times, the purchase is asked for again: about half a minute. */
const INTERVAL_MS = 1000;
const TRIES = 30;

/**
 * Runs the bank's check for the PaymentIntent with this client secret, with the saved
 * card. Answers null once the bank confirmed, else what went wrong, in Stripe's words.
 */
export async function confirmWithBank(stripe, clientSecret, paymentMethod) {
  // confirmCardPayment rather than handleNextAction: an off-session charge refused for
  // authentication leaves its PaymentIntent `requires_payment_method`, and Stripe's way
  // back is to confirm it again on-session with the card, which shows the bank's check.
  const data = paymentMethod ? { payment_method: paymentMethod } : undefined;
  const { error } = await stripe.confirmCardPayment(clientSecret, data);
  return error ? (error.message ?? 'The bank did not confirm the payment.') : null;
}

/**
 * Repeats the purchase (`buy`, which sends its Idempotency-Key) until its outcome is
 * known. Answers `{result}` (the 201 answer), `{error}` (a refusal, such as a decline),
 * or `{waiting: true}` when there is still no word.
 */
export async function waitForOutcome(buy, { tries = TRIES, interval = INTERVAL_MS } = {}) {
  for (let i = 0; i < tries; i += 1) {
    await new Promise((resolve) => { setTimeout(resolve, interval); });
    try {
      const result = await buy();
      if (result.purchase?.status !== 'pending') return { result };
    } catch (error) {
      // Still waiting for Stripe's word, or this answer was lost: ask again.
      const unknown = error.code === 'authentication_required' || error.code === 'network_error' || error.status >= 500;
      if (!unknown) return { error };
    }
  }
  return { waiting: true };
}
