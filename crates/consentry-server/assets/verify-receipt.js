// Verifies a Consentry receipt in the member's browser against the ledger's public key, so a member need not take
// the page's word for it. It mirrors the Rust verifier check for check and in the same order
// (crates/consentry-ledger/src/receipt.rs, `AnyReceipt::verify_json`): the text must be the canonical form of a
// receipt (no extra or missing field, lower-case hex, integers written as integers), the tree head must name the
// key's log (BLAKE3 of the key) and carry the Ed25519 signature of a key the receipt's hand-overs lead to from
// that key (keys.rs: each hand-over signed by the retiring and the new key), the entry's leaf hash (event.rs `encode`,
// BLAKE3 with RFC 9162 domain separation) must lead through the inclusion proof to the signed root (merkle.rs
// `verify_inclusion`), and a consent record must carry the ledger's signature over `serde_json::to_vec(&(record,
// event))` and describe the logged event. Integers are read exactly (BigInt), never through a float.
//
// Ed25519 is checked by WebCrypto (Chromium 137+, Firefox 129+, Safari 17+, Node 20+); where it is missing the
// answer is "unsupported", never "verified". BLAKE3 comes from the vendored @noble/hashes.

import { blake3 } from './vendor/noble-hashes/blake3.js';

const RECEIPT_VERSION = 'consentry-receipt-v1';
const FACTS_RECEIPT_VERSION = 'consentry-facts-receipt-v1';
const RECORD_LABEL = 'consentry-receipt-record-v1';
const STH_LABEL = 'consentry-sth-v1';
const STH_V2_LABEL = 'consentry-sth-v2';
const HANDOVER_LABEL = 'consentry-key-handover-v1';
/** Far above any real receipt (a few kilobytes): a bigger file is refused before it can stall the page. */
const MAX_TEXT = 4 * 1024 * 1024;

/** A failed check: which one (ReceiptError::check) and a sentence for the member (ReceiptError::reason). */
class Refusal extends Error {
  constructor(check, reason) {
    super(reason);
    this.check = check;
  }
}

const malformed = (detail) =>
  new Refusal('malformed', `This is not a Consentry receipt as the ledger issues it: ${detail}.`);

// ---------------------------------------------------------------------------------------------------------------
// JSON, read exactly: serde_json's grammar (RFC 8259), numbers kept as their text, objects as Maps (last duplicate
// key wins, as in serde_json::Value).

/** A JSON number as written: `int` is its exact value when serde_json would read it as an integer, else null. */
class Num {
  constructor(raw) {
    this.raw = raw;
    // serde_json reads a fraction, an exponent or `-0` as a float, which no integer field accepts.
    this.int = /^-?(0|[1-9][0-9]*)$/.test(raw) && raw !== '-0' ? BigInt(raw) : null;
  }
}

const NUMBER = /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
const ESCAPES = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

function parseJson(text) {
  let i = 0;
  const fail = (what) => {
    throw malformed(`the text is not valid JSON (${what} at character ${i + 1})`);
  };
  const space = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const hex4 = () => {
    const h = text.slice(i, i + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) fail('a bad \\u escape');
    i += 4;
    return parseInt(h, 16);
  };
  const string = () => {
    i++; // the opening quote
    let out = '';
    let start = i;
    for (;;) {
      if (i >= text.length) fail('an unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(start, i++);
        return out;
      }
      if (c < 0x20) fail('a control character in a string');
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += text.slice(start, i);
      const e = text[i + 1];
      i += 2;
      if (e === 'u') {
        const u = hex4();
        if (u >= 0xdc00 && u <= 0xdfff) fail('a lone surrogate in a \\u escape');
        if (u >= 0xd800 && u <= 0xdbff) {
          if (text.slice(i, i + 2) !== '\\u') fail('a lone surrogate in a \\u escape');
          i += 2;
          const low = hex4();
          if (low < 0xdc00 || low > 0xdfff) fail('a lone surrogate in a \\u escape');
          out += String.fromCharCode(u, low);
        } else {
          out += String.fromCharCode(u);
        }
      } else if (e !== undefined && Object.hasOwn(ESCAPES, e)) {
        out += ESCAPES[e];
      } else {
        i--;
        fail('a bad escape');
      }
      start = i;
    }
  };
  const value = (depth) => {
    if (depth > 128) fail('nesting deeper than 128 levels');
    space();
    const c = text[i];
    if (c === '{') {
      i++;
      const map = new Map();
      space();
      if (text[i] === '}') {
        i++;
        return map;
      }
      for (;;) {
        space();
        if (text[i] !== '"') fail('a missing key');
        const key = string();
        space();
        if (text[i++] !== ':') fail("a missing ':'");
        map.set(key, value(depth + 1));
        space();
        const d = text[i++];
        if (d === '}') return map;
        if (d !== ',') fail("a missing ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      const list = [];
      space();
      if (text[i] === ']') {
        i++;
        return list;
      }
      for (;;) {
        list.push(value(depth + 1));
        space();
        const d = text[i++];
        if (d === ']') return list;
        if (d !== ',') fail("a missing ',' or ']'");
      }
    }
    if (c === '"') return string();
    for (const [word, v] of [['true', true], ['false', false], ['null', null]]) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (!m) fail('an unexpected character');
    i += m[0].length;
    return new Num(m[0]);
  };
  const v = value(0);
  space();
  if (i < text.length) fail('trailing characters');
  return v;
}

// ---------------------------------------------------------------------------------------------------------------
// The receipt's shape: each struct's fields in serde's declaration order (flattened fields in place), each with how
// to read it strictly (canonical form, as `canonical()` in receipt.rs demands) and how serde_json writes it back.

const intType = (name, min, max) => ({
  read(v, path) {
    if (!(v instanceof Num) || v.int === null) throw malformed(`\`${path}\` must be an integer written as one`);
    if (v.int < min || v.int > max) throw malformed(`\`${path}\` is outside the range of a ${name}`);
    return v.int;
  },
  write: (x) => x.toString(),
});
const U32 = intType('u32', 0n, 0xffffffffn);
const U64 = intType('u64', 0n, 0xffffffffffffffffn);
const I64 = intType('i64', -(2n ** 63n), 2n ** 63n - 1n);

const STR = {
  read(v, path) {
    if (typeof v !== 'string') throw malformed(`\`${path}\` must be a string`);
    return v;
  },
  // For well-formed strings JSON.stringify escapes exactly as serde_json does: `"`, `\`, \b \t \n \f \r, other
  // controls as lower-case \u00XX, nothing else.
  write: (s) => JSON.stringify(s),
};

const oneOf = (...names) => ({
  read(v, path) {
    if (!names.includes(v)) throw malformed(`\`${path}\` must be one of ${names.join(', ')}`);
    return v;
  },
  write: STR.write,
});

const hexBytes = (n) => ({
  read(v, path) {
    if (typeof v !== 'string' || v.length !== 2 * n || !/^[0-9a-f]*$/.test(v)) {
      throw malformed(`\`${path}\` must be ${n} bytes in lower-case hex`);
    }
    return fromHex(v);
  },
});
const HASH = hexBytes(32);
const SIGNATURE = hexBytes(64);

/** chrono's `NaiveDate` as serde writes it (`YYYY-MM-DD`, a signed year outside 0–9999); read to days since 1970. */
const DATE = {
  read(v, path) {
    const m = typeof v === 'string' && /^[+-]?[0-9]{4,6}-([0-9]{2})-([0-9]{2})$/.exec(v);
    // Read the numbers, then insist the date they name is written exactly so (a valid date, canonical spelling).
    const days = m && daysFromCivil(parseInt(v.slice(0, v.length - 6), 10), Number(m[1]), Number(m[2]));
    const c = m && civilFromDays(days);
    if (!m || c.year < MIN_YEAR || c.year > MAX_YEAR || formatDate(c.year, c.month, c.day) !== v) {
      throw malformed(`\`${path}\` must be a date written YYYY-MM-DD`);
    }
    return days;
  },
};

const list = (item) => ({
  read(v, path) {
    if (!Array.isArray(v)) throw malformed(`\`${path}\` must be a list`);
    return v.map((x, k) => item.read(x, `${path}/${k}`));
  },
  write: (xs) => `[${xs.map(item.write).join(',')}]`,
});

/** A field serde leaves out when it has no value (`skip_serializing_if`): absent reads as undefined; present, it
 * must not be the value that is left out (`empty`), or the text would not be canonical. */
const optional = (type, empty) => ({ ...type, optional: true, empty });

const struct = (fields) => ({
  read(v, path) {
    if (!(v instanceof Map)) throw malformed(`\`${path || '/'}\` must be an object`);
    for (const key of v.keys()) {
      if (!fields.some(([name]) => name === key)) throw malformed(`\`${path}/${key}\` is a field no receipt has`);
    }
    const out = {};
    for (const [name, type] of fields) {
      if (!v.has(name)) {
        if (type.optional) continue;
        throw malformed(`\`${path}/${name}\` is missing`);
      }
      out[name] = type.read(v.get(name), `${path}/${name}`);
      if (type.optional && type.empty && type.empty(out[name])) {
        throw malformed(`\`${path}/${name}\` is written where the ledger leaves it out`);
      }
    }
    return out;
  },
  write: (x) => `{${fields.map(([name, type]) => `${JSON.stringify(name)}:${type.write(x[name])}`).join(',')}}`,
});

// receipt.rs `ConsentRecord` (+ `NoticeRef`, `EventRecord`).
const RECORD = struct([
  ['record_id', STR],
  ['pii_principal_id', STR],
  ['pii_controller', STR],
  ['purpose', STR],
  ['purpose_name', STR],
  ['pii_categories', list(STR)],
  ['notice', struct([['version', U32], ['language', STR]])],
  ['jurisdiction', STR],
  ['event', struct([['event_type', STR], ['state', STR], ['event_time', STR], ['source', STR]])],
  ['withdrawal_method', STR],
]);
const SOURCES = ['ui', 'api', 'gpc', 'import', 'erasure']; // event.rs `source_code`: index + 1
const ACTIONS = ['grant', 'withdraw']; // event.rs `action_code`: index + 1
// event.rs `Event` with its `#[serde(flatten)] body: NewEvent` in place.
const EVENT = struct([
  ['seq', U64],
  ['recorded_time', I64],
  ['member_id', U64],
  ['purpose', STR],
  ['action', oneOf(...ACTIONS)],
  ['notice_version', U32],
  ['source', oneOf(...SOURCES)],
  ['actor', STR],
  ['event_time', I64],
  ['idempotency_key', STR],
]);
// event.rs `FactsEntry`.
const FACTS = struct([
  ['seq', U64],
  ['recorded_time', I64],
  ['member_id', U64],
  ['jurisdiction', STR],
  ['birth_date', DATE],
  ['actor', STR],
]);
// checkpoint.rs `SignedTreeHead` (its JSON form `SthJson`: `key_id` absent means the log's genesis key).
const TREE_HEAD = struct([
  ['tree_size', U64],
  ['root_hash', HASH],
  ['chain_hash', HASH],
  ['timestamp', I64],
  ['log_id', HASH],
  ['key_id', optional(HASH)],
  ['signature', SIGNATURE],
]);
// keys.rs `KeyHandover`.
const HANDOVER = struct([
  ['log_id', HASH],
  ['old_key_id', HASH],
  ['new_public_key', HASH],
  ['tree_size', U64],
  ['timestamp', I64],
  ['old_signature', SIGNATURE],
  ['new_signature', SIGNATURE],
]);
const HANDOVERS = optional(list(HANDOVER), (xs) => xs.length === 0);
// witness.rs `Witnessed`: cosignatures of the tree head, which this page does not check (a witness policy is the
// CLI's `verify-receipt --witnesses`); read so the receipt's shape is known.
const WITNESSED = optional(struct([['origin', STR], ['cosignatures', list(STR)]]));
const RECEIPT = struct([
  ['version', STR],
  ['record', RECORD],
  ['event', EVENT],
  ['inclusion_proof', list(HASH)],
  ['tree_head', TREE_HEAD],
  ['record_signature', SIGNATURE],
  ['key_handovers', HANDOVERS],
  ['witnessed', WITNESSED],
]);
const FACTS_RECEIPT = struct([
  ['version', STR],
  ['facts', FACTS],
  ['inclusion_proof', list(HASH)],
  ['tree_head', TREE_HEAD],
  ['key_handovers', HANDOVERS],
  ['witnessed', WITNESSED],
]);

// ---------------------------------------------------------------------------------------------------------------
// Bytes, hashes and dates.

const utf8 = (s) => new TextEncoder().encode(s);

function fromHex(h) {
  const out = new Uint8Array(h.length / 2);
  for (let k = 0; k < out.length; k++) out[k] = parseInt(h.slice(2 * k, 2 * k + 2), 16);
  return out;
}

const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Big-endian fixed-width integer bytes (`to_be_bytes`). */
function be(bits, signed, x) {
  const view = new DataView(new ArrayBuffer(bits / 8));
  if (bits === 64) (signed ? view.setBigInt64 : view.setBigUint64).call(view, 0, BigInt(x));
  else if (bits === 32) (signed ? view.setInt32 : view.setUint32).call(view, 0, Number(x));
  else if (bits === 16) view.setUint16(0, Number(x));
  else view.setUint8(0, Number(x));
  return new Uint8Array(view.buffer);
}

/** event.rs `put_str`: u16 byte length + UTF-8; longer strings cannot be encoded (the Rust verifier refuses too). */
function str16(field, s) {
  const bytes = utf8(s);
  if (bytes.length > 0xffff) throw malformed(`the ${field} is ${bytes.length} bytes; at most 65535 can be encoded`);
  return concat(be(16, false, bytes.length), bytes);
}

/** event.rs `Event::encode`. */
function encodeEvent(e) {
  return concat(
    utf8('CSE1'),
    be(64, false, e.seq),
    be(64, false, e.member_id),
    str16('purpose', e.purpose),
    be(8, false, ACTIONS.indexOf(e.action) + 1),
    be(32, false, e.notice_version),
    be(8, false, SOURCES.indexOf(e.source) + 1),
    str16('actor', e.actor),
    be(64, true, e.event_time),
    be(64, true, e.recorded_time),
    str16('idempotency key', e.idempotency_key),
  );
}

/** event.rs `FactsEntry::encode`. */
function encodeFacts(f) {
  return concat(
    utf8('CSF1'),
    be(64, false, f.seq),
    be(64, false, f.member_id),
    str16('jurisdiction', f.jurisdiction),
    be(32, true, f.birth_date),
    str16('actor', f.actor),
    be(64, true, f.recorded_time),
  );
}

const leafHash = (data) => blake3(concat([0x00], data));
const nodeHash = (l, r) => blake3(concat([0x01], l, r));
const sameBytes = (a, b) => a.length === b.length && a.every((x, k) => x === b[k]);

/** merkle.rs `verify_inclusion` (RFC 9162 §2.1.3.2), on BigInts as the Rust code is on u64. */
function verifyInclusion(index, size, leaf, proof, root) {
  if (index >= size) return false;
  let [fnode, snode] = [index, size - 1n];
  let r = leaf;
  for (const p of proof) {
    if (snode === 0n) return false;
    if ((fnode & 1n) === 1n || fnode === snode) {
      r = nodeHash(p, r);
      if ((fnode & 1n) === 0n) {
        while ((fnode & 1n) === 0n && fnode !== 0n) {
          fnode >>= 1n;
          snode >>= 1n;
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fnode >>= 1n;
    snode >>= 1n;
  }
  return snode === 0n && sameBytes(r, root);
}

/** checkpoint.rs `TreeHead::signed_bytes`. */
/** The bytes a version-1 head signed (before keys had ids). */
const treeHeadBytes = (h) =>
  concat(utf8(`${STH_LABEL}\0`), be(64, false, h.tree_size), h.root_hash, h.chain_hash, be(64, true, h.timestamp));
/** checkpoint.rs `SignedTreeHead::signed_bytes` (version 2): the head bound to its log and its key's id. */
const treeHeadBytesV2 = (h, keyId) =>
  concat(
    utf8(`${STH_V2_LABEL}\0`),
    h.log_id,
    keyId,
    be(64, false, h.tree_size),
    h.root_hash,
    h.chain_hash,
    be(64, true, h.timestamp),
  );
/** keys.rs `KeyHandover::signed_bytes`, labelled as `LogKey::sign_labelled` does. */
const handoverMessage = (h) =>
  concat(
    utf8(`${HANDOVER_LABEL}\0`),
    h.log_id,
    h.old_key_id,
    h.new_public_key,
    be(64, false, h.tree_size),
    be(64, true, h.timestamp),
  );

// chrono's NaiveDate range (MIN_YEAR/MAX_YEAR in naive/date/mod.rs).
const MIN_YEAR = -262143;
const MAX_YEAR = 262142;

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`). */
function daysFromCivil(y, m, d) {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** Inverse of `daysFromCivil`. */
function civilFromDays(z) {
  z += 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: yoe + era * 400 + (month <= 2 ? 1 : 0), month, day };
}

const two = (n) => String(n).padStart(2, '0');

/** chrono's year, month, day as Display writes them (`{year:+05}` outside 0–9999). */
function formatDate(year, month, day) {
  const y =
    year >= 0 && year <= 9999
      ? String(year).padStart(4, '0')
      : (year < 0 ? '-' : '+') + String(Math.abs(year)).padStart(4, '0');
  return `${y}-${two(month)}-${two(day)}`;
}

/** receipt.rs `rfc3339`: chrono's `to_rfc3339` of Unix seconds, or the number itself outside chrono's range. */
function rfc3339(t) {
  const days = t / 86400n - (t % 86400n < 0n ? 1n : 0n);
  const secs = Number(t - days * 86400n);
  const date = civilFromDays(Number(days));
  if (date.year < MIN_YEAR || date.year > MAX_YEAR) return t.toString();
  const time = `${two(Math.floor(secs / 3600))}:${two(Math.floor(secs / 60) % 60)}:${two(secs % 60)}`;
  return `${formatDate(date.year, date.month, date.day)}T${time}+00:00`;
}

// ---------------------------------------------------------------------------------------------------------------
// Ed25519 through WebCrypto.

const UNSUPPORTED =
  'This browser cannot check Ed25519 signatures (Chrome or Edge 137, Firefox 129, Safari 17 or newer can), so the ' +
  'receipt was not checked.';

/** The key for WebCrypto, or null (with the reason in `why`) when this browser cannot check Ed25519. */
async function importKey(subtle, raw, why) {
  if (!subtle) {
    why.reason =
      'This browser offers no signature checking here (pages served without HTTPS get none), so the receipt was ' +
      'not checked.';
    return null;
  }
  try {
    return await subtle.importKey('raw', raw, { name: 'Ed25519' }, false, ['verify']);
  } catch (e) {
    if (e && e.name === 'DataError') {
      throw new Refusal('wrong_key', "The ledger's public key given is not an Ed25519 public key.");
    }
    why.reason = UNSUPPORTED;
    return null;
  }
}

async function ed25519(subtle, key, signature, message) {
  try {
    return await subtle.verify({ name: 'Ed25519' }, key, signature, message);
  } catch {
    return false;
  }
}

/**
 * keys.rs `KeyChain::push`, hand-over by hand-over from the genesis key: each names this log and the key in force,
 * hands over to a key not in the chain yet at a tree size no smaller than the last, and is signed by both keys.
 * Returns the keys, oldest first, each with the tree sizes it may sign and its WebCrypto key (null where this
 * browser checks no signatures).
 */
async function keyChain(subtle, genesis, logId, handovers, why) {
  const chain = [{ id: logId, from: 0n, until: null, webKey: await importKey(subtle, genesis, why) }];
  for (const [k, h] of handovers.entries()) {
    const bad = (reason) => new Refusal('key_chain', `Key hand-over ${k + 1} does not hold: ${reason}.`);
    const current = chain[chain.length - 1];
    if (!sameBytes(h.log_id, logId)) throw bad('it names another log');
    if (!sameBytes(h.old_key_id, current.id)) throw bad('it hands over from a key that is not the one in force');
    const id = blake3(h.new_public_key);
    if (chain.some((c) => sameBytes(c.id, id))) throw bad('it hands over to a key already in the chain');
    if (h.tree_size < current.from) throw bad('it takes effect before the key in force took over');
    let webKey;
    try {
      webKey = await importKey(subtle, h.new_public_key, {});
    } catch {
      throw bad('its new public key is not an Ed25519 key');
    }
    const message = handoverMessage(h);
    if (current.webKey && !(await ed25519(subtle, current.webKey, h.old_signature, message))) {
      throw bad("the retiring key's signature fails");
    }
    if (webKey && !(await ed25519(subtle, webKey, h.new_signature, message))) {
      throw bad("the new key's signature fails");
    }
    current.until = h.tree_size;
    chain.push({ id, from: h.tree_size, until: null, webKey });
  }
  return chain;
}

// ---------------------------------------------------------------------------------------------------------------
// The verifier.

const exact = (n) => (n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString());

/**
 * Verifies a receipt against the ledger's public key (64 hex digits, as in `ledger.pub`), as
 * `consentry ledger verify-receipt` does. The receipt is its text, or its bytes (a saved file's `arrayBuffer()`),
 * which must be UTF-8 as the Rust verifier requires.
 *
 * Resolves to `{verified, check, reason, seq, treeSize, logId, kind, publicKey}`: `check` is `ok` or the failed
 * check's name (`malformed`, `wrong_key`, `tree_head_signature`, `inclusion_proof`, `record_signature`,
 * `record_mismatch`, as ReceiptError::check names them, or `unsupported` when this browser cannot check Ed25519),
 * `reason` a sentence for the member, `seq`/`treeSize` the entry's position and the signed tree's size (numbers;
 * decimal strings beyond 2^53), `logId` the tree head's log id in hex, `kind` `consent` or `facts`.
 * `options.subtle` replaces `crypto.subtle` (tests).
 */
export async function verifyReceipt(receiptJsonText, publicKeyHex, options = {}) {
  const result = {
    verified: false,
    check: 'malformed',
    reason: '',
    seq: null,
    treeSize: null,
    logId: null,
    kind: null,
    publicKey: null,
  };
  try {
    const subtle = 'subtle' in options ? options.subtle : globalThis.crypto?.subtle;
    await check(receiptText(receiptJsonText), String(publicKeyHex ?? ''), subtle, result);
  } catch (e) {
    if (!(e instanceof Refusal)) {
      // A fault of this page or browser, not a verdict on the receipt.
      Object.assign(result, { check: 'unsupported', reason: `The receipt could not be checked here: ${e}.` });
    } else {
      Object.assign(result, { check: e.check, reason: e.message });
    }
    result.verified = false;
  }
  return result;
}

/** The receipt as text; bytes that are not UTF-8 are refused, not patched with replacement characters. */
function receiptText(receipt) {
  if (!(receipt instanceof ArrayBuffer || ArrayBuffer.isView(receipt))) return String(receipt);
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(receipt);
  } catch {
    throw malformed('the file is not UTF-8 text');
  }
}

async function check(text, keyHex, subtle, result) {
  const keyText = keyHex.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(keyText)) {
    throw new Refusal(
      'wrong_key',
      "The ledger's public key given is not 64 hex digits, so nothing can be checked against it.",
    );
  }
  const key = fromHex(keyText.toLowerCase());
  result.publicKey = toHex(key);

  if (text.length > MAX_TEXT) throw malformed('the file is far larger than any receipt');
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text)) {
    throw malformed('the text is not valid Unicode');
  }
  const value = parseJson(text);
  // receipt.rs `AnyReceipt::verify_json`: a facts receipt is told by its `facts` field.
  const facts = value instanceof Map && value.has('facts');
  const receipt = (facts ? FACTS_RECEIPT : RECEIPT).read(value, '');
  const entry = facts ? receipt.facts : receipt.event;
  const head = receipt.tree_head;
  Object.assign(result, {
    kind: facts ? 'facts' : 'consent',
    seq: exact(entry.seq),
    treeSize: exact(head.tree_size),
    logId: toHex(head.log_id),
  });
  const version = facts ? FACTS_RECEIPT_VERSION : RECEIPT_VERSION;
  if (receipt.version !== version) {
    throw malformed(`its version is ${JSON.stringify(receipt.version)}, and this page knows ${version}`);
  }

  // receipt.rs `carried_chain`: the hand-overs from the given (genesis) key to the key that signed.
  const keyLogId = blake3(key);
  const why = {};
  const handovers = receipt.key_handovers ?? [];
  if (handovers.length > 0 && !sameBytes(handovers[0].log_id, keyLogId)) {
    throw new Refusal(
      'wrong_key',
      `The receipt's key hand-overs name log ${toHex(handovers[0].log_id.slice(0, 8))}…, the key given is log ` +
        `${toHex(keyLogId.slice(0, 8))}…. Check that you used this ledger's public key.`,
    );
  }
  const chain = await keyChain(subtle, key, keyLogId, handovers, why);

  // receipt.rs `verify_included`: the log id, the tree head's key and signature, then the inclusion proof.
  if (!sameBytes(head.log_id, keyLogId)) {
    throw new Refusal(
      'wrong_key',
      `The tree head is not signed by this ledger's key: it names log ${toHex(head.log_id.slice(0, 8))}…, the key ` +
        `given is log ${toHex(keyLogId.slice(0, 8))}…. Check that you used this ledger's public key.`,
    );
  }
  const keyId = head.key_id ?? head.log_id;
  const signer = chain.find((k) => sameBytes(k.id, keyId));
  if (!signer) {
    throw new Refusal(
      'key_chain',
      `The tree head is signed by key ${toHex(keyId.slice(0, 8))}…, which is not one of this ledger's keys the ` +
        'receipt shows a hand-over to.',
    );
  }
  if (head.tree_size < signer.from || (signer.until !== null && head.tree_size > signer.until)) {
    throw new Refusal(
      'key_chain',
      `The tree head of ${head.tree_size} entries is signed by key ${toHex(keyId.slice(0, 8))}…, which may sign ` +
        `only from ${signer.from}${signer.until === null ? '' : ` to ${signer.until}`} entries.`,
    );
  }
  const webKey = signer.webKey;
  if (
    webKey &&
    !(await ed25519(subtle, webKey, head.signature, treeHeadBytesV2(head, keyId))) &&
    !(sameBytes(keyId, head.log_id) && (await ed25519(subtle, webKey, head.signature, treeHeadBytes(head))))
  ) {
    throw new Refusal('tree_head_signature', "The tree head is not signed by this ledger's key: it was altered.");
  }
  const leaf = leafHash(facts ? encodeFacts(entry) : encodeEvent(entry));
  const proof = receipt.inclusion_proof;
  if (entry.seq === 0n || !verifyInclusion(entry.seq - 1n, head.tree_size, leaf, proof, head.root_hash)) {
    throw new Refusal(
      'inclusion_proof',
      "The entry is not in the ledger's signed tree (its inclusion proof fails): the entry or the proof was altered.",
    );
  }

  if (!facts) {
    // receipt.rs `Receipt::verify`: the record's own signature, then that it describes the logged event.
    const payload = `[${RECORD.write(receipt.record)},${EVENT.write(entry)}]`;
    const message = concat(utf8(RECORD_LABEL), [0], utf8(payload));
    // Signed by the key the hand-overs end at: the key in force when the receipt was issued.
    const recordKey = chain[chain.length - 1].webKey;
    if (recordKey && !(await ed25519(subtle, recordKey, receipt.record_signature, message))) {
      throw new Refusal(
        'record_signature',
        'The consent record was altered after the ledger signed it (its signature fails).',
      );
    }
    const r = receipt.record;
    if (
      r.pii_principal_id !== entry.member_id.toString() ||
      r.purpose !== entry.purpose ||
      r.notice.version !== entry.notice_version ||
      r.event.event_type !== (entry.action === 'grant' ? 'consent_given' : 'consent_withdrawn') ||
      r.event.event_time !== rfc3339(entry.event_time)
    ) {
      throw new Refusal('record_mismatch', 'The consent record does not describe the event in the ledger.');
    }
  }
  if (!chain[0].webKey) throw new Refusal('unsupported', why.reason);

  Object.assign(result, {
    verified: true,
    check: 'ok',
    reason: facts
      ? "The ledger signed a tree that holds this entry of your details, and nothing in it was changed."
      : "The ledger signed a tree that holds this consent event, and signed this record of it; nothing was changed.",
  });
}

const grouped = (n) => (typeof n === 'number' ? n.toLocaleString() : String(n));
const shortKey = (hex) => (hex ? `${hex.slice(0, 8)}…${hex.slice(-4)}` : '');

/** One sentence for the page about a `verifyReceipt` result. */
export function describe(result) {
  if (result.verified) {
    return (
      `Verified in your browser: entry ${grouped(result.seq)} is in the ledger's signed tree of ` +
      `${grouped(result.treeSize)} entries, signed by key ${shortKey(result.publicKey)}.`
    );
  }
  if (result.check === 'unsupported') return `Not checked: ${result.reason}`;
  return `Not verified: ${result.reason}`;
}
