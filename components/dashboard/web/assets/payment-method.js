// Settings → Billing → Credits → Payment method: the saved one, and a form for another.
// The API says which form (POST /api/billing/payment-method/setup). With Stripe, the
// card is typed into Stripe's Payment Element and confirmed with Stripe.js on the
// SetupIntent the API made; the resulting payment method is saved (PUT
// /api/billing/payment-method) and shown by brand, last 4 digits and expiry. With the
// sandbox, a payment method id is typed, and the form says that this is test mode.

import * as api from './api.js';
import { $, h, replace, message } from './dom.js';
import * as fmt from './format.js';
import { stripeFor } from './stripe.js';

/** "Visa •••• 4242, expires 12/2030": screen readers hear "ending in" instead of four dots. */
function cardParts(card) {
  return [
    `${fmt.cardBrand(card.brand)} `,
    h('span', { 'aria-hidden': 'true' }, '•••• '),
    h('span', { class: 'sr-only' }, 'ending in '),
    `${card.last4}, expires ${fmt.cardExpiry(card)}`,
  ];
}

/** The payment method section. */
export class PaymentMethod {
  constructor({ onError }) {
    this.onError = onError;
    /** 'stripe', 'sandbox', 'ids' (an API without the setup route), or null until known. */
    this.provider = null;
    this.publishableKey = null;
    /** The saved card as the API shows it; null in the sandbox or when none is saved. */
    this.card = null;
    this.serverKnows = false;
    /** { stripe, elements, element } while Stripe's card form is mounted. */
    this.form = null;
    // Each prepare() counts up; work started by an older one (another account's
    // SetupIntent, before a sign-out) then stands down.
    this.generation = 0;

    $('pm-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.saveId();
    });
    $('pm-card-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.saveCard();
    });
  }

  /**
   * Asks the API how a payment method is saved for this account and shows that form.
   * With Stripe this makes a SetupIntent, so it runs once per sign-in and after each
   * card saved (a SetupIntent saves one card).
   */
  async prepare() {
    const generation = ++this.generation;
    this.unmount();
    let setup;
    try {
      setup = await api.setupPaymentMethod();
    } catch (error) {
      if (generation !== this.generation) return;
      if (error.status === 404 || error.status === 405) {
        // An API from before the setup route: ids only, as it always was.
        this.showForm('ids');
        return;
      }
      this.showForm(null);
      if (!this.onError(error)) message('pm-message', `A payment method cannot be saved right now: ${error.message}`, 'error');
      throw error;
    }
    if (generation !== this.generation) return;
    if (setup.provider === 'stripe') {
      this.publishableKey = setup.publishable_key;
      this.showForm('stripe');
      this.mount(setup.client_secret, generation);
    } else {
      this.showForm(setup.provider === 'sandbox' ? 'sandbox' : 'ids');
    }
  }

  /** Shows the form for `provider` (null: none), and says so when it is test mode. */
  showForm(provider) {
    this.provider = provider;
    const testMode = provider === 'sandbox';
    $('pm-form').hidden = provider !== 'sandbox' && provider !== 'ids';
    $('pm-test-mode').hidden = !testMode;
    $('pm-input').setAttribute('aria-describedby', testMode ? 'pm-test-mode pm-help' : 'pm-help');
    $('pm-card-form').hidden = provider !== 'stripe';
  }

  /** Mounts Stripe's Payment Element on the SetupIntent; saving waits until it is ready. */
  async mount(clientSecret, generation) {
    const save = $('pm-card-save');
    save.disabled = true;
    message('pm-card-status', 'Loading the secure card form from Stripe…');
    try {
      const stripe = await stripeFor(this.publishableKey);
      if (generation !== this.generation) return;
      const elements = stripe.elements({ clientSecret });
      const element = elements.create('payment');
      element.on('ready', () => {
        if (generation !== this.generation) return;
        save.disabled = false;
        message('pm-card-status', '');
      });
      element.mount($('pm-element'));
      this.form = { stripe, elements, element };
    } catch (error) {
      if (generation === this.generation) {
        message('pm-card-status', `The card form could not be loaded. ${error.message}`, 'error');
      }
    }
  }

  unmount() {
    this.form?.element.destroy();
    this.form = null;
    $('pm-element').replaceChildren();
  }

  /** Confirms the card typed into Stripe's form, then saves the payment method Stripe made of it. */
  async saveCard() {
    const form = this.form;
    if (!form) return;
    const save = $('pm-card-save');
    save.disabled = true;
    message('pm-message', 'Saving your card…');
    try {
      const { error, setupIntent } = await form.stripe.confirmSetup({ elements: form.elements, redirect: 'if_required' });
      if (error) {
        // Stripe's words say what to fix: a mistyped number, a declined card.
        message('pm-message', `Your card was not saved: ${error.message}`, 'error');
        return;
      }
      const method = setupIntent.payment_method;
      const saved = await api.savePaymentMethod(typeof method === 'string' ? method : method.id);
      this.setServer(saved.payment_method, saved.card ?? null);
      message('pm-message', `Saved. Purchases and auto-recharge will use ${this.describe()}.`, 'ok');
      // That SetupIntent is used up: another card needs a new one.
      this.prepare().catch(() => {}); // prepare() says what went wrong itself
    } catch (error) {
      if (!this.onError(error)) message('pm-message', `Your card was not saved: ${error.message}`, 'error');
    } finally {
      if (this.form === form) save.disabled = false;
    }
  }

  /** Saves a typed payment method id (the sandbox, or an API without the setup route). */
  async saveId() {
    const input = $('pm-input');
    const value = input.value.trim();
    if (!/^pm_[A-Za-z0-9_]{1,100}$/.test(value)) {
      input.setAttribute('aria-invalid', 'true');
      message('pm-message', 'A payment method id starts with "pm_" followed by letters, digits or underscores.', 'error');
      input.focus();
      return;
    }
    input.removeAttribute('aria-invalid');
    try {
      const saved = await api.savePaymentMethod(value);
      api.session.paymentMethod = saved.payment_method;
      this.card = saved.card ?? null;
      this.show();
      input.value = '';
      message('pm-message', `Saved. Purchases and auto-recharge will use ${saved.payment_method}.`, 'ok');
    } catch (error) {
      if (!this.onError(error)) message('pm-message', `The payment method was not saved: ${error.message}`, 'error');
    }
  }

  /** The saved payment method as the server reports it (null: none), with its card if it shows one. */
  setServer(method, card) {
    this.serverKnows = true;
    api.session.paymentMethod = method;
    this.card = method ? (card ?? null) : null;
    this.show();
  }

  /** Shows the saved method: its card if known, else its id; the server's if it says, else this tab's. */
  show() {
    const method = api.session.paymentMethod;
    const fallback = this.serverKnows ? 'none saved' : 'none saved in this session';
    replace($('pm-current'), method && this.card ? cardParts(this.card) : (method ?? fallback));
  }

  /** The saved method in a sentence: "your Visa card ending in 4242", "your payment method pm_…". */
  describe() {
    const method = api.session.paymentMethod;
    if (method && this.card) return `your ${fmt.cardBrand(this.card.brand)} card ending in ${this.card.last4}`;
    return method ? `your payment method ${method}` : 'your saved payment method';
  }

  /** The Stripe object, to confirm a payment with the bank; null when payments do not go through Stripe. */
  async stripe() {
    if (this.provider === null) await this.prepare(); // not known yet: ask (again)
    return this.provider === 'stripe' ? stripeFor(this.publishableKey) : null;
  }
}
