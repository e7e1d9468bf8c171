// The privacy officer's dashboard. It reads the operator API with the key the officer typed (kept in this tab's
// sessionStorage only) and renders; charts are SVG drawn by the service. Every figure and rule is the service's.
import { el, fill, api, ApiError, when, timeEl, duration, num, short, say, explain } from '/assets/common.js';

const $ = (id) => document.getElementById(id);
const KEY = 'consentry_operator_key';
const REFRESH_MS = 15_000;
const board = { timer: null, loading: false, names: {} };

const bearer = () => ({ Authorization: `Bearer ${sessionStorage.getItem(KEY) || ''}` });
const op = (path, opts = {}) => api(path, { auth: bearer, ...opts });

// ------------------------------------------------------------------------------------------------------ sign-in

function showSignIn() {
  clearInterval(board.timer);
  $('board').hidden = true;
  $('sign-out').hidden = true;
  $('refresh').hidden = true;
  fill($('updated'));
  $('key-sign-in').hidden = false;
}

$('key-sign-in').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const key = $('api-key').value.trim();
  $('api-key').value = '';
  if (!key) return;
  sessionStorage.setItem(KEY, key);
  await open();
});

$('sign-out').addEventListener('click', () => {
  sessionStorage.removeItem(KEY);
  showSignIn();
  say('Signed out: the key is forgotten in this tab.');
});

$('refresh').addEventListener('click', () => refresh());

async function open() {
  try {
    await refresh(true);
    $('key-sign-in').hidden = true;
    $('board').hidden = false;
    $('sign-out').hidden = false;
    $('refresh').hidden = false;
    clearInterval(board.timer);
    board.timer = setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
  } catch (e) {
    sessionStorage.removeItem(KEY);
    showSignIn();
    say(e instanceof ApiError && (e.status === 401 || e.status === 403)
      ? `That key was not accepted (${e.message}). Use an operator key: consentry keys create --role operator.`
      : explain(e), 'error');
  }
}

// ------------------------------------------------------------------------------------------------------ charts

/** Puts an SVG the service drew into `box`, refusing anything but a plain SVG document. */
async function chart(box, path) {
  try {
    const text = await op(path, { raw: true, headers: { Accept: 'image/svg+xml' } });
    const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
    const svg = doc.documentElement;
    if (svg.nodeName !== 'svg' || doc.querySelector('parsererror, script, foreignObject')) {
      throw new Error('the chart is not a plain SVG image');
    }
    fill(box, document.importNode(svg, true));
  } catch (e) {
    fill(box, el('p', { class: 'banner error' }, `The chart could not be drawn: ${explain(e)}`));
  }
}

function coveragePath() {
  const days = Number($('coverage-range').value) || 30;
  const step = days <= 30 ? 86_400 : days <= 90 ? 3 * 86_400 : 7 * 86_400;
  const to = Math.floor(Date.now() / 1000) - 5;
  const params = new URLSearchParams({ from: String(to - days * 86_400), to: String(to), step: String(step) });
  const j = $('coverage-jurisdiction').value;
  if (j) params.set('jurisdiction', j);
  return `/v1/charts/coverage.svg?${params}`;
}

$('coverage-jurisdiction').addEventListener('change', () => chart($('coverage-chart'), coveragePath()));
$('coverage-range').addEventListener('change', () => chart($('coverage-chart'), coveragePath()));

// ------------------------------------------------------------------------------------------------------ sections

function kpi(label, value, tag) {
  return el('div', { class: 'card kpi' }, el('span', { class: 'value' }, value), el('span', { class: 'label' }, label),
    tag ? el('span', {}, ' ', el('span', { class: `tag ${tag[0]}` }, tag[1])) : null);
}

function coverage(now) {
  const cells = now.points.length ? now.points[now.points.length - 1].cells : [];
  const jurisdictions = [...new Set(cells.map((c) => c.jurisdiction))].sort();
  const select = $('coverage-jurisdiction');
  const current = select.value;
  fill(select, el('option', { value: '' }, 'All jurisdictions'),
    jurisdictions.map((j) => el('option', { value: j, selected: j === current }, j)));
  const purposes = [...new Set(cells.map((c) => c.purpose))];
  fill($('coverage-table'), el('table', {},
    el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Jurisdiction'),
      purposes.map((p) => el('th', { scope: 'col' }, board.names[p] || p)))),
    el('tbody', {}, jurisdictions.map((j) => el('tr', {}, el('th', { scope: 'row' }, j), purposes.map((p) => {
      const c = cells.find((x) => x.purpose === p && x.jurisdiction === j);
      return el('td', {}, c ? `${num(c.share * 100, 0)} % (${num(c.allowed)} of ${num(c.members)})` : '—');
    }))))));
  // Overall share now per purpose, for the headline figures.
  return purposes.map((p) => {
    const mine = cells.filter((c) => c.purpose === p);
    const allowed = mine.reduce((a, c) => a + c.allowed, 0);
    const members = mine.reduce((a, c) => a + c.members, 0);
    return { purpose: p, share: members ? allowed / members : 0, allowed, members };
  });
}

function datasets(out) {
  const list = out.datasets || [];
  if (!list.length) {
    fill($('datasets-table'), el('p', { class: 'muted' }, 'No training set has been made yet.'));
    return;
  }
  const reasons = [...new Set(list.flatMap((d) => Object.keys(d.excluded_by_reason || {})))].sort();
  fill($('datasets-table'), el('table', {},
    el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Training set'), el('th', { scope: 'col' }, 'Feature'),
      el('th', { scope: 'col' }, 'Members in'), reasons.map((r) => el('th', { scope: 'col' }, r.replaceAll('_', ' '))))),
    el('tbody', {}, list.map((d) => el('tr', { 'data-dataset': d.id },
      el('td', {}, short(d.id), el('div', { class: 'muted small' }, `${d.dir} · ${when(d.created)}`)),
      el('td', {}, board.names[d.purpose] || d.purpose),
      el('td', {}, num(d.members)),
      reasons.map((r) => el('td', {}, num((d.excluded_by_reason || {})[r] || 0))))))));
}

async function models(out) {
  const list = out.models || [];
  const box = $('models-list');
  if (!list.length) {
    fill(box, el('p', { class: 'muted' }, 'No model is registered yet.'));
    return;
  }
  const open = new Set([...box.querySelectorAll('details[open]')].map((d) => d.dataset.model));
  fill(box, el('div', { class: 'table-wrap' }, el('table', {},
    el('thead', {}, el('tr', {}, ['Model', 'Feature', 'Version', 'Status', 'Trained', 'Lineage'].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, list.map((m) => {
      const details = el('details', { 'data-model': m.id, open: open.has(m.id) },
        el('summary', {}, 'Show lineage'), el('div', { class: 'lineage' }, 'Loading…'));
      details.addEventListener('toggle', () => { if (details.open) lineage(m.id, details.lastChild); });
      if (open.has(m.id)) lineage(m.id, details.lastChild);
      return el('tr', { 'data-model': m.id },
        el('td', {}, m.kind, ' ', short(m.id)),
        el('td', {}, board.names[m.purpose] || m.purpose),
        el('td', {}, `v${m.version}`, m.supersedes ? el('div', { class: 'muted small' }, 'replaces ', short(m.supersedes, 8)) : null),
        el('td', {}, el('span', { class: `tag ${m.status === 'live' ? 'ok' : ''}` }, m.status)),
        el('td', {}, timeEl(m.created)),
        el('td', {}, details));
    })))));
}

async function lineage(id, box) {
  try {
    const l = await op(`/v1/models/${encodeURIComponent(id)}`);
    const runs = l.runs || [];
    fill(box,
      el('dl', { class: 'facts' },
        el('dt', {}, 'Training set'), el('dd', {}, short(l.dataset.id), ` · ${num(l.dataset.members)} members · ledger position ${num(l.dataset.ledger_position)}`),
        el('dt', {}, 'Shards'), el('dd', {}, (l.shards || []).map((s) => `#${s.index}: ${num(s.members)} members, ${num(s.rows)} rows`).join('; ')),
        el('dt', {}, 'Consent events'), el('dd', {}, `${num((l.events || []).length)} grants this version rests on`),
        el('dt', {}, 'Replaced by'), el('dd', {}, l.superseded_by ? short(l.superseded_by) : '—')),
      el('p', { class: 'small' }, el('strong', {}, 'Trainings')),
      el('ol', {}, runs.map((r) => el('li', {},
        `${when(r.finished)}: shard${r.shards_trained.length === 1 ? '' : 's'} ${r.shards_trained.join(', ')} trained in ${num(r.seconds, 1)} s`,
        r.cause ? ` because of ${withdrawals(r.cause)}` : ' (first training)'))));
  } catch (e) {
    fill(box, explain(e));
  }
}

/** The withdrawals a retrain answered (`{"kind":"unlearning","events":[…],…}`), by ledger position. */
function withdrawals(cause) {
  const events = Array.isArray(cause.events) ? cause.events : [];
  return `withdrawal${events.length === 1 ? '' : 's'} ${events.map((s) => `#${s}`).join(', ')}`;
}

function unlearning(queue, summary) {
  const s = summary || {};
  const open = (queue.requests || []).filter((q) => !q.request.completed_at);
  const awaiting = s.awaiting_intake || [];
  const row = (r, state, tag) => el('tr', { 'data-model': r.model, 'data-member': r.member, 'data-state': state },
    el('td', {}, short(r.model)),
    el('td', {}, board.names[r.purpose] || r.purpose),
    el('td', {}, timeEl(r.requested_at)),
    el('td', {}, timeEl(r.deadline)),
    el('td', {}, el('span', { class: `tag ${tag}` }, state)));
  const rows = [
    ...open.map((q) => row(q.request, q.overdue ? 'overdue' : 'queued', q.overdue ? 'overdue' : 'warn')),
    ...awaiting.map((r) => row(r, 'awaiting the next pass', r.deadline < s.now ? 'overdue' : 'warn')),
  ];
  fill($('unlearning-queue').tBodies[0], rows.length ? rows
    : el('tr', {}, el('td', { colspan: 5 }, 'The queue is empty: every withdrawal has been unlearned.')));
  const total = s.awaiting_intake_total || 0;
  const parts = [`${num(open.length)} open request${open.length === 1 ? '' : 's'}, ${num(queue.overdue ?? 0)} overdue`];
  parts.push(total ? `; ${num(total)} new withdrawal${total === 1 ? '' : 's'} from models in use wait for the next unlearning pass.` : '.');
  const done = (s.completed_on_time || 0) + (s.completed_late || 0);
  if (s.completed_on_time !== undefined) {
    parts.push(done ? ` ${num(s.completed_on_time)} of ${num(done)} removals met their deadline` : ' No removal has been needed yet.');
    if (done && s.median_seconds !== undefined && s.median_seconds !== null) {
      parts.push(`; median ${duration(s.median_seconds)}, 95th percentile ${duration(s.p95_seconds ?? s.median_seconds)} from withdrawal to removal.`);
    }
  }
  fill($('unlearning-compliance'), parts.join(''));
  return { open: open.length + total, overdue: queue.overdue ?? 0, summary: s };
}

function audit(out) {
  const box = $('audit-body');
  const runs = out.runs || [];
  const latest = runs[0];
  if (!latest) {
    fill(box, el('p', {}, 'No audit has been run from the service yet.'));
    return null;
  }
  const verdict = latest.status !== 'done' ? ['warn', latest.status]
    : latest.ok ? ['ok', 'no violation'] : ['bad', `${latest.violations} violation${latest.violations === 1 ? '' : 's'}`];
  fill(box, el('p', {}, el('span', { class: `tag ${verdict[0]}` }, verdict[1])),
    el('dl', { class: 'facts' },
      el('dt', {}, 'Started'), el('dd', {}, timeEl(latest.started)),
      el('dt', {}, 'Asked for by'), el('dd', {}, latest.requested_by),
      latest.error ? [el('dt', {}, 'Error'), el('dd', {}, latest.error)] : null),
    el('div', { id: 'audit-findings' }));
  if (latest.status === 'done' && !latest.ok) findings(latest.id);
  return latest;
}

async function findings(id) {
  try {
    const rec = await op(`/v1/audits/${encodeURIComponent(id)}`);
    const list = ((rec.run || {}).report || {}).findings || [];
    const box = $('audit-findings');
    if (box) {
      fill(box, el('ul', {}, list.filter((f) => f.severity !== 'note').slice(0, 20).map((f) => el('li', {},
        el('strong', {}, String(f.kind).replaceAll('_', ' ')), `: ${f.message}`,
        el('div', { class: 'muted small' }, `expected ${f.expected}; found ${f.found}`)))));
    }
  } catch (e) {
    say(explain(e), 'error');
  }
}

function treeHead(h) {
  fill($('tree-body'), el('dl', { class: 'facts' },
    el('dt', {}, 'Entries'), el('dd', {}, num(h.tree_size)),
    el('dt', {}, 'Signed'), el('dd', {}, timeEl(h.timestamp)),
    el('dt', {}, 'Root hash'), el('dd', {}, el('code', {}, h.root_hash)),
    el('dt', {}, 'Log id'), el('dd', {}, el('code', {}, h.log_id))));
}

function webhooks(out) {
  const list = out.webhooks || [];
  fill($('webhooks-body'), list.length ? el('div', { class: 'table-wrap' }, el('table', {},
    el('thead', {}, el('tr', {}, ['Webhook', 'Delivered', 'Behind', 'Health'].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, list.map((w) => el('tr', { 'data-webhook': w.name },
      el('td', {}, w.name, w.host ? el('div', { class: 'muted small' }, w.host) : null),
      el('td', {}, num(w.delivered)),
      el('td', {}, num(w.behind)),
      el('td', {}, el('span', { class: `tag ${w.behind > 100 ? 'bad' : w.behind > 0 ? 'warn' : 'ok'}` },
        w.behind > 100 ? 'falling behind' : w.behind > 0 ? 'catching up' : 'up to date'))))))) :
    el('p', { class: 'muted' }, 'No webhook is configured (see [[webhooks]] in the service configuration).'));
}

// ------------------------------------------------------------------------------------------------------ refresh

async function refresh(first = false) {
  if (board.loading) return;
  board.loading = true;
  try {
    const purposes = await op('/v1/purposes');
    for (const p of purposes.purposes) board.names[p.key] = p.name;
    const now = Math.floor(Date.now() / 1000) - 5;
    const [cov, sets, mods, queue, summary, audits, head, hooks] = await Promise.allSettled([
      op(`/v1/coverage?from=${now}&to=${now}`), op('/v1/datasets'), op('/v1/models'), op('/v1/unlearning'),
      op('/v1/unlearning/summary'), op('/v1/audits'), op('/v1/log/checkpoint'), op('/v1/webhooks'),
    ]);
    const failed = [cov, sets, mods, queue, audits, head, hooks].filter((r) => r.status === 'rejected');
    if (first && failed.length === 7) throw failed[0].reason;
    const shares = cov.status === 'fulfilled' ? coverage(cov.value) : [];
    if (sets.status === 'fulfilled') datasets(sets.value);
    if (mods.status === 'fulfilled') await models(mods.value);
    const q = queue.status === 'fulfilled' ? unlearning(queue.value, summary.status === 'fulfilled' ? summary.value : null) : null;
    const latest = audits.status === 'fulfilled' ? audit(audits.value) : null;
    if (head.status === 'fulfilled') treeHead(head.value);
    if (hooks.status === 'fulfilled') webhooks(hooks.value);
    fill($('kpis'),
      shares.map((s) => kpi(`of members allow ${board.names[s.purpose] || s.purpose}`, `${num(s.share * 100, 0)} %`)),
      q ? kpi('unlearning requests open', num(q.open), q.overdue ? ['bad', `${q.overdue} overdue`] : ['ok', 'none overdue']) : null,
      latest ? kpi('latest audit', latest.ok ? 'Passed' : latest.status === 'done' ? 'Failed' : latest.status,
        latest.ok ? ['ok', when(latest.finished || latest.started)] : ['bad', `${latest.violations ?? '?'} violations`]) : null,
      head.status === 'fulfilled' ? kpi('entries in the signed ledger', num(head.value.tree_size)) : null);
    await Promise.all([
      chart($('coverage-chart'), coveragePath()),
      chart($('exclusions-chart'), '/v1/charts/exclusions.svg'),
      chart($('unlearning-chart'), '/v1/charts/unlearning.svg'),
    ]);
    if (failed.length) {
      say(`Some figures could not be read: ${explain(failed[0].reason)}`, 'error');
    } else if (!first && document.getElementById('status').classList.contains('error')) {
      fill($('status'));
    }
    fill($('updated'), `Updated ${new Date().toLocaleTimeString()}`);
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403) && !first) {
      sessionStorage.removeItem(KEY);
      showSignIn();
      say('The key is no longer accepted (revoked or expired). Sign in with a valid operator key.', 'error');
    } else if (first) {
      throw e;
    } else {
      say(explain(e), 'error');
    }
  } finally {
    board.loading = false;
  }
}

// ------------------------------------------------------------------------------------------------------ actions

async function busy(button, label, work) {
  const was = button.textContent;
  button.disabled = true;
  button.textContent = label;
  try {
    await work();
  } catch (e) {
    say(explain(e), 'error');
  } finally {
    button.disabled = false;
    button.textContent = was;
  }
}

$('run-unlearn').addEventListener('click', (ev) => busy(ev.currentTarget, 'Unlearning…', async () => {
  const out = await op('/v1/jobs/unlearn', { method: 'POST' });
  const n = (out.retrains || []).length;
  say(`Unlearning pass done: ${out.requests_opened} request${out.requests_opened === 1 ? '' : 's'} opened, `
    + `${n} model version${n === 1 ? '' : 's'} retrained.`);
  await refresh();
}));

$('run-audit').addEventListener('click', (ev) => busy(ev.currentTarget, 'Auditing…', async () => {
  const started = await op('/v1/audits', { method: 'POST' });
  for (let i = 0; i < 120; i++) {
    const rec = await op(`/v1/audits/${encodeURIComponent(started.id)}`);
    if (rec.status !== 'running') {
      say(rec.status === 'done'
        ? (rec.ok ? 'The audit found no violation.' : `The audit found ${rec.violations} violation(s).`)
        : `The audit could not run: ${rec.error || rec.status}.`, rec.ok ? 'info' : 'error');
      break;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  await refresh();
}));

// ------------------------------------------------------------------------------------------------------ start

if (sessionStorage.getItem(KEY)) open();
else showSignIn();
