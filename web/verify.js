// The samizdat format-1 verifier for browsers and node (docs/BROWSER.md "verify.js API").
// Section numbers (§) are those of docs/FORMAT.md. No DOM, no worker API: only
// globalThis.crypto.subtle, TextEncoder/TextDecoder and the vendored noble Point.

import { Point } from './vendor/noble-ed25519.js';

const MIB = 1 << 20;
const MAX_ENVELOPE = MIB; // §7: envelope and document bodies
const MAX_TREE = 16 * MIB; // §7: tree node and signed tree lengths
const MAX_ROOTS = 1000n; // §7: root chain
const MAX_DEPTH = 64; // §6: trees at depth 0–63, paths of at most 64 names
const BLOCK = 16384; // §2.1
const L = 2n ** 252n + 27742317777372353535851937790883648493n; // Ed25519 group order

/** Every failure; `kind` says what went wrong, the message names the file and the reason. */
export class VerifyError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = 'VerifyError';
    this.kind = kind;
  }
}
const fail = (kind, message) => {
  throw new VerifyError(kind, message);
};

// --- Bytes ---------------------------------------------------------------------------

const utf8 = new TextEncoder();
// fatal: invalid UTF-8 is an error (§3); ignoreBOM: a leading U+FEFF is kept, so a name
// that starts with it is seen (and rejected by §6) instead of silently losing it.
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

export function fromHex(text) {
  if (typeof text !== 'string' || text.length % 2 || /[^0-9a-fA-F]/.test(text)) {
    fail('decode', `hex: not an even number of hex digits: ${String(text).slice(0, 80)}`);
  }
  return Uint8Array.from(text.match(/../g) || [], (h) => parseInt(h, 16));
}

function compareBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}
const equalBytes = (a, b) => compareBytes(a, b) === 0;

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
}

// Little-endian bytes → BigInt (Ed25519 scalars).
const leNumber = (bytes) => BigInt('0x' + (hex(Uint8Array.from(bytes).reverse()) || '0'));

// --- Fingerprints (§1) ---------------------------------------------------------------

const B32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** "sz1" + lowercase RFC 4648 base32 of the 32-byte site id, no padding. */
export function fingerprint(siteId) {
  let out = 'sz1';
  let bits = 0;
  let value = 0;
  for (const byte of siteId) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) out += B32[(value >>> (bits -= 5)) & 31];
  }
  if (bits) out += B32[(value << (5 - bits)) & 31];
  return out;
}

export function parseFingerprint(text) {
  const fp = String(text).trim().toLowerCase();
  const bad = (why) => fail('decode', `fingerprint ${JSON.stringify(String(text).trim())}: ${why}`);
  if (!fp.startsWith('sz1')) bad('does not start with sz1');
  const digits = fp.slice(3);
  if (digits.length !== 52 || /[^a-z2-7]/.test(digits)) bad('not 52 base32 characters');
  const out = new Uint8Array(32);
  let bits = 0;
  let value = 0;
  let n = 0;
  for (const c of digits) {
    value = ((value << 5) | B32.indexOf(c)) & 0xfff;
    bits += 5;
    if (bits >= 8) out[n++] = (value >>> (bits -= 8)) & 255;
  }
  // 52 × 5 = 260 bits: the last character carries 4 bits that MUST be zero.
  if (value & ((1 << bits) - 1)) bad('nonzero trailing bits');
  return out;
}

// --- Hashes (§2) ---------------------------------------------------------------------

export const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));

/** §2.1: the BEP 52 Merkle root over 16 KiB blocks, leaves zero-padded to a power of two. */
export async function objectAddress(bytes) {
  const blocks = [];
  for (let at = 0; at < bytes.length || at === 0; at += BLOCK) blocks.push(bytes.subarray(at, at + BLOCK));
  let layer = await Promise.all(blocks.map(sha256));
  while (layer.length & (layer.length - 1)) layer.push(new Uint8Array(32));
  while (layer.length > 1) {
    const pairs = [];
    for (let i = 0; i < layer.length; i += 2) pairs.push(sha256(concat(layer[i], layer[i + 1])));
    layer = await Promise.all(pairs);
  }
  return layer[0];
}

// --- Ed25519, strict (§4.3) ----------------------------------------------------------
//
// The strict rules are checked here whatever the backend does: S < L, A and R decode
// (RFC 8032 §5.1.3, rejecting y ≥ p) and are not of small order. The equation is the
// cofactorless one: encode([S]B − [k]A) = R. WebCrypto (OpenSSL, BoringSSL, NSS) checks it
// that way; a probe at start-up makes sure (a WebCrypto that accepts a signature whose R
// has a small-order component is cofactored, and is not used). noble's own verify() is
// cofactored even with zip215:false, so the fallback computes the equation with noble's
// Point instead.

// A probe key, message and two signatures: a valid one and one with R + T (T of order 8),
// valid only under the cofactored equation.
const PROBE_KEY = 'cc860387919af3051d0a60233e136e4e63521d4e616934b402ac5fe4038e54d3';
const PROBE_MSG = utf8.encode('samizdat ed25519 probe');
const PROBE_GOOD =
  '00af449e14f7f201ce045a4f3e4bedc190bee33b058df8992b32f8a28a4cefeabeae22aad4d6d9aa21aa8388f8d6618928a473fc742663bd37dfd1335b0eb70c';
const PROBE_TORSION =
  'a5b8cfb30f6a4497a3a1bb1d1c216323f6b67d271848ef4bdf796ffb9365851760e182bb130ecf69f89bc5c6552fb47d0c453de802ce9d65a693095c0074fd07';

let forcedBackend = null;
let backend = null;

/** Tests only: force 'noble' or 'webcrypto', or null to choose automatically again. */
export function _setEd25519Backend(name) {
  forcedBackend = name;
  backend = null;
}

/** The backend in use: 'webcrypto' or 'noble'. */
export const _ed25519Backend = () => (backend ??= forcedBackend ? Promise.resolve(forcedBackend) : probe());

async function probe() {
  try {
    const key = fromHex(PROBE_KEY);
    const good = await webcryptoVerify(key, fromHex(PROBE_GOOD), PROBE_MSG);
    const torsion = await webcryptoVerify(key, fromHex(PROBE_TORSION), PROBE_MSG);
    if (good && !torsion) return 'webcrypto';
  } catch {
    // No Ed25519 in this WebCrypto (NotSupportedError) or another failure: use noble.
  }
  return 'noble';
}

async function webcryptoVerify(key, sig, message) {
  const k = await crypto.subtle.importKey('raw', key, { name: 'Ed25519' }, false, ['verify']);
  return crypto.subtle.verify({ name: 'Ed25519' }, k, sig, message);
}

// §4.3 rule 5 with noble's point arithmetic: k = SHA-512(R || A || M) mod L.
async function nobleVerify(key, sig, message, A, S) {
  const k = leNumber(new Uint8Array(await crypto.subtle.digest('SHA-512', concat(sig.subarray(0, 32), key, message)))) % L;
  const R = Point.BASE.multiply(S, false).subtract(A.multiply(k, false));
  return equalBytes(R.toBytes(), sig.subarray(0, 32));
}

const decodePoint = (bytes) => {
  try {
    return Point.fromBytes(bytes, false); // strict RFC 8032 decoding, not ZIP-215
  } catch {
    return null;
  }
};

/** §4.3: true iff `sig` is a strictly valid Ed25519 signature of `message` by `key`. */
export async function verifySignature(key, sig, message) {
  if (!(key instanceof Uint8Array) || !(sig instanceof Uint8Array) || key.length !== 32 || sig.length !== 64) {
    return false;
  }
  const S = leNumber(sig.subarray(32));
  if (S >= L) return false; // rule 3
  const A = decodePoint(key);
  const R = decodePoint(sig.subarray(0, 32));
  if (!A || !R || A.isSmallOrder() || R.isSmallOrder()) return false; // rules 1, 2, 4
  if ((await _ed25519Backend()) === 'webcrypto') {
    try {
      return await webcryptoVerify(key, sig, message);
    } catch {
      // A WebCrypto that refuses this key: the strict noble path gives the same answer.
    }
  }
  return nobleVerify(key, sig, message, A, S);
}

// --- Canonical CBOR (§3) -------------------------------------------------------------
//
// A strict decoder for exactly the subset of §3: unsigned integers (as BigInt), byte and
// text strings, arrays, maps, null. Every head must be the shortest; everything else
// (negative integers, tags, floats, other simple values, indefinite lengths) is rejected.
// Maps come back as CborMap so that the document decoders can report an unknown format
// version before judging the keys (§3). With shortest heads, definite lengths and the
// exact key sequences checked by the schema, the input is the one canonical encoding.

class CborMap {
  constructor(entries) {
    this.entries = entries;
  }
}

function decodeCbor(bytes, what, maxLen) {
  if (bytes.length > maxLen) fail('too-large', `${what}: ${bytes.length} bytes exceeds the limit of ${maxLen}`);
  const bad = (why) => fail('decode', `${what}: malformed: ${why}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;

  // The argument of a head whose additional info is `info`, checked to be the shortest.
  function argument(info) {
    if (info < 24) return BigInt(info);
    if (info > 27) bad(info === 31 ? 'indefinite length' : 'reserved additional information');
    const n = 1 << (info - 24);
    if (pos + n > bytes.length) bad('truncated');
    const v = n === 8 ? view.getBigUint64(pos) : BigInt(n === 1 ? bytes[pos] : n === 2 ? view.getUint16(pos) : view.getUint32(pos));
    pos += n;
    if (v < (n === 1 ? 24n : 1n << BigInt(4 * n))) bad('not in canonical encoding (integer or length head not the shortest)');
    return v;
  }

  function take(length) {
    if (length > BigInt(bytes.length - pos)) bad('truncated');
    return bytes.subarray(pos, (pos += Number(length)));
  }

  function item(depth) {
    if (depth > 16) bad('nested too deeply');
    if (pos >= bytes.length) bad('truncated');
    const initial = bytes[pos++];
    const major = initial >> 5;
    if (initial === 0xf6) return null;
    if (major === 1 || major >= 6) bad(`CBOR item 0x${initial.toString(16)} not allowed (negative, tag, float or simple value)`);
    const v = argument(initial & 31);
    if (major === 0) return v;
    if (major === 2) return take(v).slice();
    if (major === 3) {
      try {
        return utf8Strict.decode(take(v));
      } catch (e) {
        if (e instanceof VerifyError) throw e;
        bad('invalid UTF-8 in a text string');
      }
    }
    // Each item takes at least one byte: a count beyond the rest of the input is a lie.
    if (v > BigInt(bytes.length - pos)) bad('truncated');
    const out = [];
    for (let i = 0; i < Number(v); i++) out.push(major === 4 ? item(depth + 1) : [item(depth + 1), item(depth + 1)]);
    return major === 4 ? out : new CborMap(out);
  }

  const value = item(0);
  if (pos !== bytes.length) bad(`${bytes.length - pos} trailing byte(s) after the item`);
  return value;
}

// --- Schema helpers ------------------------------------------------------------------

const isBytes = (v, n) => v instanceof Uint8Array && (n === undefined || v.length === n);
const need = (ok, what, why) => ok || fail('decode', `${what}: malformed: ${why}`);

const uint = (v, what) => (need(typeof v === 'bigint', what, 'expected an unsigned integer'), v);
const hash = (v, what) => (need(isBytes(v, 32), what, 'expected 32 bytes'), v);
const hashOrNull = (v, what) => (v === null ? null : hash(v, what));
const array = (v, what, max, exact) => {
  need(Array.isArray(v), what, 'expected an array');
  need(exact === undefined ? v.length <= max : v.length === exact, what, `array of ${v.length} items`);
  return v;
};
const hasControl = (s) => /[\u0000-\u001f\u007f-\u009f]/.test(s); // Unicode category Cc
function text(v, what, maxBytes) {
  need(typeof v === 'string', what, 'expected a text string');
  need(utf8.encode(v).length <= maxBytes, what, `text longer than ${maxBytes} bytes`);
  return v;
}

// §3: key 0 (the format version) first, reported as such; then exactly keys 0..n−1.
function docFields(body, n, what) {
  const map = decodeCbor(body, what, MAX_ENVELOPE);
  need(map instanceof CborMap, what, 'not a map');
  const [first] = map.entries;
  if (first && first[0] === 0n && first[1] !== 1n) {
    fail('decode', `${what}: format version ${String(first[1])} is not supported; upgrade samizdat`);
  }
  need(map.entries.length === n, what, `map of ${map.entries.length} entries, expected ${n}`);
  map.entries.forEach(([k], i) => need(k === BigInt(i), what, `key ${String(k)} where key ${i} was expected`));
  return map.entries.map(([, v]) => v);
}

// Keys (or [key, …] entries) strictly ascending bytewise: sorted, no duplicates.
function ascendingKeys(keys, what) {
  for (let i = 1; i < keys.length; i++) need(compareBytes(keys[i - 1], keys[i]) < 0, what, 'keys not strictly ascending');
}

function threshold(v, count, what) {
  need(uint(v, what) >= 1n && v <= BigInt(count), what, `threshold ${v} with ${count} keys`);
  return v;
}

// --- Envelopes (§4.1, §4.2) ----------------------------------------------------------

const ROLES = ['root', 'keyset', 'snapshot', 'head'];

export function decodeEnvelope(bytes, role) {
  const what = `${role} envelope`;
  const env = array(decodeCbor(bytes, what, MAX_ENVELOPE), what, 0, 3);
  const label = text(env[0], what, 16);
  need(ROLES.includes(label), what, `unknown role ${JSON.stringify(label)}`);
  need(label === role, what, `holds a ${label} document, expected ${role}`);
  need(isBytes(env[1]), what, 'body is not a byte string');
  const signatures = array(env[2], what, 32).map((s) => {
    array(s, what, 0, 3);
    need(s[0] === 1n, what, `unknown signature algorithm ${String(s[0])}`);
    need(isBytes(s[1], 32) && isBytes(s[2], 64), what, 'signature entry is not [1, key(32), sig(64)]');
    return { key: s[1], sig: s[2] };
  });
  return { role, body: env[1], signatures };
}

const signingInput = (role, body) => concat(utf8.encode(`samizdat-v1/${role}\0`), body);

// §4.4: the distinct allowed keys with a valid signature; others neither count nor fail.
async function validSigners(env, allowed) {
  const message = signingInput(env.role, env.body);
  const ok = new Map();
  for (const { key, sig } of env.signatures) {
    const id = hex(key);
    if (!ok.has(id) && allowed(id) && (await verifySignature(key, sig, message))) ok.set(id, key);
  }
  return ok;
}

async function requireSigners(env, wanted, allowed, what) {
  const ok = await validSigners(env, allowed);
  if (BigInt(ok.size) < wanted) fail('verify', `${what}: ${ok.size} valid signature(s), threshold ${wanted}`);
  return [...ok.values()];
}

// --- Documents (§5) ------------------------------------------------------------------

export function decodeRoot(body) {
  const [, name, version, thresh, keys, created, prev, site] = docFields(body, 8, 'root');
  const what = 'root';
  need(!hasControl(text(name, what, 1024)), what, 'control character in the name');
  need(uint(version, what) >= 1n, what, 'version 0');
  array(keys, what, 64).forEach((k) => hash(k, what));
  need(keys.length >= 1, what, 'no keys');
  ascendingKeys(keys, what);
  uint(created, what);
  const root = { format: 1, name, version, threshold: threshold(thresh, keys.length, what), keys, created };
  root.prev = hashOrNull(prev, what);
  root.site = hashOrNull(site, what);
  need((version === 1n) === (prev === null) && (version === 1n) === (site === null), what, 'prev and site must be null iff version 1');
  return root;
}

export function decodeKeyset(body) {
  const [, site, version, rootVersion, thresh, keys, revoked, created] = docFields(body, 8, 'keyset');
  const what = 'keyset';
  const pairs = (list, max, field) =>
    array(list, what, max).map((e) => {
      array(e, what, 0, 2);
      return { key: hash(e[0], what), [field]: uint(e[1], what) };
    });
  const active = pairs(keys, 64, 'expires');
  const gone = pairs(revoked, 1024, 'maxSeq');
  need(active.length >= 1, what, 'no signing keys');
  ascendingKeys(active.map((e) => e.key), what);
  ascendingKeys(gone.map((e) => e.key), what);
  const goneIds = new Set(gone.map((e) => hex(e.key)));
  need(!active.some((e) => goneIds.has(hex(e.key))), what, 'a key is both active and revoked');
  need(uint(version, what) >= 1n && uint(rootVersion, what) >= 1n, what, 'version 0');
  return {
    format: 1,
    site: hash(site, what),
    version,
    rootVersion,
    threshold: threshold(thresh, active.length, what),
    keys: active,
    revoked: gone,
    created: uint(created, what),
  };
}

export function decodeSnapshot(body) {
  const [, site, seq, created, expires, prev, root, keysetVersion, files, bytes, mirrors] = docFields(body, 11, 'snapshot');
  const what = 'snapshot';
  array(root, what, 0, 2);
  const snap = {
    format: 1,
    site: hash(site, what),
    seq: uint(seq, what),
    created: uint(created, what),
    expires: uint(expires, what),
    prev: hashOrNull(prev, what),
    root: { hash: hash(root[0], what), len: uint(root[1], what) },
    keysetVersion: uint(keysetVersion, what),
    files: uint(files, what),
    bytes: uint(bytes, what),
    mirrors: array(mirrors, what, 256).map((m) => (need(!hasControl(text(m, what, 1024)), what, 'control character in a mirror'), m)),
  };
  need(seq >= 1n && keysetVersion >= 1n, what, 'seq or keyset_version 0');
  need(snap.root.len <= BigInt(MAX_TREE), what, 'root tree longer than 16 MiB');
  return snap;
}

export function decodeHead(body) {
  const [, site, seq, snapshot, issued, expires, keysetVersion, rootVersion] = docFields(body, 8, 'head');
  const what = 'head';
  return {
    format: 1,
    site: hash(site, what),
    seq: uint(seq, what),
    snapshot: hash(snapshot, what),
    issued: uint(issued, what),
    expires: uint(expires, what),
    keysetVersion: uint(keysetVersion, what),
    rootVersion: uint(rootVersion, what),
  };
}

// --- Names and paths (§6) ------------------------------------------------------------

const INVISIBLE = /[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/;
// Without the u flag, /i never maps a non-ASCII letter to an ASCII one: ASCII upper case.
const DEVICE = /^(con|prn|aux|nul|com[1-9]|lpt[1-9])$/i;

/** The reason `name` is not a valid name (§6), or null. */
function nameProblem(name) {
  if (name === '') return 'empty name';
  if (name === '.' || name === '..') return '`.` or `..` component';
  if (utf8.encode(name).length > 255) return 'name longer than 255 bytes';
  if (/[/\\]/.test(name)) return '`/` or backslash in a name';
  if (hasControl(name)) return 'control character or NUL in a name';
  if (INVISIBLE.test(name)) return 'invisible formatting character (bidi override, zero-width) in a name';
  if (/[:<>"|?*]/.test(name)) return 'character not allowed in names (Windows cannot store it)';
  if (/[. ]$/.test(name)) return 'name ends with a dot or space';
  if (DEVICE.test(name.split('.')[0])) return 'reserved device name on Windows';
  if (name.normalize('NFC') !== name) return 'name is not in Unicode normal form C (NFC)';
  return null;
}

function splitPath(path) {
  const bad = (why) => fail('not-found', `unsafe path ${JSON.stringify(path)}: ${why}`);
  if (typeof path !== 'string') bad('not a string');
  if (utf8.encode(path).length > 4096) bad('path longer than 4096 bytes');
  if (path.startsWith('/')) bad('absolute path');
  const names = path.split('/');
  if (names.length > MAX_DEPTH) bad('nested deeper than 64 levels');
  for (const name of names) {
    const why = nameProblem(name);
    if (why) bad(why);
  }
  return names;
}

// --- Trees (§5.5) --------------------------------------------------------------------

export function decodeTree(bytes) {
  const what = 'tree';
  const list = array(decodeCbor(bytes, what, MAX_TREE), what, MIB);
  const folded = new Set();
  let prevName = null;
  return list.map((e) => {
    need(Array.isArray(e) && e.length >= 2, what, 'entry is not an array of at least 2 items');
    const name = text(e[0], what, 1020);
    const why = nameProblem(name);
    need(!why, what, `${JSON.stringify(name)}: ${why}`);
    const nameBytes = utf8.encode(name);
    need(!prevName || compareBytes(prevName, nameBytes) < 0, what, `${JSON.stringify(name)}: names not strictly ascending`);
    // Rust's str::to_lowercase and JS toLowerCase are both the full Unicode mapping
    // (SpecialCasing, Final_Sigma).
    const fold = name.toLowerCase();
    need(!folded.has(fold), what, `${JSON.stringify(name)} differs from another name only by case`);
    folded.add(fold);
    prevName = nameBytes;
    if (e[1] === 0n && e.length === 5) {
      const media = text(e[4], what, 255);
      need(/^[\x20-\x7e]*$/.test(media), what, 'media type not printable ASCII');
      return { name, kind: 'file', address: hash(e[2], what), size: uint(e[3], what), media };
    }
    need(e[1] === 1n && e.length === 4, what, `${JSON.stringify(name)}: entry kind ${String(e[1])} with ${e.length} items`);
    const treeLen = uint(e[3], what);
    need(treeLen <= BigInt(MAX_TREE), what, 'subtree longer than 16 MiB');
    return { name, kind: 'dir', tree: hash(e[2], what), treeLen };
  });
}

/** §8.6 step 2: exact length, SHA-256, then decode. */
export async function verifyTree(bytes, treeHash, len) {
  const what = `tree ${hex(treeHash)}`;
  if (BigInt(bytes.length) !== BigInt(len)) fail('verify', `${what}: ${bytes.length} bytes, the signed length is ${len}`);
  if (!equalBytes(await sha256(bytes), treeHash)) fail('verify', `${what}: tree does not match its hash`);
  return decodeTree(bytes);
}

/** §8.7: exact size and address, or throws. */
export async function verifyObject(bytes, address, size) {
  const what = `object ${hex(address)}`;
  const n = BigInt(bytes.length);
  if (n > BigInt(size)) fail('verify', `${what}: larger than the size declared in the tree (${size})`);
  if (n < BigInt(size)) fail('verify', `${what}: truncated (${n} of ${size} bytes)`);
  if (!equalBytes(await objectAddress(bytes), address)) fail('verify', `${what}: content does not match its address (tampered)`);
}

// --- Verification (§8.1–8.5) ---------------------------------------------------------

/**
 * §8.1–8.5 over a repository. fetchFile(rel, maxBytes) → Uint8Array | null (absent).
 * `genesis`, the root envelope of publisher.pub, stands in for roots/1.root.
 */
export async function loadVerified(fetchFile, siteId, { genesis } = {}) {
  const get = async (rel) => {
    let bytes;
    try {
      bytes = await fetchFile(rel, MAX_ENVELOPE);
    } catch (e) {
      if (e instanceof VerifyError) throw e;
      fail('fetch', `${rel}: ${e?.message ?? e}`);
    }
    if (bytes == null) fail('not-found', `${rel}: not found`);
    if (bytes.length > MAX_ENVELOPE) fail('too-large', `${rel}: ${bytes.length} bytes exceeds the limit of ${MAX_ENVELOPE}`);
    return bytes;
  };
  const head = await get('head');
  // Not trusted yet: its fields only say what to fetch.
  const claim = decodeHead(decodeEnvelope(head, 'head').body);
  if (claim.rootVersion < 1n || claim.rootVersion > MAX_ROOTS) fail('verify', `head: root version ${claim.rootVersion} out of range`);
  const rootFiles = [];
  for (let v = 1; v <= Number(claim.rootVersion); v++) rootFiles.push(v === 1 && genesis ? genesis : get(`roots/${v}.root`));
  const [keyset, snapshot, ...roots] = await Promise.all([
    get(`keysets/${claim.keysetVersion}.keyset`),
    get(`snapshots/${hex(claim.snapshot)}.snap`),
    ...rootFiles,
  ]);
  return verifyMetadata(siteId, { roots, keyset, snapshot, head });
}

/** §8.2–8.5 over raw envelopes {roots: [..], keyset, snapshot, head}, e.g. a persisted State.raw. */
export async function verifyMetadata(siteId, raw) {
  const roots = await verifyRoots(siteId, raw.roots);
  const root = roots[roots.length - 1];
  const allowedRoot = (r) => (id) => r.keys.some((k) => hex(k) === id);

  // §8.3
  const kenv = decodeEnvelope(raw.keyset, 'keyset');
  const keyset = decodeKeyset(kenv.body);
  const kwhat = `keyset version ${keyset.version}`;
  if (!equalBytes(keyset.site, siteId)) fail('wrong-publisher', `${kwhat}: belongs to another publisher (mix-and-match)`);
  if (keyset.rootVersion !== root.version) fail('verify', `${kwhat}: signed under root version ${keyset.rootVersion}, the newest root is ${root.version}`);
  await requireSigners(kenv, root.threshold, allowedRoot(root), kwhat);
  // §8.4, §8.5: a signing key counts if active and not expired at the document's own time.
  const validAt = (time) => (id) => keyset.keys.some((k) => hex(k.key) === id && k.expires >= time);

  // §8.4
  const henv = decodeEnvelope(raw.head, 'head');
  const head = decodeHead(henv.body);
  if (!equalBytes(head.site, siteId)) fail('wrong-publisher', 'head: belongs to another publisher (mix-and-match)');
  if (head.keysetVersion !== keyset.version || head.rootVersion !== root.version) {
    fail('verify', `head: names keyset ${head.keysetVersion} and root ${head.rootVersion}, have ${keyset.version} and ${root.version}`);
  }
  await requireSigners(henv, keyset.threshold, validAt(head.issued), 'head');

  // §8.5: the id is checked before the body is decoded.
  const senv = decodeEnvelope(raw.snapshot, 'snapshot');
  const snapshotId = await sha256(senv.body);
  const swhat = `snapshot ${hex(snapshotId)}`;
  if (!equalBytes(snapshotId, head.snapshot)) fail('verify', `${swhat}: the head names snapshot ${hex(head.snapshot)}`);
  const snapshot = decodeSnapshot(senv.body);
  if (!equalBytes(snapshot.site, siteId)) fail('wrong-publisher', `${swhat}: belongs to another publisher (mix-and-match)`);
  if (snapshot.seq !== head.seq) fail('verify', `${swhat}: seq ${snapshot.seq}, the head says ${head.seq}`);
  if (snapshot.keysetVersion !== keyset.version) fail('verify', `${swhat}: signed under keyset ${snapshot.keysetVersion}, have ${keyset.version}`);
  const signers = await requireSigners(senv, keyset.threshold, validAt(snapshot.created), swhat);

  return { siteId, name: root.name, seq: snapshot.seq, snapshotId, head, snapshot, keyset, roots, signers, raw };
}

// §8.2
async function verifyRoots(siteId, envelopes) {
  if (!envelopes.length) fail('verify', 'root chain: no root documents');
  const roots = [];
  let prevBody = null;
  for (const [i, bytes] of envelopes.entries()) {
    const what = `roots/${i + 1}.root`;
    const env = decodeEnvelope(bytes, 'root');
    const root = decodeRoot(env.body);
    if (root.version !== BigInt(i + 1)) fail('verify', `${what}: document says version ${root.version}`);
    const own = (id) => root.keys.some((k) => hex(k) === id);
    if (!prevBody) {
      if (!equalBytes(await sha256(env.body), siteId)) fail('wrong-publisher', `${what}: genesis root does not match the pinned publisher (wrong publisher?)`);
    } else {
      const prev = roots[i - 1];
      if (!equalBytes(root.prev, await sha256(prevBody))) fail('verify', `${what}: does not link to the previous root`);
      if (!equalBytes(root.site, siteId)) fail('wrong-publisher', `${what}: belongs to another publisher`);
      await requireSigners(env, prev.threshold, (id) => prev.keys.some((k) => hex(k) === id), `${what} (signatures by the previous root)`);
    }
    await requireSigners(env, root.threshold, own, what);
    roots.push(root);
    prevBody = env.body;
  }
  return roots;
}

// --- Moving to a newer state (§8.9) --------------------------------------------------

const bodyOf = (bytes, role) => decodeEnvelope(bytes, role).body;

export function checkAdvance(current, next) {
  if (!equalBytes(next.siteId, current.siteId)) fail('wrong-publisher', 'snapshot: belongs to another publisher (mix-and-match)');
  const nRoots = next.raw.roots.length;
  const cRoots = current.raw.roots.length;
  if (nRoots < cRoots) fail('rollback', `rollback refused: root version ${nRoots} is older than the accepted ${cRoots}`);
  for (let i = 0; i < cRoots; i++) {
    if (!equalBytes(bodyOf(next.raw.roots[i], 'root'), bodyOf(current.raw.roots[i], 'root'))) {
      fail('equivocation', `root chain: roots/${i + 1}.root differs from the accepted one (forked root history)`);
    }
  }
  const nk = next.keyset.version;
  const ck = current.keyset.version;
  if (nk < ck) fail('rollback', `rollback refused: keyset version ${nk} is older than the accepted ${ck}`);
  if (nk === ck && !equalBytes(bodyOf(next.raw.keyset, 'keyset'), bodyOf(current.raw.keyset, 'keyset'))) {
    fail('equivocation', `keyset: two different keysets with version ${nk} (equivocation)`);
  }
  const floor = recoveryFloor(current, next);
  const n = next.seq;
  const c = current.seq;
  if (n === c && floor === c) {
    if (!equalBytes(next.snapshotId, current.snapshotId)) {
      fail('equivocation', `snapshot: two different snapshots with seq ${n}: ${hex(current.snapshotId)} and ${hex(next.snapshotId)}`);
    }
    return 'same';
  }
  if (n <= floor) fail('rollback', `rollback refused: snapshot seq ${n} is not newer than the accepted seq ${c}`);
  return 'newer';
}

// §8.9 step 6: the largest candidate at which current's signers, less those that
// next.keyset revoked below it, still meet next.keyset's threshold.
function recoveryFloor(current, next) {
  const c = current.seq;
  const bound = (key) => next.keyset.revoked.find((r) => equalBytes(r.key, key))?.maxSeq ?? null; // null: ∞
  const bounds = current.signers.map(bound);
  const candidates = [c, ...bounds.filter((b) => b !== null && b < c)].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
  const meets = (s) => BigInt(bounds.filter((b) => b === null || b >= s).length) >= next.keyset.threshold;
  return candidates.find(meets) ?? candidates[candidates.length - 1];
}

// --- Freshness (§8.8) ----------------------------------------------------------------

const when = (t) => (t <= 8640000000000n ? new Date(Number(t) * 1000).toISOString().replace('.000', '') : `${t}`);

/** §8.8: never fatal. `now` in Unix seconds (number or BigInt); `age` in seconds (number). */
export function freshness(state, now) {
  const t = BigInt(Math.floor(Number(now)));
  const reasons = [];
  if (t > state.head.expires) reasons.push(`head expired at ${when(state.head.expires)}`);
  if (t > state.snapshot.expires) reasons.push(`snapshot expired at ${when(state.snapshot.expires)}`);
  for (const key of state.signers) {
    const k = state.keyset.keys.find((e) => equalBytes(e.key, key));
    if (k && t > k.expires) reasons.push(`signing key ${hex(key).slice(0, 16)} expired at ${when(k.expires)}`);
  }
  const created = state.snapshot.created;
  return { stale: reasons.length > 0, reasons, age: t > created ? Number(t - created) : 0 };
}

// --- Paths and listings --------------------------------------------------------------

/**
 * Looks up a site path such as "新闻/今日.html": the file entry, the directory entry
 * (kind "dir"), or null if absent. getTree(hash, len) → verified entries (the caller
 * fetches with verifyTree and caches). An unsafe path (§6) throws kind "not-found".
 */
export async function resolvePath(state, sitePath, getTree) {
  const names = splitPath(sitePath);
  let entries = await getTree(state.snapshot.root.hash, state.snapshot.root.len);
  for (const [i, name] of names.entries()) {
    const entry = entries.find((e) => e.name === name);
    const last = i === names.length - 1;
    if (!entry || (entry.kind === 'file' && !last)) return null;
    if (last) return entry;
    entries = await getTree(entry.tree, entry.treeLen);
  }
}

/**
 * §8.6: walks every tree of the snapshot and returns its files [{path, address, size, media}],
 * checking depth, the visit limit, one size per address and the declared totals.
 */
export async function listFiles(state, getTree) {
  const snap = state.snapshot;
  const bad = (why) => fail('verify', `snapshot ${hex(state.snapshotId)}: ${why}`);
  const sizes = new Map();
  const files = [];
  let total = 0n;
  let visits = 0n;
  async function walk(ref, dir, depth) {
    if (depth >= MAX_DEPTH) bad(`${dir}: trees nested deeper than 64 levels`);
    if (++visits > snap.files + 65536n) bad('too many tree visits');
    for (const e of await getTree(ref.hash, ref.len)) {
      const path = dir ? `${dir}/${e.name}` : e.name;
      if (e.kind === 'dir') {
        await walk({ hash: e.tree, len: e.treeLen }, path, depth + 1);
        continue;
      }
      const id = hex(e.address);
      if ((sizes.get(id) ?? e.size) !== e.size) bad(`${path}: one address with two sizes (§2.2)`);
      sizes.set(id, e.size);
      files.push({ path, address: e.address, size: e.size, media: e.media });
      total += e.size;
      if (BigInt(files.length) > snap.files) bad(`more files than the ${snap.files} declared`);
    }
  }
  await walk(snap.root, '', 0);
  if (BigInt(files.length) !== snap.files || total !== snap.bytes || total >= 2n ** 64n) {
    bad(`${files.length} files of ${total} bytes, the snapshot declares ${snap.files} files of ${snap.bytes} bytes`);
  }
  return files;
}
