// Settings → Billing → Credits: buying packs, refusals, payment method, auto-recharge.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useBrowser, openPage, signIn, accounts, screenshotPath } from './lib/browser.mjs';
import { account } from './lib/api.mjs';

const shared = useBrowser();
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('the four packs show price and price per million; the best value is marked', async () => {
  const { buyer } = await accounts();
  const { page, done } = await openPage(shared.browser);
  await signIn(page, buyer.key, '#/credits');
  const packs = page.locator('#packs > li');
  assert.equal(await packs.count(), 4);
  const standard = page.locator('#packs li[data-pack="standard"]');
  assert.match(await standard.textContent(), /2,500,000 tokens/);
  assert.match(await standard.textContent(), /€10\.00/);
  assert.match(await standard.textContent(), /€4\.00 per million tokens/);
  assert.match(await page.locator('#packs li[data-pack="plus"]').textContent(), /€3\.57 per million tokens/);
  const best = page.locator('#packs li.best');
  assert.equal(await best.count(), 1);
  assert.equal(await best.getAttribute('data-pack'), 'pro');
  assert.match(await best.textContent(), /Best value/);
  await done();
});

test('buying a pack asks first, sends an Idempotency-Key and shows the new balance', async () => {
  const { buyer } = await accounts();
  const before = (await account(buyer.key).credits('?limit=1')).credits.balance_tokens;
  const { page, done } = await openPage(shared.browser);
  await signIn(page, buyer.key, '#/credits');
  const purchases = [];
  page.on('request', (req) => {
    if (req.url().endsWith('/api/billing/credits/purchases')) purchases.push(req);
  });

  // Cancelling the dialog buys nothing.
  await page.getByRole('button', { name: /Buy the Standard pack/ }).click();
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await dialog.waitFor({ state: 'hidden' });
  assert.equal(purchases.length, 0);

  await page.getByRole('button', { name: /Buy the Standard pack/ }).click();
  assert.match(await dialog.textContent(), /2,500,000 tokens for €10\.00, charged to your payment method pm_card_visa/);
  await dialog.getByRole('button', { name: 'Buy for €10.00' }).click();
  const expected = (before + 2_500_000).toLocaleString('en-US');
  await page.locator('#purchase-message').filter({ hasText: `Your credit balance is now ${expected} tokens` }).waitFor();
  assert.equal(await page.locator('#credits-balance').textContent(), expected);
  assert.equal(purchases.length, 1);
  assert.match(purchases[0].headers()['idempotency-key'], UUID);
  assert.deepEqual(JSON.parse(purchases[0].postData()), { pack: 'standard' });
  assert.equal((await account(buyer.key).credits('?limit=1')).credits.balance_tokens, before + 2_500_000);

  // The overview and the history agree.
  await page.getByRole('link', { name: 'Billing', exact: true }).first().click();
  assert.equal(await page.locator('#credit-balance').textContent(), expected);
  const newest = page.locator('#tx-body tr').first();
  await newest.filter({ hasText: 'Standard pack' }).waitFor();
  assert.match(await newest.textContent(), /Manual purchase/);
  assert.match(await newest.textContent(), /€10\.00/);
  await done();
});

test('a free plan is told why it cannot buy and that upgrading unlocks it', async () => {
  const { free } = await accounts();
  const { page, done } = await openPage(shared.browser);
  await signIn(page, free.key, '#/credits');
  assert.equal(await page.locator('#free-plan-note').isVisible(), true);
  await page.getByRole('button', { name: /Buy the Starter pack/ }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Buy for €5.00' }).click();
  const msg = page.locator('#purchase-message.error');
  await msg.waitFor();
  assert.match(await msg.textContent(), /The free plan cannot buy credits/);
  assert.match(await msg.textContent(), /Upgrading to the Pro or Team plan unlocks credit packs/);
  assert.equal(await page.locator('#credits-balance').textContent(), '0');
  await done();
});

test('a declined card gets a clear message and the balance does not change', async () => {
  const { declined } = await accounts();
  const before = (await account(declined.key).credits('?limit=1')).credits.balance_tokens;
  const { page, done } = await openPage(shared.browser);
  await signIn(page, declined.key, '#/credits');
  await page.getByRole('button', { name: /Buy the Plus pack/ }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Buy for €25.00' }).click();
  const msg = page.locator('#purchase-message.error');
  await msg.waitFor();
  assert.match(await msg.textContent(), /declined/);
  assert.match(await msg.textContent(), /nothing was charged and your balance is unchanged/);
  assert.equal(await page.locator('#credits-balance').textContent(), before.toLocaleString('en-US'));
  assert.equal((await account(declined.key).credits('?limit=1')).credits.balance_tokens, before);
  await done();
});

test('the payment method can be changed and is shown', async () => {
  const { payer } = await accounts();
  const { page, done } = await openPage(shared.browser);
  await signIn(page, payer.key, '#/credits');
  const input = page.getByLabel('Payment method id');
  await input.fill('visa');
  await page.getByRole('button', { name: 'Save payment method' }).click();
  await page.locator('#pm-message.error').waitFor();
  assert.equal(await input.getAttribute('aria-invalid'), 'true');

  await input.fill('pm_card_mastercard');
  await page.getByRole('button', { name: 'Save payment method' }).click();
  await page.locator('#pm-message.ok').waitFor();
  assert.equal(await page.locator('#pm-current').textContent(), 'pm_card_mastercard');
  await page.reload();
  await page.locator('body[data-ready="true"]').waitFor();
  assert.equal(await page.locator('#pm-current').textContent(), 'pm_card_mastercard');
  // The saved method works: a purchase now goes through.
  await page.getByRole('button', { name: /Buy the Starter pack/ }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Buy for €5.00' }).click();
  await page.locator('#purchase-message.ok').waitFor();
  await done();
});

test('with the sandbox the payment method id field says it is test mode, and Stripe.js is not loaded', async () => {
  const { payer } = await accounts();
  const { page, done } = await openPage(shared.browser);
  await signIn(page, payer.key, '#/credits');
  const note = page.locator('#pm-test-mode');
  assert.equal(await note.isVisible(), true);
  assert.match(await note.textContent(), /^Test mode: no money is taken\./);
  // Read out with the field, since it is what the field is for.
  assert.equal(await page.getByLabel('Payment method id').getAttribute('aria-describedby'), 'pm-test-mode pm-help');
  assert.equal(await page.locator('#pm-card-form').isVisible(), false);
  // Only the Stripe provider loads Stripe.js (a request to it would also fail openPage's guard).
  assert.equal(await page.locator('script[src*="stripe"], iframe').count(), 0);
  await done();
});

test('auto-recharge settings are saved and read back after a reload', async () => {
  const { recharger } = await accounts();
  const { page, done } = await openPage(shared.browser);
  await signIn(page, recharger.key, '#/credits');
  assert.equal(await page.getByLabel('Monthly limit (€)').inputValue(), '50.00');
  assert.equal(await page.locator('#ar-spent').textContent(), '€0.00');
  assert.equal(await page.locator('#ar-limit-shown').textContent(), '€50.00');

  // Enabling without a pack is caught before it is sent.
  await page.getByLabel('Enable auto-recharge').check();
  await page.getByRole('button', { name: 'Save auto-recharge' }).click();
  await page.locator('#ar-message.error').filter({ hasText: 'Choose the pack' }).waitFor();

  await page.getByLabel('Pack to buy').selectOption('plus');
  await page.getByLabel('When credits fall below (tokens)').fill('1000000');
  await page.getByLabel('Monthly limit (€)').fill('75');
  await page.getByRole('button', { name: 'Save auto-recharge' }).click();
  await page.locator('#ar-message.ok').waitFor();
  assert.match(await page.locator('#ar-message').textContent(), /Plus pack is bought when credits fall below 1,000,000 tokens, up to €75\.00 a month/);

  const stored = await account(recharger.key).autoRecharge();
  assert.equal(stored.enabled, true);
  assert.equal(stored.pack, 'plus');
  assert.equal(stored.threshold_tokens, 1_000_000);
  assert.equal(stored.monthly_limit_eur, '75.00');

  await page.reload();
  await page.locator('body[data-ready="true"]').waitFor();
  assert.equal(await page.getByLabel('Enable auto-recharge').isChecked(), true);
  assert.equal(await page.getByLabel('Pack to buy').inputValue(), 'plus');
  assert.equal(await page.getByLabel('When credits fall below (tokens)').inputValue(), '1000000');
  assert.equal(await page.getByLabel('Monthly limit (€)').inputValue(), '75.00');
  assert.equal(await page.locator('#ar-limit-shown').textContent(), '€75.00');
  assert.match(await page.locator('#ar-spent').textContent(), /^€\d+\.\d\d$/);

  const shot = screenshotPath('dashboard-credits.png');
  if (shot) {
    await page.mouse.move(0, 0);
    await page.screenshot({ path: shot, fullPage: true });
  }
  await done();
});

test('a free plan cannot enable auto-recharge and is told why', async () => {
  const { free } = await accounts();
  const { page, done } = await openPage(shared.browser);
  await signIn(page, free.key, '#/credits');
  await page.getByLabel('Enable auto-recharge').check();
  await page.getByLabel('Pack to buy').selectOption('starter');
  await page.getByLabel('When credits fall below (tokens)').fill('500000');
  await page.getByRole('button', { name: 'Save auto-recharge' }).click();
  await page.locator('#ar-message.error').filter({ hasText: 'needs a paid plan' }).waitFor();
  await done();
});

test('buying works with the keyboard alone', async () => {
  const { keyboard } = await accounts();
  const { page, done } = await openPage(shared.browser);
  await signIn(page, keyboard.key, '#/credits');
  await page.getByRole('button', { name: /Buy the Starter pack/ }).focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'hidden' });
  // Closing the dialog gives focus back to the button that opened it.
  await page.waitForFunction(() => document.activeElement?.dataset.pack === 'starter');
  await page.keyboard.press('Enter');
  await dialog.waitFor();
  // Tab to the confirm button (Cancel comes first) and press it.
  await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).focus();
  await page.keyboard.press('Tab');
  await page.waitForFunction(() => document.activeElement?.id === 'confirm-ok');
  await page.keyboard.press('Enter');
  await page.locator('#purchase-message.ok').filter({ hasText: 'Your credit balance is now 1,000,000 tokens' }).waitFor();

  await done();
});

test('auto-recharge shows its purchases, its spending against the limit and its last error', async () => {
  const { autobuy, autodecline } = await accounts();
  const { page, done } = await openPage(shared.browser);
  await signIn(page, autobuy.key);
  const purchase = page.locator('#tx-body tr[data-type="purchase"]').first();
  assert.match(await purchase.textContent(), /Starter pack.*Auto-recharge.*\+1,000,000.*€5\.00/);
  await page.getByRole('link', { name: 'Credits', exact: true }).first().click();
  assert.equal(await page.locator('#ar-spent').textContent(), '€5.00');
  assert.equal(await page.locator('#ar-limit-shown').textContent(), '€20.00');
  assert.equal(await page.locator('#ar-spent-bar').evaluate((el) => el.value / el.max), 0.25);
  assert.equal(await page.locator('#ar-last-error').isVisible(), false);
  await page.getByRole('button', { name: 'Sign out' }).click();

  await signIn(page, autodecline.key, '#/credits');
  const lastError = page.locator('#ar-last-error');
  assert.equal(await lastError.isVisible(), true);
  assert.match(await lastError.textContent(), /^The last auto-recharge failed on \d{1,2} \w{3} \d{4}, \d\d:\d\d UTC: ./);
  assert.equal(await page.locator('#ar-spent').textContent(), '€0.00');
  assert.equal(await page.locator('#credits-balance').textContent(), '0');
  await done();
});

test('a purchase whose answer is lost is retried with the same Idempotency-Key and buys once', async () => {
  const { retrier } = await accounts();
  const { page, context, done } = await openPage(shared.browser);
  await signIn(page, retrier.key, '#/credits');
  const keys = [];
  let dropped = false;
  await context.route('**/api/billing/credits/purchases', async (route) => {
    keys.push(route.request().headers()['idempotency-key']);
    if (!dropped) {
      // The purchase reaches the server, but its answer never reaches the page.
      dropped = true;
      await route.fetch();
      return route.abort('connectionreset');
    }
    return route.continue();
  });
  await page.getByRole('button', { name: /Buy the Starter pack/ }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByRole('button', { name: 'Buy for €5.00' }).click();
  await dialog.getByRole('alert').filter({ hasText: 'will not charge you twice' }).waitFor();
  await dialog.getByRole('button', { name: 'Try again' }).click();
  await page.locator('#purchase-message.ok').filter({ hasText: 'Your credit balance is now 1,000,000 tokens' }).waitFor();
  assert.equal(keys.length, 2);
  assert.equal(keys[0], keys[1], 'the retry reuses the key');
  const after = await account(retrier.key).credits('?type=purchase');
  assert.equal(after.transactions.length, 1, 'one purchase, not two');
  assert.equal(after.credits.balance_tokens, 1_000_000);
  await done();
});

test('a purchase answered pending (202) keeps the dialog and its key until the outcome is known', async () => {
  const { waiter } = await accounts();
  const { page, context, done } = await openPage(shared.browser);
  await signIn(page, waiter.key, '#/credits');
  const keys = [];
  let answeredPending = false;
  await context.route('**/api/billing/credits/purchases', async (route) => {
    keys.push(route.request().headers()['idempotency-key']);
    if (!answeredPending) {
      // The provider has not answered yet: what the API says then (no sandbox
      // charge is ever pending, so this first answer is made here).
      answeredPending = true;
      return route.fulfill({
        status: 202,
        contentType: 'application/json',
        body: JSON.stringify({ purchase: { id: `pur_${'0a'.repeat(16)}`, status: 'pending', pack: 'starter', amount_eur: '5.00' } }),
      });
    }
    return route.continue();
  });
  await page.getByRole('button', { name: /Buy the Starter pack/ }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByRole('button', { name: 'Buy for €5.00' }).click();
  await dialog.getByRole('alert').filter({ hasText: 'Your payment of €5.00 is being processed' }).waitFor();
  await dialog.getByRole('button', { name: 'Check again' }).click();
  await page.locator('#purchase-message.ok').filter({ hasText: 'Your credit balance is now 1,000,000 tokens' }).waitFor();
  assert.equal(keys.length, 2);
  assert.equal(keys[0], keys[1], 'checking again reuses the key');
  const after = await account(waiter.key).credits('?type=purchase');
  assert.equal(after.transactions.length, 1);
  await done();
});
