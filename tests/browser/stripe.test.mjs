// Paying through Stripe: the dashboard of the app served with payment_provider=stripe,
// Stripe.js loaded from https://js.stripe.com (a stand-in, lib/stripe-js), and
// fake-stripe in Stripe's place, sending its signed webhooks to the app.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useBrowser, openPage, signIn } from './lib/browser.mjs';
import { audit } from './lib/axe.mjs';
import { STRIPE_APP_URL, routeStripe, stripeAccount, stripeReads } from './lib/stripe.mjs';

const shared = useBrowser();
const skip = STRIPE_APP_URL ? false : 'needs the Stripe app of scripts/browser-test.sh ($STRIPE_DASHBOARD_URL)';
let n = 0;
const fresh = (what) => `${what}-${Date.now()}-${(n += 1)}`;
const CARD_FRAME = '#pm-element iframe[title="Secure payment input frame"]';

/** A page on the Stripe app, with Stripe's origins routed to the stand-ins; Stripe requests are listed. */
async function stripePage() {
  const session = await openPage(shared.browser, { app: STRIPE_APP_URL });
  await routeStripe(session.context);
  session.stripeRequests = [];
  session.context.on('request', (req) => {
    if (/^https:\/\/(js|api)\.stripe\.com\//.test(req.url())) session.stripeRequests.push(`${req.method()} ${req.url()}`);
  });
  return session;
}

/** Types a card number into Stripe's form and saves it. */
async function saveCard(page, number) {
  await page.frameLocator(CARD_FRAME).getByLabel('Card number').fill(number);
  const save = page.getByRole('button', { name: 'Save card' });
  await page.waitForFunction(() => !document.getElementById('pm-card-save').disabled);
  await save.click();
}

/** What #pm-current shows sighted people (without the screen-reader words) and says to screen readers (without the dots). */
async function shownCard(page) {
  return page.locator('#pm-current').evaluate((el) => {
    const without = (selector) => {
      const copy = el.cloneNode(true);
      copy.querySelectorAll(selector).forEach((node) => node.remove());
      return copy.textContent;
    };
    return { seen: without('.sr-only'), heard: without('[aria-hidden="true"]') };
  });
}

test('a card is saved with Stripe and shown by brand, last 4 digits and expiry', { skip }, async (t) => {
  const key = await stripeAccount(fresh('stripe-card'));
  const { page, stripeRequests, done } = await stripePage();
  const puts = [];
  page.on('request', (req) => {
    if (req.method() === 'PUT' && req.url().endsWith('/api/billing/payment-method')) puts.push(JSON.parse(req.postData()));
  });
  await signIn(page, key, '#/credits', STRIPE_APP_URL);

  // Stripe's form, from Stripe.js added as a <script src>; no id field, no test mode.
  await page.locator(CARD_FRAME).waitFor();
  assert.equal(await page.locator('script[src="https://js.stripe.com/v3"]').count(), 1);
  assert.ok(stripeRequests.includes('GET https://js.stripe.com/v3'), stripeRequests.join('\n'));
  assert.equal(await page.locator('#pm-form').isVisible(), false);
  assert.equal(await page.locator('#pm-test-mode').isVisible(), false);
  assert.equal(await page.locator('#pm-current').textContent(), 'none saved');
  await audit(t, page, 'Credits with Stripe\'s card form');

  // A mistyped number is Stripe's to refuse: nothing is saved.
  await saveCard(page, '4242 4242 4242 4241');
  await page.locator('#pm-message.error').filter({ hasText: 'Your card was not saved: Your card number is invalid.' }).waitFor();
  assert.deepEqual(puts, []);

  await saveCard(page, '4242 4242 4242 4242');
  await page.locator('#pm-message.ok')
    .filter({ hasText: 'Saved. Purchases and auto-recharge will use your Visa card ending in 4242.' }).waitFor();
  assert.deepEqual(puts, [{ payment_method: 'pm_card_visa' }], 'the payment method of the confirmed SetupIntent');
  assert.deepEqual(await shownCard(page), {
    seen: 'Visa •••• 4242, expires 12/2030',
    heard: 'Visa ending in 4242, expires 12/2030',
  });
  const saved = await stripeReads(key).paymentMethod();
  assert.equal(saved.payment_method, 'pm_card_visa');
  assert.deepEqual(saved.card, { brand: 'visa', last4: '4242', exp_month: 12, exp_year: 2030 });
  // A SetupIntent saves one card: a fresh form is ready for the next.
  await page.waitForFunction(() => !document.getElementById('pm-card-save').disabled);
  await audit(t, page, 'Credits with a saved card');

  // The account summary shows it after a reload, and the purchase dialog names it.
  await page.reload();
  await page.locator('body[data-ready="true"]').waitFor();
  assert.equal((await shownCard(page)).seen, 'Visa •••• 4242, expires 12/2030');
  await page.getByRole('button', { name: /Buy the Starter pack/ }).click();
  assert.match(await page.getByRole('dialog').textContent(), /charged to your Visa card ending in 4242\./);
  await page.keyboard.press('Escape');
  await done();
});

test('a purchase the bank must confirm completes after its check, and the pack is granted once', { skip }, async () => {
  const key = await stripeAccount(fresh('stripe-3ds'));
  const { page, context, stripeRequests, done } = await stripePage();
  await signIn(page, key, '#/credits', STRIPE_APP_URL);
  await saveCard(page, '4000 0027 6000 3184');
  await page.locator('#pm-message.ok').waitFor();
  assert.equal((await shownCard(page)).seen, 'Visa •••• 3184, expires 12/2030');

  const keys = [];
  const answers = [];
  page.on('request', (req) => {
    if (req.method() === 'POST' && req.url().endsWith('/api/billing/credits/purchases')) keys.push(req.headers()['idempotency-key']);
  });
  page.on('response', (res) => {
    if (res.request().method() === 'POST' && res.url().endsWith('/api/billing/credits/purchases')) answers.push(res.status());
  });
  // Stripe's webhook may come after the page asks again: the first answer (402, still
  // waiting) is given once more after the check, and the page must keep waiting.
  let waiting = null;
  let repeated = false;
  await context.route('**/api/billing/credits/purchases', async (route) => {
    if (waiting && !repeated) {
      repeated = true;
      return route.fulfill({ status: 402, contentType: 'application/json', body: waiting });
    }
    const response = await route.fetch();
    waiting ??= await response.text();
    return route.fulfill({ response });
  });
  await page.getByRole('button', { name: /Buy the Standard pack/ }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Buy for €10.00' }).click();

  // The purchase waits for the cardholder: the dialog gives way to the bank's check.
  await page.locator('#purchase-message').filter({ hasText: 'Your bank asks you to confirm the payment of €10.00' }).waitFor();
  assert.equal(await page.locator('#confirm-dialog').isVisible(), false);
  const challenge = page.frameLocator('iframe[title="3D Secure authentication"]');
  await challenge.getByRole('button', { name: 'Complete authentication' }).click();

  // Then the same request, with the same key, until Stripe's webhook has granted it.
  await page.locator('#purchase-message.ok')
    .filter({ hasText: 'Bought 2,500,000 tokens for €10.00. Your credit balance is now 2,500,000 tokens.' })
    .waitFor({ timeout: 45_000 });
  assert.equal(await page.locator('#credits-balance').textContent(), '2,500,000');
  assert.equal(await page.locator('iframe[title="3D Secure authentication"]').count(), 0, 'the check is gone');
  assert.equal(new Set(keys).size, 1, 'always with the same Idempotency-Key');
  assert.ok(answers.length >= 3, `asked again until granted: ${answers.join(', ')}`);
  assert.deepEqual(answers.slice(0, -1), answers.slice(0, -1).map(() => 402), answers.join(', '));
  assert.equal(answers.at(-1), 201);
  const confirmations = stripeRequests.filter((r) => /^POST https:\/\/api\.stripe\.com\/v1\/payment_intents\/\w+\/confirm$/.test(r));
  assert.equal(confirmations.length, 1, 'one check, however often the purchase is asked for');

  // Granted once, however often it was asked for; the history says so after a reload.
  const summary = await stripeReads(key).credits('?type=purchase');
  assert.equal(summary.credits.balance_tokens, 2_500_000);
  assert.equal(summary.transactions.length, 1);
  await page.reload();
  await page.locator('body[data-ready="true"]').waitFor();
  assert.equal(await page.locator('#credits-balance').textContent(), '2,500,000');
  await done();
});

test('when the cardholder fails the bank\'s check, nothing is charged and the page says so', { skip }, async () => {
  const key = await stripeAccount(fresh('stripe-3ds-fail'));
  const { page, done } = await stripePage();
  await signIn(page, key, '#/credits', STRIPE_APP_URL);
  await saveCard(page, '4000 0027 6000 3184');
  await page.locator('#pm-message.ok').waitFor();
  await page.getByRole('button', { name: /Buy the Starter pack/ }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Buy for €5.00' }).click();
  const challenge = page.frameLocator('iframe[title="3D Secure authentication"]');
  await challenge.getByRole('button', { name: 'Fail authentication' }).click();
  const msg = page.locator('#purchase-message.error');
  await msg.waitFor();
  assert.match(await msg.textContent(), /^Your bank did not confirm the payment of €5\.00, so nothing was charged and your balance is unchanged\./);
  assert.match(await msg.textContent(), /We are unable to authenticate your payment method/);
  assert.equal(await page.locator('#credits-balance').textContent(), '0');
  assert.equal((await stripeReads(key).credits()).credits.balance_tokens, 0);
  await done();
});
