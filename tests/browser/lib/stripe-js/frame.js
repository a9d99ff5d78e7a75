// The stand-in's frames on https://js.stripe.com (see v3.js). #payment is the Payment
// Element: a card number, which Stripe's test card numbers turn into Stripe's test
// payment methods. #challenge is the bank's check: complete it, or fail it. Each takes
// one kind of request from v3.js, on the MessageChannel port that comes with it, and
// calls Stripe's API from here as Stripe.js does from its own frames.

/** Stripe's test card numbers → the test payment methods fake-stripe knows. */
const TEST_CARDS = {
  '4242424242424242': 'pm_card_visa',
  '5555555555554444': 'pm_card_mastercard',
  '4000000000000002': 'pm_card_chargeDeclined',
  '4000000000009995': 'pm_card_chargeDeclinedInsufficientFunds',
  '4000002760003184': 'pm_card_authenticationRequired',
};

const role = location.hash.slice(1);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

/** POSTs to Stripe's API as the browser does (a form body: no preflight); answers `{body}` or `{error}`. */
async function stripeApi(path, params) {
  try {
    const response = await fetch(`https://api.stripe.com${path}`, { method: 'POST', body: new URLSearchParams(params) });
    const body = await response.json();
    return response.ok ? { body } : { error: body.error };
  } catch {
    return { error: { type: 'api_connection_error', message: 'We could not connect to Stripe.' } };
  }
}

/** The intent's id is the client secret up to "_secret_", as in Stripe's. */
const intentId = (clientSecret) => clientSecret.split('_secret_')[0];

async function confirmSetup({ key, clientSecret }) {
  const number = document.getElementById('card-number').value.replace(/\D/g, '');
  if (number.length < 16) {
    return { error: { type: 'validation_error', code: 'incomplete_number', message: 'Your card number is incomplete.' } };
  }
  const paymentMethod = TEST_CARDS[number];
  if (!paymentMethod) {
    return { error: { type: 'validation_error', code: 'invalid_number', message: 'Your card number is invalid.' } };
  }
  const { body, error } = await stripeApi(`/v1/setup_intents/${intentId(clientSecret)}/confirm`, {
    key, client_secret: clientSecret, payment_method: paymentMethod,
  });
  return error ? { error } : { setupIntent: body };
}

let decide = null; // resolves with the cardholder's choice on the challenge

async function confirmCardPayment({ key, clientSecret, paymentMethod }) {
  const completed = await new Promise((resolve) => { decide = resolve; });
  if (!completed) {
    return {
      error: {
        type: 'invalid_request_error',
        code: 'payment_intent_authentication_failure',
        message: 'We are unable to authenticate your payment method. Please choose a different payment method and try again.',
      },
    };
  }
  const params = { key, client_secret: clientSecret };
  if (paymentMethod) params.payment_method = paymentMethod;
  const { body, error } = await stripeApi(`/v1/payment_intents/${intentId(clientSecret)}/confirm`, params);
  return error ? { error } : { paymentIntent: body };
}

const handlers = { payment: { confirmSetup }, challenge: { confirmCardPayment } };

// Replies go only to the port that came with the request.
window.addEventListener('message', (event) => {
  const [port] = event.ports;
  const handle = handlers[role]?.[event.data?.op];
  if (!port || !handle) return;
  handle(event.data).then((reply) => port.postMessage(reply));
});

if (role === 'payment') {
  document.body.append(
    el('label', { for: 'card-number' }, 'Card number'),
    el('input', {
      id: 'card-number', inputmode: 'numeric', autocomplete: 'cc-number', placeholder: '1234 1234 1234 1234',
      'aria-describedby': 'card-help',
    }),
    el('p', { id: 'card-help' }, 'Test mode (stand-in for Stripe): use a Stripe test card number.'),
  );
} else if (role === 'challenge') {
  const complete = el('button', { type: 'button' }, 'Complete authentication');
  const fail = el('button', { type: 'button', class: 'fail' }, 'Fail authentication');
  // The choice lands a moment after the click, as a bank's page answers: the page
  // removes this frame then, and a frame removed while its click is still being
  // dispatched leaves the test's click waiting.
  const choose = (completed) => () => setTimeout(() => decide?.(completed), 100);
  complete.addEventListener('click', choose(true));
  fail.addEventListener('click', choose(false));
  document.body.append(el('div', { class: 'challenge', role: 'dialog', 'aria-labelledby': 'challenge-title' },
    el('h1', { id: 'challenge-title' }, 'Confirm your payment'),
    el('p', {}, 'Your bank asks you to confirm this payment (a 3D Secure test page).'),
    complete, fail));
  complete.focus();
}
