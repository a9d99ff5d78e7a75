// The public API, as the account key sees it. The key is kept in sessionStorage only:
// it survives a reload of this tab and is gone when the tab closes.

const KEY = 'credits.accountKey';
const PAYMENT_METHOD = 'credits.paymentMethod';

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  set key(value) {
    if (value) sessionStorage.setItem(KEY, value);
    else sessionStorage.removeItem(KEY);
  },
  /** The payment method saved in this session (for an API without GET /api/billing/payment-method). */
  get paymentMethod() { return sessionStorage.getItem(PAYMENT_METHOD); },
  set paymentMethod(value) {
    if (value) sessionStorage.setItem(PAYMENT_METHOD, value);
    else sessionStorage.removeItem(PAYMENT_METHOD);
  },
  clear() {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(PAYMENT_METHOD);
  },
};

/**
 * An error answer of the API: `{"error": {"code", "message"}}` plus the status, and the
 * `client_secret` a purchase waiting for the cardholder's bank carries (402
 * authentication_required).
 */
export class ApiError extends Error {
  constructor(status, code, message, clientSecret = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.clientSecret = clientSecret;
  }
}

async function request(method, path, { query, body, headers = {}, key = session.key } = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, value);
  }
  const init = { method, headers: { Accept: 'application/json', Authorization: `Bearer ${key}`, ...headers } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    throw new ApiError(0, 'network_error', 'The server could not be reached. Check your connection and try again.');
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = data?.error;
    throw new ApiError(response.status, error?.code ?? 'http_error', error?.message ?? `The server answered ${response.status}.`,
      typeof error?.client_secret === 'string' ? error.client_secret : null);
  }
  return data;
}

/** GET /api/billing/credits — summary and one page of transactions. */
export function getCredits(query = {}, key) {
  return request('GET', '/api/billing/credits', { query, key });
}

/** GET /api/billing/credits/packs */
export function getPacks() {
  return request('GET', '/api/billing/credits/packs');
}

/** GET /api/billing/credits/usage?group_by=... (current month by default) */
export function getUsage(groupBy) {
  return request('GET', '/api/billing/credits/usage', { query: { group_by: groupBy } });
}

/** POST /api/billing/credits/purchases, idempotent under `idempotencyKey`. */
export function buyPack(pack, idempotencyKey) {
  return request('POST', '/api/billing/credits/purchases', {
    body: { pack },
    headers: { 'Idempotency-Key': idempotencyKey },
  });
}

/**
 * GET /api/billing/payment-method — `{"payment_method": "pm_..." | null, "card": {...} | null}`.
 * Not in the contract (an extension of this API); callers treat 404/405 as "not known".
 */
export function getPaymentMethod() {
  return request('GET', '/api/billing/payment-method');
}

/**
 * POST /api/billing/payment-method/setup — how a card is saved here: `{"provider":
 * "sandbox"}`, or `{"provider": "stripe", "client_secret", "publishable_key"}` (a
 * SetupIntent for Stripe.js).
 */
export function setupPaymentMethod() {
  return request('POST', '/api/billing/payment-method/setup');
}

/** PUT /api/billing/payment-method — answers `{"payment_method", "card"}` (`card` null in the sandbox). */
export function savePaymentMethod(paymentMethod) {
  return request('PUT', '/api/billing/payment-method', { body: { payment_method: paymentMethod } });
}

/** GET /api/billing/credits/auto-recharge */
export function getAutoRecharge() {
  return request('GET', '/api/billing/credits/auto-recharge');
}

/** PUT /api/billing/credits/auto-recharge */
export function saveAutoRecharge(settings) {
  return request('PUT', '/api/billing/credits/auto-recharge', { body: settings });
}
