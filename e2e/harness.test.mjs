// The harness itself, before any page: the server, the credentials, the fixture's members the scenarios rely on,
// the browser, and axe-core running under the pages' Content-Security-Policy. Needs no page of the lead's.

import assert from 'node:assert/strict';
import { GRANTED, JOBS, NEVER_CHOSE, OTHER, scenario } from './harness.mjs';

/** The pages' CSP (the brief's shared contract). */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

scenario('harness: server, credentials and the fixture members the scenarios rely on', async (h) => {
  assert.equal((await h.api('GET', '/healthz')).status, 200);

  const granted = await h.api('GET', '/v1/me/consents', { auth: h.token(GRANTED) });
  assert.equal(granted.status, 200, granted.text);
  const jobs = granted.json.purposes.find((p) => p.purpose === JOBS);
  assert.equal(jobs?.allowed, true, `member ${GRANTED} has granted ${JOBS}`);

  for (const member of [GRANTED, OTHER]) {
    const lineage = await h.api('GET', '/v1/me/lineage', { auth: h.token(member) });
    assert.equal(lineage.status, 200, lineage.text);
    assert.ok(
      lineage.json.models.some((m) => m.purpose === JOBS && m.status === 'live'),
      `member ${member} is in a live ${JOBS} model: ${lineage.text}`,
    );
  }

  const never = await h.api('GET', '/v1/me/history', { auth: h.token(NEVER_CHOSE) });
  assert.equal(never.status, 200, never.text);
  assert.deepEqual(never.json.events, [], `member ${NEVER_CHOSE} never chose anything`);

  const key = h.operatorKey();
  const queue = await h.api('GET', '/v1/unlearning', { auth: key });
  assert.equal(queue.status, 200, queue.text);
});

scenario("harness: Chromium starts and axe-core runs under the pages' CSP (no bypassCSP)", async (h) => {
  const page = await h.page();
  // A page served with the pages' CSP and one serious violation (an image without alt text), to show axe runs
  // under that policy and that its findings are reported.
  await page.route('**/csp-check', (route) =>
    route.fulfill({
      status: 200,
      headers: { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': CSP },
      body:
        '<!doctype html><html lang="en"><head><title>CSP check</title></head><body><main><h1>Check</h1>' +
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="></main><script>window.inlineRan = true</script></body></html>',
    }),
  );
  await page.goto(`${h.base}/csp-check`);
  assert.equal(await page.evaluate(() => window.inlineRan === true), false, 'the CSP blocks inline scripts');
  const r = await h.axe(page, 'csp-check');
  assert.ok(
    r.violations.some((v) => v.id === 'image-alt'),
    `axe-core ran in the page and found the missing alt text:\n${r.text}`,
  );
});
