// A stand-in for Stripe.js v3, served by the browser tests at https://js.stripe.com/v3
// (lib/stripe.mjs routes it). It implements what the dashboard uses, the way Stripe.js
// does it: Stripe(publishableKey).elements({clientSecret}).create('payment').mount(el),
// confirmSetup({elements, redirect}), confirmCardPayment(clientSecret, {payment_method}).
//
// As with Stripe.js, the card is typed into a frame on https://js.stripe.com, so the
// page never sees it, and the bank's check (3-D Secure) is a frame over the page, with
// Stripe test mode's two buttons: complete or fail the authentication. The frames talk
// to https://api.stripe.com (routed to fake-stripe) with the publishable key and the
// intent's client secret.
(() => {
  const ORIGIN = 'https://js.stripe.com';
  const FRAME = `${ORIGIN}/v3/frame.html`;

  class IntegrationError extends Error {
    constructor(message) {
      super(message);
      this.name = 'IntegrationError';
    }
  }

  /** A frame of ours in the page; `loaded` resolves once it can take requests. */
  function frame(role, title) {
    const iframe = document.createElement('iframe');
    iframe.src = `${FRAME}#${role}`;
    iframe.title = title;
    iframe.setAttribute('allowtransparency', 'true');
    // Stripe.js styles its frames through the CSSOM, which a page's style-src allows.
    Object.assign(iframe.style, { border: '0', width: '100%', display: 'block' });
    const loaded = new Promise((resolve) => { iframe.addEventListener('load', resolve, { once: true }); });
    return { iframe, loaded };
  }

  /** Sends a request to a frame and answers its reply (over a MessageChannel of their own). */
  async function ask({ iframe, loaded }, request) {
    await loaded;
    return new Promise((resolve) => {
      const channel = new MessageChannel();
      channel.port1.onmessage = (event) => resolve(event.data);
      iframe.contentWindow.postMessage(request, ORIGIN, [channel.port2]);
    });
  }

  window.Stripe = function Stripe(publishableKey) {
    if (!/^pk_(test|live)_\w+$/.test(String(publishableKey))) {
      throw new IntegrationError('Invalid value for Stripe(): apiKey should be a publishable key.');
    }
    return {
      elements({ clientSecret } = {}) {
        if (!clientSecret) throw new IntegrationError('elements(): clientSecret is required for the Payment Element.');
        const group = { clientSecret, card: null };
        group.create = (type) => {
          if (type !== 'payment') throw new IntegrationError(`This stand-in has only the Payment Element, not ${type}.`);
          const handlers = {};
          const element = {
            on(event, handler) {
              (handlers[event] ??= []).push(handler);
              return element;
            },
            mount(target) {
              const container = typeof target === 'string' ? document.querySelector(target) : target;
              if (!container) throw new IntegrationError('mount(): no such element in the page.');
              group.card = frame('payment', 'Secure payment input frame');
              Object.assign(group.card.iframe.style, { height: '7.5rem' });
              group.card.loaded.then(() => (handlers.ready ?? []).forEach((h) => h({ elementType: 'payment' })));
              container.append(group.card.iframe);
              return element;
            },
            unmount() {
              group.card?.iframe.remove();
              group.card = null;
            },
            destroy() {
              element.unmount();
            },
          };
          return element;
        };
        return group;
      },

      async confirmSetup({ elements, redirect } = {}) {
        if (redirect !== 'if_required') throw new IntegrationError('This stand-in confirms without redirects only.');
        if (!elements?.card) throw new IntegrationError('confirmSetup(): the Payment Element is not mounted.');
        return ask(elements.card, { op: 'confirmSetup', key: publishableKey, clientSecret: elements.clientSecret });
      },

      async confirmCardPayment(clientSecret, data = {}) {
        if (!/^pi_\w+_secret_\w+$/.test(String(clientSecret))) {
          throw new IntegrationError('confirmCardPayment(): expected a PaymentIntent client secret.');
        }
        // The bank's check, over the page, as Stripe.js shows it.
        const challenge = frame('challenge', '3D Secure authentication');
        Object.assign(challenge.iframe.style, {
          position: 'fixed', inset: '0', height: '100%', zIndex: '2147483647', background: 'rgba(0, 0, 0, 0.4)',
        });
        document.body.append(challenge.iframe);
        try {
          return await ask(challenge, {
            op: 'confirmCardPayment', key: publishableKey, clientSecret, paymentMethod: data.payment_method ?? null,
          });
        } finally {
          challenge.iframe.remove();
        }
      },
    };
  };
})();
