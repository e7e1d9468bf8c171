// The browser end-to-end harness: a real `consentry serve` over a private copy of the CLI's fixture data directory,
// Debian's Chromium driven by playwright-core, axe-core in each page, screenshots in e2e/artifacts/. Every scenario
// gets its own server, data directory and browser (`scenario(...)`), and both are stopped even when it fails.
//
// Environment: CONSENTRY_BIN (default <CARGO_TARGET_DIR or target>/debug/consentry), CHROMIUM (default
// /usr/bin/chromium), E2E_KEEP=1 keeps the data directories and prints where they are.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { chmodSync, cpSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);

/** The repository root (e2e/..). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Where screenshots, downloaded receipts and measurements go (git-ignored). */
export const ARTIFACTS = join(ROOT, 'e2e', 'artifacts');
export const FIXTURE = join(ROOT, 'crates', 'consentry', 'tests', 'fixtures', 'datadir-v1');
export const BIN =
  process.env.CONSENTRY_BIN || join(process.env.CARGO_TARGET_DIR || join(ROOT, 'target'), 'debug', 'consentry');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 360, height: 740 };
/** The flags the brief asks for; Playwright adds its own automation flags and a fresh temporary profile. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// Purposes of the fixture's policy and members with known histories (found with `consentry lineage member` and
// `GET /v1/me/history` over the fixture; `harness.test.mjs` re-checks the ones the scenarios rely on).
export const JOBS = 'train_ai_system.job_recommendations';
export const CONTENT = 'train_ai_system.content_suggestions';
export const REPLIES = 'train_ai_system.reply_suggestions';
/** Granted job recommendations (seq 70) and is in shard 1 of the live job-recs model v1; granted replies too. */
export const GRANTED = 5;
/** Another member in the same live model: the one whose data the URL-editing scenario tries to reach. */
export const OTHER = 6;
/** A member who never chose anything (no events at all). */
export const NEVER_CHOSE = 4;

const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** A test with its own server and browser, both stopped afterwards whatever happens. */
export function scenario(name, fn, { timeout = 180_000 } = {}) {
  test(name, { timeout }, async (t) => {
    const h = await Harness.start(name);
    try {
      await fn(h, t);
    } catch (e) {
      await h.failureShots().catch(() => {});
      h.printServerLog();
      throw e;
    } finally {
      await h.close();
    }
  });
}

/** One server + one browser for one scenario. */
export class Harness {
  static async start(name) {
    if (!existsSync(BIN)) {
      throw new Error(`${BIN} does not exist: build it with \`cargo build -p consentry\` (e2e/run does)`);
    }
    const h = new Harness(name);
    try {
      await h.#startServer();
      h.browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        // chromium.launch creates a fresh, empty user-data directory for every launch and deletes it on close.
      });
    } catch (e) {
      await h.close();
      throw e;
    }
    return h;
  }

  constructor(name) {
    this.name = name;
    this.slug = name
      .replace(/[^a-z0-9]+/gi, '-')
      .replace(/^-|-$/g, '')
      .toLowerCase()
      .slice(0, 60);
    this.work = mkdtempSync(join(tmpdir(), 'consentry-e2e-'));
    this.data = join(this.work, 'data');
    this.pages = [];
    /** Console errors, uncaught page errors and CSP violations of every page, as readable lines. */
    this.pageErrors = [];
    mkdirSync(ARTIFACTS, { recursive: true });
  }

  async #startServer() {
    cpSync(FIXTURE, this.data, { recursive: true });
    // git keeps no 0600, and consentry refuses a signing key others may read.
    chmodSync(join(this.data, 'ledger.key'), 0o600);
    this.logPath = join(this.work, 'serve.log');
    const log = createWriteStream(this.logPath);
    this.server = spawn(BIN, ['--data', this.data, 'serve', '--addr', '127.0.0.1:0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.server.stderr.pipe(log);
    const exited = new Promise((_, reject) =>
      this.server.once('exit', (code, signal) =>
        reject(
          new Error(`consentry serve exited (${code ?? signal}) before printing its address:\n${this.serverLog()}`),
        ),
      ),
    );
    const lines = createInterface({ input: this.server.stdout });
    const first = new Promise((resolve) => lines.once('line', resolve));
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`consentry serve printed no address in 20 s:\n${this.serverLog()}`)),
        20_000,
      );
    });
    try {
      this.base = (await Promise.race([first, exited, timeout])).trim();
    } finally {
      clearTimeout(timer);
    }
    exited.catch(() => {}); // from now on an exit is noticed by the requests that fail
    assert.match(this.base, /^http:\/\/127\.0\.0\.1:\d+$/, 'the first line of `consentry serve` is its address');
    // A last resort if the test process dies without running `close`.
    this.killOnExit = () => this.server.exitCode === null && this.server.kill('SIGKILL');
    process.once('exit', this.killOnExit);
  }

  serverLog() {
    try {
      return readFileSync(this.logPath, 'utf8').split('\n').slice(-40).join('\n');
    } catch {
      return '(no log)';
    }
  }

  printServerLog() {
    console.log(`--- last lines of consentry serve's log (${this.name}):\n${this.serverLog()}`);
  }

  /** Runs the CLI on this scenario's data directory; returns its standard output. */
  cli(...args) {
    return execFileSync(BIN, ['--data', this.data, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** A member bearer token (`consentry token`). */
  token(member, ttl = '1h') {
    return this.cli('token', '--member', String(member), '--ttl', ttl).trim();
  }

  /** A fresh operator API key; its secret is the first line `consentry keys create` prints. */
  operatorKey() {
    const secret = this.cli('keys', 'create', '--role', 'operator', '--name', 'e2e').split('\n')[0].trim();
    assert.match(secret, /^csk_/, 'keys create prints the secret first');
    return secret;
  }

  /** A request straight to the service (not through the browser): { status, headers, text, json }. */
  async api(method, path, { auth, body, headers = {} } = {}) {
    const h = { ...headers };
    if (auth) h.Authorization = `Bearer ${auth}`;
    if (body !== undefined) h['Content-Type'] = 'application/json';
    const r = await fetch(this.base + path, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: r.status, headers: r.headers, text, json };
  }

  /** A new browser context (own cookies and cache) at desktop size; every page in it is watched for errors. */
  async context(options = {}) {
    const context = await this.browser.newContext({ viewport: DESKTOP, acceptDownloads: true, ...options });
    context.setDefaultTimeout(10_000);
    context.on('page', (page) => this.#watch(page));
    return context;
  }

  /** A page in a new context. */
  async page(options = {}) {
    const context = await this.context(options);
    return context.newPage();
  }

  #watch(page) {
    this.pages.push(page);
    page.on('console', (m) => {
      // A 401 is how a signed-out page learns that it is signed out; Chromium logs it as a failed load.
      if (m.type() === 'error' && !/status of 401/.test(m.text())) {
        this.pageErrors.push(`${page.url()}: console error: ${m.text()} (${m.location()?.url || ''})`);
      }
    });
    page.on('pageerror', (e) => this.pageErrors.push(`${page.url()}: uncaught ${e.name}: ${e.message}`));
  }

  /** Goes to a path of the service; a 404 means the page does not exist yet, which fails with a message saying so. */
  async goto(page, path) {
    const response = await page.goto(this.base + path, { waitUntil: 'load' });
    const status = response?.status();
    if (status === 404 && /^\/(privacy|dashboard)?(\?|#|$)/.test(path)) {
      throw new Error(
        `GET ${path.split('#')[0]} answers 404: the lead's pages are not on this branch yet (this scenario needs them)`,
      );
    }
    await page.waitForLoadState('networkidle').catch(() => {});
    return response;
  }

  /** Signs a member in through the URL fragment and waits for the cards; checks the fragment is gone. */
  async signInMember(page, member, { via = 'fragment' } = {}) {
    const token = this.token(member);
    if (via === 'fragment') {
      // From /privacy itself a fragment-only change is a same-document navigation: load the link afresh instead.
      if (page.url().startsWith(`${this.base}/privacy`)) await page.goto('about:blank');
      await this.goto(page, `/privacy#token=${token}`);
    } else {
      await this.goto(page, '/privacy');
      await page.locator('form#sign-in').waitFor({ state: 'visible' });
      await page.getByLabel('Your sign-in token').fill(token);
      await submitButton(page, 'form#sign-in').click();
    }
    await page.locator('section.feature-card').first().waitFor({ state: 'visible' });
    await page.waitForLoadState('networkidle').catch(() => {});
    return token;
  }

  /** Signs the operator in on /dashboard with an API key (if the page asks for it). */
  async signInOperator(page, key) {
    await this.goto(page, '/dashboard');
    const form = page.locator('form#key-sign-in');
    if (await form.isVisible()) {
      await page.locator('input#api-key').fill(key);
      await submitButton(page, 'form#key-sign-in').click();
      await form.waitFor({ state: 'hidden' });
    }
    await page.waitForLoadState('networkidle').catch(() => {});
  }

  /**
   * axe-core in the page: fails on any `serious` or `critical` violation, printed one per line with its targets.
   * The pages' CSP (`script-src 'self'`) blocks `addScriptTag({content})` (an inline script), so axe's source is
   * evaluated through the DevTools protocol with `page.evaluate`, which CSP does not govern; no context uses
   * `bypassCSP`, so the pages are tested under their real policy.
   */
  async axe(page, label) {
    if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(axeSource);
    const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
    const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    const text = bad
      .map(
        (v) =>
          `  [${v.impact}] ${v.id}: ${v.help} (${v.helpUrl})\n` +
          v.nodes
            .map((n) => `      at ${n.target.join(' ')} — ${(n.failureSummary || '').replace(/\s+/g, ' ')}`)
            .join('\n'),
      )
      .join('\n');
    return { label, count: bad.length, text, violations: bad };
  }

  /** Fails with every serious/critical axe violation of the page. */
  async assertAxe(page, label) {
    const r = await this.axe(page, label);
    assert.equal(r.count, 0, `axe-core: ${r.count} serious/critical violation(s) on ${label}:\n${r.text}`);
  }

  /** Full-page screenshots at 1280×800 and 360×740: e2e/artifacts/<name>-{desktop,phone}.png. */
  async shots(page, name) {
    const before = page.viewportSize();
    const paths = [];
    for (const [size, viewport] of [
      ['desktop', DESKTOP],
      ['phone', PHONE],
    ]) {
      await page.setViewportSize(viewport);
      await settle(page);
      const path = join(ARTIFACTS, `${name}-${size}.png`);
      await page.screenshot({ path, fullPage: true });
      paths.push(path);
    }
    if (before) await page.setViewportSize(before);
    await settle(page);
    return paths;
  }

  /** A screenshot of every page still open when a scenario fails: e2e/artifacts/failed-<scenario>-<n>.png. */
  async failureShots() {
    let n = 0;
    for (const page of this.pages) {
      if (page.isClosed()) continue;
      n += 1;
      const path = join(ARTIFACTS, `failed-${this.slug}-${n}.png`);
      await page.screenshot({ path, fullPage: true, timeout: 5_000 }).catch(() => {});
      console.log(`failure screenshot: ${path} (${page.url()})`);
    }
  }

  /** Stops the browser and the server (SIGTERM, then SIGKILL after 5 s) and removes the data directory. */
  async close() {
    if (this.browser) {
      let timer;
      const late = new Promise((r) => {
        timer = setTimeout(r, 10_000);
      });
      await Promise.race([this.browser.close(), late]).catch(() => {});
      clearTimeout(timer);
    }
    if (this.server && this.server.exitCode === null && this.server.signalCode === null) {
      const gone = new Promise((r) => this.server.once('exit', r));
      this.server.kill('SIGTERM');
      const timer = setTimeout(() => this.server.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(timer);
    }
    if (this.killOnExit) process.removeListener('exit', this.killOnExit);
    if (process.env.E2E_KEEP) console.log(`kept ${this.work}`);
    else rmSync(this.work, { recursive: true, force: true });
  }
}

/** The submit button of a form (a `<button>` without `type` submits too). */
export function submitButton(page, form) {
  return page.locator(`${form} button:not([type=button]):not([type=reset]), ${form} input[type=submit]`).first();
}

/** Waits for layout and paint after a change (two animation frames). */
export async function settle(page) {
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

/** Polls `fn` until it returns a truthy value (returned) or `timeout` ms pass (then fails with `what`). */
export async function eventually(what, fn, { timeout = 10_000, interval = 200 } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** The feature card of a purpose. */
export function card(page, purpose) {
  return page.locator(`section.feature-card[data-purpose="${purpose}"]`);
}

/** The grant or withdraw button of a purpose's card. */
export function choice(page, purpose, which) {
  return card(page, purpose).locator(`div[role=group] button.choice[data-choice="${which}"]`);
}

/** The seqs of the rows of `table#history`, as numbers. */
export async function historySeqs(page) {
  return page.locator('table#history tr[data-seq]').evaluateAll((rows) => rows.map((r) => Number(r.dataset.seq)));
}

/** Whitespace-normalised text of a locator ('' when absent). */
export async function textOf(locator) {
  if ((await locator.count()) === 0) return '';
  return ((await locator.first().textContent()) || '').replace(/\s+/g, ' ').trim();
}
