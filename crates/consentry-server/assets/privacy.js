// The member's privacy centre. Everything shown comes from /v1/me/… with the session cookie; every rule (what a
// state means, what GPC withdraws, who may see what) is the service's. This script only renders and asks.
import { el, fill, api, ApiError, when, timeEl, duration, num, short, say, explain, download, cookie } from '/assets/common.js';

const $ = (id) => document.getElementById(id);
const page = { member: null, consents: [], data: null, history: [], nextBefore: null, key: null, erasurePoll: null };

/** CSRF header for unsafe requests made with the session cookie. */
const csrf = (method) => (method === 'GET' ? {} : { 'X-CSRF-Token': cookie('consentry_csrf') || '' });
const me = (path, opts = {}) => api(path, { auth: csrf, ...opts });

const SOURCES = {
  ui: 'in the privacy centre', api: 'in the app', gpc: 'Global Privacy Control', import: 'earlier consent system',
  erasure: 'erasure request',
};

function gpcOn() {
  return navigator.globalPrivacyControl === true;
}

// ------------------------------------------------------------------------------------------------------ sign-in

async function signIn(token) {
  try {
    const s = await api('/v1/session', { method: 'POST', headers: { Authorization: `Bearer ${token.trim()}` } });
    page.member = s.member;
    $('sign-in').hidden = true;
    say('You are signed in.');
    await load();
  } catch (e) {
    showSignIn();
    say(e instanceof ApiError && e.status === 401
      ? 'That sign-in token was not accepted: it may have expired or been mistyped. Get a new one and try again.'
      : explain(e), 'error');
  }
}

function showSignIn() {
  $('signed-in').hidden = true;
  $('sign-out').hidden = true;
  fill($('who'));
  $('sign-in').hidden = false;
}

$('sign-in').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const token = $('token').value;
  $('token').value = '';
  if (token.trim()) signIn(token);
});

$('sign-out').addEventListener('click', async () => {
  try {
    await me('/v1/session', { method: 'DELETE' });
  } catch { /* the cookies are cleared or expired either way */ }
  clearInterval(page.erasurePoll);
  showSignIn();
  say('You are signed out.');
});

// ------------------------------------------------------------------------------------------------------ loading

async function load() {
  const consents = await me('/v1/me/consents');
  page.member = consents.member;
  page.consents = consents.purposes;
  $('signed-in').hidden = false;
  $('sign-out').hidden = false;
  fill($('who'), `Member ${consents.member}`);
  await honourGpc();
  // The rest in parallel; a section that fails says so and leaves the others.
  const sections = [['your data', me('/v1/me/data')], ['your history', loadHistory(true)],
    ['where your data went', loadWhere()], ['your erasure', loadErasure()], ['the ledger key', loadKey()]];
  const results = await Promise.allSettled(sections.map(([, p]) => p));
  page.data = results[0].status === 'fulfilled' ? results[0].value : null;
  renderCards();
  const failed = results.map((r, i) => [sections[i][0], r]).filter(([, r]) => r.status === 'rejected');
  if (failed.length) {
    say(`Could not read ${failed.map(([name]) => name).join(', ')}: ${explain(failed[0][1].reason)}`, 'error');
  }
}

/** A browser that sends Global Privacy Control: the service records the signal (it decides what it withdraws). */
async function honourGpc() {
  const banner = $('gpc-banner');
  if (!gpcOn()) {
    banner.hidden = true;
    return;
  }
  banner.hidden = false;
  fill(banner, 'Your browser sends Global Privacy Control. We honour it: features that honour it stay off unless you allow them here yourself.');
  try {
    const out = await me('/v1/me/gpc', { method: 'POST' });
    page.consents = out.purposes;
    const turnedOff = out.appended.filter((a) => !a.duplicate).map((a) => nameOf(a.purpose));
    if (turnedOff.length) banner.append(` We turned off: ${turnedOff.join(', ')}.`);
  } catch (e) {
    banner.append(` (${explain(e)})`);
  }
}

function nameOf(purpose) {
  const c = page.consents.find((p) => p.purpose === purpose);
  return c ? c.name : purpose;
}

// ------------------------------------------------------------------------------------------------------ cards

/** Which of the two buttons shows as chosen: only the member's own standing choice, never a default. */
function chosen(c) {
  const d = c.decision || {};
  if (c.allowed && d.reason === 'grant') return 'grant';
  if (!c.allowed && (d.reason === 'withdrawn' || d.reason === 'gpc')) return 'withdraw';
  return null;
}

/** Whether a choice can change anything: the law of the member's country may rule the purpose out. */
function blocked(c) {
  const r = (c.decision || {}).reason;
  return r === 'minor' || r === 'jurisdiction_default';
}

function categoryItems(c) {
  const mine = page.data && Array.isArray(page.data.categories) ? page.data.categories : [];
  return c.category_details.map((cat) => {
    const found = mine.find((d) => d.key === cat.key);
    let example = null;
    if (found && found.examples && found.examples.length) {
      const more = found.rows > found.examples.length ? ` (${num(found.rows)} in all)` : '';
      example = `Yours: ${found.examples.map((e) => `“${e}”`).join(', ')}${more}`;
    } else if (found && found.rows) {
      example = `Yours: ${num(found.rows)}`;
    } else if (page.data) {
      example = cat.key.startsWith('system.') ? 'Not about you: platform data such as job postings' : 'We hold none of yours';
    }
    return el('li', {}, cat.description || cat.key, cat.sensitive ? el('strong', {}, ' (sensitive)') : null,
      example && el('span', { class: 'example' }, example));
  });
}

/** One line a first-time visitor reads first: which features use their data right now. */
function renderOverview() {
  const used = page.consents.filter((c) => c.allowed).map((c) => c.name);
  const unused = page.consents.filter((c) => !c.allowed).map((c) => c.name);
  const list = (names) => names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
  fill($('overview'), used.length === 0
    ? 'Right now, none of our AI features learns from your data.'
    : [`Right now, your data is used for `, el('strong', {}, list(used)), unused.length ? `, and not for ${list(unused)}.` : '.']);
}

function renderCards() {
  renderOverview();
  const cards = $('cards');
  fill(cards, page.consents.map((c, i) => {
    const titleId = `feature-${i}`;
    const pick = chosen(c);
    const choice = (kind, label) => el('button', {
      type: 'button', class: 'choice', 'data-choice': kind, 'aria-pressed': String(pick === kind),
      'aria-describedby': `${titleId}-state`, disabled: blocked(c),
      onclick: () => choose(c, kind),
    }, label);
    return el('section', { class: 'card feature-card', 'data-purpose': c.purpose, 'aria-labelledby': titleId },
      el('h3', { id: titleId }, c.name),
      c.summary ? el('p', { class: 'summary' }, c.summary) : null,
      el('p', { class: 'state', id: `${titleId}-state`, 'data-state': c.state }, c.reason,
        c.decided_at ? el('span', { class: 'when' }, `Since ${when(c.decided_at)}`) : null),
      el('p', { class: 'small' }, el('strong', {}, c.allowed ? 'What it uses of yours' : 'What it would use of yours')),
      el('ul', { class: 'uses' }, categoryItems(c)),
      el('details', { class: 'notice' },
        el('summary', {}, `Read the notice (v${c.notice.version})`),
        el('p', {}, c.notice.text),
        el('p', { class: 'muted small' }, `Version ${c.notice.version}, in force since ${when(c.notice.effective)}.`)),
      el('div', { class: 'choices', role: 'group', 'aria-labelledby': titleId },
        choice('grant', 'Allow'), choice('withdraw', "Don't allow")));
  }));
}

async function choose(c, kind) {
  if (chosen(c) === kind) {
    say(`${c.name}: ${kind === 'grant' ? 'already allowed' : 'already not allowed'}; nothing changed.`);
    return;
  }
  const buttons = document.querySelectorAll(`[data-purpose="${CSS.escape(c.purpose)}"] button.choice`);
  buttons.forEach((b) => { b.disabled = true; });
  try {
    const out = await me(`/v1/me/consents/${encodeURIComponent(c.purpose)}`, {
      method: 'PUT',
      headers: { 'Idempotency-Key': crypto.randomUUID() },
      body: { state: kind === 'grant' ? 'granted' : 'withdrawn', notice_version: c.notice.version },
    });
    page.consents = (await me('/v1/me/consents')).purposes;
    renderCards();
    say(`${c.name}: ${kind === 'grant' ? 'allowed' : 'not allowed'} from now on. Recorded as ledger entry ${out.event.seq}; its receipt is in your history.`
      + (kind === 'withdraw' ? ' Models that learned from your data will be retrained without it.' : ''));
    await Promise.allSettled([loadHistory(true), loadWhere()]);
    const again = document.querySelector(`[data-purpose="${CSS.escape(c.purpose)}"] button.choice[data-choice="${kind}"]`);
    if (again) again.focus();
  } catch (e) {
    if (e instanceof ApiError && e.status === 409) {
      page.consents = (await me('/v1/me/consents')).purposes;
      renderCards();
      say(`The notice for ${c.name} has changed. Please read the new version and choose again.`, 'error');
    } else {
      say(explain(e), 'error');
      buttons.forEach((b) => { b.disabled = blocked(c); });
    }
  }
}

// ------------------------------------------------------------------------------------------------------ history

async function loadHistory(reset) {
  const before = reset ? '' : `&before=${page.nextBefore}`;
  const out = await me(`/v1/me/history?limit=25${before}`);
  page.history = reset ? out.events : page.history.concat(out.events);
  page.nextBefore = out.next_before;
  $('history-more').hidden = out.next_before === null || out.next_before === undefined;
  const body = $('history').tBodies[0];
  if (!page.history.length) {
    fill(body, el('tr', {}, el('td', { colspan: 5 }, 'No choices recorded yet.')));
    return;
  }
  fill(body, page.history.map((e) => {
    const result = el('span', { class: 'verify-result', 'aria-live': 'polite' });
    return el('tr', { 'data-seq': e.seq },
      el('td', { 'data-label': 'When' }, timeEl(e.event_time)),
      el('td', { 'data-label': 'Feature' }, nameOf(e.purpose), el('span', { class: 'muted small' }, ` · notice v${e.notice_version}`)),
      el('td', { 'data-label': 'Choice' }, e.action === 'grant' ? 'Allowed' : 'Not allowed'),
      el('td', { 'data-label': 'How' }, SOURCES[e.source] || e.source),
      el('td', { 'data-label': 'Receipt' },
        el('a', { class: 'download-receipt button quiet', href: `/v1/me/receipts/${e.seq}`, download: `consentry-receipt-${e.seq}.json`,
          'aria-label': `Download the receipt of entry ${e.seq}` }, 'Download'), ' ',
        el('button', { type: 'button', class: 'verify-receipt quiet', 'aria-label': `Check the receipt of entry ${e.seq}`,
          onclick: () => checkReceipt(e.seq, result) }, 'Check'), ' ',
        result));
  }));
}

$('history-more').addEventListener('click', () => loadHistory(false).catch((e) => say(explain(e), 'error')));

async function loadKey() {
  page.key = await api('/v1/log/public-key');
  const k = page.key.public_key;
  fill($('ledger-key'), 'Receipts are checked against the ledger\'s public key ', el('code', { title: k }, `${k.slice(0, 8)}…${k.slice(-4)}`),
    ' (log id ', short(page.key.log_id, 16), '). Auditors publish the same key; if it differs, do not trust these receipts.');
}

/** The verifier is loaded on first use: the page works (and reads faster) without it until a receipt is checked. */
async function check(text) {
  if (!page.key) await loadKey();
  const verifier = await import('/assets/verify-receipt.js');
  const result = await verifier.verifyReceipt(text, page.key.public_key);
  return { result, sentence: result.verified ? verifier.describe(result) : result.reason };
}

function show(node, { result, sentence }) {
  node.dataset.verified = String(result.verified);
  fill(node, result.verified ? `✓ ${sentence}` : `✗ Not verified: ${sentence}`);
}

async function checkReceipt(seq, node) {
  fill(node, 'Checking…');
  delete node.dataset.verified;
  try {
    show(node, await check(await me(`/v1/me/receipts/${seq}`, { raw: true })));
  } catch (e) {
    node.dataset.verified = 'false';
    fill(node, explain(e));
  }
}

$('receipt-file').addEventListener('change', async (ev) => {
  const file = ev.target.files && ev.target.files[0];
  const out = $('receipt-file-result');
  if (!file) return;
  if (file.size > 1_000_000) {
    out.dataset.verified = 'false';
    fill(out, `✗ ${file.name} is ${num(file.size)} bytes: a receipt is a few kilobytes. Choose the receipt file you downloaded.`);
    return;
  }
  try {
    show(out, await check(await file.text()));
    out.prepend(`${file.name}: `);
  } catch (e) {
    out.dataset.verified = 'false';
    fill(out, explain(e));
  }
});

// ------------------------------------------------------------------------------------------------------ where it went

const STATUS_WORDS = {
  in_use: 'In use', removal_pending: 'Removal pending', removed: 'Removed', superseded: 'Replaced', retired: 'Retired',
};

function whereItem(u) {
  const label = `${u.name || nameOf(u.purpose)} ${u.version_label || ''}`.trim();
  let line;
  if (u.status === 'removed') {
    line = `Removed from ${label} on ${when(u.removed_at)}`
      + (u.seconds_after_withdrawal !== null && u.seconds_after_withdrawal !== undefined
        ? `, ${duration(u.seconds_after_withdrawal)} after you withdrew` : '')
      + (u.replaced_by_label ? `; ${u.replaced_by_label} was trained without your data.` : '.');
  } else if (u.status === 'removal_pending') {
    line = `You withdrew: ${label} will be retrained without your data by ${when(u.deadline)}`
      + (u.overdue ? ', which has passed; the auditors see this as a violation.' : '.');
  } else if (u.status === 'superseded') {
    line = `${label}, trained with your data, was replaced${u.replaced_by_label ? ` by ${u.replaced_by_label}` : ''}`
      + ' when someone else withdrew; your data is in the newer version too (listed here).';
  } else if (u.status === 'retired') {
    line = `${label}, trained with your data, was taken out of service${u.removed_at ? ` on ${when(u.removed_at)}` : ''}.`;
  } else {
    line = `Your data trained ${label} on ${when(u.trained_at)}`
      + (u.shard !== null && u.shard !== undefined ? ` (in part ${u.shard + 1} of the model)` : '') + '; it is in use.';
  }
  return el('li', { 'data-model': u.model, 'data-status': u.status },
    el('span', { class: `tag ${u.status}` }, STATUS_WORDS[u.status] || u.status), ' ', line,
    el('div', { class: 'muted small' }, 'Model ', short(u.model), u.dataset ? [' · training set ', short(u.dataset)] : null));
}

function privacyLoss(p) {
  const box = $('privacy-loss');
  const title = el('h3', {}, 'Your privacy loss');
  const lines = (p && p.lines) || [];
  const unbounded = (p && p.without_bound) || [];
  if (!lines.length && !unbounded.length) {
    fill(box, title, el('p', {}, 'None: no model has been trained with your data, so nothing about you can be learned from one.'));
    return;
  }
  fill(box, title,
    p.epsilon !== null && p.epsilon !== undefined
      ? el('p', { class: 'kpi' }, el('span', { class: 'value' }, `ε = ${num(p.epsilon, 2)}`),
        p.delta !== null && p.delta !== undefined ? el('span', { class: 'label' }, ` with δ = ${p.delta}`) : null)
      : null,
    el('p', {}, p.explanation || ''),
    el('p', { class: 'muted small' }, 'ε (epsilon) is a ceiling on how much a model trained with your data can give away '
      + 'about you: the smaller, the less anyone could tell from it whether your data was used at all (below 1 is strong).'
      + (unbounded.length ? ' A model without differential privacy has no such ceiling; it is still retrained without you when you withdraw.' : '')));
}

async function loadWhere() {
  const out = await me('/v1/me/data-uses');
  const items = out.items || [];
  fill($('where'), items.length ? items.map(whereItem) : el('li', {}, 'No model has been trained with your data.'));
  privacyLoss(out.privacy);
}

// ------------------------------------------------------------------------------------------------------ your data

$('download-data').addEventListener('click', async () => {
  try {
    const data = await me('/v1/me/export');
    download(`consentry-export-member-${page.member}.json`, JSON.stringify(data, null, 2));
    say('Your data was downloaded as a JSON file.');
  } catch (e) {
    say(explain(e), 'error');
  }
});

$('erase').addEventListener('click', async () => {
  const models = document.querySelectorAll('#where li[data-status="in_use"]').length;
  const features = page.consents.map((c) => c.name);
  fill($('erase-what'),
    el('p', {}, 'This will:'),
    el('ul', {},
      el('li', {}, `turn off every AI feature for you (${features.join(', ')}), each recorded in the ledger with a receipt;`),
      el('li', {}, models
        ? `retrain the ${models} model${models === 1 ? '' : 's'} that learned from your data without it, within the deadline we keep;`
        : 'make sure no model is trained with your data from now on;'),
      el('li', {}, 'keep the ledger record of your choices, which we must keep to prove what you agreed to.')),
    el('p', {}, 'Your profile and messages on the network are not deleted by this. You can allow features again later.'));
  $('erase-dialog').showModal();
  $('erase-cancel').focus();
});

$('erase-cancel').addEventListener('click', () => $('erase-dialog').close());

$('erase-confirm').addEventListener('click', async () => {
  $('erase-dialog').close();
  try {
    await me('/v1/me/erasure', { method: 'POST', headers: { 'Idempotency-Key': crypto.randomUUID() } });
    say('Your erasure has started: every feature is off for you, and the models are being retrained without your data.');
    page.consents = (await me('/v1/me/consents')).purposes;
    renderCards();
    await Promise.allSettled([loadHistory(true), loadWhere(), loadErasure()]);
  } catch (e) {
    say(explain(e), 'error');
  }
});

function renderErasure(p) {
  const box = $('erasure-progress');
  if (!p.requested) {
    fill(box);
    return;
  }
  const done = p.items.filter((i) => i.state === 'done').length;
  const waiting = (p.awaiting_intake || []).length;
  fill(box, el('div', { class: 'card' },
    el('h3', {}, p.complete ? 'Erasure complete' : 'Erasure in progress'),
    el('p', {}, `${p.withdrawals.length} withdrawal${p.withdrawals.length === 1 ? '' : 's'} recorded. `
      + (p.items.length ? `${done} of ${p.items.length} model${p.items.length === 1 ? '' : 's'} retrained without your data.` : 'No model held your data.')
      + (waiting ? ` ${waiting} still being queued.` : '')),
    p.items.length ? el('ul', {}, p.items.map((i) => el('li', { 'data-model': i.model },
      el('span', { class: `tag ${i.state}` }, i.state), ' ', nameOf(i.purpose), ': ',
      i.state === 'done' ? `done ${when(i.completed_at)}` : `due by ${when(i.deadline)}`))) : null));
}

async function loadErasure() {
  const p = await me('/v1/me/erasure');
  renderErasure(p);
  clearInterval(page.erasurePoll);
  if (p.requested && !p.complete) {
    page.erasurePoll = setInterval(async () => {
      try {
        const next = await me('/v1/me/erasure');
        renderErasure(next);
        if (next.complete) {
          clearInterval(page.erasurePoll);
          await loadWhere();
        }
      } catch { clearInterval(page.erasurePoll); }
    }, 5000);
  }
}

// ------------------------------------------------------------------------------------------------------ start

/** A sign-in link (`#token=…`): the token is taken and removed from the address at once. */
async function fromLink() {
  const m = location.hash.match(/^#token=([^&]+)/);
  if (!m) return false;
  history.replaceState(null, '', location.pathname + location.search);
  await signIn(decodeURIComponent(m[1]));
  return true;
}

// A link opened while the page already shows changes only the fragment: no reload, so listen for it.
window.addEventListener('hashchange', () => { fromLink(); });

async function start() {
  say('Loading your choices…');
  if (await fromLink()) return;
  try {
    await load();
    if ($('status').textContent === 'Loading your choices…') fill($('status'));
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      fill($('status'));
      showSignIn();
    } else say(explain(e), 'error');
  }
}

start();
