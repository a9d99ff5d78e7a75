// The billing dashboard: sign in with an account key, then Settings → Billing
// (overview, usage, transactions) and Settings → Billing → Credits (packs, payment
// method, auto-recharge). Everything comes from the public API; nothing from the
// server is ever parsed as HTML.

import * as api from './api.js';
import { $, message } from './dom.js';
import { renderOverview, renderUsage, renderUpgradeHint, monthStats } from './billing.js';
import { renderAlerts } from './alerts.js';
import { Transactions } from './transactions.js';
import { Credits } from './credits.js';
import { PaymentMethod } from './payment-method.js';

const views = {
  billing: { title: 'Billing', view: 'view-billing', tab: 'tab-billing' },
  credits: { title: 'Credits', view: 'view-credits', tab: 'tab-credits' },
};

let transactions;
let credits;
let paymentMethod;

/** Shows the sign-in form; `reason` says why when the session ended by itself. */
function showSignIn(reason) {
  $('app').hidden = true;
  $('account-bar').hidden = true;
  $('sign-in').hidden = false;
  message('sign-in-error', reason ?? '', reason ? 'error' : '');
  $('account-key').value = '';
  $('account-key').focus();
}

/** An error of a request made with the stored key: a 401 ends the session. */
function handleError(error) {
  if (error instanceof api.ApiError && error.status === 401) {
    api.session.clear();
    showSignIn('Your account key is no longer accepted. Please sign in again.');
    return true;
  }
  return false;
}

/** Shows the view named by the location hash: #/billing (default) or #/credits. */
function route() {
  const name = location.hash === '#/credits' ? 'credits' : 'billing';
  for (const [key, v] of Object.entries(views)) {
    $(v.view).hidden = key !== name;
    if (key === name) $(v.tab).setAttribute('aria-current', 'page');
    else $(v.tab).removeAttribute('aria-current');
  }
  $('page-title').textContent = views[name].title;
  $('crumb-credits-item').hidden = name !== 'credits';
  if (name === 'credits') $('crumb-billing').removeAttribute('aria-current');
  else $('crumb-billing').setAttribute('aria-current', 'page');
  document.title = `${views[name].title} · Settings · Dashboard`;
}

/** Loads the account summary and redraws everything that depends on it. */
async function refreshSummary() {
  const summary = await api.getCredits({ limit: 1 });
  renderOverview(summary);
  renderAlerts(summary);
  credits.setSummary(summary);
  return summary;
}

/** Loads everything the two pages show. Parts that fail say so; the rest still shows. */
async function loadAll() {
  $('load-error').hidden = true;
  const failures = [];
  const attempt = async (what, fn) => {
    try {
      return await fn();
    } catch (error) {
      if (!handleError(error)) failures.push(`${what}: ${error.message}`);
      return null;
    }
  };
  const summary = await attempt('Balance', refreshSummary);
  if (!api.session.key) return;
  if (summary) $('account-id').textContent = summary.account_id;
  const catalog = api.getPacks();
  catalog.catch(() => {}); // reported by the attempts that use it
  await Promise.all([
    attempt('Credit packs', async () => credits.setPacks((await catalog).packs)),
    attempt('Transactions', () => transactions.reload()),
    attempt('Payment method', async () => {
      try {
        const saved = await api.getPaymentMethod();
        paymentMethod.setServer(saved.payment_method ?? null, saved.card ?? null);
      } catch (error) {
        // An API without the read (it is not in the contract): show the session's.
        if (error.status !== 404 && error.status !== 405) throw error;
      }
    }),
    // How a card is saved (Stripe's card form, or the sandbox's id field): per account.
    attempt('Saving a payment method', () => paymentMethod.prepare()),
    attempt('Usage', async () => {
      const [byDay, byProject] = await Promise.all([api.getUsage('day'), api.getUsage('project')]);
      renderUsage(byDay, byProject, summary);
      transactions.suggestProjects(byProject.groups.map((g) => g.key));
    }),
    attempt('Upgrade advice', async () => {
      // Plan prices are an addition to the catalog: without them, no advice.
      const plans = await catalog.then((c) => c.plans, () => undefined);
      if (summary && plans) renderUpgradeHint(summary, await monthStats(summary), plans);
    }),
  ]);
  if (failures.length > 0) {
    $('load-error').textContent = `Some information could not be loaded. ${failures.join(' ')}`;
    $('load-error').hidden = false;
  }
}

/** Shows the dashboard for the key in the session. */
async function enter() {
  $('sign-in').hidden = true;
  $('app').hidden = false;
  $('account-bar').hidden = false;
  route();
  await loadAll();
  document.body.dataset.ready = 'true';
}

async function signIn(event) {
  event.preventDefault();
  const key = $('account-key').value.trim();
  if (!key) {
    message('sign-in-error', 'Enter your account key.', 'error');
    return;
  }
  const button = event.submitter ?? $('sign-in-form').querySelector('button');
  button.disabled = true;
  message('sign-in-error', '');
  try {
    await api.getCredits({ limit: 1 }, key);
    api.session.key = key;
    await enter();
    $('main').focus();
  } catch (error) {
    let text = error.message;
    if (error.status === 401) text = 'That account key was not accepted. Check it and try again.';
    if (error.status === 403) text = 'That key may not read an account. Use the account key, not a service token.';
    message('sign-in-error', text, 'error');
  } finally {
    button.disabled = false;
  }
}

function signOut() {
  api.session.clear();
  delete document.body.dataset.ready;
  showSignIn();
}

function start() {
  transactions = new Transactions({ onError: handleError });
  paymentMethod = new PaymentMethod({ onError: handleError });
  credits = new Credits({
    onError: handleError,
    paymentMethod,
    onBalanceChanged: async () => {
      try {
        await refreshSummary();
        await transactions.reload();
      } catch (error) {
        handleError(error);
      }
    },
  });
  $('sign-in-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', signOut);
  window.addEventListener('hashchange', route);
  if (api.session.key) enter();
  else showSignIn();
}

start();
