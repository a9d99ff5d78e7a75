// Signing in and the Billing overview: plan, allocation, balance, total, upgrade hint.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useBrowser, openPage, signIn, accounts, screenshotPath } from './lib/browser.mjs';
import { account, service, expect as answered, BASE_URL } from './lib/api.mjs';

const shared = useBrowser();
const fmt = (n) => n.toLocaleString('en-US');

test('a wrong key is refused with a message and nothing is stored', async () => {
  const { page, done } = await openPage(shared.browser);
  await page.goto(`${BASE_URL}/`);
  await page.getByLabel('Account key').fill('not-a-real-key');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'was not accepted' }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  assert.equal(await page.locator('#app').isVisible(), false);
  await done();
});

test('signing in shows the overview, as the API reports it', async () => {
  const { acme } = await accounts();
  const api = await account(acme.key).credits('?limit=1');
  const { page, done } = await openPage(shared.browser);
  await signIn(page, acme.key);

  assert.equal(await page.locator('#account-id').textContent(), acme.id);
  assert.equal(await page.locator('#plan-name').textContent(), 'Pro');
  assert.equal(await page.locator('#plan-used').textContent(), fmt(api.plan.used_tokens));
  assert.equal(await page.locator('#plan-monthly').textContent(), '2,000,000');
  assert.equal(await page.locator('#plan-remaining').textContent(), fmt(api.plan.remaining_tokens));
  assert.equal(await page.locator('#credit-balance').textContent(), fmt(api.credits.balance_tokens));
  assert.equal(await page.locator('#available-tokens').textContent(), fmt(api.available_tokens));
  assert.match(await page.locator('#credit-balance').textContent(), /^\d{1,3}(,\d{3})+$/, 'thousands separators');
  const bar = page.locator('#plan-bar');
  assert.equal(Number(await bar.getAttribute('max')), 2_000_000);
  assert.equal(Number(await bar.evaluate((el) => el.value)), api.plan.used_tokens);
  const renews = new Date(api.plan.period_end);
  const expected = renews.toLocaleDateString('en-GB', { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' });
  assert.equal(await page.locator('#plan-renews').textContent(), expected);

  // €35 of packs this month is less than the €60 more that Team costs: no upgrade hint.
  await page.locator('#usage-day-svg').waitFor();
  assert.equal(await page.locator('#upgrade-hint').isVisible(), false);

  const shot = screenshotPath('dashboard-overview.png');
  if (shot) {
    await page.locator('#usage-day-svg').waitFor();
    // The overview, the charts and the newest transactions: the top of the page.
    await page.screenshot({ path: shot, fullPage: true, clip: { x: 0, y: 0, width: 1280, height: 1500 } });
  }
  await done();
});

test('tokens held by running AI calls show as in use now, and are not available', async () => {
  const id = `holder-${Date.now()}`;
  const { api_key: key } = await service.createAccount(id, 'free');
  const { hold } = await service.hold({ account_id: id, tokens: 30_000, operation: 'chat', expires_in_seconds: 3600 });
  const { page, done } = await openPage(shared.browser);
  await signIn(page, key);
  assert.equal(await page.locator('#held-tokens').textContent(), '30,000');
  assert.equal(await page.locator('#available-tokens').textContent(), '70,000');
  assert.equal(await page.locator('#plan-remaining').textContent(), '100,000', 'a hold is not plan use');
  await service.voidHold(hold.id, id);
  await page.reload();
  await page.locator('#held-tokens').filter({ hasText: /^0$/ }).waitFor();
  assert.equal(await page.locator('#available-tokens').textContent(), '100,000');
  await done();
});

test('the key lives in sessionStorage only: kept on reload, gone after sign out', async () => {
  const { buyer } = await accounts();
  const { page, done } = await openPage(shared.browser);
  await signIn(page, buyer.key);
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  assert.deepEqual(await page.context().cookies(), []);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('credits.accountKey')), buyer.key);

  await page.reload();
  await page.locator('body[data-ready="true"]').waitFor();
  assert.equal(await page.locator('#account-id').textContent(), buyer.id);

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Account key').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  await page.reload();
  assert.equal(await page.getByLabel('Account key').isVisible(), true);
  await done();
});

/** A pro account that bought `packs` this month. */
async function spender(packs) {
  const id = `spender-${Date.now()}-${packs.join('-')}`;
  const { api_key: key } = await service.createAccount(id, 'pro');
  await account(key).savePaymentMethod('pm_card_visa');
  for (const pack of packs) await account(key).buy(pack);
  await service.deduct({ account_id: id, tokens: 3_000_000, operation: 'chat' });
  return key;
}

test('packs costing at least what the next plan costs more suggest upgrading, in euros', async () => {
  // Pro (€50.00) + Standard (€10.00) = €60.00: Team costs €80.00 a month, €60.00 more than Pro.
  const key = await spender(['pro', 'standard']);
  const catalog = await answered(200, 'GET', '/api/billing/credits/packs', { token: key });
  assert.deepEqual(catalog.plans.map((p) => [p.id, p.price_eur]), [['free', '0.00'], ['pro', '20.00'], ['team', '80.00']]);
  const { page, done } = await openPage(shared.browser);
  await signIn(page, key);
  const hint = page.locator('#upgrade-hint');
  await hint.waitFor();
  const text = await hint.textContent();
  assert.match(text, /This month you spent €60\.00 on credit packs and used 1,000,000 tokens from credits/);
  assert.match(text, /your Pro plan \(€20\.00 a month, 2,000,000 tokens\)/);
  assert.match(text, /The Team plan costs €80\.00 a month, €60\.00 more, and includes 10,000,000 tokens a month/);
  assert.match(text, /If you consistently need credits, upgrading your plan may be more cost-effective/);
  await done();
});

test('the hint compares with the prices the catalog reports, not fixed ones', async () => {
  const key = await spender(['pro', 'standard']);
  const { page, done } = await openPage(shared.browser);
  // An operator who prices Team at €200.00: €60.00 of packs no longer makes it pay.
  await page.route('**/api/billing/credits/packs', async (route) => {
    const response = await route.fetch();
    const body = await response.json();
    body.plans.find((p) => p.id === 'team').price_eur = '200.00';
    await route.fulfill({ response, json: body });
  });
  await signIn(page, key);
  await page.locator('#tx-body tr').first().waitFor();
  assert.equal(await page.locator('#upgrade-hint').isVisible(), false);
  await done();
});

test('a paid plan that uses no credits gets no upgrade hint', async () => {
  const { buyer } = await accounts();
  const { page, done } = await openPage(shared.browser);
  await signIn(page, buyer.key);
  assert.equal(await page.locator('#upgrade-hint').isVisible(), false);
  await done();
});

test('a narrow screen shows everything without sideways scrolling', async () => {
  const { acme } = await accounts();
  const { page, done } = await openPage(shared.browser, { viewport: { width: 375, height: 812 } });
  await signIn(page, acme.key);
  await page.locator('#tx-body tr').first().waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `page is ${overflow}px wider than the screen`);
  const shot = process.env.ARTIFACTS_DIR && `${process.env.ARTIFACTS_DIR}/dashboard-narrow.png`;
  if (shot) await page.screenshot({ path: shot, fullPage: true });
  await page.goto(`${BASE_URL}/#/credits`);
  await page.locator('body[data-ready="true"]').waitFor();
  const overflowCredits = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflowCredits <= 0, `credits page is ${overflowCredits}px wider than the screen`);
  await done();
});
