// Stripe.js, loaded only when the account pays through Stripe. Stripe requires it to
// come from https://js.stripe.com (never bundled or self-hosted, so it can follow
// Stripe's fraud checks), which is the one outside origin the page's policy allows,
// for scripts and frames only. Card numbers are typed into Stripe's frames and go
// to Stripe: this page never sees them.

import { h } from './dom.js';

const STRIPE_JS = 'https://js.stripe.com/v3';

let loading = null;
const instances = new Map();

/** `window.Stripe`, adding Stripe.js as a <script src> the first time (the policy forbids inline script). */
function loadStripeJs() {
  if (window.Stripe) return Promise.resolve(window.Stripe);
  loading ??= new Promise((resolve, reject) => {
    const script = h('script', { src: STRIPE_JS });
    const fail = () => {
      // Gone, so that the next attempt adds it again.
      script.remove();
      loading = null;
      reject(new Error('Stripe, our payment provider, could not be reached. Check your connection and reload the page.'));
    };
    script.addEventListener('load', () => (window.Stripe ? resolve(window.Stripe) : fail()));
    script.addEventListener('error', fail);
    document.head.append(script);
  });
  return loading;
}

/** The Stripe object for a publishable key: one per key, as Stripe asks. */
export async function stripeFor(publishableKey) {
  const Stripe = await loadStripeJs();
  if (!instances.has(publishableKey)) instances.set(publishableKey, Stripe(publishableKey));
  return instances.get(publishableKey);
}
