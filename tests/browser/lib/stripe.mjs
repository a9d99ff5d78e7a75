// The Stripe side of the browser tests. scripts/browser-test.sh serves the app a second
// time with payment_provider=stripe ($STRIPE_DASHBOARD_URL) against fake-stripe
// ($FAKE_STRIPE_URL), which sends its signed webhooks to that app. In the browser,
// Stripe's origins are routed to stand-ins: https://js.stripe.com to lib/stripe-js
// (Stripe.js and its frames), https://api.stripe.com to fake-stripe.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, SERVICE_TOKEN } from './api.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** The app that pays through Stripe, and the Stripe it talks to; null when not started. */
export const STRIPE_APP_URL = process.env.STRIPE_DASHBOARD_URL?.replace(/\/$/, '') ?? null;
export const FAKE_STRIPE_URL = process.env.FAKE_STRIPE_URL?.replace(/\/$/, '') ?? null;

/** The files Stripe.js is made of, by path on https://js.stripe.com. */
const STRIPE_JS = {
  '/v3': ['v3.js', 'text/javascript'],
  '/v3/frame.html': ['frame.html', 'text/html'],
  '/v3/frame.js': ['frame.js', 'text/javascript'],
  '/v3/frame.css': ['frame.css', 'text/css'],
};

/**
 * Routes Stripe's origins in this browser context to the stand-ins. Registered after
 * openPage()'s guard, these routes win over it; any other outside request still fails
 * the test.
 */
export async function routeStripe(context) {
  await context.route('https://js.stripe.com/**', (route) => {
    const file = STRIPE_JS[new URL(route.request().url()).pathname];
    if (!file) return route.fulfill({ status: 404, body: 'not part of the Stripe.js stand-in' });
    return route.fulfill({ path: path.join(HERE, 'stripe-js', file[0]), contentType: file[1] });
  });
  await context.route('https://api.stripe.com/**', async (route) => {
    const url = new URL(route.request().url());
    const response = await route.fetch({ url: `${FAKE_STRIPE_URL}${url.pathname}${url.search}` });
    // Stripe answers its frames' cross-origin calls with CORS headers; fake-stripe has none.
    await route.fulfill({
      response,
      headers: { ...response.headers(), 'access-control-allow-origin': 'https://js.stripe.com' },
    });
  });
}

/** A pro account on the Stripe app; answers its key. */
export async function stripeAccount(id) {
  const body = { account_id: id, plan: 'pro' };
  const created = await expect(201, 'POST', '/api/admin/accounts', { base: STRIPE_APP_URL, token: SERVICE_TOKEN, body });
  return created.api_key;
}

/** An account key's reads on the Stripe app. */
export const stripeReads = (key) => ({
  credits: (query = '') => expect(200, 'GET', `/api/billing/credits${query}`, { base: STRIPE_APP_URL, token: key }),
  paymentMethod: () => expect(200, 'GET', '/api/billing/payment-method', { base: STRIPE_APP_URL, token: key }),
});
