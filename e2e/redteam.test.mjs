// The pages attacked, in a real browser: a hostile notice text, a member's sign-in token, another site framing the
// privacy centre or writing through the member's cookie, an operator key left behind. Each try stays as a test.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { GRANTED, JOBS, card, eventually, scenario } from './harness.mjs';

const HOSTILE =
  'We would like to <img src=x onerror="window.__pwned=1"> use your data. <script>window.__pwned=2</script>' +
  '<a href="javascript:window.__pwned=3">Click</a> & "quotes" \u2028 end.';

scenario('(R1) a notice text full of markup is shown as text: no element, no script, no handler runs', async (h) => {
  const operator = h.operatorKey();
  const r = await h.api('POST', `/v1/purposes/${JOBS}/notices`, {
    auth: operator,
    body: { text: HOSTILE, material: false, language: 'en' },
  });
  assert.equal(r.status, 201, r.text);
  const page = await h.page();
  await h.signInMember(page, GRANTED);
  const notice = card(page, JOBS).locator('details.notice');
  await notice.locator('summary').click();
  assert.ok((await notice.textContent()).includes('<img src=x onerror="window.__pwned=1">'), 'shown literally');
  assert.equal(await page.evaluate(() => window.__pwned), undefined, 'no injected code ran');
  assert.equal(await page.locator('section.feature-card img, section.feature-card script').count(), 0);
  assert.equal(await page.locator('a[href^="javascript:"]').count(), 0);
});

scenario('(R2) the sign-in token in the link never reaches the server, its log or the page URL', async (h) => {
  const page = await h.page();
  const token = await h.signInMember(page, GRANTED);
  assert.equal(await page.evaluate(() => location.href.includes('token')), false);
  assert.ok(!h.serverLog().includes(token), 'the fragment is never sent, so the log cannot hold it');
  // The session cookie is HttpOnly: the page's scripts (and so any injected one) cannot read it.
  assert.equal(await page.evaluate(() => document.cookie.includes('consentry_session')), false);
});

/** A page on another origin (another port of 127.0.0.1 is another site to CORS, not to SameSite; see R4). */
async function attacker(html) {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(html);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return { server, base: `http://127.0.0.1:${server.address().port}` };
}

scenario('(R3) another site cannot frame the privacy centre or the dashboard (clickjacking)', async (h) => {
  const evil = await attacker(
    `<iframe id="p" src="${h.base}/privacy"></iframe><iframe id="d" src="${h.base}/dashboard"></iframe>`,
  );
  try {
    const page = await h.page();
    await page.goto(evil.base, { waitUntil: 'load' });
    await page.waitForTimeout(500);
    const frames = page.frames().filter((f) => f !== page.mainFrame());
    assert.equal(frames.length, 2, 'both frames were attempted');
    for (const frame of frames) {
      // Chromium refuses the framed document (CSP frame-ancestors 'none', X-Frame-Options DENY).
      const loaded = await frame.evaluate(() => !!document.querySelector('main#main')).catch(() => false);
      assert.equal(loaded, false, `${frame.url()} rendered inside another site`);
    }
  } finally {
    evil.server.close();
  }
  // Chromium reports the refusal on the console; that is the point of this test, not a page error of ours.
  h.pageErrors.length = 0;
});

scenario('(R4) a script on another origin cannot change the member\'s consent through their session', async (h) => {
  const page = await h.page();
  const token = await h.signInMember(page, GRANTED);
  const before = (await h.api('GET', '/v1/me/history?limit=500', { auth: token })).json.events.length;
  const evil = await attacker('<p>prize</p>');
  try {
    const other = await page.context().newPage();
    await other.goto(evil.base, { waitUntil: 'load' });
    const outcome = await other.evaluate(
      async ({ base, purpose }) => {
        const tries = [];
        for (const init of [
          // A simple request needs no preflight, and another port of 127.0.0.1 is the same site, so the cookie goes
          // along: the missing X-CSRF-Token is what refuses it. The PUT needs a preflight, which CORS refuses.
          { method: 'POST', body: 'x', credentials: 'include', mode: 'no-cors' },
          {
            method: 'PUT',
            credentials: 'include',
            headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': 'guess' },
            body: JSON.stringify({ state: 'withdrawn', notice_version: 1 }),
          },
        ]) {
          try {
            const r = await fetch(`${base}/v1/me/consents/${purpose}`, init);
            tries.push(r.type === 'opaque' ? 'opaque' : r.status);
          } catch (e) {
            tries.push(`refused: ${e.message}`);
          }
        }
        return tries;
      },
      { base: h.base, purpose: JOBS },
    );
    assert.ok(outcome.every((o) => o === 'opaque' || String(o).startsWith('refused')), JSON.stringify(outcome));
  } finally {
    evil.server.close();
  }
  const after = (await h.api('GET', '/v1/me/history?limit=500', { auth: token })).json.events.length;
  assert.equal(after, before, 'nothing was written for the member');
  h.pageErrors.length = 0; // the blocked cross-origin requests log console errors by design
});

scenario('(R5) the operator key lives in one tab only and is gone after signing out', async (h) => {
  const key = h.operatorKey();
  const page = await h.page();
  await h.signInOperator(page, key);
  await page.locator('#board').waitFor({ state: 'visible' });
  // Another tab (a new context: its own storage) is not signed in.
  const other = await h.page();
  await h.goto(other, '/dashboard');
  await other.locator('form#key-sign-in').waitFor({ state: 'visible' });
  // Nothing of the key is kept where it outlives the tab.
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  assert.equal(await page.evaluate(() => document.cookie), '');
  await page.locator('#sign-out').click();
  await page.locator('form#key-sign-in').waitFor({ state: 'visible' });
  await eventually('the key to leave sessionStorage', async () => (await page.evaluate(() => sessionStorage.length)) === 0);
  await page.reload();
  await page.locator('form#key-sign-in').waitFor({ state: 'visible' });
});
