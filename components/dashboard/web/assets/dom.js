// Building DOM from data without ever parsing it as HTML: every string ends up in a
// text node (textContent), so names and labels from users cannot become markup.

/**
 * h('p', {class: 'x'}, 'text', child) — an element with attributes and children.
 * Strings become text nodes; null/undefined/false children are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** The same for SVG elements. */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) throw new Error('attach listeners with addEventListener');
    el.setAttribute(name, value === true ? '' : String(value));
  }
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** Sets the text of the element with this id. */
export function text(id, value) {
  document.getElementById(id).textContent = value;
}

/** The element with this id. */
export function $(id) {
  return document.getElementById(id);
}

/** Shows a message in a status element; kind is 'ok', 'error' or ''. */
export function message(id, value, kind = '') {
  const el = $(id);
  el.textContent = value ?? '';
  el.classList.toggle('error', kind === 'error');
  el.classList.toggle('ok', kind === 'ok');
  el.hidden = !value && el.hasAttribute('data-hide-empty');
}
