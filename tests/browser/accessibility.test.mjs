// Accessibility: axe-core on every view and dialog of the dashboard (no serious or
// critical violation), and the page used with the keyboard alone: Tab goes through the
// controls in the order they are seen, and wherever focus is, it shows.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useBrowser, openPage, signIn, accounts } from './lib/browser.mjs';
import { account, service, BASE_URL } from './lib/api.mjs';
import { audit } from './lib/axe.mjs';

const shared = useBrowser();
let n = 0;
const fresh = (what) => `${what}-${Date.now()}-${(n += 1)}`;

/** A pro account with a card whose credits ran out: the "no tokens left" alert (error). */
async function depletedAccount() {
  const id = fresh('a11y-empty');
  const { api_key: key } = await service.createAccount(id, 'pro');
  await account(key).savePaymentMethod('pm_card_visa');
  await service.deduct({ account_id: id, tokens: 2_000_000, operation: 'chat' });
  return key;
}

test('axe: the sign-in page, empty and with its error', async (t) => {
  const { page, done } = await openPage(shared.browser);
  await page.goto(`${BASE_URL}/`);
  await page.getByLabel('Account key').waitFor();
  await audit(t, page, 'sign-in');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#sign-in-error').filter({ hasText: 'Enter your account key' }).waitFor();
  await audit(t, page, 'sign-in with an error');
  await done();
});

test('axe: the Billing view with history and charts, wide and narrow', async (t) => {
  const { acme } = await accounts();
  const { page, done } = await openPage(shared.browser);
  await signIn(page, acme.key);
  await page.locator('#tx-body tr').first().waitFor();
  await page.locator('#usage-day-svg').waitFor();
  await audit(t, page, 'Billing');
  await page.setViewportSize({ width: 375, height: 812 });
  await audit(t, page, 'Billing, narrow');
  await done();
});

test('axe: the Billing view with the upgrade hint', async (t) => {
  const id = fresh('a11y-spender');
  const { api_key: key } = await service.createAccount(id, 'pro');
  await account(key).savePaymentMethod('pm_card_visa');
  await account(key).buy('pro');
  await account(key).buy('standard');
  const { page, done } = await openPage(shared.browser);
  await signIn(page, key);
  await page.locator('#upgrade-hint').waitFor();
  await audit(t, page, 'Billing with the upgrade hint');
  await done();
});

test('axe: the Credits view, with form errors, and the purchase dialog open', async (t) => {
  const { buyer } = await accounts();
  const { page, done } = await openPage(shared.browser);
  await signIn(page, buyer.key, '#/credits');
  await page.locator('#packs > li').first().waitFor();
  await audit(t, page, 'Credits');

  await page.getByLabel('Payment method id').fill('visa');
  await page.getByRole('button', { name: 'Save payment method' }).click();
  await page.locator('#pm-message.error').waitFor();
  await page.getByLabel('Enable auto-recharge').check();
  await page.getByRole('button', { name: 'Save auto-recharge' }).click();
  await page.locator('#ar-message.error').waitFor();
  await audit(t, page, 'Credits with form errors');

  await page.getByRole('button', { name: /Buy the Standard pack/ }).click();
  await page.getByRole('dialog').waitFor();
  await audit(t, page, 'purchase dialog');
  await page.keyboard.press('Escape');
  await page.getByRole('dialog').waitFor({ state: 'hidden' });
  await done();
});

test('axe: the free plan on Credits, after a refused purchase', async (t) => {
  const { free } = await accounts();
  const { page, done } = await openPage(shared.browser);
  await signIn(page, free.key, '#/credits');
  await page.getByRole('button', { name: /Buy the Starter pack/ }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Buy for €5.00' }).click();
  await page.locator('#purchase-message.error').waitFor();
  await audit(t, page, 'Credits, free plan, purchase refused');
  await done();
});

test('axe: alerts shown, on Billing and on Credits (with the last auto-recharge error)', async (t) => {
  const { autodecline } = await accounts();
  const depleted = await depletedAccount();
  for (const [what, key] of [['declined auto-recharge', autodecline.key], ['no tokens left', depleted]]) {
    const { page, done } = await openPage(shared.browser);
    await signIn(page, key);
    await page.locator('#alerts > li').first().waitFor();
    await audit(t, page, `Billing, alert: ${what}`);
    await page.getByRole('link', { name: 'Credits', exact: true }).click();
    await page.locator('#view-credits:not([hidden])').waitFor();
    await audit(t, page, `Credits, alert: ${what}`);
    await done();
  }
});

test('axe: tokens held by a running AI call', async (t) => {
  const id = fresh('a11y-holder');
  const { api_key: key } = await service.createAccount(id, 'pro');
  await service.hold({ account_id: id, tokens: 30_000, operation: 'chat', expires_in_seconds: 3600 });
  const { page, done } = await openPage(shared.browser);
  await signIn(page, key);
  assert.equal(await page.locator('#held-tokens').textContent(), '30,000');
  await audit(t, page, 'Billing with a hold');
  await done();
});

// ---- Keyboard alone ---------------------------------------------------------------

/**
 * Puts the keyboard at the top of the page, as on a fresh load: focus on a marker
 * before the first element (focusable by script only), so the next Tab goes to the
 * first control. The marker goes when it loses focus.
 */
async function focusTop(page) {
  await page.evaluate(() => {
    const start = document.createElement('span');
    start.tabIndex = -1;
    start.addEventListener('blur', () => start.remove(), { once: true });
    document.body.prepend(start);
    start.focus();
    window.scrollTo(0, 0);
  });
}

/**
 * Presses Tab from the top of the page until focus comes back round, and answers
 * what got focus, in order: a name for each, where it is on the page, and how it
 * shows that it has focus.
 */
async function tabThrough(page, max = 80) {
  await focusTop(page);
  const stops = [];
  for (let i = 0; i < max; i += 1) {
    await page.keyboard.press('Tab');
    const stop = await page.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return null;
      const name = el.id ? `#${el.id}`
        : el.dataset.pack ? `pack:${el.dataset.pack}`
          : el.dataset.target ? `alert:${el.dataset.target}`
            : `${el.tagName.toLowerCase()}:${el.textContent.trim()}`;
      const box = el.getBoundingClientRect();
      return {
        name,
        top: box.top + window.scrollY,
        bottom: box.bottom + window.scrollY,
        left: box.left + window.scrollX,
        focusVisible: el.matches(':focus-visible'),
      };
    });
    if (stop === null || (stops.length > 0 && stop.name === stops[0].name)) break;
    stops.push(stop);
  }
  return stops;
}

/** Each stop comes after the one before it as the page is read: lower, or on the same line further right. */
function assertVisualOrder(stops) {
  for (let i = 1; i < stops.length; i += 1) {
    const [a, b] = [stops[i - 1], stops[i]];
    const sameLine = b.top < a.bottom && a.top < b.bottom;
    const ok = sameLine ? b.left >= a.left : b.top >= a.top;
    assert.ok(ok, `Tab goes from ${a.name} (${Math.round(a.left)},${Math.round(a.top)}) `
      + `to ${b.name} (${Math.round(b.left)},${Math.round(b.top)}): against the reading order`);
  }
}

/** `expected` appear in `names` in this order (other stops may come between). */
function assertSubsequence(names, expected) {
  let at = 0;
  for (const name of names) if (name === expected[at]) at += 1;
  assert.equal(at, expected.length, `expected, in order, ${expected.join(' → ')}; Tab went ${names.join(' → ')}`);
}

/** The relative luminance of an sRGB colour (WCAG 2). */
function luminance([r, g, b]) {
  const lin = (c) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

function contrast(a, b) {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

/**
 * How the focused element shows focus, from its computed style: its outline (or
 * else its box-shadow ring), the ring's colour blended onto what is behind the
 * element, and that backdrop's colour.
 */
async function focusIndicator(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    const parse = (text) => {
      const m = text.match(/rgba?\(([^)]+)\)/);
      if (!m) return null;
      const [r, g, b, a = 1] = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
      return { rgb: [r, g, b], alpha: a };
    };
    // The colour behind the element: the first ancestor with an opaque background.
    let backdrop = [255, 255, 255];
    for (let node = el.parentElement; node; node = node.parentElement) {
      const bg = parse(getComputedStyle(node).backgroundColor);
      if (bg && bg.alpha === 1) {
        backdrop = bg.rgb;
        break;
      }
    }
    const style = getComputedStyle(el);
    let ring = null;
    let width = 0;
    if (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0) {
      ring = parse(style.outlineColor);
      width = parseFloat(style.outlineWidth);
    } else if (style.boxShadow && style.boxShadow !== 'none') {
      ring = parse(style.boxShadow);
      const lengths = style.boxShadow.replace(/rgba?\([^)]*\)/, '').match(/-?[\d.]+px/g) ?? [];
      width = parseFloat(lengths[3] ?? '0'); // x, y, blur, spread
    }
    if (!ring) return { width: 0, ring: null, backdrop, style: `${style.outline} / ${style.boxShadow}` };
    const blended = ring.rgb.map((c, i) => Math.round(c * ring.alpha + backdrop[i] * (1 - ring.alpha)));
    return { width, ring: blended, backdrop, style: `${style.outline} / ${style.boxShadow}` };
  });
}

/** Tabs through the page and checks every stop: in reading order, and focus visible on each. */
async function checkKeyboard(page, expected) {
  const stops = await tabThrough(page);
  const names = stops.map((s) => s.name);
  assertSubsequence(names, expected);
  assertVisualOrder(stops);
  // Each stop again, this time looking at how it shows focus.
  await focusTop(page);
  for (const stop of stops) {
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.matches(':focus-visible')), true,
      `${stop.name} matches :focus-visible after Tab`);
    const focus = await focusIndicator(page);
    assert.ok(focus.ring && focus.width >= 2,
      `${stop.name} shows focus with an outline or ring at least 2px wide (${focus.style})`);
    const ratio = contrast(focus.ring, focus.backdrop);
    assert.ok(ratio >= 3, `${stop.name}'s focus ring contrasts ${ratio.toFixed(2)}:1 with what is behind it (need 3:1)`);
  }
  return names;
}

test('keyboard: the sign-in page in reading order, focus visible on each stop', async () => {
  const { page, done } = await openPage(shared.browser);
  await page.goto(`${BASE_URL}/`);
  await page.getByLabel('Account key').waitFor();
  const names = await checkKeyboard(page, ['a:Skip to content', '#crumb-billing', '#account-key', 'button:Sign in']);
  assert.ok(!names.includes('#tab-billing'), 'nothing of the hidden dashboard takes focus');

  // Signing in with the keyboard alone: type the key, Enter.
  const { buyer } = await accounts();
  await page.getByLabel('Account key').focus();
  await page.keyboard.type(buyer.key);
  await page.keyboard.press('Enter');
  await page.locator('body[data-ready="true"]').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'main', 'focus moves to the content');
  await done();
});

test('keyboard: Billing with an alert, in reading order: top bar, tabs, alert action, filters', async () => {
  const key = await depletedAccount();
  const { page, done } = await openPage(shared.browser);
  await signIn(page, key);
  await page.locator('#alerts > li').first().waitFor();
  await checkKeyboard(page, [
    'a:Skip to content', '#crumb-billing', '#sign-out', '#tab-billing', '#tab-credits', 'alert:packs-title',
    'a:Buy credits', '#tx-type', '#tx-project', 'button:Apply filters', 'button:Clear',
  ]);
  // The skip link takes the keyboard past the top bar and the tabs.
  await focusTop(page);
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'main');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'tab-billing');
  await done();
});

test('keyboard: Credits in reading order: tabs, alert action, packs, payment method, auto-recharge', async () => {
  const key = await depletedAccount();
  const { page, done } = await openPage(shared.browser);
  await signIn(page, key, '#/credits');
  await page.locator('#packs > li').first().waitFor();
  await checkKeyboard(page, [
    'a:Skip to content', '#crumb-billing', '#crumb-credits', '#sign-out', '#tab-billing', '#tab-credits',
    'alert:packs-title', 'pack:starter', 'pack:standard', 'pack:plus', 'pack:pro',
    '#pm-input', 'button:Save payment method',
    '#ar-enabled', '#ar-pack', '#ar-threshold', '#ar-limit', 'button:Save auto-recharge',
  ]);
  await done();
});

test('keyboard: the purchase dialog keeps focus inside, and Escape gives it back to the pack', async () => {
  const { keyboard } = await accounts();
  const { page, done } = await openPage(shared.browser);
  await signIn(page, keyboard.key, '#/credits');
  const opener = page.getByRole('button', { name: /Buy the Plus pack/ });
  await opener.focus();
  await page.keyboard.press('Enter');
  await page.getByRole('dialog').waitFor();
  const inDialog = () => page.evaluate(() => ({
    inside: document.getElementById('confirm-dialog').contains(document.activeElement),
    id: document.activeElement?.id ?? '',
  }));
  assert.deepEqual(await inDialog(), { inside: true, id: 'confirm-cancel' }, 'focus starts on Cancel, the safe choice');
  const seen = new Set();
  for (let i = 0; i < 6; i += 1) {
    await page.keyboard.press('Tab');
    const where = await inDialog();
    // Past the last button focus may leave the document for the browser's own UI,
    // never for the page behind the dialog.
    if (where.id) {
      assert.ok(where.inside, `Tab reached ${where.id} behind the open dialog`);
      seen.add(where.id);
      const focus = await focusIndicator(page);
      assert.ok(focus.ring && focus.width >= 2 && contrast(focus.ring, focus.backdrop) >= 3,
        `${where.id} shows focus (${focus.style})`);
    }
  }
  assert.deepEqual([...seen].sort(), ['confirm-cancel', 'confirm-ok']);
  await page.keyboard.press('Escape');
  await page.getByRole('dialog').waitFor({ state: 'hidden' });
  assert.equal(await page.evaluate(() => document.activeElement.dataset.pack), 'plus', 'focus returns to the pack');
  await done();
});
