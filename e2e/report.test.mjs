// The privacy officer's report (`consentry report --out FILE`) opened from disk (file://) in Debian's Chromium: no
// console or page error, no request for anything but the file itself (file:, data:), no serious or critical axe-core
// violation, and full-page screenshots at 1280 and 360 px in e2e/artifacts/report-1280.png and report-360.png.
//
// Needs the debug binary (e2e/run builds it); CONSENTRY_BIN overrides its path. The demo data directory it reports
// on is made here (`demo --members 3000`); E2E_KEEP=1 keeps it and prints where.
// Run: e2e/run report.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { ARTIFACTS, BIN, CHROMIUM, CHROMIUM_ARGS, DESKTOP, PHONE } from './harness.mjs';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

let work;
let report;

function consentry(args) {
  const r = spawnSync(BIN, args, { encoding: 'utf8' });
  if (r.error) throw new Error(`cannot run ${BIN}: ${r.error.message}`);
  assert.equal(r.status, 0, `consentry ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

before(() => {
  work = mkdtempSync(join(tmpdir(), 'consentry-e2e-report-'));
  const data = join(work, 'data');
  consentry(['--data', data, '--quiet', 'demo', '--members', '3000']);
  report = join(work, 'report.html');
  const said = consentry(['--data', data, 'report', '--out', report]);
  assert.match(said, /Report: .*report\.html \(\d+ KB\)/);
  mkdirSync(ARTIFACTS, { recursive: true });
});

after(() => {
  if (process.env.E2E_KEEP === '1') console.log(`kept ${work}`);
  else if (work) rmSync(work, { recursive: true, force: true });
});

test('the report opens from disk with no error, no request out, no serious axe violation', { timeout: 180_000 }, async () => {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage({ viewport: DESKTOP });
    const problems = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`uncaught ${e.name}: ${e.message}`));
    page.on('request', (r) => {
      const u = r.url();
      if (!u.startsWith('file:') && !u.startsWith('data:')) problems.push(`request out of the file: ${u}`);
    });
    const url = pathToFileURL(report).href;
    await page.goto(url, { waitUntil: 'load' });
    for (const id of ['summary', 'coverage', 'exclusions', 'models', 'dp', 'privacy-loss', 'unlearning', 'audit', 'verify']) {
      assert.equal(await page.locator(`section#${id}`).count(), 1, `section ${id}`);
    }
    assert.match(await page.locator('section#audit').innerText(), /Audit passed/);
    assert.equal(await page.locator('script').count(), 0, 'no script in the report');
    const charts = await page.locator('svg[role="img"]').count();
    assert.ok(charts >= 5, `${charts} charts`);

    await page.evaluate(axeSource);
    const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
    const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    const text = bad
      .map((v) => `  [${v.impact}] ${v.id}: ${v.help}\n` + v.nodes.map((n) => `      at ${n.target.join(' ')}`).join('\n'))
      .join('\n');
    assert.equal(bad.length, 0, `axe-core: ${bad.length} serious/critical violation(s):\n${text}`);

    await page.screenshot({ path: join(ARTIFACTS, 'report-1280.png'), fullPage: true });
    await page.setViewportSize(PHONE);
    // At 360 px nothing but the tables' own boxes scrolls sideways.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 1, `the page is ${overflow} px wider than a 360 px screen`);
    await page.screenshot({ path: join(ARTIFACTS, 'report-360.png'), fullPage: true });
    assert.deepEqual(problems, [], problems.join('\n'));
  } finally {
    await browser.close();
  }
});
