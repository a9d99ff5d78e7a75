// Formatting of tokens, money and dates. Money stays a decimal string or integer cents:
// never a float, so "€10.00" is exactly what the API said.

const tokenFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const dateFormat = new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' });
const dateTimeFormat = new Intl.DateTimeFormat('en-GB', {
  day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', timeZone: 'UTC',
});

/** 2500000 → "2,500,000" */
export function tokens(n) {
  return tokenFormat.format(n ?? 0);
}

/** 2500000 → "+2,500,000", -1500 → "−1,500" */
export function signedTokens(n) {
  if (n > 0) return `+${tokens(n)}`;
  if (n < 0) return `−${tokens(-n)}`;
  return '0';
}

/** "1234.50" → 123450; null for anything that is not a money string. */
export function cents(eur) {
  const m = /^(\d{1,12})(?:\.(\d{1,2}))?$/.exec(String(eur ?? '').trim());
  if (!m) return null;
  return Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
}

/** 123450 → "1234.50" (the API's money string) */
export function centsToString(c) {
  const whole = Math.floor(c / 100);
  return `${whole}.${String(c % 100).padStart(2, '0')}`;
}

/** "1234.50" or 123450 cents → "€1,234.50" */
export function euros(value) {
  const c = typeof value === 'number' ? value : cents(value);
  if (c === null) return `€${value}`;
  return `€${tokens(Math.floor(c / 100))}.${String(c % 100).padStart(2, '0')}`;
}

/** "2026-12-01T00:00:00.000Z" → "1 December 2026" */
export function date(iso) {
  return dateFormat.format(new Date(iso));
}

/** "2026-11-25T10:00:00.000Z" → "25 Nov 2026, 10:00" (UTC) */
export function dateTime(iso) {
  return `${dateTimeFormat.format(new Date(iso))} UTC`;
}

/** "standard" → "Standard" */
export function titleCase(s) {
  const text = String(s ?? '');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Card brands as Stripe names them ("visa") → as people write them ("Visa"). */
const CARD_BRANDS = {
  amex: 'American Express',
  cartes_bancaires: 'Cartes Bancaires',
  diners: 'Diners Club',
  discover: 'Discover',
  eftpos_au: 'eftpos',
  jcb: 'JCB',
  mastercard: 'Mastercard',
  unionpay: 'UnionPay',
  visa: 'Visa',
};

/** "visa" → "Visa"; an unknown brand → "Card" */
export function cardBrand(brand) {
  if (CARD_BRANDS[brand]) return CARD_BRANDS[brand];
  return brand && brand !== 'unknown' ? titleCase(brand.replace(/_/g, ' ')) : 'Card';
}

/** {exp_month: 3, exp_year: 2030} → "03/2030" */
export function cardExpiry(card) {
  return `${String(card.exp_month).padStart(2, '0')}/${card.exp_year}`;
}
