// Every page and state (landing; privacy centre signed out, signed in, erase dialog open, a member's first visit;
// dashboard signed out, signed in): axe-core, screenshots at desktop and phone width, no horizontal scroll at
// 360 px, page weight.
// Without the pages (/, /privacy, /dashboard) each test fails saying the page answers 404.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ARTIFACTS, GRANTED, NEVER_CHOSE, PHONE, scenario, settle } from './harness.mjs';

/**
 * Walks every page and state in one browser context, calling `check(page, state)` in each; a state that cannot be
 * reached is recorded and the walk goes on, so one run lists every problem. Returns the problems.
 */
async function walk(h, check, { shotOnFail = false } = {}) {
  const problems = [];
  const key = h.operatorKey();
  const page = await h.page();
  const step = async (state, reach) => {
    try {
      await reach();
      await check(page, state);
    } catch (e) {
      problems.push(`${state}: ${e.message.split('\n').slice(0, 12).join('\n    ')}`);
      if (shotOnFail) await h.shots(page, state).catch(() => {}); // the state as far as it got
    }
  };
  const visible = (selector) => page.locator(selector).first().waitFor({ state: 'visible' });
  /** Each state: its name, how to reach it from the one before, and what shows it is there. */
  const states = [
    ['landing', () => h.goto(page, '/'), 'body'],
    ['privacy-signed-out', () => h.goto(page, '/privacy'), 'form#sign-in'],
    ['privacy-signed-in', () => h.signInMember(page, GRANTED), 'table#history tr[data-seq]'],
    ['privacy-erase-dialog', () => page.locator('button#erase').click(), 'dialog#erase-dialog[open]'],
    // What a member who never chose anything sees first (the erase dialog cancelled on the way).
    ['privacy-first-visit', () => cancelThenSignIn(h, page, NEVER_CHOSE), 'section.feature-card'],
    ['dashboard-signed-out', () => h.goto(page, '/dashboard'), 'form#key-sign-in'],
    ['dashboard-signed-in', () => h.signInOperator(page, key), '#coverage svg'],
  ];
  for (const [state, reach, shown] of states) {
    await step(state, async () => {
      await reach();
      await visible(shown);
    });
  }
  return problems;
}

/** Cancels the erase dialog if it is open, then signs `member` in. */
async function cancelThenSignIn(h, page, member) {
  const cancel = page.locator('button#erase-cancel');
  if (await cancel.isVisible()) await cancel.click();
  await h.signInMember(page, member);
}

scenario(
  '(0) every page and state: axe-core has no serious/critical violation; screenshots at 1280 and 360 px',
  async (h) => {
    const shots = [];
    const problems = await walk(
      h,
      async (page, state) => {
        shots.push(...(await h.shots(page, state)));
        const r = await h.axe(page, state);
        if (r.count) throw new Error(`axe-core: ${r.count} serious/critical violation(s):\n${r.text}`);
      },
      { shotOnFail: true },
    );
    console.log(`screenshots:\n  ${shots.join('\n  ')}`);
    if (h.pageErrors.length) problems.push(`console errors / CSP violations:\n    ${h.pageErrors.join('\n    ')}`);
    assert.deepEqual(problems, [], `problems:\n  ${problems.join('\n  ')}`);
  },
);

scenario('(8) 360 px wide: no horizontal scroll on any page or state', async (h) => {
  const problems = await walk(h, async (page, state) => {
    await page.setViewportSize(PHONE);
    await settle(page);
    const r = await page.evaluate((width) => {
      const scrollWidth = document.scrollingElement.scrollWidth;
      const wide = [...document.querySelectorAll('body *')]
        .filter((el) => el.getBoundingClientRect().right > width + 0.5 && el.getClientRects().length > 0)
        .filter((el) => !el.parentElement || el.parentElement.getBoundingClientRect().right <= width + 0.5)
        .slice(0, 8)
        .map((el) => {
          const id = el.id ? `#${el.id}` : '';
          const cls =
            typeof el.className === 'string' && el.className ? `.${el.className.trim().split(/\s+/).join('.')}` : '';
          return `${el.tagName.toLowerCase()}${id}${cls} (right edge ${Math.round(el.getBoundingClientRect().right)} px)`;
        });
      return { scrollWidth, wide };
    }, PHONE.width);
    await page.setViewportSize({ width: 1280, height: 800 });
    if (r.scrollWidth > PHONE.width) {
      throw new Error(`scrollWidth ${r.scrollWidth} > ${PHONE.width}; widest elements: ${r.wide.join(', ')}`);
    }
  });
  assert.deepEqual(problems, [], `problems:\n  ${problems.join('\n  ')}`);
});

/**
 * The bytes a cold load transfers (headers + bodies, as Chromium counts them), without the API's JSON responses;
 * `then`, if given, runs afterwards in the same page and is measured as a second row (cumulative).
 */
async function coldLoad(h, path, signIn, then) {
  const context = await h.context();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  const urls = new Map();
  const rows = [];
  cdp.on('Network.responseReceived', (e) =>
    urls.set(e.requestId, { url: e.response.url, type: e.type, json: /json/.test(e.response.mimeType) }),
  );
  cdp.on('Network.loadingFinished', (e) => {
    const r = urls.get(e.requestId);
    if (r) rows.push({ ...r, bytes: e.encodedDataLength });
  });
  const measure = async (label) => {
    await page.waitForLoadState('networkidle');
    await settle(page);
    // The API's JSON is the member's or operator's data, not the page; the charts the service draws (SVG) count.
    const own = rows.filter((r) => !r.url.startsWith('data:') && !r.json);
    const api = rows.filter((r) => r.json);
    const sum = (rs) => rs.reduce((a, r) => a + r.bytes, 0);
    return {
      path: label,
      total: sum(own),
      api: sum(api),
      resources: own.map((r) => ({ url: r.url.replace(h.base, ''), type: r.type, bytes: r.bytes })),
    };
  };
  if (signIn) await signIn(page);
  else await h.goto(page, path);
  const out = [await measure(path)];
  if (then) {
    await then.run(page);
    out.push(await measure(then.label));
  }
  await context.close();
  return out;
}

scenario(
  '(9) page weight of a cold load of /, /privacy and /dashboard (signed in) is under 200 KB each, API JSON excluded',
  async (h) => {
    const BUDGET = 200 * 1024;
    const key = h.operatorKey();
    const checkReceipt = {
      label: '/privacy, then checking a receipt (loads the verifier)',
      run: async (page) => {
        const row = page.locator('table#history tr[data-seq]').first();
        await row.locator('button.verify-receipt').click();
        await row.locator('.verify-result[data-verified]').waitFor({ state: 'visible' });
      },
    };
    const results = [
      ...(await coldLoad(h, '/')),
      ...(await coldLoad(h, '/privacy', (page) => h.signInMember(page, GRANTED), checkReceipt)),
      ...(await coldLoad(h, '/dashboard', (page) => h.signInOperator(page, key))),
    ];
    for (const r of results) {
      console.log(
        `page weight ${r.path}: ${(r.total / 1024).toFixed(1)} KB transferred in ${r.resources.length} resource(s) ` +
          `(+ ${(r.api / 1024).toFixed(1)} KB of API JSON)`,
      );
      for (const res of r.resources)
        console.log(`    ${String(res.bytes).padStart(8)} B  ${res.type.padEnd(10)} ${res.url}`);
    }
    writeFileSync(join(ARTIFACTS, 'page-weight.json'), JSON.stringify(results, null, 2));
    for (const r of results) {
      assert.ok(r.resources.length > 0, `${r.path} loaded nothing`);
      assert.ok(r.total <= BUDGET, `${r.path} weighs ${r.total} B on a cold load, over the ${BUDGET} B budget`);
    }
  },
);
