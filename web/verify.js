// samizdat format-1 verifier for browsers and node: docs/BROWSER.md "verify.js API".
// § numbers are docs/FORMAT.md. No DOM, no worker API: WebCrypto, TextDecoder, noble's Point.

import { Point } from './vendor/noble-ed25519.js';

const MIB = 1 << 20;
const MAX_DOC = MIB; // §7: envelope, document body
const MAX_TREE = 16 * MIB; // §7: tree node, signed tree length
const MAX_DEPTH = 64; // §6
const MAX_ROOTS = 1000n; // §7
const L = 2n ** 252n + 27742317777372353535851937790883648493n; // Ed25519 group order

/** `kind`: decode, verify, wrong-publisher, rollback, equivocation, too-large, not-found, fetch. */
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

// Bytes

const utf8 = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF, so §6 sees (and rejects) it instead of it vanishing.
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

export function fromHex(text) {
  if (typeof text !== 'string' || text.length % 2 || /[^0-9a-f]/i.test(text)) fail('decode', `not hex: ${String(text).slice(0, 80)}`);
  return Uint8Array.from(text.match(/../g) || [], (h) => parseInt(h, 16));
}

function compareBytes(a, b) {
  for (let i = 0; i < a.length && i < b.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}
const equalBytes = (a, b) => compareBytes(a, b) === 0;

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

const leNumber = (bytes) => BigInt('0x' + (hex(Uint8Array.from(bytes).reverse()) || '0'));

// §1 Fingerprint: "sz1" + lowercase RFC 4648 base32, no padding

const B32 = 'abcdefghijklmnopqrstuvwxyz234567';

export function fingerprint(siteId) {
  let out = 'sz1';
  let bits = 0;
  let value = 0;
  for (const byte of siteId) {
    value = (value << 8) | byte;
    for (bits += 8; bits >= 5; ) out += B32[(value >>> (bits -= 5)) & 31];
  }
  return bits ? out + B32[(value << (5 - bits)) & 31] : out;
}

export function parseFingerprint(text) {
  const fp = String(text).trim().toLowerCase();
  if (!/^sz1[a-z2-7]{52}$/.test(fp)) fail('decode', `fingerprint ${JSON.stringify(fp)}: not sz1 and 52 base32 characters`);
  const out = new Uint8Array(32);
  let bits = 0;
  let value = 0;
  let n = 0;
  for (const c of fp.slice(3)) {
    value = ((value << 5) | B32.indexOf(c)) & 0xfff;
    if ((bits += 5) >= 8) out[n++] = value >>> (bits -= 8);
  }
  // 260 bits for 256: the 4 left over MUST be zero, i.e. the encoding is the one fingerprint().
  if (fingerprint(out) !== fp) fail('decode', `fingerprint ${fp}: nonzero trailing bits`);
  return out;
}

// §2 Hashes

export const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));

/** §2.1: BEP 52 Merkle root of 16 KiB blocks, leaves padded with zero hashes to a power of two. */
export async function objectAddress(bytes) {
  const blocks = [];
  for (let at = 0; at < bytes.length || !at; at += 16384) blocks.push(bytes.subarray(at, at + 16384));
  let layer = await Promise.all(blocks.map(sha256));
  while (layer.length & (layer.length - 1)) layer.push(new Uint8Array(32));
  while (layer.length > 1) layer = await Promise.all(layer.filter((_, i) => !(i & 1)).map((l, i) => sha256(concat(l, layer[2 * i + 1]))));
  return layer[0];
}

// §4.3 Ed25519, strict. The rules WebCrypto need not check are checked here: S < L, A and R
// decode strictly (RFC 8032, y < p) and are not of small order. Rule 5 is the cofactorless
// equation encode([S]B − [k]A) = R. OpenSSL, BoringSSL and NSS check it so; a start-up probe
// refuses a WebCrypto that is cofactored (accepts R + T, T of order 8). noble's verify() is
// cofactored even with zip215:false, so the fallback does the equation with noble's Point.

const PROBE_KEY = 'cc860387919af3051d0a60233e136e4e63521d4e616934b402ac5fe4038e54d3';
const PROBE_MSG = utf8.encode('samizdat ed25519 probe');
const PROBE_GOOD =
  '00af449e14f7f201ce045a4f3e4bedc190bee33b058df8992b32f8a28a4cefeabeae22aad4d6d9aa21aa8388f8d6618928a473fc742663bd37dfd1335b0eb70c';
const PROBE_TORSION = // valid only under the cofactored equation
  'a5b8cfb30f6a4497a3a1bb1d1c216323f6b67d271848ef4bdf796ffb9365851760e182bb130ecf69f89bc5c6552fb47d0c453de802ce9d65a693095c0074fd07';

let forced = null;
let backend = null;

/** Tests: force 'noble' or 'webcrypto'; null chooses again. */
export function _setEd25519Backend(name) {
  forced = name;
  backend = null;
}

/** → Promise of 'webcrypto' or 'noble'. */
export const _ed25519Backend = () => (backend ??= forced ? Promise.resolve(forced) : probe());

async function probe() {
  try {
    const key = fromHex(PROBE_KEY);
    if ((await webcryptoVerify(key, fromHex(PROBE_GOOD), PROBE_MSG)) && !(await webcryptoVerify(key, fromHex(PROBE_TORSION), PROBE_MSG))) {
      return 'webcrypto';
    }
  } catch {} // NotSupportedError: no Ed25519 in this WebCrypto
  return 'noble';
}

async function webcryptoVerify(key, sig, message) {
  const k = await crypto.subtle.importKey('raw', key, { name: 'Ed25519' }, false, ['verify']);
  return crypto.subtle.verify({ name: 'Ed25519' }, k, sig, message);
}

// Rule 5 with noble's arithmetic: k = SHA-512(R || A || M) mod L.
async function nobleVerify(key, sig, message, A, S) {
  const R = sig.subarray(0, 32);
  const k = leNumber(new Uint8Array(await crypto.subtle.digest('SHA-512', concat(R, key, message)))) % L;
  return equalBytes(Point.BASE.multiply(S, false).subtract(A.multiply(k, false)).toBytes(), R);
}

const decodePoint = (bytes) => {
  try {
    return Point.fromBytes(bytes, false); // strict, not ZIP-215
  } catch {
    return null;
  }
};

/** §4.3 → boolean. */
export async function verifySignature(key, sig, message) {
  if (!(key instanceof Uint8Array && sig instanceof Uint8Array && key.length === 32 && sig.length === 64)) return false;
  const S = leNumber(sig.subarray(32));
  if (S >= L) return false; // rule 3
  const A = decodePoint(key);
  const R = decodePoint(sig.subarray(0, 32));
  if (!A || !R || A.isSmallOrder() || R.isSmallOrder()) return false; // rules 1, 2, 4
  if ((await _ed25519Backend()) === 'webcrypto') {
    try {
      return await webcryptoVerify(key, sig, message);
    } catch {} // a WebCrypto that refuses this key: noble gives the same answer
  }
  return nobleVerify(key, sig, message, A, S);
}

// §3 Canonical CBOR: uints (as BigInt), byte and text strings, arrays, maps, null; shortest
// heads only. Maps come back as CborMap so a document's unknown version is reported before
// its keys are judged. Shortest heads + definite lengths + the exact key sequences of the
// schemas leave one encoding per value, so no re-encoding is needed.

export class CborMap {
  constructor(entries) {
    this.entries = entries;
  }
}

/** Strict canonical CBOR (§3) → BigInt, Uint8Array, string, array, CborMap, null; throws decode or too-large. */
export function decodeCbor(bytes, what, maxLen) {
  if (bytes.length > maxLen) fail('too-large', `${what}: ${bytes.length} bytes exceeds the limit of ${maxLen}`);
  const bad = (why) => fail('decode', `${what}: malformed: ${why}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  const left = () => BigInt(bytes.length - pos);

  function argument(info) {
    if (info < 24) return BigInt(info);
    if (info > 27) bad(info === 31 ? 'indefinite length' : 'reserved head');
    const n = 1 << (info - 24);
    if (pos + n > bytes.length) bad('truncated');
    const v = n === 8 ? view.getBigUint64(pos) : BigInt(n === 1 ? bytes[pos] : n === 2 ? view.getUint16(pos) : view.getUint32(pos));
    pos += n;
    if (v < (n === 1 ? 24n : 1n << BigInt(4 * n))) bad('not in canonical encoding (head not the shortest)');
    return v;
  }

  function item(depth) {
    if (depth > 16) bad('nested too deeply');
    if (pos >= bytes.length) bad('truncated');
    const initial = bytes[pos++];
    const major = initial >> 5;
    if (initial === 0xf6) return null;
    if (major === 1 || major > 5) bad(`item 0x${initial.toString(16)} not allowed (negative, tag, float, simple)`);
    const v = argument(initial & 31);
    if (major === 0) return v;
    // Each item takes at least a byte: a count or length beyond the input is truncated.
    if (v > left()) bad('truncated');
    if (major < 4) {
      const s = bytes.subarray(pos, (pos += Number(v)));
      if (major === 2) return s.slice();
      try {
        return utf8Strict.decode(s);
      } catch {
        bad('invalid UTF-8');
      }
    }
    const out = [];
    for (let i = 0; i < v; i++) out.push(major === 4 ? item(depth + 1) : [item(depth + 1), item(depth + 1)]);
    return major === 4 ? out : new CborMap(out);
  }

  const value = item(0);
  if (pos < bytes.length) bad(`${bytes.length - pos} trailing byte(s) after the item`);
  return value;
}

// Schema checks

const need = (ok, what, why) => ok || fail('decode', `${what}: malformed: ${why}`);
const isBytes = (v, n = v?.length) => v instanceof Uint8Array && v.length === n;
const uint = (v, what) => (need(typeof v === 'bigint', what, 'expected an unsigned integer'), v);
const hash = (v, what) => (need(isBytes(v, 32), what, 'expected 32 bytes'), v);
const array = (v, what, max, exact) => {
  need(Array.isArray(v) && (exact === undefined ? v.length <= max : v.length === exact), what, 'expected an array of the right length');
  return v;
};
const hasControl = (s) => /[\u0000-\u001f\u007f-\u009f]/.test(s); // Unicode Cc
const text = (v, what, maxBytes) => (need(typeof v === 'string' && utf8.encode(v).length <= maxBytes, what, `expected text of at most ${maxBytes} bytes`), v);
const label = (v, what, maxBytes) => (need(!hasControl(text(v, what, maxBytes)), what, 'control character'), v);
const ascending = (keys, what) => keys.forEach((k, i) => need(!i || compareBytes(keys[i - 1], k) < 0, what, 'keys not strictly ascending'));
const threshold = (t, count, what) => need(t >= 1n && t <= BigInt(count), what, `threshold ${t} of ${count} keys`);

// A document body (§5): a map with key 0 = format version 1 (reported first, §3), then
// exactly the keys 1..n in order. `schema` names the fields; h = hash, h? = hash or null,
// u = uint64, * = checked by the caller.
function readDoc(body, what, schema) {
  const map = decodeCbor(body, what, MAX_DOC);
  need(map instanceof CborMap, what, 'not a map');
  const [first] = map.entries;
  if (first?.[0] === 0n && first[1] !== 1n) fail('decode', `${what}: format version ${String(first[1])} is not supported; upgrade samizdat`);
  const fields = schema.split(' ');
  need(map.entries.length === fields.length + 1, what, `map of ${map.entries.length} entries, expected ${fields.length + 1}`);
  const doc = { format: 1 };
  map.entries.forEach(([k, v], i) => {
    need(k === BigInt(i), what, `key ${String(k)} where ${i} was expected`);
    if (!i) return;
    const [name, type] = fields[i - 1].split(':');
    const at = `${what} ${name}`;
    doc[name] = type === 'u' ? uint(v, at) : type === 'h' ? hash(v, at) : type === 'h?' && v !== null ? hash(v, at) : v;
  });
  return doc;
}

// §4 Envelopes

const ROLES = ['root', 'keyset', 'snapshot', 'head'];

export function decodeEnvelope(bytes, role) {
  const what = `${role} envelope`;
  const [got, body, sigs] = array(decodeCbor(bytes, what, MAX_DOC), what, 0, 3);
  need(ROLES.includes(text(got, what, 16)), what, `unknown role ${JSON.stringify(got)}`);
  need(got === role, what, `holds a ${got} document, expected ${role}`);
  need(isBytes(body), what, 'body is not a byte string');
  const signatures = array(sigs, what, 32).map((s) => {
    need(array(s, what, 0, 3)[0] === 1n, what, `unknown signature algorithm ${String(s[0])}`);
    need(isBytes(s[1], 32) && isBytes(s[2], 64), what, 'signature is not [1, key(32), sig(64)]');
    return { key: s[1], sig: s[2] };
  });
  return { role, body, signatures };
}

// §4.4: distinct allowed keys with a valid signature; the others neither count nor fail.
async function requireSigners(env, wanted, allowed, what) {
  const message = concat(utf8.encode(`samizdat-v1/${env.role}\0`), env.body); // §4.2
  const ok = new Map();
  for (const { key, sig } of env.signatures) {
    const id = hex(key);
    if (!ok.has(id) && allowed(id) && (await verifySignature(key, sig, message))) ok.set(id, key);
  }
  if (BigInt(ok.size) < wanted) fail('verify', `${what}: ${ok.size} valid signature(s), threshold ${wanted}`);
  return [...ok.values()];
}

// §5 Documents

export function decodeRoot(body) {
  const what = 'root';
  const r = readDoc(body, what, 'name:* version:u threshold:u keys:* created:u prev:h? site:h?');
  label(r.name, what, 1024);
  need(r.version >= 1n, what, 'version 0');
  need(array(r.keys, what, 64).length && r.keys.every((k) => hash(k, what)), what, 'no keys');
  ascending(r.keys, what);
  threshold(r.threshold, r.keys.length, what);
  const first = r.version === 1n;
  need(first === (r.prev === null) && first === (r.site === null), what, 'prev and site must be null iff version 1');
  return r;
}

export function decodeKeyset(body) {
  const what = 'keyset';
  const k = readDoc(body, what, 'site:h version:u rootVersion:u threshold:u keys:* revoked:* created:u');
  const pairs = (list, max, field) =>
    array(list, what, max).map((e) => (array(e, what, 0, 2), { key: hash(e[0], what), [field]: uint(e[1], what) }));
  k.keys = pairs(k.keys, 64, 'expires');
  k.revoked = pairs(k.revoked, 1024, 'maxSeq');
  ascending(k.keys.map((e) => e.key), what);
  ascending(k.revoked.map((e) => e.key), what);
  const revoked = new Set(k.revoked.map((e) => hex(e.key)));
  need(!k.keys.some((e) => revoked.has(hex(e.key))), what, 'a key is both active and revoked');
  need(k.version >= 1n && k.rootVersion >= 1n, what, 'version 0');
  threshold(k.threshold, k.keys.length, what);
  return k;
}

export function decodeSnapshot(body) {
  const what = 'snapshot';
  const s = readDoc(body, what, 'site:h seq:u created:u expires:u prev:h? root:* keysetVersion:u files:u bytes:u mirrors:*');
  array(s.root, what, 0, 2);
  s.root = { hash: hash(s.root[0], what), len: uint(s.root[1], what) };
  array(s.mirrors, what, 256).forEach((m) => label(m, what, 1024));
  need(s.seq >= 1n && s.keysetVersion >= 1n, what, 'seq or keyset_version 0');
  need(s.root.len <= MAX_TREE, what, 'root tree over 16 MiB');
  return s;
}

export const decodeHead = (body) => readDoc(body, 'head', 'site:h seq:u snapshot:h issued:u expires:u keysetVersion:u rootVersion:u');

// §6 Names and paths

const INVISIBLE = /[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/;
// Without the u flag, /i never folds a non-ASCII letter to ASCII: ASCII upper case, as §6 says.
const DEVICE = /^(con|prn|aux|nul|com[1-9]|lpt[1-9])$/i;

/** §6: why `name` is not a valid name, or undefined. */
export function nameProblem(name) {
  if (name === '' || name === '.' || name === '..') return 'empty, `.` or `..` name';
  if (utf8.encode(name).length > 255) return 'name longer than 255 bytes';
  if (/[/\\:<>"|?*]/.test(name) || hasControl(name)) return 'forbidden character (/ \\ : < > " | ? * or control)';
  if (INVISIBLE.test(name)) return 'invisible formatting character';
  if (/[. ]$/.test(name)) return 'name ends with a dot or space';
  if (DEVICE.test(name.split('.')[0])) return 'reserved device name on Windows';
  if (name.normalize('NFC') !== name) return 'name not in Unicode NFC';
}

/** §6: a path's names, or throws not-found naming the rule it breaks. */
export function splitPath(path) {
  const bad = (why) => fail('not-found', `unsafe path ${JSON.stringify(path)}: ${why}`);
  if (utf8.encode(path).length > 4096) bad('longer than 4096 bytes');
  if (path.startsWith('/')) bad('absolute path');
  const names = path.split('/');
  if (names.length > MAX_DEPTH) bad('more than 64 names');
  names.forEach((name) => nameProblem(name) && bad(nameProblem(name)));
  return names;
}

// §5.5 Trees

export function decodeTree(bytes) {
  const what = 'tree';
  const folded = new Set();
  let prev = null;
  return array(decodeCbor(bytes, what, MAX_TREE), what, MIB).map((e) => {
    need(Array.isArray(e) && e.length > 1, what, 'entry is not an array');
    const name = text(e[0], what, 1020);
    const at = `${what} entry ${JSON.stringify(name)}`;
    need(!nameProblem(name), at, nameProblem(name));
    const raw = utf8.encode(name);
    need(!prev || compareBytes(prev, raw) < 0, at, 'names not strictly ascending');
    prev = raw;
    // JS toLowerCase, like Rust's to_lowercase, is the full mapping (SpecialCasing, Final_Sigma).
    need(!folded.has(name.toLowerCase()), at, 'differs from another name only by case');
    folded.add(name.toLowerCase());
    if (e[1] === 0n && e.length === 5) {
      need(/^[\x20-\x7e]*$/.test(text(e[4], at, 255)), at, 'media type not printable ASCII');
      return { name, kind: 'file', address: hash(e[2], at), size: uint(e[3], at), media: e[4] };
    }
    need(e[1] === 1n && e.length === 4, at, 'not [name, 0, address, size, media] or [name, 1, tree, len]');
    need(uint(e[3], at) <= MAX_TREE, at, 'subtree over 16 MiB');
    return { name, kind: 'dir', tree: hash(e[2], at), treeLen: e[3] };
  });
}

/** §8.6 step 2: exact length, SHA-256, decode. */
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

// §8.1–8.5 Verification

/** fetchFile(rel, maxBytes) → Uint8Array | null (absent). `genesis` (publisher.pub) stands in for roots/1.root. */
export async function loadVerified(fetchFile, siteId, { genesis } = {}) {
  const get = async (rel) => {
    let bytes;
    try {
      bytes = await fetchFile(rel, MAX_DOC);
    } catch (e) {
      if (e instanceof VerifyError) throw e;
      fail('fetch', `${rel}: ${e?.message ?? e}`);
    }
    if (bytes == null) fail('not-found', `${rel}: not found`);
    if (bytes.length > MAX_DOC) fail('too-large', `${rel}: ${bytes.length} bytes exceeds the limit of ${MAX_DOC}`);
    return bytes;
  };
  const head = await get('head');
  const claim = decodeHead(decodeEnvelope(head, 'head').body); // not trusted: says what to fetch
  const n = claim.rootVersion;
  if (n < 1n || n > MAX_ROOTS) fail('verify', `head: root version ${n} out of range`);
  const roots = Array.from({ length: Number(n) }, (_, i) => (!i && genesis) || get(`roots/${i + 1}.root`));
  const [keyset, snapshot, ...chain] = await Promise.all([get(`keysets/${claim.keysetVersion}.keyset`), get(`snapshots/${hex(claim.snapshot)}.snap`), ...roots]);
  return verifyMetadata(siteId, { roots: chain, keyset, snapshot, head });
}

const keyIn = (keys) => (id) => keys.some((k) => hex(k) === id);

/** §8.2–8.5 over raw envelopes {roots, keyset, snapshot, head} (e.g. a persisted State.raw) → State. */
export async function verifyMetadata(siteId, raw) {
  const site = (doc, what) => equalBytes(doc.site, siteId) || fail('wrong-publisher', `${what}: belongs to another publisher (mix-and-match)`);
  const roots = await verifyRoots(siteId, raw.roots);
  const root = roots[roots.length - 1];

  // §8.3
  const kenv = decodeEnvelope(raw.keyset, 'keyset');
  const keyset = decodeKeyset(kenv.body);
  const kwhat = `keyset version ${keyset.version}`;
  site(keyset, kwhat);
  if (keyset.rootVersion !== root.version) fail('verify', `${kwhat}: signed under root version ${keyset.rootVersion}, the newest is ${root.version}`);
  await requireSigners(kenv, root.threshold, keyIn(root.keys), kwhat);
  // §8.4, §8.5: an active key counts if not expired at the document's own time.
  const validAt = (time) => (id) => keyset.keys.some((k) => hex(k.key) === id && k.expires >= time);

  // §8.4
  const henv = decodeEnvelope(raw.head, 'head');
  const head = decodeHead(henv.body);
  site(head, 'head');
  if (head.keysetVersion !== keyset.version || head.rootVersion !== root.version) {
    fail('verify', `head: names keyset ${head.keysetVersion} and root ${head.rootVersion}, not ${keyset.version} and ${root.version}`);
  }
  await requireSigners(henv, keyset.threshold, validAt(head.issued), 'head');

  // §8.5: the id is checked before the body is decoded.
  const senv = decodeEnvelope(raw.snapshot, 'snapshot');
  const snapshotId = await sha256(senv.body);
  const swhat = `snapshot ${hex(snapshotId)}`;
  if (!equalBytes(snapshotId, head.snapshot)) fail('verify', `${swhat}: the head names snapshot ${hex(head.snapshot)}`);
  const snapshot = decodeSnapshot(senv.body);
  site(snapshot, swhat);
  if (snapshot.seq !== head.seq) fail('verify', `${swhat}: seq ${snapshot.seq}, the head says ${head.seq}`);
  if (snapshot.keysetVersion !== keyset.version) fail('verify', `${swhat}: signed under keyset ${snapshot.keysetVersion}, not ${keyset.version}`);
  const signers = await requireSigners(senv, keyset.threshold, validAt(snapshot.created), swhat);

  return { siteId, name: root.name, seq: snapshot.seq, snapshotId, head, snapshot, keyset, roots, signers, raw };
}

// §8.2: root 1 is the pinned one; root i ≥ 2 links to i−1 and is signed by both.
async function verifyRoots(siteId, envelopes) {
  if (!envelopes.length) fail('verify', 'root chain: no roots');
  const roots = [];
  let prevBody = null;
  for (const [i, bytes] of envelopes.entries()) {
    const what = `roots/${i + 1}.root`;
    const env = decodeEnvelope(bytes, 'root');
    const root = decodeRoot(env.body);
    if (root.version !== BigInt(i + 1)) fail('verify', `${what}: document says version ${root.version}`);
    if (!i) {
      if (!equalBytes(await sha256(env.body), siteId)) fail('wrong-publisher', `${what}: genesis root does not match the pinned publisher`);
    } else {
      if (!equalBytes(root.prev, await sha256(prevBody))) fail('verify', `${what}: does not link to the previous root`);
      if (!equalBytes(root.site, siteId)) fail('wrong-publisher', `${what}: belongs to another publisher`);
      await requireSigners(env, roots[i - 1].threshold, keyIn(roots[i - 1].keys), `${what} (signatures by the previous root)`);
    }
    await requireSigners(env, root.threshold, keyIn(root.keys), what);
    roots.push(root);
    prevBody = env.body;
  }
  return roots;
}

// §8.9 Moving to a newer state

const bodyOf = (bytes, role) => decodeEnvelope(bytes, role).body;

/** → 'same' | 'newer'; throws rollback, equivocation, wrong-publisher. */
export function checkAdvance(current, next) {
  const refuse = (kind, why) => fail(kind, kind === 'rollback' ? `rollback refused: ${why}` : why);
  if (!equalBytes(next.siteId, current.siteId)) refuse('wrong-publisher', 'snapshot: belongs to another publisher (mix-and-match)');
  const [nr, cr] = [next.raw.roots, current.raw.roots];
  if (nr.length < cr.length) refuse('rollback', `root version ${nr.length} is older than the accepted ${cr.length}`);
  cr.forEach((r, i) => equalBytes(bodyOf(nr[i], 'root'), bodyOf(r, 'root')) || refuse('equivocation', `roots/${i + 1}.root: differs from the accepted one (forked root history)`));
  const [nk, ck] = [next.keyset.version, current.keyset.version];
  if (nk < ck) refuse('rollback', `keyset version ${nk} is older than the accepted ${ck}`);
  if (nk === ck && !equalBytes(bodyOf(next.raw.keyset, 'keyset'), bodyOf(current.raw.keyset, 'keyset'))) {
    refuse('equivocation', `keyset: two different keysets with version ${nk}`);
  }
  const floor = recoveryFloor(current, next);
  const [n, c] = [next.seq, current.seq];
  if (n === c && floor === c) {
    if (!equalBytes(next.snapshotId, current.snapshotId)) {
      refuse('equivocation', `snapshot: two different snapshots with seq ${n}: ${hex(current.snapshotId)} and ${hex(next.snapshotId)}`);
    }
    return 'same';
  }
  if (n <= floor) refuse('rollback', `snapshot seq ${n} is not newer than the accepted seq ${c}`);
  return 'newer';
}

// §8.9 step 6: the largest candidate s at which current's signers not revoked below s by
// next.keyset still meet its threshold; else the smallest candidate.
function recoveryFloor(current, next) {
  const c = current.seq;
  const bounds = current.signers.map((key) => next.keyset.revoked.find((r) => equalBytes(r.key, key))?.maxSeq ?? null); // null: ∞
  const candidates = [c, ...bounds.filter((b) => b !== null && b < c)].sort((a, b) => (a < b) - (a > b));
  const meets = (s) => BigInt(bounds.filter((b) => b === null || b >= s).length) >= next.keyset.threshold;
  return candidates.find(meets) ?? candidates[candidates.length - 1];
}

// §8.8 Freshness

const when = (t) => (t <= 8640000000000n ? new Date(Number(t) * 1000).toISOString().replace('.000', '') : String(t));

/** Never fatal. `now`: Unix seconds (number or BigInt) → {stale, reasons, age (seconds, number)}. */
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

// Paths and listings

/**
 * "新闻/今日.html" → its file entry, a directory's entry (kind "dir"), or null. getTree(hash,
 * len) → verified entries (the caller uses verifyTree and caches). Unsafe paths (§6) throw not-found.
 */
export async function resolvePath(state, sitePath, getTree) {
  const names = splitPath(String(sitePath));
  let entries = await getTree(state.snapshot.root.hash, state.snapshot.root.len);
  for (const [i, name] of names.entries()) {
    const entry = entries.find((e) => e.name === name);
    const last = i === names.length - 1;
    if (!entry || (entry.kind === 'file' && !last)) return null;
    if (last) return entry;
    entries = await getTree(entry.tree, entry.treeLen);
  }
}

/** §8.6: every file [{path, address, size, media}]; checks depth, visits, one size per address, totals. */
export async function listFiles(state, getTree) {
  const snap = state.snapshot;
  const bad = (why) => fail('verify', `snapshot ${hex(state.snapshotId)}: ${why}`);
  const sizes = new Map();
  const files = [];
  let total = 0n;
  let visits = 0n;
  async function walk(hash, len, dir, depth) {
    if (depth >= MAX_DEPTH) bad(`${dir}: trees nested deeper than 64 levels`);
    if (++visits > snap.files + 65536n) bad('too many tree visits');
    for (const e of await getTree(hash, len)) {
      const path = dir ? `${dir}/${e.name}` : e.name;
      if (e.kind === 'dir') {
        await walk(e.tree, e.treeLen, path, depth + 1);
        continue;
      }
      const id = hex(e.address);
      if ((sizes.get(id) ?? e.size) !== e.size) bad(`${path}: one address with two sizes (§2.2)`);
      sizes.set(id, e.size);
      files.push({ path, address: e.address, size: e.size, media: e.media });
      total += e.size;
      if (files.length > snap.files) bad(`more files than the ${snap.files} declared`);
    }
  }
  await walk(snap.root.hash, snap.root.len, '', 0);
  if (BigInt(files.length) !== snap.files || total !== snap.bytes) {
    bad(`${files.length} files of ${total} bytes, the snapshot declares ${snap.files} files of ${snap.bytes} bytes`);
  }
  return files;
}
