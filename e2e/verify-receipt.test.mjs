// The in-browser receipt verifier (crates/consentry-server/assets/verify-receipt.js) against real receipts made by
// the Rust binary, honest and tampered, with the Rust verifier (`consentry ledger verify-receipt`) as the referee:
// for every text both must give the same answer, and the expected one.
//
// Needs the debug binary (`cargo build -p consentry`, which `cargo test` does); CONSENTRY_BIN overrides its path.
// Run: node --test e2e/verify-receipt.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { verifyReceipt, describe } from '../crates/consentry-server/assets/verify-receipt.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = process.env.CONSENTRY_BIN || path.join(repo, 'target', 'debug', 'consentry');
const fixture = path.join(repo, 'crates', 'consentry', 'tests', 'fixtures', 'datadir-v1');
const assets = path.join(repo, 'crates', 'consentry-server', 'assets');
const chromium = process.env.CHROMIUM || '/usr/bin/chromium';

let tmp; // a scratch directory holding a copy of the fixture data dir
let data;
let keyHex; // the ledger's public key, as ledger.pub holds it
let keyFile;
const receipts = new Map(); // seq -> receipt text from `consentry ledger receipt`
let tricky; // seq of an appended event with quotes, backslashes, U+2028, an emoji and a year before 0 in it
let apiGrant; // seq of an appended grant from the API

function run(args) {
  const r = spawnSync(bin, ['ledger', '--data', data, ...args], { encoding: 'utf8' });
  if (r.error) throw new Error(`cannot run ${bin}: ${r.error.message}`);
  return r;
}

function ok(args) {
  const r = run(args);
  assert.equal(r.status, 0, `consentry ledger ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

let fileCount = 0;
/** What the Rust verifier says of `text` under `publicKeyHex`: `ok` or its failed check's name. */
function rustCheck(text, publicKeyHex = keyHex) {
  const file = path.join(tmp, `receipt-${fileCount++}.json`);
  fs.writeFileSync(file, text);
  let pub = keyFile;
  if (publicKeyHex !== keyHex) {
    pub = path.join(tmp, `key-${fileCount++}.pub`);
    fs.writeFileSync(pub, `${publicKeyHex}\n`);
  }
  const r = run(['--json', 'verify-receipt', '--public-key', pub, file]);
  if (r.status === 0) return 'ok';
  if (r.status === 1) return JSON.parse(r.stdout).check;
  // Exit 2: the CLI refused its input before verifying (text that is not JSON at all).
  assert.match(r.stderr, /is not a Consentry receipt/, `unexpected refusal: ${r.stderr}`);
  return 'malformed';
}

/** Asserts that the browser module and the Rust verifier both answer `expected` for `text`. */
async function both(name, text, expected, publicKeyHex = keyHex) {
  const result = await verifyReceipt(text, publicKeyHex);
  assert.equal(result.check, expected, `${name}: the module said ${result.check} (${result.reason})`);
  assert.equal(result.verified, expected === 'ok', `${name}: verified must be true exactly when the check is ok`);
  assert.ok(result.reason.length > 0, `${name}: a reason is always given`);
  assert.equal(rustCheck(text, publicKeyHex), expected, `${name}: the Rust verifier disagrees`);
  return result;
}

/** A receipt's text after `change` edits its parsed JSON (every number in these receipts is a safe integer). */
function edit(text, change) {
  const value = JSON.parse(text);
  change(value);
  return JSON.stringify(value, null, 2);
}

/** The same hex string with its first digit changed. */
const flip = (hex) => (hex[0] === '0' ? '1' : '0') + hex.slice(1);

/** Signs `message` with the ledger's secret seed (ledger.key), to make records that are signed but wrong. */
function ledgerSign(message) {
  const seed = Buffer.from(fs.readFileSync(path.join(data, 'ledger.key'), 'utf8').trim(), 'hex');
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  const key = crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  return crypto.sign(null, message, key).toString('hex');
}

/** Re-signs a consent receipt's record after `change` (the CLI prints fields in serde's order, so compact
 * JSON.stringify of the parsed record and event is the signed payload). */
function resignRecord(text, change) {
  return edit(text, (r) => {
    change(r);
    const payload = JSON.stringify([r.record, r.event]);
    const message = Buffer.concat([Buffer.from('consentry-receipt-record-v1\0'), Buffer.from(payload)]);
    r.record_signature = ledgerSign(message);
  });
}

/** Re-signs a receipt's tree head after `change` (checkpoint.rs `TreeHead::signed_bytes`). */
function resignHead(text, change) {
  return edit(text, (r) => {
    change(r.tree_head);
    const h = r.tree_head;
    const n = Buffer.alloc(8);
    n.writeBigUInt64BE(BigInt(h.tree_size));
    const t = Buffer.alloc(8);
    t.writeBigInt64BE(BigInt(h.timestamp));
    const [root, chain] = [Buffer.from(h.root_hash, 'hex'), Buffer.from(h.chain_hash, 'hex')];
    const bytes = Buffer.concat([Buffer.from('consentry-sth-v1\0'), n, root, chain, t]);
    h.signature = ledgerSign(bytes);
  });
}

before(() => {
  if (!fs.existsSync(bin)) {
    throw new Error(
      `the consentry binary is missing at ${bin}: build it first (cargo build -p consentry) ` +
        'or set CONSENTRY_BIN to its path',
    );
  }
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'consentry-verify-receipt-'));
  data = path.join(tmp, 'data');
  fs.cpSync(fixture, data, { recursive: true });
  fs.chmodSync(path.join(data, 'ledger.key'), 0o600); // git keeps no 0600; consentry refuses a readable key
  keyFile = path.join(data, 'ledger.pub');
  keyHex = fs.readFileSync(keyFile, 'utf8').trim();
  assert.match(keyHex, /^[0-9a-f]{64}$/);
  // An event whose strings need JSON escapes and non-ASCII bytes, and whose time is before year 0: the record's
  // signed payload and `rfc3339` must come out byte for byte as serde_json and chrono write them.
  const appended = JSON.parse(
    ok([
      '--json', 'append', '--member', '2', '--purpose', 'train_ai_system.content_suggestions', '--action', 'withdraw',
      '--source', 'ui', '--actor', 'operator:zoë "q" \\ \u2028 😀 </script>', '--event-time=-99999999999',
      '--idempotency-key', 'k\\1 "é"',
    ]),
  );
  tricky = appended.event.seq;
  apiGrant = JSON.parse(
    ok(['--json', 'append', '--member', '5', '--purpose', 'train_ai_system.job_recommendations', '--action', 'grant']),
  ).event.seq;
  // Facts entries come first in the fixture (1..60), consent events after (61..154).
  for (const seq of [1, 60, 61, 62, 63, 100, 154, tricky, apiGrant]) {
    receipts.set(seq, ok(['receipt', '--event', String(seq)]));
  }
});

after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('every honest receipt verifies, in the module and in Rust', async () => {
  for (const [seq, text] of receipts) {
    const r = await both(`receipt ${seq}`, text, 'ok');
    const parsed = JSON.parse(text);
    assert.equal(r.seq, seq);
    assert.equal(r.kind, parsed.facts ? 'facts' : 'consent');
    assert.equal(r.treeSize, parsed.tree_head.tree_size);
    assert.equal(r.logId, parsed.tree_head.log_id);
    assert.equal(r.publicKey, keyHex);
  }
  // The appended events are really the tricky ones.
  assert.match(receipts.get(tricky), /"event_time": "-1199-02-15T14:13:21\+00:00"/);
  assert.match(receipts.get(tricky), /zoë \\"q\\" \\\\ \u2028 😀/);
  assert.match(receipts.get(apiGrant), /"source": "api"/);
});

test('key order, white space and string escapes in the text do not matter; only values do', async () => {
  const reorder = (v) =>
    Array.isArray(v)
      ? v.map(reorder)
      : v && typeof v === 'object'
        ? Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reorder(x)]))
        : v;
  for (const seq of [1, 63, tricky]) {
    const text = receipts.get(seq);
    await both(`receipt ${seq} with its keys reversed`, JSON.stringify(reorder(JSON.parse(text))), 'ok');
    await both(`receipt ${seq} compact`, JSON.stringify(JSON.parse(text)), 'ok');
  }
  const escaped = receipts.get(63).replace('"actor": "member:2"', '"actor": "member:\\u0032"');
  assert.notEqual(escaped, receipts.get(63));
  await both('an escaped character', escaped, 'ok');
  const emoji = receipts.get(tricky).replace('😀', '\\ud83d\\ude00');
  assert.notEqual(emoji, receipts.get(tricky));
  await both('a surrogate pair escape', emoji, 'ok');
});

test('a tampered consent receipt fails with the check that catches it', async () => {
  for (const seq of [63, tricky, apiGrant]) {
    const text = receipts.get(seq);
    const cases = [
      ['member id', (r) => (r.event.member_id += 1), 'inclusion_proof'],
      ['event time', (r) => (r.event.event_time += 1), 'inclusion_proof'],
      ['action', (r) => (r.event.action = r.event.action === 'grant' ? 'withdraw' : 'grant'), 'inclusion_proof'],
      ['actor', (r) => (r.event.actor += 'x'), 'inclusion_proof'],
      ['seq', (r) => (r.event.seq += 1), 'inclusion_proof'],
      ['a proof hash', (r) => (r.inclusion_proof[0] = flip(r.inclusion_proof[0])), 'inclusion_proof'],
      ['a dropped proof hash', (r) => r.inclusion_proof.pop(), 'inclusion_proof'],
      ['an added proof hash', (r) => r.inclusion_proof.push(r.inclusion_proof[0]), 'inclusion_proof'],
      ['tree head root', (r) => (r.tree_head.root_hash = flip(r.tree_head.root_hash)), 'tree_head_signature'],
      ['tree head size', (r) => (r.tree_head.tree_size += 1), 'tree_head_signature'],
      ['tree head time', (r) => (r.tree_head.timestamp -= 1), 'tree_head_signature'],
      ['tree head signature', (r) => (r.tree_head.signature = flip(r.tree_head.signature)), 'tree_head_signature'],
      ['tree head log id', (r) => (r.tree_head.log_id = flip(r.tree_head.log_id)), 'wrong_key'],
      ['purpose name', (r) => (r.record.purpose_name += '!'), 'record_signature'],
      ['a data category dropped', (r) => r.record.pii_categories.pop(), 'record_signature'],
      ['data categories reordered', (r) => r.record.pii_categories.reverse(), 'record_signature'],
      ['controller', (r) => (r.record.pii_controller = 'Someone else'), 'record_signature'],
      ['jurisdiction', (r) => (r.record.jurisdiction = 'US-CA'), 'record_signature'],
      ['record event time', (r) => (r.record.event.event_time = '2026-01-01T00:00:00+00:00'), 'record_signature'],
      ['record member', (r) => (r.record.pii_principal_id = '43'), 'record_signature'],
      ['notice language', (r) => (r.record.notice.language = 'de'), 'record_signature'],
      ['record signature', (r) => (r.record_signature = flip(r.record_signature)), 'record_signature'],
      ['extra top-level field', (r) => (r.note = 1), 'malformed'],
      ['extra event field', (r) => (r.event.note = 'x'), 'malformed'],
      ['extra record field', (r) => (r.record.note = 'x'), 'malformed'],
      ['extra notice field', (r) => (r.record.notice.note = 'x'), 'malformed'],
      ['extra tree head field', (r) => (r.tree_head.note = 'x'), 'malformed'],
      ['missing field', (r) => delete r.record.withdrawal_method, 'malformed'],
      ['missing event field', (r) => delete r.event.idempotency_key, 'malformed'],
      ['older version', (r) => (r.version = 'consentry-receipt-v0'), 'malformed'],
      ['upper-case hex', (r) => (r.tree_head.root_hash = r.tree_head.root_hash.toUpperCase()), 'malformed'],
      ['short hash', (r) => (r.inclusion_proof[0] = r.inclusion_proof[0].slice(2)), 'malformed'],
      ['unknown source', (r) => (r.event.source = 'web'), 'malformed'],
      ['number as string', (r) => (r.event.seq = String(r.event.seq)), 'malformed'],
      ['negative member id', (r) => (r.event.member_id = -1), 'malformed'],
      ['notice version over u32', (r) => (r.event.notice_version = 2 ** 32), 'malformed'],
    ];
    for (const [name, change, expected] of cases) {
      await both(`receipt ${seq}: ${name}`, edit(text, change), expected);
    }
  }
});

test('a record signed by the ledger but describing another event is a mismatch', async () => {
  const text = receipts.get(63);
  // The re-signing helper reproduces the ledger's record signature exactly.
  await both('re-signed unchanged', resignRecord(text, () => {}), 'ok');
  const cases = [
    ['another member', (r) => (r.record.pii_principal_id = '43')],
    ['another purpose', (r) => (r.record.purpose = 'train_ai_system.job_recommendations')],
    ['another notice version', (r) => (r.record.notice.version = 2)],
    ['another event type', (r) => (r.record.event.event_type = 'consent_given')],
    ['another event time', (r) => (r.record.event.event_time = '2026-02-18T11:55:02+00:00')],
    ['the time in another spelling', (r) => (r.record.event.event_time = '2026-02-18T11:55:01Z')],
  ];
  for (const [name, change] of cases) {
    await both(`record of ${name}`, resignRecord(text, change), 'record_mismatch');
  }
  // A tree head the ledger signed that does not hold the entry.
  const otherRoot = resignHead(text, (h) => (h.root_hash = flip(h.root_hash)));
  await both('signed head with another root', otherRoot, 'inclusion_proof');
  await both('signed head of a smaller tree', resignHead(text, (h) => (h.tree_size = 62)), 'inclusion_proof');
});

test('a tampered facts receipt fails with the check that catches it', async () => {
  for (const seq of [1, 60]) {
    const text = receipts.get(seq);
    const cases = [
      ['jurisdiction', (r) => (r.facts.jurisdiction = r.facts.jurisdiction === 'DE' ? 'FR' : 'DE'), 'inclusion_proof'],
      ['birth date', (r) => (r.facts.birth_date = '1999-12-31'), 'inclusion_proof'],
      ['member id', (r) => (r.facts.member_id += 1), 'inclusion_proof'],
      ['actor', (r) => (r.facts.actor = 'operator:eve'), 'inclusion_proof'],
      ['recorded time', (r) => (r.facts.recorded_time += 1), 'inclusion_proof'],
      ['a proof hash', (r) => (r.inclusion_proof[1] = flip(r.inclusion_proof[1])), 'inclusion_proof'],
      ['tree head time', (r) => (r.tree_head.timestamp += 1), 'tree_head_signature'],
      ['tree head log id', (r) => (r.tree_head.log_id = flip(r.tree_head.log_id)), 'wrong_key'],
      ['a date without zero padding', (r) => (r.facts.birth_date = '1980-1-1'), 'malformed'],
      ['a year with a plus sign', (r) => (r.facts.birth_date = `+${r.facts.birth_date}`), 'malformed'],
      ['a date that does not exist', (r) => (r.facts.birth_date = '2001-02-29'), 'malformed'],
      ['a date with a time', (r) => (r.facts.birth_date += 'T00:00:00'), 'malformed'],
      ['extra field', (r) => (r.facts.note = 1), 'malformed'],
      ['consent receipt version', (r) => (r.version = 'consentry-receipt-v1'), 'malformed'],
      ['a consent field', (r) => (r.record_signature = '00'.repeat(64)), 'malformed'],
    ];
    for (const [name, change, expected] of cases) {
      await both(`facts ${seq}: ${name}`, edit(text, change), expected);
    }
  }
});

test('numbers are read exactly, and only as the integers serde reads', async () => {
  const text = receipts.get(63);
  const swap = (from, to) => {
    assert.ok(text.includes(from), from);
    return text.replace(from, to);
  };
  const cases = [
    ['a fraction', swap('"seq": 63,', '"seq": 63.0,'), 'malformed'],
    ['an exponent', swap('"seq": 63,', '"seq": 6.3e1,'), 'malformed'],
    ['minus zero', swap('"notice_version": 1,', '"notice_version": -0,'), 'malformed'],
    ['a leading zero', swap('"seq": 63,', '"seq": 063,'), 'malformed'],
    ['2^53 + 1, beyond a double', swap('"member_id": 2,', '"member_id": 9007199254740993,'), 'inclusion_proof'],
    ['u64::MAX', swap('"member_id": 2,', '"member_id": 18446744073709551615,'), 'inclusion_proof'],
    ['u64::MAX + 1', swap('"member_id": 2,', '"member_id": 18446744073709551616,'), 'malformed'],
    ['i64::MIN', swap('"recorded_time": 1796181756,', '"recorded_time": -9223372036854775808,'), 'inclusion_proof'],
    ['i64::MIN - 1', swap('"recorded_time": 1796181756,', '"recorded_time": -9223372036854775809,'), 'malformed'],
  ];
  for (const [name, t, expected] of cases) await both(name, t, expected);
  // Sequence numbers beyond 2^53 come back exactly, as strings.
  const big = await verifyReceipt(swap('"seq": 63,', '"seq": 9007199254740993,'), keyHex);
  assert.equal(big.seq, '9007199254740993');
});

test('texts that are not receipts are malformed, in both verifiers', async () => {
  const text = receipts.get(63);
  const cases = [
    ['an unfinished object', '{'],
    ['trailing characters', `${text}x`],
    ['a list', '[]'],
    ['a string', '"receipt"'],
    ['an empty object', '{}'],
    ['a control character in a string', text.replace('"member:2"', '"member:\t2"')],
    ['a lone surrogate escape', text.replace('"member:2"', '"member:\\ud800"')],
    ['a bad escape', text.replace('"member:2"', '"member:\\x32"')],
    ['a single-quoted string', text.replace('"member:2"', "'member:2'")],
    ['a trailing comma', text.replace(/\n}\s*$/, ',\n}')],
    ['a byte-order mark', `\ufeff${text}`],
  ];
  for (const [name, t] of cases) {
    assert.notEqual(t, text, name);
    await both(name, t, 'malformed');
  }
  // A saved file's bytes verify as its text does; bytes that are not UTF-8 are refused (Rust cannot read them).
  assert.equal((await verifyReceipt(Buffer.from(text), keyHex)).check, 'ok');
  assert.equal((await verifyReceipt(new TextEncoder().encode(text).buffer, keyHex)).check, 'ok');
  const latin1 = Buffer.from(text.replace('"member:2"', '"member:\u00e9"'), 'latin1');
  assert.equal((await verifyReceipt(latin1, keyHex)).check, 'malformed');
  assert.match((await verifyReceipt(latin1, keyHex)).reason, /not UTF-8/);
  const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]);
  assert.equal((await verifyReceipt(bom, keyHex)).check, 'malformed');
});

test('another ledger key is wrong_key; a key that is not one is refused', async () => {
  const other = crypto.generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' });
  const otherHex = Buffer.from(other.x, 'base64url').toString('hex');
  for (const seq of [1, 63]) {
    const r = await both(`receipt ${seq} under another key`, receipts.get(seq), 'wrong_key', otherHex);
    assert.match(r.reason, /not signed by this ledger's key/);
  }
  // Upper case and surrounding white space are the same key (PublicKey::from_hex trims; hex accepts both cases).
  await both('the key in upper case', receipts.get(63), 'ok', `  ${keyHex.toUpperCase()}\n`);
  for (const bad of ['', 'zz', keyHex.slice(2), `${keyHex}00`]) {
    const r = await verifyReceipt(receipts.get(63), bad);
    assert.equal(r.check, 'wrong_key', `key ${JSON.stringify(bad)}`);
    assert.equal(r.verified, false);
  }
});

test('a browser without Ed25519 never says verified, but still reports what it can disprove', async () => {
  const text = receipts.get(63);
  const refusing = {
    importKey: async () => {
      throw new DOMException('Unrecognized name.', 'NotSupportedError');
    },
  };
  for (const subtle of [undefined, refusing]) {
    const r = await verifyReceipt(text, keyHex, { subtle });
    assert.equal(r.check, 'unsupported');
    assert.equal(r.verified, false);
    assert.match(describe(r), /^Not checked: /);
    const facts = await verifyReceipt(receipts.get(1), keyHex, { subtle });
    assert.equal(facts.check, 'unsupported');
    // What needs no signature is still checked.
    const altered = await verifyReceipt(edit(text, (x) => (x.event.member_id += 1)), keyHex, { subtle });
    assert.equal(altered.check, 'inclusion_proof');
    const mismatch = await verifyReceipt(edit(text, (x) => (x.record.pii_principal_id = '43')), keyHex, { subtle });
    assert.equal(mismatch.check, 'record_mismatch');
    const otherLog = edit(text, (x) => (x.tree_head.log_id = flip(x.tree_head.log_id)));
    const wrong = await verifyReceipt(otherLog, keyHex, { subtle });
    assert.equal(wrong.check, 'wrong_key');
  }
  assert.match((await verifyReceipt(text, keyHex, { subtle: refusing })).reason, /cannot check Ed25519/);
  // A verification that throws is a failure, never a pass.
  const throwing = {
    importKey: async (...a) => crypto.webcrypto.subtle.importKey(...a),
    verify: async () => {
      throw new Error('boom');
    },
  };
  assert.equal((await verifyReceipt(text, keyHex, { subtle: throwing })).check, 'tree_head_signature');
});

test('describe() gives one sentence for the page', async () => {
  const r = await verifyReceipt(receipts.get(63), keyHex);
  assert.equal(
    describe(r),
    `Verified in your browser: entry 63 is in the ledger's signed tree of 154 entries, signed by key ` +
      `${keyHex.slice(0, 8)}…${keyHex.slice(-4)}.`,
  );
  const bad = await verifyReceipt(edit(receipts.get(63), (x) => (x.record.purpose_name = 'Other')), keyHex);
  assert.equal(
    describe(bad),
    'Not verified: The consent record was altered after the ledger signed it (its signature fails).',
  );
  const big = describe({ verified: true, check: 'ok', seq: 1234, treeSize: 5000, publicKey: keyHex });
  assert.match(big, /entry 1.234 is in the ledger's signed tree of 5.000 entries/);
});

/** A page (no inline script, as the service's Content-Security-Policy demands) that verifies `cases` with the
 * module and writes `name=check` lines into `pre#out`. */
const PAGE =
  '<!doctype html><meta charset="utf-8"><pre id="out">pending</pre><script type="module" src="/run.js"></script>';
const RUN = `import { verifyReceipt } from '/assets/verify-receipt.js';
const { key, cases } = await (await fetch('/cases.json')).json();
const lines = [];
for (const c of cases) lines.push(c.name + '=' + (await verifyReceipt(c.text, c.key ?? key)).check);
document.getElementById('out').textContent = lines.join('\\n');`;

test('the module verifies in a real Chromium (WebCrypto Ed25519, ES modules from /assets/)', async (t) => {
  if (!fs.existsSync(chromium)) {
    t.skip(`no Chromium at ${chromium} (set CHROMIUM); .ci/run installs it`);
    return;
  }
  const text = receipts.get(63);
  const cases = [
    ...[...receipts].map(([seq, t]) => ({ name: `receipt-${seq}`, text: t, expect: 'ok' })),
    { name: 'purpose-name', text: edit(text, (r) => (r.record.purpose_name += '!')), expect: 'record_signature' },
    { name: 'root', text: edit(text, (r) => (r.tree_head.timestamp += 1)), expect: 'tree_head_signature' },
    { name: 'member', text: edit(text, (r) => (r.event.member_id += 1)), expect: 'inclusion_proof' },
    { name: 'mismatch', text: resignRecord(text, (r) => (r.record.purpose = 'x')), expect: 'record_mismatch' },
    { name: 'extra', text: edit(text, (r) => (r.note = 1)), expect: 'malformed' },
    { name: 'key', text, key: '11'.repeat(32), expect: 'wrong_key' },
  ];
  const files = {
    '/': ['text/html', PAGE],
    '/run.js': ['text/javascript', RUN],
    '/cases.json': ['application/json', JSON.stringify({ key: keyHex, cases })],
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost').pathname;
    let body = files[url];
    if (!body && url.startsWith('/assets/')) {
      const file = path.resolve(assets, `.${url.slice('/assets'.length)}`);
      if (file.startsWith(assets + path.sep) && fs.existsSync(file)) body = ['text/javascript', fs.readFileSync(file)];
    }
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, {
      'content-type': body[0],
      'content-security-policy': "default-src 'none'; script-src 'self'; connect-src 'self'",
    });
    res.end(body[1]);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const profile = fs.mkdtempSync(path.join(tmp, 'chromium-'));
  try {
    const url = `http://127.0.0.1:${server.address().port}/`;
    const dom = await new Promise((resolve, reject) =>
      execFile(
        chromium,
        ['--headless', '--no-sandbox', '--disable-gpu', `--user-data-dir=${profile}`, '--virtual-time-budget=20000']
          .concat(['--dump-dom', url]),
        { timeout: 60_000, maxBuffer: 1 << 24 },
        (err, stdout, stderr) =>
          err ? reject(new Error(`${chromium} failed: ${err.message}\n${stderr}`)) : resolve(stdout),
      ),
    );
    const out = /<pre id="out">([^<]*)<\/pre>/.exec(dom)?.[1];
    assert.ok(out && out !== 'pending', `the page did not finish: ${dom.slice(0, 2000)}`);
    const got = Object.fromEntries(out.split('\n').map((l) => l.split('=')));
    assert.deepEqual(got, Object.fromEntries(cases.map((c) => [c.name, c.expect])));
  } finally {
    server.close();
  }
});

test('after a key rotation, receipts carry the hand-overs and verify with the genesis key; cosigned ones too', async () => {
  const rot = path.join(tmp, 'rotated');
  fs.cpSync(fixture, rot, { recursive: true });
  fs.chmodSync(path.join(rot, 'ledger.key'), 0o600);
  const cli = (args) => {
    const r = spawnSync(bin, ['--data', rot, ...args], { encoding: 'utf8' });
    assert.equal(r.status, 0, `consentry ${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout;
  };
  const witness = path.join(tmp, 'witness');
  cli(['--quiet', 'witness', 'init', '--dir', witness, '--name', 'witness.example/w1']);
  const origin = cli(['witness', 'checkpoint']).split('\n')[0];
  cli(['--quiet', 'witness', 'add-log', '--dir', witness, '--origin', origin, '--public-key', keyFile]);
  cli(['--quiet', 'ledger', 'rotate-key']);
  const seq = JSON.parse(
    cli(['--json', 'ledger', 'append', '--member', '7', '--purpose', 'train_ai_system.job_recommendations',
      '--action', 'withdraw']),
  ).event.seq;
  cli(['--quiet', 'ledger', 'checkpoint']);
  cli(['--quiet', 'witness', 'cosign', '--dir', witness]);
  const after = cli(['ledger', 'receipt', '--event', String(seq)]);
  const before = cli(['ledger', 'receipt', '--event', '100']);
  const facts = cli(['ledger', 'receipt', '--event', '1']);
  assert.match(after, /"key_handovers"/);
  assert.match(after, /"key_id"/);
  assert.match(after, /"witnessed"/);
  for (const [name, text] of [['after', after], ['before', before], ['facts', facts]]) {
    await both(`${name} the rotation`, text, 'ok');
  }
  // Without its hand-overs the head's key is unknown; an altered hand-over breaks the chain.
  await both('hand-overs stripped', edit(after, (v) => delete v.key_handovers), 'key_chain');
  await both(
    'hand-over to another key',
    edit(after, (v) => (v.key_handovers[0].new_public_key = flip(v.key_handovers[0].new_public_key))),
    'key_chain',
  );
  await both(
    'hand-over at another size',
    edit(after, (v) => (v.key_handovers[0].tree_size += 1)),
    'key_chain',
  );
  // The ledger never writes an empty list of hand-overs or a key id equal to the log id: not canonical.
  await both('empty hand-overs', edit(before, (v) => (v.key_handovers = [])), 'malformed');
});
