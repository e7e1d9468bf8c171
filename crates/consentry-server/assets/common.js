// Shared by the pages: building DOM without innerHTML, calling the JSON API, and telling people what went wrong.

/** An element with attributes and children (strings become text nodes: nothing is ever parsed as HTML). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** Replaces a node's children. */
export function fill(node, ...children) {
  node.replaceChildren();
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** An API failure, with the problem document's words (RFC 9457) when the service sent one. */
export class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail || title || `HTTP ${status}`);
    this.status = status;
    this.title = title;
  }
}

/** Calls the API; `auth` is a function adding headers (bearer or CSRF). Answers parsed JSON, or text for non-JSON. */
export async function api(path, { method = 'GET', body, headers = {}, auth, raw = false } = {}) {
  const h = { Accept: 'application/json', ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  if (auth) Object.assign(h, auth(method));
  let response;
  try {
    response = await fetch(path, {
      method, headers: h, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'Network error', 'The service cannot be reached. Check your connection and try again.');
  }
  if (!response.ok) {
    let title = response.statusText;
    let detail = '';
    try {
      const p = await response.json();
      title = p.title || title;
      detail = p.detail || '';
    } catch { /* not a problem document */ }
    if (response.status === 429) detail = detail || 'Too many requests; wait a moment and try again.';
    throw new ApiError(response.status, title, detail);
  }
  if (raw) return response.text();
  const type = response.headers.get('content-type') || '';
  if (response.status === 204) return null;
  return type.includes('json') ? response.json() : response.text();
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

/** A Unix time (seconds) as the reader's local date and time. */
export function when(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  return dateTime.format(new Date(seconds * 1000));
}

/** A Unix time (seconds) as the reader's local date. */
export function day(seconds) {
  return seconds === null || seconds === undefined ? '—' : dateOnly.format(new Date(seconds * 1000));
}

/** A `<time>` element for a Unix time, machine-readable and local to the reader. */
export function timeEl(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  return el('time', { datetime: new Date(seconds * 1000).toISOString() }, when(seconds));
}

/** A duration in words: "41 s", "3 min 5 s", "2 h 10 min", "3 days". */
export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  if (s < 86400) return `${Math.floor(s / 3600)} h${Math.floor((s % 3600) / 60) ? ` ${Math.floor((s % 3600) / 60)} min` : ''}`;
  const d = Math.round(s / 86400);
  return `${d} day${d === 1 ? '' : 's'}`;
}

/** A number with the reader's digit grouping. */
export function num(n, digits) {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  return digits === undefined ? n.toLocaleString() : n.toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** The first characters of a hex id, for people (the full id stays in the title). */
export function short(hex, n = 12) {
  return el('code', { title: hex }, String(hex).slice(0, n) + (String(hex).length > n ? '…' : ''));
}

/** Shows a message in the page's live region (`kind`: info, error). */
export function say(message, kind = 'info') {
  const status = document.getElementById('status');
  if (!status) return;
  status.className = kind === 'error' ? 'banner error' : 'banner';
  status.textContent = message;
}

/** What an error means to a person, with what to do. */
export function explain(e) {
  if (e instanceof ApiError) {
    if (e.status === 401) return 'Your sign-in has ended. Sign in again to continue.';
    if (e.status === 403) return `Not allowed: ${e.message}`;
    return e.message;
  }
  return `Something went wrong in this page: ${e.message}. Reload the page; if it happens again, report it.`;
}

/** Offers `text` as a file download named `name`. */
export function download(name, text, type = 'application/json') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = el('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30_000);
}

/** The value of a readable cookie. */
export function cookie(name) {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return null;
}
