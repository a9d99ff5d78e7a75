// Headless Chromium (Debian's, driven by playwright-core) and what every test checks:
// no JavaScript dialogs, no page errors, no CSP violations, no request leaving the app.

import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { BASE_URL } from './api.mjs';
import { seed } from '../seed.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '../../..');

const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
];

let accountsPromise;
/** The seeded accounts: from $DASHBOARD_ACCOUNTS (written by seed.mjs), else seeded now. */
export function accounts() {
  accountsPromise ??= process.env.DASHBOARD_ACCOUNTS
    ? Promise.resolve(JSON.parse(fs.readFileSync(process.env.DASHBOARD_ACCOUNTS, 'utf8')))
    : seed(`-${process.pid}`);
  return accountsPromise;
}

/** One browser per test file, closed when the file is done. */
export function useBrowser() {
  const shared = {};
  before(async () => {
    shared.browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 30_000,
    });
  });
  after(async () => {
    await shared.browser?.close();
  });
  return shared;
}

/**
 * A fresh browser context (own sessionStorage) and page, watched for trouble; `app` is
 * the app it may talk to (the one the tests run against unless said).
 * Call `done()` at the end of a test: it asserts nothing bad happened and closes it.
 */
export async function openPage(browser, { viewport = { width: 1280, height: 900 }, app = BASE_URL } = {}) {
  const context = await browser.newContext({ viewport, serviceWorkers: 'block' });
  context.setDefaultTimeout(10_000);
  const trouble = { dialogs: [], pageErrors: [], consoleErrors: [], external: [] };
  const origin = new URL(app).origin;
  // Only the app itself may be asked for anything: no CDN, no outside calls.
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(`${origin}/`) || url.startsWith('data:')) return route.continue();
    trouble.external.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  page.on('dialog', (dialog) => {
    trouble.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  page.on('pageerror', (error) => trouble.pageErrors.push(error.message));
  page.on('console', (msg) => {
    // Failed API calls log a resource error on purpose in some tests (402, 403); CSP never.
    if (msg.type() === 'error' && !/Failed to load resource/.test(msg.text())) trouble.consoleErrors.push(msg.text());
  });
  return {
    page,
    context,
    trouble,
    async done() {
      await context.close();
      assert.deepEqual(trouble.dialogs, [], 'no JavaScript dialog may open');
      assert.deepEqual(trouble.pageErrors, [], 'no uncaught page error');
      assert.deepEqual(trouble.consoleErrors, [], 'no console error (CSP violations show here)');
      assert.deepEqual(trouble.external, [], 'no request may leave the app');
    },
  };
}

/** Opens the dashboard (of the app at `base`) and signs in with an account key, the way a person does. */
export async function signIn(page, key, hash = '', base = BASE_URL) {
  await page.goto(`${base}/${hash}`);
  await page.getByLabel('Account key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('body[data-ready="true"]').waitFor();
}

/** Where screenshots go: docs/ when UPDATE_SCREENSHOTS=1, else the artifacts folder (or none). */
export function screenshotPath(name) {
  if (process.env.UPDATE_SCREENSHOTS === '1') return path.join(REPO, 'docs', name);
  if (process.env.ARTIFACTS_DIR) return path.join(process.env.ARTIFACTS_DIR, name);
  return null;
}
