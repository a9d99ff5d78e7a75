// Settings → Billing → Credits: buy packs (with a confirmation dialog and an
// Idempotency-Key, and the bank's confirmation when it asks for one), and
// auto-recharge. The payment method is payment-method.js.

import * as api from './api.js';
import { $, h, text, message } from './dom.js';
import * as fmt from './format.js';
import { confirmWithBank, waitForOutcome } from './authentication.js';

const UPGRADE = 'Upgrading to the Pro or Team plan unlocks credit packs and auto-recharge.';

/** What to tell the person when a purchase is refused. */
function purchaseError(error) {
  switch (error.code) {
    case 'plan_upgrade_required':
      return `The free plan cannot buy credits. ${UPGRADE} (${error.message})`;
    case 'payment_failed':
      return `Your payment was declined, so nothing was charged and your balance is unchanged. `
        + `Try another payment method. (${error.message})`;
    case 'payment_method_required':
      return 'Save a payment method below before buying credits.';
    case 'authentication_required':
      return 'Your bank asks you to confirm this payment, which cannot be done here right now: '
        + `nothing was charged. Reload the page to try again, or use another payment method. (${error.message})`;
    default:
      return `The purchase did not go through: ${error.message}`;
  }
}

/** The Credits page. */
export class Credits {
  constructor({ onError, onBalanceChanged, paymentMethod }) {
    this.onError = onError;
    this.onBalanceChanged = onBalanceChanged;
    this.paymentMethod = paymentMethod;
    this.packs = [];
    this.summary = null;
    this.pending = null; // { pack, idempotencyKey } while the dialog is open
    this.confirmed = null; // the purchase the bank confirmed, while its outcome is not known

    $('confirm-ok').addEventListener('click', (event) => {
      event.preventDefault();
      this.confirmPurchase();
    });
    $('confirm-dialog').addEventListener('close', () => {
      this.pending = null;
    });
    $('purchase-check').addEventListener('click', () => {
      if (this.confirmed) this.awaitOutcome(this.confirmed);
    });
    $('ar-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.saveAutoRecharge();
    });
  }

  /** Redraws what depends on the account summary (GET /api/billing/credits). */
  setSummary(summary) {
    const firstTime = this.summary === null;
    this.summary = summary;
    text('credits-balance', fmt.tokens(summary.credits.balance_tokens));
    text('credits-plan', fmt.titleCase(summary.plan.name));
    $('free-plan-note').hidden = summary.plan.name !== 'free';
    if (summary.payment_method !== undefined) this.paymentMethod.setServer(summary.payment_method, summary.card);
    else this.paymentMethod.show();
    // Don't overwrite a form someone is editing; fill it on first load only.
    if (firstTime) this.showAutoRecharge(summary.auto_recharge);
    else this.showAutoRechargeStatus(summary.auto_recharge);
  }

  /** Draws the pack cards (GET /api/billing/credits/packs); the cheapest per million is marked. */
  setPacks(packs) {
    this.packs = packs;
    const best = Math.min(...packs.map((p) => fmt.cents(p.price_per_million_eur) ?? Infinity));
    const list = $('packs');
    list.replaceChildren(...packs.map((pack) => {
      const isBest = fmt.cents(pack.price_per_million_eur) === best;
      const name = `${fmt.titleCase(pack.id)} pack`;
      const button = h('button', {
        type: 'button', class: 'primary', 'data-pack': pack.id,
        'aria-label': `Buy the ${name}: ${fmt.tokens(pack.tokens)} tokens for ${fmt.euros(pack.price_eur)}`,
      }, 'Buy'); // the visible label starts the accessible name (WCAG 2.5.3)
      button.addEventListener('click', () => this.askToBuy(pack));
      return h('li', { class: `pack${isBest ? ' best' : ''}`, 'data-pack': pack.id },
        h('h3', {}, name, isBest ? h('span', { class: 'badge badge-best' }, 'Best value') : null),
        h('p', { class: 'pack-tokens' }, `${fmt.tokens(pack.tokens)} tokens`),
        h('p', { class: 'pack-price' }, fmt.euros(pack.price_eur)),
        h('p', { class: 'pack-rate' }, `${fmt.euros(pack.price_per_million_eur)} per million tokens`),
        button);
    }));
    // The auto-recharge pack choices follow the catalog.
    const select = $('ar-pack');
    const chosen = select.value || this.summary?.auto_recharge?.pack || '';
    select.replaceChildren(
      h('option', { value: '' }, 'Choose a pack'),
      ...packs.map((p) => h('option', { value: p.id }, `${fmt.titleCase(p.id)} — ${fmt.euros(p.price_eur)}`)),
    );
    select.value = chosen;
  }

  /** Opens the confirmation dialog for a pack. */
  askToBuy(pack) {
    this.pending = { pack, idempotencyKey: crypto.randomUUID() };
    text('confirm-title', `Buy the ${fmt.titleCase(pack.id)} pack?`);
    text('confirm-text',
      `${fmt.tokens(pack.tokens)} tokens for ${fmt.euros(pack.price_eur)}, `
      + `charged to ${this.paymentMethod.describe()}. `
      + 'The tokens are added to your credit balance at once.');
    message('confirm-error', '');
    $('confirm-ok').disabled = false;
    $('confirm-ok').textContent = `Buy for ${fmt.euros(pack.price_eur)}`;
    $('confirm-dialog').showModal();
  }

  /** Buys the pack in the dialog. The idempotency key is made once per dialog: a retry can't buy twice. */
  async confirmPurchase() {
    const pending = this.pending;
    if (!pending) return;
    const ok = $('confirm-ok');
    ok.disabled = true;
    ok.textContent = 'Buying…';
    try {
      const result = await api.buyPack(pending.pack.id, pending.idempotencyKey);
      if (result.purchase?.status === 'pending') {
        // 202: the provider has not said yet. The same request with the same key
        // answers the outcome once it is known.
        message('confirm-error',
          `Your payment of ${fmt.euros(result.purchase.amount_eur)} is being processed. `
          + 'Check again in a moment: this will not charge you twice.');
        ok.disabled = false;
        ok.textContent = 'Check again';
        return;
      }
      await this.bought(result, pending);
    } catch (error) {
      if (error.code === 'authentication_required' && error.clientSecret) {
        await this.authenticate(pending, error);
        return;
      }
      if (error.code === 'network_error' || error.status >= 500) {
        // The outcome is unknown: keep the dialog, and its Idempotency-Key, for a retry
        // that cannot buy twice.
        message('confirm-error', `${error.message} Trying again will not charge you twice.`, 'error');
        ok.disabled = false;
        ok.textContent = 'Try again';
        return;
      }
      $('confirm-dialog').close();
      if (!this.onError(error)) message('purchase-message', purchaseError(error), 'error');
    }
  }

  /** A purchase granted (201): says so and redraws the balance. */
  async bought(result, pending) {
    if (this.pending === pending) $('confirm-dialog').close();
    $('purchase-check').hidden = true;
    message('purchase-message',
      `Bought ${fmt.tokens(result.transaction.tokens)} tokens for ${fmt.euros(result.transaction.amount_eur)}. `
      + `Your credit balance is now ${fmt.tokens(result.credits.balance_tokens)} tokens.`, 'ok');
    text('credits-balance', fmt.tokens(result.credits.balance_tokens));
    await this.onBalanceChanged();
  }

  /** The bank asks the cardholder to confirm the purchase: Stripe.js shows its check, then the outcome is awaited. */
  async authenticate(pending, error) {
    // The bank's check is Stripe's window over the page. Everything outside a modal
    // dialog is inert, so the dialog closes first; progress shows under the packs.
    $('confirm-dialog').close();
    const amount = fmt.euros(pending.pack.price_eur);
    const stripe = await this.paymentMethod.stripe().catch(() => null);
    if (!stripe) {
      message('purchase-message', purchaseError(error), 'error');
      return;
    }
    message('purchase-message', `Your bank asks you to confirm the payment of ${amount}. Follow the steps in the window that opens.`);
    const problem = await confirmWithBank(stripe, error.clientSecret, api.session.paymentMethod)
      .catch((e) => e.message);
    if (problem) {
      message('purchase-message',
        `Your bank did not confirm the payment of ${amount}, so nothing was charged and your balance is unchanged. `
        + `You can buy again to retry. (${problem})`, 'error');
      return;
    }
    await this.awaitOutcome(pending);
  }

  /** After the bank confirmed: asks for the purchase again (same key) until Stripe's word has reached the API. */
  async awaitOutcome(pending) {
    const amount = fmt.euros(pending.pack.price_eur);
    this.confirmed = pending;
    $('purchase-check').hidden = true;
    message('purchase-message', `Your bank confirmed the payment of ${amount}. Waiting for it to complete…`);
    const outcome = await waitForOutcome(() => api.buyPack(pending.pack.id, pending.idempotencyKey));
    if (this.confirmed !== pending) return; // a newer purchase speaks now
    if (outcome.waiting) {
      message('purchase-message',
        `Your bank confirmed the payment of ${amount}, and it is still being processed. `
        + 'Check again in a moment: this will not charge you twice.');
      $('purchase-check').hidden = false;
      return;
    }
    this.confirmed = null;
    if (outcome.result) {
      await this.bought(outcome.result, pending);
    } else if (!this.onError(outcome.error)) {
      message('purchase-message', purchaseError(outcome.error), 'error');
    }
  }

  /** Fills the auto-recharge form from the stored settings. */
  showAutoRecharge(settings) {
    $('ar-enabled').checked = settings.enabled;
    $('ar-pack').value = settings.pack ?? '';
    $('ar-threshold').value = settings.threshold_tokens ?? '';
    $('ar-limit').value = settings.monthly_limit_eur;
    this.showAutoRechargeStatus(settings);
  }

  /** Spending against the limit, and the last error if any. */
  showAutoRechargeStatus(settings) {
    text('ar-spent', fmt.euros(settings.spent_this_month_eur));
    text('ar-limit-shown', fmt.euros(settings.monthly_limit_eur));
    const limit = fmt.cents(settings.monthly_limit_eur) ?? 0;
    const bar = $('ar-spent-bar');
    bar.max = Math.max(limit, 1);
    bar.value = Math.min(fmt.cents(settings.spent_this_month_eur) ?? 0, bar.max);
    const last = settings.last_error;
    const el = $('ar-last-error');
    el.hidden = !last;
    el.textContent = last
      ? `The last auto-recharge failed${last.at ? ` on ${fmt.dateTime(last.at)}` : ''}: ${last.message}`
      : '';
  }

  async saveAutoRecharge() {
    const enabled = $('ar-enabled').checked;
    const pack = $('ar-pack').value;
    const thresholdText = $('ar-threshold').value.trim();
    const limitCents = fmt.cents($('ar-limit').value || '50.00');
    const problems = [];
    if (enabled && !pack) problems.push(['ar-pack', 'Choose the pack to buy.']);
    if ((enabled || thresholdText) && !/^[1-9]\d{0,15}$/.test(thresholdText)) {
      problems.push(['ar-threshold', 'The threshold is a whole number of tokens, at least 1.']);
    }
    if (limitCents === null) problems.push(['ar-limit', 'The monthly limit is an amount in euros, such as 50 or 50.00.']);
    for (const id of ['ar-pack', 'ar-threshold', 'ar-limit']) $(id).removeAttribute('aria-invalid');
    if (problems.length > 0) {
      for (const [id] of problems) $(id).setAttribute('aria-invalid', 'true');
      message('ar-message', problems.map(([, m]) => m).join(' '), 'error');
      $(problems[0][0]).focus();
      return;
    }
    const settings = { enabled, monthly_limit_eur: fmt.centsToString(limitCents) };
    if (pack) settings.pack = pack;
    if (thresholdText) settings.threshold_tokens = Number(thresholdText);
    try {
      const saved = await api.saveAutoRecharge(settings);
      this.showAutoRecharge(saved);
      message('ar-message', saved.enabled
        ? `Auto-recharge is on: a ${fmt.titleCase(saved.pack)} pack is bought when credits fall below `
          + `${fmt.tokens(saved.threshold_tokens)} tokens, up to ${fmt.euros(saved.monthly_limit_eur)} a month.`
        : 'Auto-recharge is off. Settings saved.', 'ok');
    } catch (error) {
      if (this.onError(error)) return;
      let why = error.message;
      if (error.code === 'plan_upgrade_required') why = `Auto-recharge needs a paid plan. ${UPGRADE}`;
      if (error.code === 'payment_method_required') why = 'Save a payment method first: auto-recharge buys with it.';
      message('ar-message', `Auto-recharge settings were not saved. ${why}`, 'error');
    }
  }
}
