// The transaction history: newest first, filtered by type and project, paged with
// "Load more" (the API's cursor). Labels, names and reasons are users' text: shown
// as text nodes only.

import * as api from './api.js';
import { $, h } from './dom.js';
import * as fmt from './format.js';

export const PAGE_SIZE = 20;

const TYPE_LABELS = { purchase: 'Purchase', deduction: 'Usage', refund: 'Refund' };

/** "Project p-42 · Session s-9", leaving out what is absent. */
function resourceLine(resource) {
  const parts = [];
  if (resource?.project != null) parts.push(h('span', {}, 'Project ', h('span', { class: 'project' }, resource.project)));
  if (resource?.session != null) parts.push(h('span', {}, 'Session ', h('span', { class: 'session' }, resource.session)));
  if (parts.length === 0) return null;
  return h('span', { class: 'meta' }, parts.flatMap((p, i) => (i === 0 ? [p] : [' · ', p])));
}

/** Where the tokens of a deduction came from, or where a refund put them back. */
function splitLine(tx, verb) {
  const parts = [];
  if (tx.plan_tokens) parts.push(`${fmt.tokens(tx.plan_tokens)} plan`);
  if (tx.credit_tokens) parts.push(`${fmt.tokens(tx.credit_tokens)} credits`);
  return parts.length > 0 ? h('span', { class: 'meta' }, `${verb} ${parts.join(' + ')}`) : null;
}

/** The "Details" cell of one transaction. */
function details(tx) {
  switch (tx.type) {
    case 'purchase':
      return [
        h('span', { class: 'what' }, `${fmt.titleCase(tx.pack)} pack`),
        h('span', { class: `source ${tx.source === 'auto_recharge' ? 'auto' : 'manual'}` },
          tx.source === 'auto_recharge' ? 'Auto-recharge' : 'Manual purchase'),
      ];
    case 'deduction':
      return [
        h('span', { class: 'what operation' }, tx.operation),
        resourceLine(tx.resource),
        splitLine(tx, 'From'),
      ];
    case 'refund':
      return [
        h('span', { class: 'what' }, 'Refund of ', h('span', { class: 'operation' }, tx.operation ?? 'a deduction')),
        resourceLine(tx.resource),
        tx.reason ? h('span', { class: 'meta' }, 'Reason: ', h('span', { class: 'reason' }, tx.reason)) : null,
        splitLine(tx, 'Returned'),
        h('span', { class: 'meta id' }, 'Deduction ', h('code', {}, tx.refund_of)),
      ];
    default:
      return [h('span', { class: 'what' }, String(tx.type))];
  }
}

/** One table row. */
function row(tx) {
  const sign = tx.type === 'deduction' ? -1 : 1;
  return h('tr', { class: `tx tx-${tx.type}`, 'data-id': tx.id, 'data-type': tx.type },
    h('td', { 'data-label': 'Date' }, h('time', { datetime: tx.created_at }, fmt.dateTime(tx.created_at))),
    h('td', { 'data-label': 'Type' }, h('span', { class: `badge badge-${tx.type}` }, TYPE_LABELS[tx.type] ?? tx.type)),
    h('td', { 'data-label': 'Details' }, h('div', { class: 'details' }, details(tx))),
    h('td', { 'data-label': 'Tokens', class: `num ${sign < 0 ? 'minus' : 'plus'}` }, fmt.signedTokens(sign * tx.tokens)),
    h('td', { 'data-label': 'Amount', class: 'num' }, tx.amount_eur ? fmt.euros(tx.amount_eur) : '—'));
}

/** The transactions section: its filters, rows and "Load more" button. */
export class Transactions {
  constructor({ onError }) {
    this.onError = onError;
    this.cursor = null;
    this.filters = {};
    this.loading = false;
    this.seq = 0;
    $('tx-filters').addEventListener('submit', (event) => {
      event.preventDefault();
      this.applyFilters();
    });
    $('tx-filters').addEventListener('reset', () => {
      // The form resets its fields after this event: read them once that is done.
      setTimeout(() => this.applyFilters());
    });
    $('tx-type').addEventListener('change', () => this.applyFilters());
    $('tx-more').addEventListener('click', () => this.more());
  }

  /** Offers the projects seen in this month's usage in the project filter. */
  suggestProjects(keys) {
    const options = keys.filter((k) => k !== null && k !== 'null').map((k) => h('option', { value: k }));
    $('tx-project-list').replaceChildren(...options);
  }

  applyFilters() {
    this.reload().catch((error) => this.failed(error));
  }

  /** Loads the first page for the current filters. */
  async reload() {
    this.filters = {
      type: $('tx-type').value || undefined,
      project: $('tx-project').value.trim() || undefined,
    };
    this.cursor = null;
    await this.load(true);
  }

  more() {
    this.load(false).catch((error) => this.failed(error));
  }

  failed(error) {
    if (!this.onError(error)) {
      $('tx-status').textContent = `Transactions could not be loaded: ${error.message}`;
      $('tx-status').classList.remove('sr-only');
    }
  }

  /** Loads a page; a newer first-page load (new filters) wins over one in flight. */
  async load(first) {
    if (!first && this.loading) return;
    this.seq += 1;
    const seq = this.seq;
    this.loading = true;
    $('tx-more').disabled = true;
    $('tx-table').setAttribute('aria-busy', 'true');
    try {
      const page = await api.getCredits({ ...this.filters, limit: PAGE_SIZE, cursor: first ? undefined : this.cursor });
      if (seq !== this.seq) return;
      const body = $('tx-body');
      if (first) body.replaceChildren();
      body.append(...page.transactions.map(row));
      this.cursor = page.next_cursor;
      $('tx-more').hidden = !this.cursor;
      $('tx-empty').hidden = body.children.length > 0;
      $('tx-status').classList.add('sr-only');
      $('tx-status').textContent = first
        ? `Showing ${body.children.length} transactions.`
        : `Loaded ${page.transactions.length} more; showing ${body.children.length}.`;
    } finally {
      if (seq === this.seq) {
        this.loading = false;
        $('tx-more').disabled = false;
        $('tx-table').removeAttribute('aria-busy');
      }
    }
  }
}
