// The operator dashboard (/dashboard) in a real browser: sign-in with an API key, the coverage chart, and the
// unlearning queue changing after a member withdraws and again after the unlearning run.

import assert from 'node:assert/strict';
import { GRANTED, JOBS, choice, eventually, scenario, textOf } from './harness.mjs';

/** The unlearning queue table as text, for noticing a change. */
async function queueText(page) {
  return textOf(page.locator('#unlearning-queue'));
}

/** Waits until the queue's text differs from `before`: first as the page stands, then after re-reading the page. */
async function queueChange(h, page, key, before, what) {
  const changed = async () => {
    const now = await queueText(page);
    return now !== before ? now : null;
  };
  try {
    return await eventually(what, changed, { timeout: 5_000 });
  } catch {
    await h.signInOperator(page, key); // reload: the page reads the data afresh
    await page.locator('#unlearning-queue').waitFor({ state: 'attached' });
    return eventually(`${what} (after reloading the dashboard)`, changed, { timeout: 5_000 });
  }
}

scenario(
  '(4) an operator signs in with an API key, sees the coverage chart, and the unlearning queue changes after a withdrawal and after the unlearning run',
  async (h) => {
    const key = h.operatorKey();
    const dash = await h.page();
    await h.signInOperator(dash, key);
    const chart = dash.locator('#coverage svg').first();
    await chart.waitFor({ state: 'visible' });
    const box = await chart.boundingBox();
    assert.ok(box && box.width > 100 && box.height > 50, `the coverage chart has a size (${JSON.stringify(box)})`);
    assert.ok((await dash.locator('#coverage svg *').count()) > 3, 'the coverage chart draws something');
    const jurisdictions = dash.locator('select#coverage-jurisdiction');
    await jurisdictions.waitFor({ state: 'visible' });
    const options = await jurisdictions.locator('option').evaluateAll((os) => os.map((o) => o.value));
    assert.ok(options.length >= 2, `select#coverage-jurisdiction offers jurisdictions (${options})`);
    await jurisdictions.selectOption(options[options.length - 1]);
    await dash.locator('#coverage svg').first().waitFor({ state: 'visible' });
    assert.ok((await textOf(dash.locator('#updated'))).length > 0, '#updated says when the data was read');

    await dash.locator('#unlearning-queue').waitFor({ state: 'attached' });
    const q0 = await queueText(dash);
    const rows0 = await dash.locator('#unlearning-queue tr[data-model]').count();
    console.log(`#unlearning at first (${rows0} row(s)): ${q0}`);

    // A member in the live job-recs model withdraws in their own browser.
    const member = await h.page();
    await h.signInMember(member, GRANTED);
    await choice(member, JOBS, 'withdraw').click();
    await eventually(
      'the withdrawal to be shown',
      async () => (await choice(member, JOBS, 'withdraw').getAttribute('aria-pressed')) === 'true',
    );

    // Both halves are checked even when the first fails, so one run reports both.
    const problems = [];
    let q1 = q0;
    try {
      q1 = await queueChange(h, dash, key, q0, 'the unlearning queue to show the withdrawal');
      console.log(`#unlearning-queue after the withdrawal: ${q1}`);
      if ((await dash.locator('#unlearning-queue tr[data-model]').count()) === 0) {
        problems.push('after the withdrawal #unlearning-queue has no tr[data-model] row for the model');
      }
    } catch (e) {
      const api = (await h.api('GET', '/v1/unlearning', { auth: key })).text;
      problems.push(`${e.message}; GET /v1/unlearning then said ${api}`);
    }

    await dash.locator('button#run-unlearn').click();
    try {
      const q2 = await queueChange(h, dash, key, q1, 'the unlearning queue to change after the run');
      console.log(`#unlearning-queue after the unlearning run: ${q2}`);
    } catch (e) {
      problems.push(e.message);
    }
    const open = (await h.api('GET', '/v1/unlearning', { auth: key })).json;
    assert.equal(open.open, 0, 'the run cleared the queue');
    console.log(`#unlearning after the run: ${await textOf(dash.locator('#unlearning'))}`);
    await h.shots(dash, 'dashboard-after-unlearning');
    assert.deepEqual(problems, [], problems.join('\n'));
  },
);
