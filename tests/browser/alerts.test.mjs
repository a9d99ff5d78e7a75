// The alerts the person paying must see, each from the account summary, each with
// the action that resolves it: out of tokens, credits low, the last auto-recharge
// declined, auto-recharge switched off after declines, the monthly limit reached.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useBrowser, openPage, signIn } from './lib/browser.mjs';
import { account, service } from './lib/api.mjs';

const shared = useBrowser();
let n = 0;
const fresh = (what) => `${what}-${Date.now()}-${(n += 1)}`;

/** A paid account with a card; answers [id, key]. */
async function payingAccount(what, method = 'pm_card_visa') {
  const id = fresh(what);
  const { api_key: key } = await service.createAccount(id, 'pro');
  await account(key).savePaymentMethod(method);
  return [id, key];
}

/** Signs in and answers the one alert shown (and the page). */
async function soleAlert(key) {
  const { page, done } = await openPage(shared.browser);
  await signIn(page, key);
  const alerts = page.locator('#alerts > li');
  await alerts.first().waitFor();
  assert.equal(await alerts.count(), 1, await page.locator('#alerts').innerText());
  return { page, done, alert: alerts.first() };
}

/** Clicking the alert's action opens Credits with the keyboard on `target`. */
async function actionLeadsTo(page, alert, label, target) {
  await alert.getByRole('link', { name: label }).click();
  await page.locator('#view-credits:not([hidden])').waitFor();
  await page.waitForFunction((id) => document.activeElement?.id === id, target);
}

test('out of tokens: say so, and lead to the packs', async () => {
  const id = fresh('empty');
  const { api_key: key } = await service.createAccount(id, 'pro');
  await service.deduct({ account_id: id, tokens: 2_000_000, operation: 'chat' });
  const { page, done, alert } = await soleAlert(key);
  assert.equal(await alert.getAttribute('data-alert'), 'depleted');
  assert.match(await alert.innerText(), /no tokens left/);
  await actionLeadsTo(page, alert, 'Buy credits', 'packs-title');
  await done();
});

test('credits below the threshold: low, and lead to the packs', async () => {
  const [id, key] = await payingAccount('low');
  await account(key).buy('starter');
  await account(key).saveAutoRecharge({ enabled: false, pack: 'starter', threshold_tokens: 900_000 });
  await service.deduct({ account_id: id, tokens: 2_000_000 + 200_000, operation: 'chat' });
  const { page, done, alert } = await soleAlert(key);
  assert.equal(await alert.getAttribute('data-alert'), 'credits-low');
  assert.match(await alert.innerText(), /800,000 tokens, below your threshold of 900,000/);
  await actionLeadsTo(page, alert, 'Buy credits', 'packs-title');
  await done();
});

test('a declined auto-recharge: its message, and lead to the payment method', async () => {
  const [id, key] = await payingAccount('declined', 'pm_card_chargeDeclined');
  await account(key).saveAutoRecharge({ enabled: true, pack: 'starter', threshold_tokens: 500_000 });
  // Credits (0) are below the threshold: the deduction sets off a recharge, declined.
  await service.deduct({ account_id: id, tokens: 1_000_000, operation: 'chat' });
  const { page, done, alert } = await soleAlert(key);
  assert.equal(await alert.getAttribute('data-alert'), 'recharge-declined');
  assert.match(await alert.innerText(), /Your last auto-recharge was declined: Your card was declined/);
  await actionLeadsTo(page, alert, 'Update your payment method', 'pm-input');
  await done();
});

test('auto-recharge off after three declines: why, and lead to the payment method', async () => {
  const [id, key] = await payingAccount('disabled', 'pm_card_chargeDeclined');
  await account(key).saveAutoRecharge({ enabled: true, pack: 'starter', threshold_tokens: 500_000 });
  await service.deduct({ account_id: id, tokens: 1_000_000, operation: 'chat' }); // decline 1
  // Each decline waits a day; the test clock moves the next deductions past it
  // (each evaluates only its own account).
  for (const days of [1, 2]) {
    const at = new Date(Date.now() + days * 25 * 3_600_000).toISOString();
    await service.deduct({ account_id: id, tokens: 1, operation: 'chat' }, at);
  }
  const { page, done, alert } = await soleAlert(key);
  assert.equal(await alert.getAttribute('data-alert'), 'recharge-disabled');
  assert.match(await alert.innerText(), /Auto-recharge was turned off/);
  await actionLeadsTo(page, alert, 'Update your payment method', 'pm-input');
  await done();
});

test("this month's limit reached: say so, and lead to the limit", async () => {
  const [id, key] = await payingAccount('limit');
  await account(key).saveAutoRecharge({
    enabled: true, pack: 'starter', threshold_tokens: 500_000, monthly_limit_eur: '5.00',
  });
  await service.deduct({ account_id: id, tokens: 2_000_000, operation: 'chat' }); // buys one pack
  await service.deduct({ account_id: id, tokens: 600_000, operation: 'chat' }); // below again
  const { page, done, alert } = await soleAlert(key);
  assert.equal(await alert.getAttribute('data-alert'), 'limit-reached');
  assert.match(await alert.innerText(), /limit of €5.00 is reached \(€5.00 spent\)/);
  await actionLeadsTo(page, alert, 'Raise the monthly limit', 'ar-limit');
  await done();
});
