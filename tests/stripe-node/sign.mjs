// Prints, as JSON, webhook deliveries whose Stripe-Signature headers are made by
// Stripe's official library (stripe-node's generateTestHeaderString), and whether
// Stripe's own verification accepts each at `now`. The Rust test
// crates/credits-stripe/tests/stripe_library.rs checks that our verification agrees.
import Stripe from 'stripe';

const stripe = new Stripe('sk_test_not_used');
const secret = 'whsec_library_cross_check';
const now = 1_764_072_000;
const payload = JSON.stringify({
  id: 'evt_library_1',
  object: 'event',
  type: 'payment_intent.succeeded',
  data: { object: { id: 'pi_1', object: 'payment_intent', status: 'succeeded',
                    metadata: { purchase_id: 'pu_1', account_id: 'acme' } } },
}, null, 2);
const header = (options) => stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp: now, ...options });

const cases = [
  { name: 'signed by the library', payload, header: header({}) },
  { name: 'the body changed after signing', payload: payload.replace('succeeded', 'canceled'), header: header({}) },
  { name: 'another secret', payload, header: header({ secret: 'whsec_someone_else' }) },
  { name: '299 s old', payload, header: header({ timestamp: now - 299 }) },
  { name: '301 s old', payload, header: header({ timestamp: now - 301 }) },
  { name: '301 s ahead', payload, header: header({ timestamp: now + 301 }) },
  { name: 'a scheme other than v1', payload, header: header({ scheme: 'v0' }) },
];
for (const c of cases) {
  // Stripe's verification, for the record: it checks only the past (tolerance 300 s).
  try {
    stripe.webhooks.signature.verifyHeader(c.payload, c.header, secret, 300, undefined, now * 1000);
    c.stripe_accepts = true;
  } catch {
    c.stripe_accepts = false;
  }
}
console.log(JSON.stringify({ secret, now, cases }));
