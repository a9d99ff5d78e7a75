// axe-core on a page as it is now: the audit every accessibility test runs.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/**
 * Runs axe on the page as it is now and fails on any serious or critical violation.
 * The page's policy (script-src 'self') refuses an injected <script> tag, so axe is
 * evaluated through the DevTools protocol (`page.evaluate` with its source), which the
 * policy does not govern: the page keeps its real CSP while it is checked.
 */
export async function audit(t, page, what) {
  await page.evaluate(AXE_SOURCE);
  const results = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations', 'incomplete'] });
    const list = (items) => items.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((node) => `${node.target.join(' ')}: ${node.failureSummary}`),
    }));
    return { violations: list(r.violations), incomplete: list(r.incomplete) };
  });
  for (const v of results.violations) t.diagnostic(`${what}: ${v.impact} ${v.id} (${v.help}) on ${v.nodes.length} node(s)`);
  // What axe could not decide (text drawn in SVG, say) is listed for a person to look at.
  for (const v of results.incomplete) t.diagnostic(`${what}: needs review: ${v.id} on ${v.nodes.length} node(s)`);
  const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `${what}: serious or critical accessibility violations`);
}
