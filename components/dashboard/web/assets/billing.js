// Settings → Billing: the overview cards, the usage charts and the upgrade hint.

import * as api from './api.js';
import { $, text, replace } from './dom.js';
import { dailyChart, projectChart } from './chart.js';
import * as fmt from './format.js';

/** How the plans are named here. Their allocations and prices come from the catalog. */
const PLAN_TITLES = { free: 'Free', pro: 'Pro', team: 'Team' };

function planTitle(name) {
  return PLAN_TITLES[name] ?? fmt.titleCase(name);
}

/** Fills the overview cards from GET /api/billing/credits. */
export function renderOverview(summary) {
  const { plan, credits } = summary;
  text('plan-name', planTitle(plan.name));
  text('plan-used', fmt.tokens(plan.used_tokens));
  text('plan-monthly', fmt.tokens(plan.monthly_tokens));
  text('plan-remaining', fmt.tokens(plan.remaining_tokens));
  const renews = $('plan-renews');
  renews.dateTime = plan.period_end;
  renews.textContent = fmt.date(plan.period_end);
  const bar = $('plan-bar');
  bar.max = Math.max(plan.monthly_tokens, 1);
  bar.value = Math.min(plan.used_tokens, plan.monthly_tokens);
  bar.classList.toggle('full', plan.remaining_tokens === 0);
  text('credit-balance', fmt.tokens(credits.balance_tokens));
  text('available-tokens', fmt.tokens(summary.available_tokens));
  // Tokens reserved by streaming calls still running (token holds).
  text('held-tokens', fmt.tokens(summary.held_tokens ?? 0));
}

/** Draws the per-day chart for the plan's current period and the per-project bars. */
export function renderUsage(byDay, byProject, summary) {
  const start = summary?.plan.period_start ?? byDay.from;
  const end = summary?.plan.period_end ?? byDay.to;
  // Drawn at the width it is shown at, so the axis text is the size it says.
  const width = Math.max(280, Math.min(960, $('usage-day-chart').clientWidth || 720));
  replace($('usage-day-chart'), dailyChart(byDay.groups, start, end, width));
  replace($('usage-project-chart'), projectChart(byProject.groups));
}

/**
 * What this month's transactions add up to: credit tokens used (deductions' credit
 * part, less what refunds returned to credits) and money spent on packs. Pages through
 * the history, newest first, until it reaches the previous month.
 */
export async function monthStats(summary, maxPages = 10) {
  const since = Date.parse(summary.plan.period_start);
  let creditTokens = 0;
  let purchaseCents = 0;
  let cursor;
  for (let page = 0; page < maxPages; page += 1) {
    const { transactions, next_cursor: next } = await api.getCredits({ limit: 200, cursor });
    for (const tx of transactions) {
      if (Date.parse(tx.created_at) < since) return { creditTokens, purchaseCents };
      if (tx.type === 'deduction') creditTokens += tx.credit_tokens ?? 0;
      if (tx.type === 'refund') creditTokens -= tx.credit_tokens ?? 0;
      if (tx.type === 'purchase') purchaseCents += fmt.cents(tx.amount_eur) ?? 0;
    }
    if (!next) break;
    cursor = next;
  }
  return { creditTokens, purchaseCents };
}

/**
 * Says so when the next plan would have cost less than this month's credit packs:
 * the packs bought this month (by hand or by auto-recharge) cost at least what the
 * next plan costs on top of this one. `plans` is the catalog's
 * (GET /api/billing/credits/packs): each plan's monthly allocation and price.
 */
export function renderUpgradeHint(summary, stats, plans) {
  const ordered = [...(plans ?? [])].sort((a, b) => a.monthly_tokens - b.monthly_tokens);
  const index = ordered.findIndex((p) => p.id === summary.plan.name);
  const current = ordered[index];
  const next = index >= 0 ? ordered[index + 1] : undefined;
  const hint = $('upgrade-hint');
  const extraCents = next ? (fmt.cents(next.price_eur) ?? NaN) - (fmt.cents(current.price_eur) ?? NaN) : NaN;
  if (!(extraCents >= 0) || stats.purchaseCents <= 0 || stats.purchaseCents < extraCents) {
    hint.hidden = true;
    return;
  }
  const used = stats.creditTokens > 0 ? ` and used ${fmt.tokens(stats.creditTokens)} tokens from credits` : '';
  text('upgrade-hint-text',
    `This month you spent ${fmt.euros(stats.purchaseCents)} on credit packs${used}, on top of your `
    + `${planTitle(current.id)} plan (${fmt.euros(current.price_eur)} a month, `
    + `${fmt.tokens(current.monthly_tokens)} tokens). The ${planTitle(next.id)} plan costs `
    + `${fmt.euros(next.price_eur)} a month, ${fmt.euros(extraCents)} more, and includes `
    + `${fmt.tokens(next.monthly_tokens)} tokens a month. `
    + 'If you consistently need credits, upgrading your plan may be more cost-effective.');
  hint.hidden = false;
}
