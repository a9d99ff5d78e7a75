// Usage charts drawn as SVG: tokens per day of the month, and tokens per project.
// Labels come from users (project names), so they go into text nodes only.

import { s, h } from './dom.js';
import * as fmt from './format.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/** A round number ≥ max for the top of the axis: 1, 2, 2.5 or 5 times a power of ten. */
function niceMax(max) {
  if (max <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * power >= max) return step * power;
  }
  return 10 * power;
}

/** Short axis labels: 1500000 → "1.5M". */
function compact(n) {
  if (n >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${+(n / 1e3).toFixed(1)}k`;
  return String(n);
}

/** The days of [start, end) as "YYYY-MM-DD". */
function daysOf(start, end) {
  const days = [];
  for (let t = Date.parse(start); t < Date.parse(end); t += DAY_MS) {
    days.push(new Date(t).toISOString().slice(0, 10));
  }
  return days;
}

/**
 * A bar chart of tokens per day over the period `[start, end)`.
 * `groups` is the usage API's answer: [{key: "YYYY-MM-DD", tokens}].
 */
export function dailyChart(groups, start, end, width = 720) {
  const byDay = new Map(groups.map((g) => [g.key, g.tokens]));
  const days = daysOf(start, end);
  const values = days.map((d) => byDay.get(d) ?? 0);
  const total = values.reduce((a, b) => a + b, 0);
  const peak = Math.max(0, ...values);
  const top = niceMax(peak);

  const height = 240;
  const pad = { left: 48, right: 8, top: 12, bottom: 28 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const slot = plotW / Math.max(days.length, 1);
  const y = (v) => pad.top + plotH - (Math.max(v, 0) / top) * plotH;

  const peakDay = days[values.indexOf(peak)];
  const summary = total === 0
    ? 'No tokens used this month yet.'
    : `${fmt.tokens(total)} tokens used this month; the busiest day was ${peakDay} with ${fmt.tokens(peak)}.`;

  const svg = s('svg', {
    id: 'usage-day-svg', viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-labelledby': 'usage-day-caption usage-day-desc', preserveAspectRatio: 'xMidYMid meet',
  }, s('desc', { id: 'usage-day-desc' }, summary));

  for (const v of [0, top / 2, top]) {
    svg.append(
      s('line', { class: 'grid', x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v) }),
      s('text', { class: 'axis', x: pad.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, compact(v)),
    );
  }
  days.forEach((day, i) => {
    const v = values[i];
    const barH = Math.max(pad.top + plotH - y(v), v > 0 ? 1 : 0);
    const x = pad.left + i * slot + slot * 0.15;
    svg.append(s('rect', {
      class: 'bar', x: x.toFixed(1), y: (pad.top + plotH - barH).toFixed(1),
      width: (slot * 0.7).toFixed(1), height: barH.toFixed(1), 'data-day': day, 'data-tokens': v,
    }, s('title', {}, `${day}: ${fmt.tokens(v)} tokens`)));
    const dayNumber = Number(day.slice(8));
    const every = slot < 12 ? 10 : 5;
    if (dayNumber === 1 || dayNumber % every === 0) {
      svg.append(s('text', {
        class: 'axis', x: (pad.left + i * slot + slot / 2).toFixed(1), y: height - 8, 'text-anchor': 'middle',
      }, String(dayNumber)));
    }
  });
  return svg;
}

/**
 * Tokens per project, biggest first (the usage API's group_by=project): a table, so the
 * names stay readable at any width, with a bar in each row for the proportions.
 */
export function projectChart(groups) {
  const rows = groups
    .map((g) => ({ label: g.key === null || g.key === 'null' ? 'No project' : String(g.key), tokens: g.tokens }))
    .sort((a, b) => b.tokens - a.tokens);
  if (rows.length === 0) return h('p', { class: 'muted' }, 'No usage by project this month yet.');

  const shown = rows.slice(0, 8);
  if (rows.length > shown.length) {
    const rest = rows.slice(shown.length).reduce((a, r) => a + r.tokens, 0);
    shown.push({ label: `${rows.length - shown.length} other projects`, tokens: rest });
  }
  const top = Math.max(1, ...shown.map((r) => r.tokens));
  const total = rows.reduce((a, r) => a + r.tokens, 0);
  return h('table', { id: 'usage-project-table', class: 'breakdown' },
    h('caption', { class: 'sr-only' }, 'Tokens used by project this month'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Project'),
      h('th', { scope: 'col', class: 'num' }, 'Tokens'),
      h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Share')))),
    h('tbody', {}, shown.map((row) => {
      const share = total > 0 ? Math.round((Math.max(row.tokens, 0) / total) * 100) : 0;
      return h('tr', { 'data-project': row.label, 'data-tokens': row.tokens },
        h('th', { scope: 'row', class: 'project-name' }, row.label),
        h('td', { class: 'num' }, fmt.tokens(row.tokens)),
        h('td', { class: 'share' }, s('svg', {
          viewBox: '0 0 100 10', preserveAspectRatio: 'none', role: 'img', 'aria-label': `${share}% of the month's usage`,
        }, s('rect', { class: 'track', x: 0, y: 0, width: 100, height: 10, rx: 3 }),
        s('rect', { class: 'bar', x: 0, y: 0, width: ((Math.max(row.tokens, 0) / top) * 100).toFixed(1), height: 10, rx: 3 }))));
    })));
}
