// Deceptive-design and keyboard checks of the privacy centre (EDPB Guidelines 03/2022; GDPR Art. 7(3): withdrawing as
// easy as granting), and keyboard use of both pages.

import assert from 'node:assert/strict';
import { GRANTED, NEVER_CHOSE, card, choice, eventually, historySeqs, scenario } from './harness.mjs';

/** A short description of an element for failure messages, evaluated in the page. */
const DESCRIBE = `(el) => {
  const id = el.id ? '#' + el.id : '';
  const cls = typeof el.className === 'string' && el.className.trim() ? '.' + el.className.trim().split(/\\s+/).join('.') : '';
  const data = [...el.attributes].filter((a) => a.name.startsWith('data-')).map((a) => '[' + a.name + '=' + a.value + ']').join('');
  const host = el.closest('[data-purpose]');
  const where = host && host !== el ? ' in [data-purpose=' + host.dataset.purpose + ']' : '';
  const text = (el.textContent || el.value || '').replace(/\\s+/g, ' ').trim().slice(0, 30);
  return el.tagName.toLowerCase() + id + cls + data + (text ? ' "' + text + '"' : '') + where;
}`;

/** The purposes whose cards the page shows, in page order. */
async function purposes(page) {
  return page.locator('section.feature-card').evaluateAll((cs) => cs.map((c) => c.dataset.purpose));
}

/** Every card's pressed states, e.g. { "train_ai_system.x": "false/true" }. */
async function pressedStates(page) {
  return page
    .locator('section.feature-card')
    .evaluateAll((cs) =>
      Object.fromEntries(
        cs.map((c) => [
          c.dataset.purpose,
          ['grant', 'withdraw']
            .map((w) => c.querySelector(`button.choice[data-choice="${w}"]`)?.getAttribute('aria-pressed'))
            .join('/'),
        ]),
      ),
    );
}

/**
 * Clicks a choice once and reports what it took: whether the new state (aria-pressed="true") was reached with that one
 * click, the confirmations shown on the way (window dialogs, and open dialog/[role=dialog]/[role=alertdialog]
 * elements), the history rows it added, and whether any other card changed.
 */
async function clickChoice(page, purpose, which) {
  const dialogs = [];
  const onDialog = (d) => {
    dialogs.push(`window.${d.type()}("${d.message()}")`);
    d.accept().catch(() => {});
  };
  page.on('dialog', onDialog);
  const before = await historySeqs(page);
  const others = await pressedStates(page);
  delete others[purpose];
  const button = choice(page, purpose, which);
  await button.click();
  const reached = await eventually(
    `${purpose} ${which} pressed`,
    async () => (await button.getAttribute('aria-pressed')) === 'true',
    {
      timeout: 5_000,
    },
  ).then(
    () => true,
    () => false,
  );
  const modals = await page.evaluate(
    `[...document.querySelectorAll('dialog[open], [role=dialog], [role=alertdialog]')]
      .filter((el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden')
      .map(${DESCRIBE})`,
  );
  page.off('dialog', onDialog);
  let added = [];
  if (reached) {
    added = await eventually('a new history row', async () => {
      const now = await historySeqs(page);
      const fresh = now.filter((s) => !before.includes(s));
      return fresh.length ? fresh : null;
    }).catch(() => []);
  }
  const othersAfter = await pressedStates(page);
  delete othersAfter[purpose];
  return {
    clicks: reached ? 1 : 'more than 1',
    confirmations: [...dialogs, ...modals],
    added,
    othersChanged: JSON.stringify(others) !== JSON.stringify(othersAfter),
  };
}

scenario(
  '(6) deceptive design: equal grant/withdraw buttons, nothing pre-selected, one click each way, no confirmation only on withdrawal',
  async (h) => {
    const page = await h.page();
    const token = await h.signInMember(page, NEVER_CHOSE);
    const keys = await purposes(page);
    assert.ok(keys.length >= 3, `one card per purpose (${keys})`);
    const problems = [];

    for (const purpose of keys) {
      const buttons = [choice(page, purpose, 'grant'), choice(page, purpose, 'withdraw')];
      const counts = await Promise.all(buttons.map((b) => b.count()));
      if (counts.join() !== '1,1') {
        problems.push(`${purpose}: expected one grant and one withdraw button in div[role=group], found ${counts}`);
        continue;
      }
      const [g, w] = await Promise.all(
        buttons.map((b) =>
          b.evaluate((el) => {
            const r = el.getBoundingClientRect();
            const s = getComputedStyle(el);
            return {
              width: r.width,
              height: r.height,
              fontSize: s.fontSize,
              fontWeight: s.fontWeight,
              pressed: el.getAttribute('aria-pressed'),
              disabled: el.disabled,
              text: el.textContent.trim(),
            };
          }),
        ),
      );
      if (Math.abs(g.width - w.width) > 0.5 || Math.abs(g.height - w.height) > 0.5) {
        problems.push(
          `${purpose}: grant is ${g.width}×${g.height} px, withdraw ${w.width}×${w.height} px (must be equal)`,
        );
      }
      if (g.fontSize !== w.fontSize) problems.push(`${purpose}: font-size grant ${g.fontSize}, withdraw ${w.fontSize}`);
      if (g.fontWeight !== w.fontWeight)
        problems.push(`${purpose}: font-weight grant ${g.fontWeight}, withdraw ${w.fontWeight}`);
      if (g.pressed !== 'false' || w.pressed !== 'false') {
        problems.push(
          `${purpose}: a member who never chose sees aria-pressed grant=${g.pressed}, withdraw=${w.pressed} (both must be "false")`,
        );
      }
      if (g.disabled || w.disabled)
        problems.push(`${purpose}: a choice button is disabled (grant ${g.disabled}, withdraw ${w.disabled})`);
      if (!/^allow$/i.test(g.text) || !/^don.t allow$/i.test(w.text)) {
        problems.push(`${purpose}: the buttons read "${g.text}" / "${w.text}" (contract: "Allow" / "Don't allow")`);
      }
    }
    const preselected = await page.evaluate(
      `[...document.querySelectorAll('input[type=checkbox], input[type=radio], option, [role=switch], [role=checkbox], [role=radio], [aria-pressed]')]
      .filter((el) => el.checked || (el.tagName === 'OPTION' && el.defaultSelected && el.closest('section.feature-card')) ||
        el.getAttribute('aria-checked') === 'true' || el.getAttribute('aria-pressed') === 'true')
      .map(${DESCRIBE})`,
    );
    if (preselected.length) problems.push(`pre-selected for a member who never chose: ${preselected.join('; ')}`);

    // Grant then withdraw on every card, counting clicks and confirmations.
    const report = [];
    for (const purpose of keys) {
      const grant = await clickChoice(page, purpose, 'grant');
      const withdraw = await clickChoice(page, purpose, 'withdraw');
      report.push(`${purpose}: grant ${grant.clicks} click(s), withdraw ${withdraw.clicks} click(s)`);
      for (const [name, r] of [
        ['grant', grant],
        ['withdraw', withdraw],
      ]) {
        if (r.clicks !== 1)
          problems.push(
            `${purpose}: ${name} did not press its button with one click (shown: ${r.confirmations.join('; ') || 'nothing'})`,
          );
        if (r.added.length !== 1)
          problems.push(
            `${purpose}: ${name} added ${r.added.length} history row(s), expected 1 (one click = one choice)`,
          );
        if (r.othersChanged)
          problems.push(`${purpose}: ${name} changed another card too (choices must not be bundled)`);
      }
      if (withdraw.confirmations.length > grant.confirmations.length) {
        problems.push(
          `${purpose}: withdrawing asks for confirmation that granting does not: ${withdraw.confirmations.join('; ')}`,
        );
      }
    }
    console.log(report.join('\n'));
    const history = await h.api('GET', '/v1/me/history', { auth: token });
    const actions = history.json.events.map((e) => e.action).reverse();
    assert.deepEqual(problems, [], `problems:\n  ${problems.join('\n  ')}`);
    assert.deepEqual(
      actions,
      keys.flatMap(() => ['grant', 'withdraw']),
      'the ledger holds exactly the clicked choices',
    );
  },
);

/**
 * Presses Tab round the page (twice the number of controls, plus a few) and checks that every visible control is
 * reached, in document order (one wrap from the last to the first allowed), each with a visible focus indicator
 * (outline or box-shadow on it; on its label or parent if it is visually hidden). Returns problems as text.
 */
async function tabWalk(page, label) {
  const expected = await page.evaluate(`(() => {
    const describe = ${DESCRIBE};
    const shown = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
    window.__e2eControls = [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex], [contenteditable=true]')]
      .filter((el) => el.tabIndex >= 0 && !el.disabled && !el.closest('[inert]') && shown(el));
    return window.__e2eControls.map(describe);
  })()`);
  const presses = expected.length * 2 + 6;
  const visited = [];
  const problems = [];
  for (let i = 0; i < presses; i++) {
    await page.keyboard.press('Tab');
    const f = await page.evaluate(`(() => {
      const describe = ${DESCRIBE};
      const el = document.activeElement;
      if (!el || el === document.body || el === document.documentElement) return null;
      const ring = (e) => {
        if (!e) return false;
        const s = getComputedStyle(e);
        return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || (s.boxShadow && s.boxShadow !== 'none');
      };
      // A visually hidden control (a file input behind its label) may show focus on its label or wrapper instead.
      const hidden = el.getBoundingClientRect().width <= 1 || getComputedStyle(el).opacity === '0';
      const visible = ring(el) || (hidden && ([...(el.labels || [])].some(ring) || ring(el.parentElement)));
      // The dashboard re-renders every 15 s: an element replaced since the list was made is matched by description.
      let index = window.__e2eControls.indexOf(el);
      if (index < 0) index = window.__e2eControls.map(describe).indexOf(describe(el));
      return { index, what: describe(el), visible, tabindex: el.tabIndex };
    })()`);
    if (f) visited.push(f);
  }
  const reached = new Set(visited.map((f) => f.index).filter((i) => i >= 0));
  expected.forEach((what, i) => {
    if (!reached.has(i)) problems.push(`${label}: Tab never reaches ${what}`);
  });
  for (const f of visited) {
    if (f.index < 0 && !problems.some((p) => p.includes(f.what)))
      problems.push(`${label}: Tab focuses ${f.what}, which is not a visible control`);
    if (f.tabindex > 0) problems.push(`${label}: ${f.what} has a positive tabindex (${f.tabindex})`);
  }
  const shown = visited.filter((f) => f.index >= 0);
  for (const f of shown) {
    if (!f.visible && !problems.some((p) => p.includes(`no visible focus: ${f.what}`)))
      problems.push(`${label}: no visible focus: ${f.what} (outline and box-shadow are none)`);
  }
  const min = Math.min(...reached);
  const max = Math.max(...reached);
  for (let i = 1; i < shown.length; i++) {
    const [a, b] = [shown[i - 1], shown[i]];
    if (b.index < a.index && !(a.index === max && b.index === min)) {
      const p = `${label}: Tab goes back from ${a.what} to ${b.what} (not document order)`;
      if (!problems.includes(p)) problems.push(p);
    }
  }
  console.log(`${label}: ${expected.length} control(s), ${reached.size} reached by Tab`);
  return problems;
}

scenario(
  '(7) keyboard: Tab reaches every control in order with visible focus; Enter and Space activate the choice buttons',
  async (h) => {
    const problems = [];
    const page = await h.page();
    await h.signInMember(page, GRANTED);
    await page.locator('table#history tr[data-seq]').first().waitFor({ state: 'visible' });
    problems.push(...(await tabWalk(page, '/privacy (signed in)')));

    const dash = await h.page();
    await h.signInOperator(dash, h.operatorKey());
    await dash
      .locator('#coverage svg')
      .first()
      .waitFor({ state: 'visible' })
      .catch(() => {});
    problems.push(...(await tabWalk(dash, '/dashboard (signed in)')));

    const fresh = await h.page();
    await h.signInMember(fresh, NEVER_CHOSE);
    const keys = await purposes(fresh);
    const presses = [
      [keys[0], 'grant', 'Enter'],
      [keys[0], 'withdraw', 'Space'],
      [keys[1], 'grant', 'Space'],
      [keys[1], 'withdraw', 'Enter'],
    ];
    for (const [purpose, which, key] of presses) {
      const button = choice(fresh, purpose, which);
      await button.focus();
      await fresh.keyboard.press(key);
      const ok = await eventually(
        `${key} on ${which}`,
        async () => (await button.getAttribute('aria-pressed')) === 'true',
        { timeout: 5_000 },
      ).then(
        () => true,
        () => false,
      );
      if (!ok) problems.push(`${key} on ${purpose}'s ${which} button did not press it`);
      else assert.equal(await card(fresh, purpose).locator('button.choice[aria-pressed="true"]').count(), 1);
    }
    assert.deepEqual(problems, [], `problems:\n  ${problems.join('\n  ')}`);
  },
);
