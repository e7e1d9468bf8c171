// The member's privacy centre (/privacy) in a real browser: sign-in, one-click withdrawal, history and receipts
// verified in the page, "where my data went" after the unlearning run, Global Privacy Control, and that editing a URL
// never reaches another member's data.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ARTIFACTS,
  GRANTED,
  JOBS,
  OTHER,
  card,
  choice,
  eventually,
  historySeqs,
  scenario,
  submitButton,
  textOf,
} from './harness.mjs';

/** Waits until the attribute of a locator has the value (Playwright's own wait, with a readable failure). */
async function expectAttr(locator, name, value, what) {
  await eventually(`${what} to have ${name}="${value}"`, async () => (await locator.getAttribute(name)) === value, {
    timeout: 5_000,
  });
}

scenario(
  '(1) a member signs in by link, withdraws with one click, sees the new history row, downloads the receipt and sees it verified; a tampered receipt is not verified',
  async (h) => {
    const page = await h.page();
    const token = await h.signInMember(page, GRANTED);
    assert.equal(
      await page.evaluate(() => location.hash),
      '',
      'the page removes #token=… from the URL after signing in',
    );

    const grant = choice(page, JOBS, 'grant');
    const withdraw = choice(page, JOBS, 'withdraw');
    assert.equal(
      await grant.getAttribute('aria-pressed'),
      'true',
      `member ${GRANTED} has granted ${JOBS}: Allow is pressed`,
    );
    assert.equal(await withdraw.getAttribute('aria-pressed'), 'false');
    await page.locator('table#history tr[data-seq]').first().waitFor({ state: 'visible' });
    const before = await historySeqs(page);

    await withdraw.click(); // one click: no confirmation
    await expectAttr(withdraw, 'aria-pressed', 'true', `${JOBS} "Don't allow"`);
    assert.equal(await grant.getAttribute('aria-pressed'), 'false');
    await card(page, JOBS).locator('.state[data-state="not_used"]').waitFor({ state: 'visible' });

    const seq = await eventually('a new row in table#history', async () =>
      (await historySeqs(page)).find((s) => !before.includes(s)),
    );
    assert.equal((await historySeqs(page)).length, before.length + 1, 'one click, one new event');
    const ledger = await h.api('GET', '/v1/me/history', { auth: token });
    const event = ledger.json.events.find((e) => e.seq === seq);
    assert.ok(event, `the row's seq ${seq} is an event of member ${GRANTED} in the ledger`);
    assert.equal(event.action, 'withdraw');
    assert.equal(event.purpose, JOBS);

    const row = page.locator(`table#history tr[data-seq="${seq}"]`);
    const [download] = await Promise.all([page.waitForEvent('download'), row.locator('a.download-receipt').click()]);
    const file = join(ARTIFACTS, `receipt-${seq}.json`);
    await download.saveAs(file);
    const receipt = JSON.parse(readFileSync(file, 'utf8'));
    assert.equal(receipt.event?.seq, seq, `the downloaded receipt (${download.suggestedFilename()}) is the event's`);

    await row.locator('button.verify-receipt').click();
    await row.locator('.verify-result[data-verified="true"]').waitFor({ state: 'visible' });
    console.log(`receipt ${seq} in the row: ${await textOf(row.locator('.verify-result'))}`);

    const input = page.locator('input#receipt-file');
    const result = page.locator('#receipt-file-result');
    await input.setInputFiles(file);
    await expectAttr(result, 'data-verified', 'true', 'the saved receipt file');

    const tampered = structuredClone(receipt);
    tampered.event.action = 'grant';
    if (tampered.record?.event) tampered.record.event.state = 'granted';
    const tamperedFile = join(ARTIFACTS, `receipt-${seq}-tampered.json`);
    writeFileSync(tamperedFile, JSON.stringify(tampered, null, 2));
    await input.setInputFiles(tamperedFile);
    await expectAttr(result, 'data-verified', 'false', 'a receipt whose withdrawal was edited into a grant');
    console.log(`tampered receipt: ${await textOf(result)}`);

    const forged = structuredClone(receipt);
    forged.record_signature = forged.record_signature.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    const forgedFile = join(ARTIFACTS, `receipt-${seq}-bad-signature.json`);
    writeFileSync(forgedFile, JSON.stringify(forged, null, 2));
    await input.setInputFiles(tamperedFile.replace('-tampered', '')); // back to a verified state first
    await expectAttr(result, 'data-verified', 'true', 'the saved receipt file again');
    await input.setInputFiles(forgedFile);
    await expectAttr(result, 'data-verified', 'false', 'a receipt with a changed signature');
  },
);

scenario('(1b) a member signs in with form#sign-in ("Your sign-in token") and signs out', async (h) => {
  const page = await h.page();
  await h.signInMember(page, GRANTED, { via: 'form' });
  assert.ok((await page.locator('section.feature-card').count()) >= 3, 'one card per purpose of the policy (3)');
  await page.locator('button#sign-out').click();
  await page.locator('form#sign-in').waitFor({ state: 'visible' });
  await h.goto(page, '/privacy');
  await page.locator('form#sign-in').waitFor({ state: 'visible' });
  assert.equal(
    await page.locator('section.feature-card').count(),
    0,
    'after signing out, a reload shows no member data',
  );
  // The session cookie is gone: the API refuses the browser.
  const r = await page.request.get(`${h.base}/v1/me/consents`);
  assert.equal(r.status(), 401, 'after signing out the session cookie no longer works');
  assert.equal(await submitButton(page, 'form#sign-in').isVisible(), true);
});

/** The `#where li[data-model]` of a model (data-model may hold the full id or a prefix of 8+ characters). */
async function whereItem(page, model) {
  const items = page.locator('#where li[data-model]');
  const i = await items.evaluateAll(
    (lis, id) =>
      lis.findIndex(
        (li) => li.dataset.model.length >= 8 && (id.startsWith(li.dataset.model) || li.dataset.model.startsWith(id)),
      ),
    model,
  );
  const all = await items.evaluateAll((lis) => lis.map((li) => li.dataset.model));
  assert.ok(i >= 0, `#where has an li[data-model] for model ${model} (has: ${JSON.stringify(all)})`);
  return items.nth(i);
}

scenario('(2) after the unlearning run, "where my data went" (#where) shows the removal from the model', async (h) => {
  const page = await h.page();
  const token = await h.signInMember(page, GRANTED);
  const lineage = await h.api('GET', '/v1/me/lineage', { auth: token });
  const model = lineage.json.models.find((m) => m.purpose === JOBS && m.status === 'live');
  assert.ok(model, `member ${GRANTED} is in a live ${JOBS} model`);
  await page.locator('#where li[data-model]').first().waitFor({ state: 'visible' });
  const before = await textOf(await whereItem(page, model.model));
  console.log(`#where before: ${before}`);

  await choice(page, JOBS, 'withdraw').click();
  await expectAttr(choice(page, JOBS, 'withdraw'), 'aria-pressed', 'true', `${JOBS} "Don't allow"`);
  // Withdrawn but not yet unlearned: the entry changes, and does not yet claim the removal.
  await h.goto(page, '/privacy');
  await page.locator('#where li[data-model]').first().waitFor({ state: 'visible' });
  const pending = await textOf(await whereItem(page, model.model));
  console.log(`#where after the withdrawal, before the unlearning run: ${pending}`);
  assert.notEqual(pending, before, "the model's entry in #where changes when the member withdraws");
  assert.doesNotMatch(pending, /^removed\b/i, 'before the unlearning run the entry does not say the data was removed');

  const run = await h.api('POST', '/v1/jobs/unlearn', { auth: h.operatorKey() });
  assert.equal(run.status, 200, run.text);
  assert.ok(
    run.json.retrains.some((r) => r.old_model === model.model && r.members.includes(GRANTED)),
    `the unlearning run retrained ${model.model} without member ${GRANTED}: ${run.text}`,
  );

  await h.goto(page, '/privacy');
  await page.locator('#where li[data-model]').first().waitFor({ state: 'visible' });
  const item = await whereItem(page, model.model);
  const after = await textOf(item);
  console.log(`#where after the unlearning run: ${after}`);
  assert.notEqual(after, before, "the model's entry in #where changed after the unlearning run");
  assert.match(after, /removed/i, "the entry says the member's data was removed");
  const loss = page.locator('#privacy-loss');
  await loss.waitFor({ state: 'visible' });
  assert.ok((await textOf(loss)).length > 20, '#privacy-loss explains the privacy loss in a sentence');
  await h.shots(page, 'privacy-after-unlearning');
});

scenario(
  '(3) Global Privacy Control sent by the browser shows #gpc-banner and the GPC reason on the affected cards',
  async (h) => {
    // The affected cards: purposes whose policy lets GPC withdraw them and that the member's data is used for now
    // (a GPC signal withdraws what is in use; a feature never allowed stays "you have not agreed").
    const token = h.token(GRANTED);
    const before = (await h.api('GET', '/v1/me/consents', { auth: token })).json.purposes;
    const affected = before.filter((p) => p.gpc_withdraws && p.allowed).map((p) => p.purpose);
    assert.ok(affected.length > 0, `member ${GRANTED} allows purposes GPC withdraws`);

    const gpc = await h.context({ extraHTTPHeaders: { 'Sec-GPC': '1' } });
    await gpc.addInitScript(() =>
      Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true, configurable: true }),
    );
    const page = await gpc.newPage();
    await h.signInMember(page, GRANTED);
    await page.locator('#gpc-banner').waitFor({ state: 'visible' });
    console.log(`#gpc-banner: ${await textOf(page.locator('#gpc-banner'))}`);
    const problems = [];
    for (const purpose of affected) {
      const state = card(page, purpose).locator('.state');
      const text = await eventually(
        `the GPC reason on ${purpose}`,
        async () => {
          const t = await textOf(state);
          return /global privacy control/i.test(t) ? t : null;
        },
        { timeout: 5_000 },
      ).catch(async () => `(no GPC reason) ${await textOf(state)}`);
      console.log(`${purpose}: ${text}`);
      if (text.startsWith('(no GPC reason)'))
        problems.push(`the card of ${purpose} gives no GPC reason in .state: "${text.slice(16)}"`);
      if ((await choice(page, purpose, 'grant').getAttribute('aria-pressed')) === 'true') {
        problems.push(`${purpose}: Allow is still pressed with GPC on (the signal should withdraw it)`);
      }
    }
    const after = (await h.api('GET', '/v1/me/consents', { auth: token })).json.purposes;
    console.log(
      `the service after the page's GPC signal: ${after.map((p) => `${p.purpose} ${JSON.stringify(p.decision)}`).join('; ')}`,
    );
    await h.shots(page, 'privacy-gpc');
    await h.assertAxe(page, 'privacy with GPC');
    assert.deepEqual(problems, [], problems.join('\n'));

    // Without the signal, no banner.
    const plain = await h.page();
    await h.signInMember(plain, OTHER);
    assert.equal(
      await plain.locator('#gpc-banner').isVisible(),
      false,
      '#gpc-banner is hidden when the browser sends no GPC',
    );
  },
);

/** Strings only member `other`'s data contains: their events' idempotency keys and receipt ids, and their id fields. */
async function fingerprints(h, other) {
  const history = await h.api('GET', '/v1/me/history', { auth: h.token(other) });
  assert.equal(history.status, 200, history.text);
  const events = history.json.events;
  assert.ok(events.length > 0, `member ${other} has events`);
  const marks = events.map((e) => e.idempotency_key);
  marks.push(`"member_id":${other},`, `"member":${other},`, `"pii_principal_id":"${other}"`);
  return { seqs: events.map((e) => e.seq), marks };
}

function leaks(text, marks) {
  return marks.filter((m) => text.includes(m));
}

scenario(
  "(5) a member cannot reach another member's data by editing a URL (the API with the session cookie, and the pages)",
  async (h) => {
    const context = await h.context();
    const token = h.token(GRANTED);
    // The page's own sign-in request, made by the browser context so the cookies are the ones the page would get.
    const session = await context.request.post(`${h.base}/v1/session`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    assert.equal(session.status(), 201, await session.text());
    const mine = await context.request.get(`${h.base}/v1/me/consents`);
    assert.equal(mine.status(), 200, 'the session cookie works');

    const other = await fingerprints(h, OTHER);
    const seq = other.seqs[0];
    const tries = [
      [`/v1/me/receipts/${seq}`, [403, 404]],
      [`/v1/me/receipts/${encodeURIComponent(String(seq)).replace(/\d/g, (d) => `%3${d}`)}`, [403, 404]],
      [`/v1/me/receipts/${seq}?member=${OTHER}`, [400, 403, 404]],
      [`/v1/me/receipts/0${seq}`, [400, 403, 404]],
      [`/v1/log/receipts/${seq}`, [401, 403, 404]],
      [`/v1/me/history?member=${OTHER}`, [400, 403, 404]],
      [`/v1/me/history?member_id=${OTHER}`, [400, 403, 404]],
      [`/v1/me/consents?member=${OTHER}`, [400, 403, 404]],
      [`/v1/me/lineage?member=${OTHER}`, [400, 403, 404]],
      [`/v1/me/export?member=${OTHER}`, [400, 403, 404]],
      [`/v1/members/${OTHER}/history`, [401, 403, 404, 405]],
      [`/v1/members/${OTHER}/consents`, [401, 403, 404, 405]],
      [`/v1/me/%2e%2e/members/${OTHER}/history`, [400, 403, 404]],
      [`/v1/me%2f..%2fmembers%2f${OTHER}/history`, [400, 403, 404]],
      [`/v1/me/receipts/${seq}/..%2f..%2fhistory`, [400, 403, 404]],
      [`/v1/me/${OTHER}/history`, [400, 403, 404, 405]],
      [`/v1/me/receipts/${seq}%00`, [400, 403, 404]],
    ];
    const problems = [];
    const seen = [];
    for (const [path, allowed] of tries) {
      const r = await context.request.get(h.base + path, { maxRedirects: 0 });
      const text = await r.text();
      seen.push(`${r.status()} ${path}`);
      const leaked = leaks(text, other.marks);
      if (leaked.length) problems.push(`${path} → ${r.status()} shows member ${OTHER}'s data (${leaked.join(', ')})`);
      // An unknown query parameter may be ignored: then the answer must be the caller's own data.
      const ownAnswer = path.includes('?') && r.status() === 200 && text.includes(`"member":${GRANTED},`);
      if (!allowed.includes(r.status()) && !ownAnswer) {
        problems.push(`${path} → ${r.status()}, expected one of ${allowed.join('/')}`);
      }
    }
    console.log(`URL edits as member ${GRANTED} (session cookie):\n  ${seen.join('\n  ')}`);
    assert.deepEqual(problems, [], problems.join('\n'));

    // The pages with another member's id in the URL show the signed-in member's own data, or nothing.
    const page = await context.newPage();
    const bodies = [];
    page.on('response', async (r) => {
      if (r.url().startsWith(`${h.base}/v1/`)) bodies.push({ url: r.url(), text: await r.text().catch(() => '') });
    });
    const ownSeqs = (await h.api('GET', '/v1/me/history', { auth: token })).json.events.map((e) => e.seq);
    for (const path of [
      `/privacy?member=${OTHER}`,
      `/privacy?member_id=${OTHER}#member=${OTHER}`,
      `/privacy/${OTHER}`,
      `/privacy#member=${OTHER}`,
      `/dashboard?member=${OTHER}`,
    ]) {
      const r = await page.goto(h.base + path);
      await page.waitForLoadState('networkidle').catch(() => {});
      if (path.startsWith('/privacy?') && r.status() === 404) {
        throw new Error(`GET ${path} answers 404: the lead's pages are not on this branch yet (this part needs them)`);
      }
      const rows = await historySeqs(page);
      const foreign = rows.filter((s) => !ownSeqs.includes(s));
      if (foreign.length)
        problems.push(`${path}: table#history shows seqs ${foreign} that are not member ${GRANTED}'s`);
      const html = await page.content();
      if (leaks(html, other.marks).length) problems.push(`${path}: the page shows member ${OTHER}'s data`);
      seen.push(`${r.status()} ${path} (history rows: ${rows.length})`);
    }
    for (const b of bodies) {
      const leaked = leaks(b.text, other.marks);
      if (leaked.length)
        problems.push(`the page fetched ${b.url}, which holds member ${OTHER}'s data (${leaked.join(', ')})`);
    }
    console.log(`pages as member ${GRANTED}:\n  ${seen.slice(tries.length).join('\n  ')}`);
    assert.deepEqual(problems, [], problems.join('\n'));
  },
);

scenario(
  '(10) a member downloads their data, cancels an erasure (nothing changes), then erases and follows its progress through the unlearning run',
  async (h) => {
    const page = await h.page();
    const token = await h.signInMember(page, GRANTED);

    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('button#download-data').click()]);
    const file = join(ARTIFACTS, `my-data-${GRANTED}.json`);
    await download.saveAs(file);
    const exported = readFileSync(file, 'utf8');
    JSON.parse(exported); // a JSON file
    const own = await h.api('GET', '/v1/me/export', { auth: token });
    assert.equal(JSON.stringify(JSON.parse(exported)), JSON.stringify(own.json), 'the file is GET /v1/me/export');

    const consents = async () => (await h.api('GET', '/v1/me/consents', { auth: token })).json.purposes;
    const before = JSON.stringify(await consents());
    const rows = (await historySeqs(page)).length;
    const dialog = page.locator('dialog#erase-dialog');
    await page.locator('button#erase').click();
    await dialog.waitFor({ state: 'visible' });
    const says = (await textOf(dialog)).replace(/\s+/g, ' ');
    console.log(`the erase dialog says: ${says}`);
    assert.ok(says.length > 100, 'the confirmation names what erasing does');
    await page.locator('button#erase-cancel').click();
    await dialog.waitFor({ state: 'hidden' });
    assert.equal(JSON.stringify(await consents()), before, 'cancelling changes no consent');
    assert.equal((await historySeqs(page)).length, rows, 'cancelling records nothing');

    await page.locator('button#erase').click();
    await dialog.waitFor({ state: 'visible' });
    await page.locator('button#erase-confirm').click();
    await dialog.waitFor({ state: 'hidden' });
    const progress = page.locator('#erasure-progress');
    const started = await eventually(
      '#erasure-progress to show the erasure',
      async () => (await textOf(progress)) || null,
    );
    console.log(`#erasure-progress after erasing: ${started}`);
    for (const p of await consents()) assert.equal(p.allowed, false, `${p.purpose} is off after the erasure`);
    for (const key of await page
      .locator('section.feature-card')
      .evaluateAll((cs) => cs.map((c) => c.dataset.purpose))) {
      assert.equal(
        await choice(page, key, 'withdraw').getAttribute('aria-pressed'),
        'true',
        `${key} shows "Don't allow"`,
      );
    }

    const run = await h.api('POST', '/v1/jobs/unlearn', { auth: h.operatorKey() });
    assert.equal(run.status, 200, run.text);
    // The page polls the erasure every 5 s while it is in progress.
    const done = await eventually(
      '#erasure-progress to change after the unlearning run',
      async () => {
        const now = await textOf(progress);
        return now !== started ? now : null;
      },
      { timeout: 15_000 },
    );
    console.log(`#erasure-progress after the unlearning run: ${done}`);
    assert.match(done, /complete|done/i, 'the erasure shows as done');
    await h.shots(page, 'privacy-after-erasure');
  },
);

scenario('(1c) a sign-in link opened while the privacy centre already shows signs in (only the fragment changes)', async (h) => {
  const page = await h.page();
  await h.signInMember(page, GRANTED);
  const other = h.token(OTHER);
  await page.evaluate((t) => { location.hash = `#token=${t}`; }, other);
  await eventually(`the page to show member ${OTHER}`, async () => (await textOf(page.locator('#who'))) === `Member ${OTHER}`);
  assert.equal(await page.evaluate(() => location.hash), '', 'the token leaves the address at once');
});
