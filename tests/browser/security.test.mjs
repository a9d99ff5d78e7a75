// What users wrote is shown as text, never run; the page is served with a strict policy.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useBrowser, openPage, signIn, accounts } from './lib/browser.mjs';
import { call } from './lib/api.mjs';
import { STRIPE_APP_URL } from './lib/stripe.mjs';
import { XSS } from './seed.mjs';

const shared = useBrowser();

test('a deduction labelled <img src=x onerror=alert(1)> is shown as text and runs nothing', async () => {
  const { acme } = await accounts();
  const { page, trouble, done } = await openPage(shared.browser);
  const fetchedX = [];
  page.on('request', (req) => {
    if (/\/x$/.test(new URL(req.url()).pathname)) fetchedX.push(req.url());
  });
  await signIn(page, acme.key);

  const newest = page.locator('#tx-body tr').first();
  assert.equal(await newest.locator('.operation').textContent(), XSS.operation);
  assert.equal(await newest.locator('.project').textContent(), XSS.project);
  assert.equal(await newest.locator('.session').textContent(), XSS.session);
  assert.equal(await page.locator('#tx-body img, #tx-body script, #tx-body b, #tx-body svg').count(), 0);
  const reason = page.locator('#tx-body .reason').first();
  assert.equal(await reason.textContent(), XSS.reason);

  // The project breakdown shows the hostile project name as text too.
  const names = await page.locator('#usage-project-table tbody th').allTextContents();
  assert.ok(names.includes(XSS.project), names.join());
  assert.equal(await page.locator('#usage-project-table b').count(), 0);

  // Give an injected handler every chance to fire, then check that none did.
  await page.waitForTimeout(500);
  assert.deepEqual(fetchedX, [], 'no <img src=x> was created');
  assert.deepEqual(trouble.dialogs, []);
  await done();
});

test('the page is served with a content security policy that forbids inline script', async () => {
  const r = await call('GET', '/');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/html; charset=utf-8$/);
  const csp = r.headers.get('content-security-policy');
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /script-src 'self'( |;|$)/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(r.headers.get('cache-control'), 'no-cache');
  assert.ok(r.headers.get('etag'));
  assert.doesNotMatch(r.text, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline <script> in the page');
  assert.doesNotMatch(r.text, /\son[a-z]+=/i, 'no inline event handlers');
  assert.doesNotMatch(r.text, /https?:\/\//, 'no outside address: works offline');
});

/** The policy's directives: name → sources as written. */
function directives(policy) {
  return Object.fromEntries(policy.split(';').map((d) => d.trim()).filter(Boolean).map((d) => {
    const [name, ...sources] = d.split(/\s+/);
    return [name, sources.join(' ')];
  }));
}

test('the policy lets in exactly https://js.stripe.com, for scripts and frames, Stripe\'s API for Stripe.js\'s calls, and nothing else from outside', async (t) => {
  const apps = [['sandbox', undefined], ['stripe', STRIPE_APP_URL]].filter(([, base]) => base !== null);
  if (apps.length < 2) t.diagnostic('the Stripe app is not running: the sandbox app only');
  for (const [provider, base] of apps) {
    for (const path of ['/', '/assets/app.js', '/assets/nope.js']) {
      const policy = directives((await call('GET', path, { base })).headers.get('content-security-policy'));
      const where = `${provider} ${path}`;
      assert.equal(policy['script-src'], "'self' https://js.stripe.com", where);
      assert.equal(policy['frame-src'], 'https://js.stripe.com', where);
      for (const [name, sources] of Object.entries(policy)) {
        if (name === 'script-src' || name === 'frame-src' || name === 'connect-src') continue;
        assert.doesNotMatch(sources, /https?:|\*|stripe/, `${where}: ${name} lets in nothing from outside`);
      }
      assert.equal(policy['connect-src'], "'self' https://api.stripe.com", where);
      assert.equal(policy['frame-ancestors'], "'none'", where);
    }
  }
});

test('assets have their types; an unknown one is the API\'s JSON 404; other methods are 405', async () => {
  const js = await call('GET', '/assets/app.js');
  assert.equal(js.status, 200);
  assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.equal(js.headers.get('x-content-type-options'), 'nosniff');
  const css = await call('GET', '/assets/app.css');
  assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8');

  const missing = await call('GET', '/assets/nope.js');
  assert.equal(missing.status, 404);
  assert.match(missing.headers.get('content-type'), /^application\/json/);
  assert.equal(missing.body.error.code, 'not_found');
  assert.equal(typeof missing.body.error.message, 'string');

  const post = await call('POST', '/', { body: {} });
  assert.equal(post.status, 405);
  assert.equal(post.body.error.code, 'method_not_allowed');

  const head = await call('HEAD', '/');
  assert.equal(head.status, 200);
  assert.equal(head.text, '');

  const cached = await call('GET', '/assets/app.js', { headers: { 'If-None-Match': js.headers.get('etag') } });
  assert.equal(cached.status, 304);
});
