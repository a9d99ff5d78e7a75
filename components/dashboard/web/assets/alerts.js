// What the person paying must know now, from the account summary, each with the
// action that resolves it: credits low or gone, the last auto-recharge declined
// (or waiting for the bank's confirmation), auto-recharge switched off after
// declines, this month's auto-recharge limit reached.

import { $, h, replace } from './dom.js';
import * as fmt from './format.js';

/** Pack prices in cents (API.md, "Catalog": fixed). */
const PACK_CENTS = { starter: 500, standard: 1000, plus: 2500, pro: 5000 };

/** The alerts that apply to `summary`, most urgent first. */
export function alertsFor(summary) {
  const ar = summary.auto_recharge ?? {};
  const balance = summary.credits.balance_tokens;
  const threshold = ar.threshold_tokens;
  const error = ar.last_error;
  const alerts = [];
  if (summary.available_tokens === 0) {
    alerts.push({
      id: 'depleted',
      level: 'error',
      text: 'You have no tokens left: AI work stops until you add credits.',
      action: { label: 'Buy credits', target: 'packs-title' },
    });
  }
  if (error && !ar.enabled) {
    alerts.push({
      id: 'recharge-disabled',
      level: 'error',
      text: `Auto-recharge was turned off after repeated declined payments. ${error.message}`,
      action: { label: 'Update your payment method', target: 'pm-input' },
    });
  } else if (error && error.code === 'authentication_required') {
    alerts.push({
      id: 'recharge-authentication',
      level: 'warn',
      text: 'Your bank asks you to confirm the last auto-recharge payment. '
        + 'Confirm it with a purchase made here, or use a card that needs no confirmation.',
      action: { label: 'Buy credits to confirm', target: 'packs-title' },
    });
  } else if (error) {
    alerts.push({
      id: 'recharge-declined',
      level: 'warn',
      text: `Your last auto-recharge was declined: ${error.message}`,
      action: { label: 'Update your payment method', target: 'pm-input' },
    });
  }
  const limitCents = fmt.cents(ar.monthly_limit_eur) ?? 0;
  const spentCents = fmt.cents(ar.spent_this_month_eur) ?? 0;
  const packCents = PACK_CENTS[ar.pack] ?? 0;
  const below = threshold !== null && threshold !== undefined && balance < threshold;
  if (ar.enabled && below && !error && spentCents + packCents > limitCents) {
    alerts.push({
      id: 'limit-reached',
      level: 'warn',
      text: `This month's auto-recharge limit of €${ar.monthly_limit_eur} is reached `
        + `(€${ar.spent_this_month_eur} spent): no more packs are bought until next month.`,
      action: { label: 'Raise the monthly limit', target: 'ar-limit' },
    });
  }
  // Low credits alone: a recharge problem above already says why they are low.
  if (below && alerts.length === 0) {
    alerts.push({
      id: 'credits-low',
      level: 'warn',
      text: `Your credits are low: ${fmt.tokens(balance)} tokens, below your threshold of ${fmt.tokens(threshold)}.`,
      action: { label: 'Buy credits', target: 'packs-title' },
    });
  }
  return alerts;
}

/**
 * Puts the keyboard on the control with this id; when it is not shown (the payment
 * method id field, where cards are saved with Stripe's form), on its section's heading.
 */
function focusTarget(id) {
  const el = $(id);
  if (el?.closest('[hidden]')) el.closest('section')?.querySelector('h2[tabindex]')?.focus();
  else el?.focus();
}

/** Draws the alerts above both pages; each action opens the control that fixes it. */
export function renderAlerts(summary) {
  const alerts = alertsFor(summary);
  const list = $('alerts');
  replace(list, alerts.map((alert) => {
    const link = h('a', { href: '#/credits', class: 'button', 'data-target': alert.action.target }, alert.action.label);
    link.addEventListener('click', () => {
      // Once the Credits page shows (on the hash change the link makes), put the
      // keyboard where the fix is.
      const focus = () => setTimeout(() => focusTarget(alert.action.target), 0);
      if (location.hash === '#/credits') focus();
      else window.addEventListener('hashchange', focus, { once: true });
    });
    return h('li', { class: `alert ${alert.level}`, 'data-alert': alert.id }, h('p', {}, alert.text), link);
  }));
  list.hidden = alerts.length === 0;
}
