// Seeds the accounts the browser tests use, through the service API (and each
// account's own key where the API needs one). Prints them as JSON:
//   node seed.mjs > accounts.json
// History is spread over the current month with X-Test-Clock (the app must run with
// SPIN_VARIABLE_TEST_CLOCK=true), so the usage chart has a bar per day so far.

import { fileURLToPath } from 'node:url';
import { service, account, waitForServer } from './lib/api.mjs';

const SIZES = [150_000, 250_000, 200_000, 120_000, 230_000];
const PROJECTS = ['alpha', 'beta', 'gamma', null];
const OPERATIONS = ['enrichment', 'hygiene', 'summarize'];

/** The label of the deduction that tries to inject markup: it must show as text. */
export const XSS = {
  operation: '<img src=x onerror=alert(1)>',
  project: '<b>p-xss</b>',
  session: '"><svg onload=alert(2)>',
  reason: 'job failed <script>alert(3)</script>',
};

/** `n` instants spread from the start of this month (UTC) up to a minute ago, in order. */
function timesThisMonth(n) {
  const now = Date.now() - 60_000;
  const d = new Date(now);
  const start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1) + 60_000;
  const span = Math.max(now - start, n);
  return Array.from({ length: n }, (_, i) => new Date(start + Math.floor((span * i) / n)).toISOString());
}

/** A pro account with a month of history: purchases, 36 deductions, a refund, a hostile label. */
async function seedAcme(id) {
  const acct = await service.createAccount(id, 'pro');
  const me = account(acct.api_key);
  const times = timesThisMonth(40);
  await me.savePaymentMethod('pm_card_visa', times[0]);
  await me.buy('plus', times[0]);
  await me.buy('standard', times[1]);
  let refundable;
  const byProject = {};
  const add = (project, tokens) => { byProject[project ?? 'No project'] = (byProject[project ?? 'No project'] ?? 0) + tokens; };
  for (let i = 0; i < 36; i += 1) {
    const project = PROJECTS[i % PROJECTS.length];
    const resource = project ? { project, session: `s-${100 + i}` } : {};
    const tokens = SIZES[i % SIZES.length];
    const { transaction } = await service.deduct({
      account_id: id, tokens, operation: OPERATIONS[i % OPERATIONS.length], resource,
    }, times[2 + i]);
    add(project, tokens);
    if (i === 30) refundable = transaction;
  }
  await service.refund({ account_id: id, deduction_id: refundable.id, tokens: 50_000, reason: XSS.reason }, times[38]);
  add(refundable.resource.project, -50_000);
  await service.deduct({
    account_id: id, tokens: 4_242, operation: XSS.operation, resource: { project: XSS.project, session: XSS.session },
  }, times[39]);
  add(XSS.project, 4_242);
  const usedTokens = Object.values(byProject).reduce((a, b) => a + b, 0);
  return {
    id, key: acct.api_key, transactions: 40, refundedOperation: refundable.operation, usedTokens, byProject,
  };
}

/** A pro account with a card that works and nothing else. */
async function seedPro(id, paymentMethod = 'pm_card_visa') {
  const acct = await service.createAccount(id, 'pro');
  if (paymentMethod) await account(acct.api_key).savePaymentMethod(paymentMethod);
  return { id, key: acct.api_key };
}

/** A pro account that bought a starter pack, then saved a card that is always declined. */
async function seedDeclined(id) {
  const acct = await service.createAccount(id, 'pro');
  const me = account(acct.api_key);
  await me.savePaymentMethod('pm_card_visa');
  await me.buy('starter');
  await me.savePaymentMethod('pm_card_chargeDeclined');
  return { id, key: acct.api_key };
}

/**
 * Two accounts with auto-recharge on and a balance below the threshold: the recharge
 * check buys for the one with a working card and records the decline of the other.
 */
async function seedAutoRecharge(okId, declinedId) {
  const ok = await service.createAccount(okId, 'pro');
  const bad = await service.createAccount(declinedId, 'pro');
  const settings = { enabled: true, pack: 'starter', threshold_tokens: 500_000, monthly_limit_eur: '20.00' };
  await account(ok.api_key).savePaymentMethod('pm_card_visa');
  await account(ok.api_key).saveAutoRecharge(settings);
  await account(bad.api_key).savePaymentMethod('pm_card_chargeDeclined');
  await account(bad.api_key).saveAutoRecharge(settings);
  await service.rechargeCheck();
  return [{ id: okId, key: ok.api_key }, { id: declinedId, key: bad.api_key }];
}

/** Creates every account the tests use; `suffix` keeps ids unique on a reused server. */
export async function seed(suffix = process.env.SEED_SUFFIX ?? '') {
  await waitForServer();
  const [autobuy, autodecline] = await seedAutoRecharge(`autobuy${suffix}`, `autodecline${suffix}`);
  return {
    autobuy,
    autodecline,
    acme: await seedAcme(`acme${suffix}`),
    buyer: await seedPro(`buyer${suffix}`),
    keyboard: await seedPro(`keyboard${suffix}`),
    retrier: await seedPro(`retrier${suffix}`),
    waiter: await seedPro(`waiter${suffix}`),
    recharger: await seedPro(`recharger${suffix}`),
    payer: await seedPro(`payer${suffix}`, null),
    declined: await seedDeclined(`declined${suffix}`),
    free: { id: `free${suffix}`, key: (await service.createAccount(`free${suffix}`, 'free')).api_key },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.stdout.write(`${JSON.stringify(await seed(), null, 2)}\n`);
}
