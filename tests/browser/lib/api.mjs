// The public API as the platform back end and the tests' seeding see it (node's fetch).

export const BASE_URL = (process.env.DASHBOARD_URL ?? 'http://127.0.0.1:3000').replace(/\/$/, '');
export const SERVICE_TOKEN = process.env.SPIN_VARIABLE_SERVICE_TOKEN ?? 'dev-service-token';

/**
 * One request to the app at `base` (the one the tests run against unless said);
 * answers `{status, body, headers}` and never throws on an HTTP error.
 */
export async function call(method, path, { token, body, headers = {}, clock, base = BASE_URL } = {}) {
  const init = { method, headers: { ...headers } };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (clock) init.headers['X-Test-Clock'] = clock;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(`${base}${path}`, { ...init, signal: AbortSignal.timeout(15_000) });
  const text = await response.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: response.status, body: json, text, headers: response.headers };
}

/** Like `call`, but fails unless the status is the expected one; answers the body. */
export async function expect(status, method, path, options) {
  const r = await call(method, path, options);
  if (r.status !== status) {
    throw new Error(`${method} ${path}: expected ${status}, got ${r.status}: ${r.text}`);
  }
  return r.body;
}

/** The service token's calls. */
export const service = {
  createAccount: (accountId, plan) =>
    expect(201, 'POST', '/api/admin/accounts', { token: SERVICE_TOKEN, body: { account_id: accountId, plan } }),
  deduct: (body, clock) =>
    expect(201, 'POST', '/api/billing/credits/deductions', { token: SERVICE_TOKEN, body, clock }),
  refund: (body, clock) =>
    expect(201, 'POST', '/api/billing/credits/refunds', { token: SERVICE_TOKEN, body, clock }),
  hold: (body, clock) =>
    expect(201, 'POST', '/api/billing/credits/holds', { token: SERVICE_TOKEN, body, clock }),
  voidHold: (id, accountId) =>
    expect(200, 'POST', `/api/billing/credits/holds/${id}/void`, { token: SERVICE_TOKEN, body: { account_id: accountId } }),
  rechargeCheck: () => expect(200, 'POST', '/api/internal/recharge-check', { token: SERVICE_TOKEN, body: {} }),
};

/** An account key's calls. */
export const account = (key) => ({
  savePaymentMethod: (paymentMethod, clock) =>
    expect(200, 'PUT', '/api/billing/payment-method', { token: key, body: { payment_method: paymentMethod }, clock }),
  buy: (pack, clock) =>
    expect(201, 'POST', '/api/billing/credits/purchases', { token: key, body: { pack }, clock }),
  credits: (query = '') => expect(200, 'GET', `/api/billing/credits${query}`, { token: key }),
  autoRecharge: () => expect(200, 'GET', '/api/billing/credits/auto-recharge', { token: key }),
  saveAutoRecharge: (settings) =>
    expect(200, 'PUT', '/api/billing/credits/auto-recharge', { token: key, body: settings }),
});

/** Waits until the server answers at all (any HTTP status), up to `ms`. */
export async function waitForServer(ms = 60_000) {
  const until = Date.now() + ms;
  for (;;) {
    try {
      await fetch(`${BASE_URL}/api/billing/credits/packs`, { signal: AbortSignal.timeout(2_000) });
      return;
    } catch (error) {
      if (Date.now() > until) throw new Error(`${BASE_URL} did not answer within ${ms} ms: ${error.message}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
