// Transactions (newest first, filters, "Load more") and the usage charts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useBrowser, openPage, signIn, accounts } from './lib/browser.mjs';
import { account } from './lib/api.mjs';

const shared = useBrowser();

const rowIds = (page) => page.locator('#tx-body tr').evaluateAll((rows) => rows.map((r) => r.dataset.id));

test('transactions are newest first and each kind says what it was', async () => {
  const { acme } = await accounts();
  const api = await account(acme.key).credits('?limit=50');
  const { page, done } = await openPage(shared.browser);
  await signIn(page, acme.key);
  const ids = await rowIds(page);
  assert.deepEqual(ids, api.transactions.slice(0, ids.length).map((t) => t.id), 'same order as the API');
  const times = await page.locator('#tx-body time').evaluateAll((els) => els.map((e) => Date.parse(e.dateTime)));
  assert.deepEqual([...times].sort((a, b) => b - a), times, 'newest first');

  const refund = page.locator('#tx-body tr[data-type="refund"]').first();
  assert.match(await refund.textContent(), new RegExp(`Refund of ${acme.refundedOperation}`));
  assert.match(await refund.textContent(), /Reason: job failed <script>alert\(3\)<\/script>/);
  assert.match(await refund.textContent(), /\+50,000/);
  const deduction = page.locator('#tx-body tr[data-type="deduction"]').nth(1);
  assert.match(await deduction.locator('.operation').textContent(), /^(enrichment|hygiene|summarize)$/);
  assert.match(await deduction.textContent(), /−\d{1,3}(,\d{3})*/);

  await page.getByLabel('Type').selectOption('purchase');
  await page.locator('#tx-body tr[data-type="purchase"]').first().waitFor();
  const purchases = page.locator('#tx-body tr');
  assert.equal(await purchases.count(), 2);
  assert.deepEqual(await purchases.evaluateAll((rows) => rows.map((r) => r.dataset.type)), ['purchase', 'purchase']);
  assert.match(await purchases.nth(0).textContent(), /Standard pack.*Manual purchase/);
  assert.match(await purchases.nth(1).textContent(), /Plus pack.*Manual purchase.*€25\.00/);
  await done();
});

test('filtering by project shows only that project, and clearing shows all again', async () => {
  const { acme } = await accounts();
  const { page, done } = await openPage(shared.browser);
  await signIn(page, acme.key);
  await page.getByLabel('Project').fill('beta');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await page.locator('#tx-status').filter({ hasText: 'Showing 9 transactions' }).waitFor();
  const projects = await page.locator('#tx-body .project').allTextContents();
  assert.equal(projects.length, 9);
  assert.ok(projects.every((p) => p === 'beta'), projects.join());
  assert.equal(await page.locator('#tx-more').isVisible(), false);

  await page.getByLabel('Type').selectOption('refund');
  await page.locator('#tx-empty').waitFor();
  assert.equal(await page.locator('#tx-body tr').count(), 0);

  await page.getByRole('button', { name: 'Clear' }).click();
  await page.locator('#tx-status').filter({ hasText: 'Showing 20 transactions' }).waitFor();
  assert.equal(await page.getByLabel('Project').inputValue(), '');
  await done();
});

test('"Load more" pages through every transaction exactly once', async () => {
  const { acme } = await accounts();
  const { page, done } = await openPage(shared.browser);
  await signIn(page, acme.key);
  assert.equal(await page.locator('#tx-body tr').count(), 20);
  const more = page.getByRole('button', { name: 'Load more' });
  await more.click();
  await page.locator('#tx-body tr').nth(39).waitFor();
  await more.waitFor({ state: 'hidden' });
  const ids = await rowIds(page);
  assert.equal(ids.length, acme.transactions);
  assert.equal(new Set(ids).size, ids.length, 'no transaction twice');
  assert.match(await page.locator('#tx-body tr').last().textContent(), /Plus pack/, 'the oldest comes last');
  await done();
});

test('the usage chart draws tokens per day, and the projects are broken down', async () => {
  const { acme } = await accounts();
  const { page, done } = await openPage(shared.browser);
  await signIn(page, acme.key);
  const summary = await account(acme.key).credits('?limit=1');
  const days = Math.round((Date.parse(summary.plan.period_end) - Date.parse(summary.plan.period_start)) / 86_400_000);
  const bars = page.locator('#usage-day-svg rect.bar');
  assert.equal(await bars.count(), days, 'one bar per day of the month');
  const perDay = await bars.evaluateAll((rs) => rs.map((r) => ({ tokens: Number(r.dataset.tokens), height: Number(r.getAttribute('height')) })));
  const total = perDay.reduce((a, d) => a + d.tokens, 0);
  assert.equal(total, acme.usedTokens, '37 deductions less the refund');
  assert.ok(perDay.filter((d) => d.tokens > 0).every((d) => d.height > 0), 'every day with usage has a visible bar');
  const box = await page.locator('#usage-day-svg').boundingBox();
  assert.ok(box.width > 300 && box.height > 100, `chart is drawn (${box.width}x${box.height})`);
  assert.match(await page.locator('#usage-day-desc').textContent(), /tokens used this month/);

  const rows = page.locator('#usage-project-table tbody tr');
  const byProject = Object.fromEntries(await rows.evaluateAll((rs) => rs.map((r) => [r.dataset.project, Number(r.dataset.tokens)])));
  assert.deepEqual(byProject, acme.byProject);
  const names = await page.locator('#usage-project-table tbody th').allTextContents();
  assert.equal(names[0], Object.entries(acme.byProject).sort((a, b) => b[1] - a[1])[0][0], 'biggest first');
  await done();
});
