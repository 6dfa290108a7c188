// Tests of web/verify.js over tests/vectors/ (see tests/vectors/README.md).
// Run from the repository root: node --test web/test/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as v from '../verify.js';
import * as ed from '../vendor/noble-ed25519.js';

const VECTORS = fileURLToPath(new URL('../../tests/vectors/', import.meta.url));
const read = (rel) => (existsSync(VECTORS + rel) ? new Uint8Array(readFileSync(VECTORS + rel)) : null);
const enc = new TextEncoder();
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const MIB = 1 << 20;

// expected.txt: `key = value` lines.
const expected = Object.fromEntries(
  readFileSync(VECTORS + 'expected.txt', 'utf8')
    .split('\n')
    .filter((line) => line.includes(' = '))
    .map((line) => [line.slice(0, line.indexOf(' = ')), line.slice(line.indexOf(' = ') + 3)]),
);
const SITE = v.fromHex(expected['site.id']);
const FP = expected['site.fingerprint'];

// publisher.pub (FORMAT §11.1): fingerprint line, base64 genesis root envelope.
const [pubHeader, pubGenesis] = readFileSync(VECTORS + 'publisher.pub', 'utf8').split('\n');
const PUB_FP = pubHeader.slice('samizdat-publisher-v1'.length).trim();
const GENESIS = new Uint8Array(Buffer.from(pubGenesis.trim(), 'base64'));

const treePath = (h) => `trees/${v.hex(h).slice(0, 2)}/${v.hex(h)}`;
const objectPath = (h) => `objects/${v.hex(h).slice(0, 2)}/${v.hex(h)}`;

// A repository on disk, with optional replaced files; `log` records what was fetched.
function repo(replace = {}, log = []) {
  return async (rel, maxBytes) => {
    log.push([rel, maxBytes]);
    if (rel in replace) return replace[rel];
    return read('repo/' + rel);
  };
}
const treeGetter = (fetchFile) => async (hash, len) => v.verifyTree(await fetchFile(treePath(hash), Number(len)), hash, len);

// Verifies a whole repository like `samizdat verify`: metadata, every tree, every object.
async function verifyRepository(fetchFile) {
  const state = await v.loadVerified(fetchFile, SITE);
  const files = await v.listFiles(state, treeGetter(fetchFile));
  for (const f of files) await v.verifyObject(await fetchFile(objectPath(f.address), Number(f.size)), f.address, f.size);
  return { state, files };
}

async function rejects(promiseOrFn, kind, pattern) {
  await assert.rejects(promiseOrFn, (e) => {
    assert.ok(e instanceof v.VerifyError, `not a VerifyError: ${e}`);
    assert.equal(e.kind, kind, e.message);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}
const throwsKind = (fn, kind, pattern) => rejects(async () => fn(), kind, pattern);

// A minimal canonical CBOR encoder, to build hand-made inputs (checked against the vectors below).
function cborItems(value) {
  const head = (major, n) => {
    n = BigInt(n);
    if (n < 24n) return [(major << 5) | Number(n)];
    const width = n < 256n ? 1 : n < 65536n ? 2 : n < 2n ** 32n ? 4 : 8;
    const out = [(major << 5) | (24 + Math.log2(width))];
    for (let i = width - 1; i >= 0; i--) out.push(Number((n >> BigInt(8 * i)) & 255n));
    return out;
  };
  if (value === null) return [0xf6];
  if (typeof value === 'bigint' || typeof value === 'number') return head(0, value);
  if (value instanceof Uint8Array) return [...head(2, value.length), ...value];
  if (typeof value === 'string') return cborItems(enc.encode(value)).map((b, i) => (i === 0 ? b + 0x20 : b));
  if (Array.isArray(value)) return [...head(4, value.length), ...value.flatMap(cborItems)];
  if (value instanceof Map) return [...head(5, value.size), ...[...value].flatMap(([k, x]) => [...cborItems(k), ...cborItems(x)])];
  throw new Error('cannot encode ' + value);
}
const cbor = (value) => Uint8Array.from(cborItems(value));
const cborMap = (values, keys = values.map((_, i) => i)) => {
  // A list of [key, value] pairs, so duplicate keys can be written too.
  const pairs = keys.map((k, i) => [...cborItems(k), ...cborItems(values[i])]);
  return Uint8Array.from([0xa0 + keys.length, ...pairs.flat()]); // fewer than 24 keys
};
const cat = (...parts) => Uint8Array.from(parts.flatMap((p) => [...p]));

// The states of seq 2 (the repository) and seq 1 (its real head, kept as a negative vector).
const state2 = await v.loadVerified(repo(), SITE);
const state1 = await v.loadVerified(repo({ head: read('negative/head-rollback') }), SITE);

// --- Bytes, fingerprints, hashes -------------------------------------------------

test('hex and fromHex round-trip and reject bad input', () => {
  const bytes = Uint8Array.from([0, 1, 0xab, 0xff]);
  assert.equal(v.hex(bytes), '0001abff');
  assert.deepEqual(v.fromHex('0001abff'), bytes);
  assert.deepEqual(v.fromHex('0001ABFF'), bytes);
  assert.deepEqual(v.fromHex(''), new Uint8Array(0));
  for (const bad of ['0', 'zz', '0x01', '01 ']) assert.throws(() => v.fromHex(bad), { kind: 'decode' });
});

test('fingerprint and site id match expected.txt and publisher.pub', async () => {
  assert.equal(v.fingerprint(SITE), FP);
  assert.equal(FP.length, 55);
  assert.equal(PUB_FP, FP);
  assert.deepEqual(v.parseFingerprint(FP), SITE);
  assert.deepEqual(v.parseFingerprint(`  ${FP.toUpperCase()}\n`), SITE);
  // The genesis root of publisher.pub hashes to the site id (FORMAT §11.1).
  assert.equal(v.hex(await v.sha256(GENESIS)), expected['root.1.envelope_sha256']);
  assert.deepEqual(await v.sha256(v.decodeEnvelope(GENESIS, 'root').body), SITE);
  assert.deepEqual(GENESIS, read('repo/roots/1.root'));
});

test('parseFingerprint rejects nonzero trailing bits, wrong length, prefix, alphabet', () => {
  assert.equal(FP.at(-1), 'a'); // 'a' = 0: the 4 trailing bits are zero
  // The last character holds the last bit of the id, then 4 zero bits: 'q' = 10000 is the
  // id with its last bit set; 'b' = 00001 has a nonzero trailing bit.
  const lastBit = SITE.slice();
  lastBit[31] ^= 1;
  assert.deepEqual(v.parseFingerprint(FP.slice(0, -1) + 'q'), lastBit);
  for (const bad of [FP.slice(0, -1) + 'b', FP.slice(0, -1) + 'r', FP.slice(0, -1) + '7', FP.slice(0, -1), FP + 'a', 'sz2' + FP.slice(3), FP.slice(3), FP.slice(0, -2) + '1a', '']) {
    assert.throws(() => v.parseFingerprint(bad), { kind: 'decode' }, bad);
  }
  // Every site id round-trips, including all-zero and all-one bytes.
  for (const id of [new Uint8Array(32), new Uint8Array(32).fill(255), Uint8Array.from({ length: 32 }, (_, i) => i * 7)]) {
    assert.deepEqual(v.parseFingerprint(v.fingerprint(id)), id);
  }
});

test('sha256 and the Merkle values of big.bin (FORMAT §2.1)', async () => {
  const big = Uint8Array.from({ length: 40000 }, (_, i) => i % 251);
  assert.equal(v.hex(await v.sha256(big)), expected['merkle.big.plain_sha256']);
  const leaves = [0, 1, 2].map((i) => big.subarray(i * 16384, (i + 1) * 16384));
  for (const [i, leaf] of leaves.entries()) assert.equal(v.hex(await v.sha256(leaf)), expected[`merkle.big.leaf.${i}`]);
  assert.equal(expected['merkle.big.leaf.3'], '00'.repeat(32));
  assert.equal(v.hex(await v.objectAddress(big)), expected['merkle.big.root']);
  assert.equal(v.hex(await v.objectAddress(big.subarray(0, 32768))), expected['merkle.big.node.01']);
  assert.deepEqual(await v.objectAddress(big), await v.objectAddress(read('repo/' + objectPath(v.fromHex(expected['merkle.big.root'])))));
  // The empty object, a one-block object, and the boundary at 16384 + 1 bytes.
  assert.equal(v.hex(await v.objectAddress(new Uint8Array(0))), expected['object.empty']);
  const block = big.subarray(0, 16384);
  assert.deepEqual(await v.objectAddress(block), await v.sha256(block));
  const two = big.subarray(0, 16385);
  const pair = cat(await v.sha256(two.subarray(0, 16384)), await v.sha256(two.subarray(16384)));
  assert.deepEqual(await v.objectAddress(two), await v.sha256(pair));
  // Five blocks pad to eight leaves.
  const five = new Uint8Array(16384 * 4 + 1);
  const zero = new Uint8Array(32);
  const l = await Promise.all([0, 1, 2, 3, 4].map((i) => v.sha256(five.subarray(i * 16384, (i + 1) * 16384))));
  const h = async (a, b) => v.sha256(cat(a, b));
  const root = await h(await h(await h(l[0], l[1]), await h(l[2], l[3])), await h(await h(l[4], zero), await h(zero, zero)));
  assert.deepEqual(await v.objectAddress(five), root);
});

test('the Merkle collision of FORMAT §2.2: verifyObject checks the size', async () => {
  const big = Uint8Array.from({ length: 40000 }, (_, i) => i % 251);
  const first = big.subarray(0, 32768);
  const colliding = cat(v.fromHex(expected['merkle.big.leaf.0']), v.fromHex(expected['merkle.big.leaf.1']));
  assert.equal(colliding.length, 64);
  const address = v.fromHex(expected['merkle.collision.first_32768_bytes_of_big']);
  assert.deepEqual(await v.objectAddress(colliding), address);
  assert.equal(expected['merkle.collision.leaf0_leaf1_64_bytes'], v.hex(address));
  await v.verifyObject(first, address, 32768n);
  await rejects(v.verifyObject(colliding, address, 32768n), 'verify', /truncated/);
  await rejects(v.verifyObject(first, address, 64n), 'verify', /larger/);
});

test('every object address and tree id in expected.txt', async () => {
  let objects = 0;
  let trees = 0;
  for (const [key, value] of Object.entries(expected)) {
    if (/^state\.\d\.file\./.test(key)) {
      const [address, size] = value.split(' ');
      const bytes = read('repo/' + objectPath(v.fromHex(address)));
      assert.equal(bytes.length, Number(size), key);
      assert.equal(v.hex(await v.objectAddress(bytes)), address, key);
      await v.verifyObject(bytes, v.fromHex(address), BigInt(size));
      objects++;
    } else if (/^state\.\d\.tree\./.test(key)) {
      const [id, len] = value.split(' ');
      const bytes = read('repo/' + treePath(v.fromHex(id)));
      assert.equal(v.hex(await v.sha256(bytes)), id, key);
      const entries = await v.verifyTree(bytes, v.fromHex(id), BigInt(len));
      assert.ok(entries.length > 0, key);
      trees++;
    }
  }
  assert.equal(objects, 10);
  assert.equal(trees, 6);
});

test('documents/*.body.cbor decode, and the test encoder reproduces them', async () => {
  const head = v.decodeHead(read('documents/head-2.body.cbor'));
  assert.equal(head.seq, 2n);
  assert.equal(head.issued, 1700086400n);
  assert.equal(v.hex(head.snapshot), expected['state.2.snapshot.id']);
  const fields = [1, head.site, head.seq, head.snapshot, head.issued, head.expires, head.keysetVersion, head.rootVersion];
  assert.deepEqual(cborMap(fields), read('documents/head-2.body.cbor'));
  const root = v.decodeRoot(read('documents/root-1.body.cbor'));
  assert.equal(root.name, 'Samizdat test vectors');
  assert.equal(root.version, 1n);
  assert.equal(root.threshold, 1n);
  assert.equal(root.prev, null);
  assert.deepEqual(root.keys, [v.fromHex(expected['key.root.public'])]);
  const keyset = v.decodeKeyset(read('documents/keyset-1.body.cbor'));
  assert.equal(v.hex(await v.sha256(read('documents/keyset-1.body.cbor'))), expected['keyset.1.body_sha256']);
  assert.deepEqual(keyset.keys.map((k) => v.hex(k.key)), [expected['key.signing.public']]);
  assert.equal(keyset.keys[0].expires, 1700000000n + 3650n * 86400n);
  assert.deepEqual(keyset.revoked, [{ key: v.fromHex(expected['key.old_signing.public']), maxSeq: 0n }]);
  const snap = v.decodeSnapshot(read('documents/snapshot-2.body.cbor'));
  assert.equal(v.hex(await v.sha256(read('documents/snapshot-2.body.cbor'))), expected['state.2.snapshot.id']);
  assert.equal(snap.seq, 2n);
  assert.equal(snap.files, 5n);
  assert.equal(snap.bytes, 40267n);
  assert.equal(v.hex(snap.prev), expected['state.1.snapshot.id']);
  assert.deepEqual(snap.mirrors, ['https://mirror.example/site/']);
  assert.equal(v.hex(snap.root.hash), expected['state.2.tree./'].split(' ')[0]);
  assert.equal(snap.root.len, 206n);
  const tree = v.decodeTree(read('repo/' + treePath(snap.root.hash)));
  assert.deepEqual(tree.map((e) => [e.name, e.kind]), [['data', 'dir'], ['empty.txt', 'file'], ['index.html', 'file'], ['新闻', 'dir']]);
  assert.equal(tree[0].treeLen, 74n);
  assert.equal(tree[2].media, 'text/html');
  assert.equal(tree[2].size, 88n);
});

// --- Verification ---------------------------------------------------------------

test('loadVerified over tests/vectors/repo (seq 2)', async () => {
  const log = [];
  const state = await v.loadVerified(repo({}, log), v.parseFingerprint(PUB_FP));
  assert.equal(state.seq, 2n);
  assert.equal(state.name, 'Samizdat test vectors');
  assert.deepEqual(state.siteId, SITE);
  assert.equal(v.hex(state.snapshotId), expected['state.2.snapshot.id']);
  assert.equal(v.hex(await v.sha256(state.raw.head)), expected['state.2.head.envelope_sha256']);
  assert.deepEqual(state.signers.map(v.hex), [expected['key.signing.public']]);
  assert.equal(state.roots.length, 1);
  assert.equal(state.keyset.version, 1n);
  assert.equal(state.head.seq, 2n);
  assert.equal(state.snapshot.expires, 1700086400n + 30n * 86400n);
  assert.deepEqual(log.map(([rel]) => rel).sort(), ['head', 'keysets/1.keyset', 'roots/1.root', `snapshots/${expected['state.2.snapshot.id']}.snap`]);
  assert.ok(log.every(([, max]) => max === MIB));
  // With the genesis root of publisher.pub, roots/1.root is not fetched.
  const log2 = [];
  const again = await v.loadVerified(repo({}, log2), SITE, { genesis: GENESIS });
  assert.deepEqual(again.snapshotId, state.snapshotId);
  assert.ok(!log2.some(([rel]) => rel === 'roots/1.root'));
  // The raw bytes re-verify without fetching (what a worker does with persisted state).
  const re = await v.verifyMetadata(SITE, state.raw);
  assert.deepEqual(re.snapshotId, state.snapshotId);
});

test('loadVerified: wrong publisher, missing file, fetch failure, oversized file', async () => {
  await rejects(v.loadVerified(repo(), await v.sha256(enc.encode('another site'))), 'wrong-publisher', /roots\/1\.root/);
  const otherGenesis = await v.loadVerified(repo(), SITE, { genesis: read('repo/keysets/1.keyset') }).catch((e) => e);
  assert.equal(otherGenesis.kind, 'decode'); // a keyset is not a root envelope
  await rejects(v.loadVerified(repo({ 'keysets/1.keyset': null }), SITE), 'not-found', /keysets\/1\.keyset/);
  await rejects(v.loadVerified(repo({ head: null }), SITE), 'not-found', /head/);
  const failing = async (rel) => {
    if (rel.startsWith('snapshots/')) throw new TypeError('Failed to fetch');
    return read('repo/' + rel);
  };
  await rejects(v.loadVerified(failing, SITE), 'fetch', /snapshots\/.*Failed to fetch/);
  await rejects(v.loadVerified(repo({ 'roots/1.root': new Uint8Array(MIB + 1) }), SITE), 'too-large', /roots\/1\.root/);
  // Documents swapped between roles are refused by role.
  await rejects(v.loadVerified(repo({ 'keysets/1.keyset': read('repo/roots/1.root') }), SITE), 'decode', /root/);
});

test('resolvePath: files, directories, absent and unsafe paths', async () => {
  const getTree = treeGetter(repo());
  for (const path of ['新闻/今日.html', 'index.html', 'data/big.bin', '新闻/index.html', 'empty.txt']) {
    const entry = await v.resolvePath(state2, path, getTree);
    const [address, size, media] = expected[`state.2.file.${path}`].split(' ');
    assert.equal(entry.kind, 'file', path);
    assert.equal(entry.name, path.split('/').at(-1));
    assert.equal(v.hex(entry.address), address, path);
    assert.equal(entry.size, BigInt(size), path);
    assert.equal(entry.media, media, path);
    await v.verifyObject(read('repo/' + objectPath(entry.address)), entry.address, entry.size);
  }
  assert.equal((await v.resolvePath(state1, 'index.html', getTree)).address.join(), v.fromHex(expected['state.1.file.index.html'].split(' ')[0]).join());
  assert.equal((await v.resolvePath(state2, 'data', getTree)).kind, 'dir');
  assert.equal((await v.resolvePath(state2, '新闻', getTree)).kind, 'dir');
  for (const absent of ['missing.html', 'Index.html', 'data/nothing', 'index.html/more', 'data/big.bin/x', '新闻/明日.html']) {
    assert.equal(await v.resolvePath(state2, absent, getTree), null, absent);
  }
  const unsafe = ['../etc/passwd', '/index.html', 'a//b', '', 'data/', './index.html', 'a\\b', 'a\0b', 'a\nb', 'cafe\u0301.html', 'C:evil', 'x?.html', 'CON', 'nul.txt', 'com1.x', 'dot.', 'space ', 'a\u202eb', '\ufeffindex.html', Array(65).fill('a').join('/'), 'a'.repeat(256), 'a/'.repeat(2049) + 'a'];
  await rejects(v.resolvePath(state2, Array(17).fill('a'.repeat(255)).join('/'), getTree), 'not-found', /4096/);
  for (const bad of unsafe) await rejects(v.resolvePath(state2, bad, getTree), 'not-found', /unsafe path/);
  await rejects(v.resolvePath(state2, '/index.html', getTree), 'not-found', /absolute/);
  // Valid names that look odd are allowed (FORMAT §6).
  for (const ok of ['.well-known', 'a b.html', 'console.log', 'com10', 'café.html', Array(64).fill('a').join('/')]) {
    assert.equal(await v.resolvePath(state2, ok, getTree), null, ok);
  }
});

test('listFiles walks every tree of seq 2; every object verifies', async () => {
  const { state, files } = await verifyRepository(repo());
  assert.deepEqual(state.snapshotId, state2.snapshotId);
  const want = Object.entries(expected)
    .filter(([k]) => k.startsWith('state.2.file.'))
    .map(([k, val]) => [k.slice('state.2.file.'.length), ...val.split(' ')]);
  assert.deepEqual(files.map((f) => [f.path, v.hex(f.address), String(f.size), f.media]), want);
  const files1 = await v.listFiles(state1, treeGetter(repo()));
  assert.equal(v.hex(files1.find((f) => f.path === 'index.html').address), expected['state.1.file.index.html'].split(' ')[0]);
});

test('listFiles rejects wrong totals, one address with two sizes, and deep trees', async () => {
  const entries = await v.decodeTree(read('repo/' + treePath(state2.snapshot.root.hash)));
  const fake = (snapshot, getTree) => v.listFiles({ ...state2, snapshot: { ...state2.snapshot, ...snapshot } }, getTree);
  const getTree = treeGetter(repo());
  await rejects(fake({ files: 4n }, getTree), 'verify', /more files/);
  await rejects(fake({ files: 6n }, getTree), 'verify', /declares/);
  await rejects(fake({ bytes: 40266n }, getTree), 'verify', /declares/);
  // index.html's address listed again with another size.
  const index = entries.find((e) => e.name === 'index.html');
  const twoSizes = async () => [index, { ...index, name: 'j.html', size: 1n }];
  await rejects(fake({ files: 2n, bytes: 89n }, twoSizes), 'verify', /two sizes/);
  const sameSize = async () => [index, { ...index, name: 'j.html' }];
  assert.equal((await fake({ files: 2n, bytes: 176n }, sameSize)).length, 2);
  // A directory that contains itself: depth 64 is refused.
  const loop = async () => [{ name: 'd', kind: 'dir', tree: state2.snapshot.root.hash, treeLen: 1n }];
  await rejects(fake({ files: 0n, bytes: 0n }, loop), 'verify', /deeper than 64/);
  // One empty directory named 65536 times: visits are capped at files + 65536.
  const empty = new Uint8Array(32);
  const wide = (n) => async (hash) =>
    hash === empty ? [] : Array.from({ length: n }, (_, i) => ({ name: `d${i}`, kind: 'dir', tree: empty, treeLen: 1n }));
  await rejects(fake({ files: 0n, bytes: 0n }, wide(65536)), 'verify', /too many tree visits/);
  assert.deepEqual(await fake({ files: 0n, bytes: 0n }, wide(65535)), []);
});

// Each negative vector, per the table of tests/vectors/README.md.
const NEGATIVE = {
  'object-tampered': ['verify', /tampered/],
  'object-too-long': ['verify', /larger than the size/],
  'object-truncated': ['verify', /truncated/],
  'tree-tampered': ['verify', /does not match its hash/],
  'head-bad-signature': ['verify', /head: 0 valid signature/],
  'head-trailing-byte': ['decode', /1 trailing byte/],
  'head-noncanonical-int': ['decode', /not in canonical encoding/],
  'head-wrong-role': ['decode', /holds a snapshot document, expected head/],
  'head-rollback': ['rollback', /seq 1 is not newer than the accepted seq 2/],
};

test('the table covers every negative vector', () => {
  assert.deepEqual(Object.keys(NEGATIVE).sort(), readdirSync(VECTORS + 'negative').sort());
  assert.deepEqual(Object.keys(NEGATIVE).sort(), Object.keys(expected).filter((k) => k.startsWith('negative.')).map((k) => k.slice(9)).sort());
});

for (const [name, [kind, pattern]] of Object.entries(NEGATIVE)) {
  test(`negative/${name} is rejected (${kind})`, async () => {
    const replaces = expected[`negative.${name}`].split(' ')[1];
    const bad = read('negative/' + name);
    assert.ok(read('repo/' + replaces), replaces);
    const run = async () => {
      const { state } = await verifyRepository(repo({ [replaces]: bad }));
      if (name === 'head-rollback') {
        // Verifies alone, at seq 1 ...
        assert.equal(state.seq, 1n);
        assert.equal(v.hex(state.snapshotId), expected['state.1.snapshot.id']);
      }
      return v.checkAdvance(state2, state); // ... but not after seq 2.
    };
    await rejects(run, kind, pattern);
  });
}

test('checkAdvance: same, newer, rollback between seq 1 and seq 2', () => {
  assert.equal(state1.seq, 1n);
  assert.equal(v.hex(state1.snapshotId), expected['state.1.snapshot.id']);
  assert.equal(v.checkAdvance(state1, state2), 'newer');
  assert.equal(v.checkAdvance(state2, state2), 'same');
  assert.equal(v.checkAdvance(state1, state1), 'same');
  assert.throws(() => v.checkAdvance(state2, state1), { kind: 'rollback' });
});

test('checkAdvance: mix-and-match, forked roots, keyset rollback and equivocation, snapshot equivocation', async () => {
  const other = { ...state2, siteId: new Uint8Array(32) };
  assert.throws(() => v.checkAdvance(state2, other), { kind: 'wrong-publisher' });
  const noRoots = { ...state2, raw: { ...state2.raw, roots: [] } };
  assert.throws(() => v.checkAdvance(state2, noRoots), { kind: 'rollback', message: /root version 0/ });
  // A root envelope with another body (signatures are not compared).
  const forkedRoot = cbor(['root', cat(v.decodeEnvelope(GENESIS, 'root').body, [0]), []]);
  const forked = { ...state2, raw: { ...state2.raw, roots: [forkedRoot] } };
  assert.throws(() => v.checkAdvance(state2, forked), { kind: 'equivocation', message: /forked/ });
  const resigned = cbor(['root', v.decodeEnvelope(GENESIS, 'root').body, []]);
  assert.equal(v.checkAdvance(state2, { ...state2, raw: { ...state2.raw, roots: [resigned] } }), 'same');
  const olderKeyset = { ...state2, keyset: { ...state2.keyset, version: 0n } };
  assert.throws(() => v.checkAdvance(state2, olderKeyset), { kind: 'rollback', message: /keyset/ });
  const kbody = v.decodeEnvelope(state2.raw.keyset, 'keyset').body;
  const otherKeyset = { ...state2, raw: { ...state2.raw, keyset: cbor(['keyset', cat(kbody, [0]), []]) } };
  assert.throws(() => v.checkAdvance(state2, otherKeyset), { kind: 'equivocation', message: /keyset/ });
  const twin = { ...state2, snapshotId: new Uint8Array(32) };
  assert.throws(() => v.checkAdvance(state2, twin), { kind: 'equivocation', message: /two different snapshots with seq 2/ });
});

test('checkAdvance: the recovery floor of FORMAT §8.9 step 6', () => {
  const [k1] = state2.signers;
  const k2 = new Uint8Array(32).fill(7);
  // A reader holding a forged seq 10 signed by k1 (and possibly k2).
  const current = (signers) => ({ ...state2, seq: 10n, snapshotId: new Uint8Array(32).fill(1), signers });
  const next = (seq, revoked, threshold = 1n) => ({ ...state2, seq, keyset: { ...state2.keyset, version: 2n, threshold, revoked } });
  const rev = (key, maxSeq) => ({ key, maxSeq });
  // One signer, revoked with max_seq 3: the floor drops to 3.
  assert.equal(v.checkAdvance(current([k1]), next(4n, [rev(k1, 3n)])), 'newer');
  assert.throws(() => v.checkAdvance(current([k1]), next(3n, [rev(k1, 3n)])), { kind: 'rollback' });
  // Not revoked (or revoked at or above the current seq): the floor stays at 10.
  assert.throws(() => v.checkAdvance(current([k1]), next(4n, [])), { kind: 'rollback' });
  assert.throws(() => v.checkAdvance(current([k1]), next(9n, [rev(k1, 10n)])), { kind: 'rollback' });
  assert.equal(v.checkAdvance(current([k1]), next(11n, [])), 'newer');
  // Two signers, threshold 1: revoking one leaves the other; the floor stays at 10.
  assert.throws(() => v.checkAdvance(current([k1, k2]), next(4n, [rev(k1, 3n)])), { kind: 'rollback' });
  // Threshold 2: the floor drops to the revocation bound.
  assert.equal(v.checkAdvance(current([k1, k2]), next(4n, [rev(k1, 3n)], 2n)), 'newer');
  // Both revoked, at 3 and 5, threshold 1: the largest candidate met is 5.
  assert.throws(() => v.checkAdvance(current([k1, k2]), next(5n, [rev(k1, 3n), rev(k2, 5n)])), { kind: 'rollback' });
  assert.equal(v.checkAdvance(current([k1, k2]), next(6n, [rev(k1, 3n), rev(k2, 5n)])), 'newer');
  // Threshold 2, both revoked: only s ≤ 3 has two signers; floor 3.
  assert.equal(v.checkAdvance(current([k1, k2]), next(4n, [rev(k1, 3n), rev(k2, 5n)], 2n)), 'newer');
  assert.throws(() => v.checkAdvance(current([k1, k2]), next(3n, [rev(k1, 3n), rev(k2, 5n)], 2n)), { kind: 'rollback' });
  // Threshold above the signers: no candidate qualifies, the smallest is the floor.
  assert.equal(v.checkAdvance(current([k1]), next(4n, [rev(k1, 3n)], 3n)), 'newer');
  // floor = current.seq = next.seq with another snapshot: equivocation, not rollback.
  assert.throws(() => v.checkAdvance(current([k1]), next(10n, [])), { kind: 'equivocation' });
});

test('freshness (FORMAT §8.8)', () => {
  const { head, snapshot, keyset } = state2;
  const fresh = v.freshness(state2, Number(head.issued));
  assert.deepEqual(fresh, { stale: false, reasons: [], age: Number(head.issued - snapshot.created) });
  assert.equal(v.freshness(state2, head.expires).stale, false); // "now > expires"
  const a = v.freshness(state2, head.expires + 1n);
  assert.deepEqual(a.reasons, ['head expired at 2023-11-22T22:13:20Z']);
  assert.equal(a.stale, true);
  assert.equal(v.freshness(state2, Number(snapshot.expires) + 1).reasons.length, 2);
  const c = v.freshness(state2, keyset.keys[0].expires + 1n);
  assert.equal(c.reasons.length, 3);
  assert.match(c.reasons[2], /^signing key a64f17848e9a7500 expired at 2033-/);
  assert.equal(v.freshness(state2, 0).age, 0);
});

// --- Canonical CBOR, hand-made ----------------------------------------------------

const headFields = () => {
  const h = state2.head;
  return [1, h.site, h.seq, h.snapshot, h.issued, h.expires, h.keysetVersion, h.rootVersion];
};

test('CBOR: the decoder accepts the canonical forms it must', () => {
  assert.equal(v.decodeHead(cborMap(headFields())).seq, 2n);
  assert.deepEqual(v.decodeTree(Uint8Array.of(0x80)), []);
  const big = [1, state2.head.site, 2n ** 64n - 1n, state2.head.snapshot, 23, 24, 255, 256];
  const h = v.decodeHead(cborMap(big));
  assert.deepEqual([h.seq, h.issued, h.expires, h.keysetVersion, h.rootVersion], [2n ** 64n - 1n, 23n, 24n, 255n, 256n]);
  const file = ['a', 0, new Uint8Array(32), 65536, 'text/html'];
  assert.equal(v.decodeTree(cbor([file]))[0].size, 65536n);
  assert.equal(v.decodeTree(cbor([['b', 0, new Uint8Array(32), 2n ** 40n, '']]))[0].size, 2n ** 40n);
});

test('CBOR: non-shortest heads, indefinite lengths, tags, floats, negatives, trailing bytes', () => {
  const good = cbor([['a', 0, new Uint8Array(32), 5, 'text/html']]);
  assert.equal(v.decodeTree(good).length, 1);
  const bad = {
    'non-shortest array length': cat([0x98, 0x01], good.subarray(1)),
    'non-shortest int (18 05)': cat(good.subarray(0, -11), [0x18, 0x05], good.subarray(-10)),
    'non-shortest int (19 00 05)': cat(good.subarray(0, -11), [0x19, 0x00, 0x05], good.subarray(-10)),
    'non-shortest text length': cat(good.subarray(0, 2), [0x78, 0x01], good.subarray(3)),
    'indefinite array': Uint8Array.of(0x9f, 0xff),
    'indefinite text': Uint8Array.of(0x81, 0x85, 0x7f, 0x61, 0x61, 0xff, 0x00, 0x58, 0x20, ...new Uint8Array(32), 0x05, 0x60),
    'reserved info 28': Uint8Array.of(0x9c),
    tag: cat([0xc0], good),
    'tag inside': cat(good.subarray(0, 2), [0xd8, 0x20], good.subarray(2)),
    'negative int': cat(good.subarray(0, -11), [0x24], good.subarray(-10)),
    'float': cat(good.subarray(0, -11), [0xf9, 0x45, 0x00], good.subarray(-10)),
    true: cat(good.subarray(0, -11), [0xf5], good.subarray(-10)),
    'undefined': Uint8Array.of(0xf7),
    'trailing byte': cat(good, [0x00]),
    'truncated': good.subarray(0, -1),
    'count larger than the input': Uint8Array.of(0x9a, 0xff, 0xff, 0xff, 0xff),
  };
  for (const [what, bytes] of Object.entries(bad)) assert.throws(() => v.decodeTree(bytes), { kind: 'decode' }, what);
  assert.throws(() => v.decodeTree(cat(good, [0x00])), { message: /trailing/ });
  assert.throws(() => v.decodeTree(Uint8Array.of(0x98, 0x00)), { message: /canonical/ });
  assert.throws(() => v.decodeTree(Uint8Array.of(0x9f, 0xff)), { message: /indefinite/ });
  // Nesting is bounded (a 16 MiB tree of 0x81 bytes must not exhaust the stack).
  assert.throws(() => v.decodeTree(new Uint8Array(MIB).fill(0x81)), { kind: 'decode', message: /nested too deeply/ });
  for (const what of ['tag', 'tag inside', 'negative int', 'float', 'true', 'undefined']) {
    assert.throws(() => v.decodeTree(bad[what]), { message: /not allowed/ }, what);
  }
  // 64-bit heads: non-shortest for a value below 2^32.
  const seq8 = cborMap(headFields());
  const at = 39; // a8, 00 01, 01 58 20 <32 bytes>, then key 02 and the seq value 02
  assert.deepEqual([...seq8.subarray(at - 1, at + 1)], [0x02, 0x02]);
  assert.throws(() => v.decodeHead(cat(seq8.subarray(0, at), [0x1b, 0, 0, 0, 0, 0, 0, 0, 2], seq8.subarray(at + 1))), { kind: 'decode', message: /canonical/ });
  assert.equal(v.decodeHead(cat(seq8.subarray(0, at), [0x1b, 0, 0, 0, 1, 0, 0, 0, 0], seq8.subarray(at + 1))).seq, 2n ** 32n);
});

test('CBOR: map keys must be 0..n-1, each once, ascending; format version first', () => {
  const f = headFields();
  assert.equal(v.decodeHead(cborMap(f)).seq, 2n);
  const cases = {
    unsorted: cborMap(f, [0, 1, 2, 3, 4, 5, 7, 6]),
    duplicate: cborMap(f, [0, 1, 2, 3, 4, 5, 6, 6]),
    'skipped key': cborMap(f, [0, 1, 2, 3, 4, 5, 6, 8]),
    missing: cborMap(f.slice(0, 7)),
    extra: cborMap([...f, 0]),
    'text key': cborMap(f, [0, 1, 2, 3, 4, 5, 6, '7']),
    'not a map': cbor(f),
    'null where a hash is required': cborMap([1, null, ...f.slice(2)]),
    'hash of 31 bytes': cborMap([1, f[1].subarray(1), ...f.slice(2)]),
    'text where a uint is required': cborMap([1, f[1], '2', ...f.slice(3)]),
  };
  for (const [what, bytes] of Object.entries(cases)) assert.throws(() => v.decodeHead(bytes), { kind: 'decode' }, what);
  // An unknown version is reported as such, even with another number of entries.
  assert.throws(() => v.decodeHead(cborMap([2, 0])), { kind: 'decode', message: /format version 2 is not supported/ });
  assert.throws(() => v.decodeRoot(cborMap([3, ...f.slice(1)])), { message: /format version 3/ });
});

test('CBOR: envelopes (§4.1) and size limits (§7)', () => {
  const body = cborMap(headFields());
  const sig = [1, new Uint8Array(32), new Uint8Array(64)];
  assert.equal(v.decodeEnvelope(cbor(['head', body, [sig]]), 'head').signatures.length, 1);
  assert.equal(v.decodeEnvelope(cbor(['head', body, Array(32).fill(sig)]), 'head').signatures.length, 32);
  const bad = {
    '33 signatures': cbor(['head', body, Array(33).fill(sig)]),
    'unknown alg': cbor(['head', body, [[2, sig[1], sig[2]]]]),
    'short signature': cbor(['head', body, [[1, sig[1], new Uint8Array(63)]]]),
    'signature entry of 2': cbor(['head', body, [[1, sig[1]]]]),
    'envelope of 4': cbor(['head', body, [], 0]),
    'unknown role': cbor(['tail', body, []]),
    'long role': cbor(['head'.repeat(5), body, []]),
    'body as text': cbor(['head', 'x', []]),
    'wrong role': cbor(['snapshot', body, []]),
  };
  for (const [what, bytes] of Object.entries(bad)) assert.throws(() => v.decodeEnvelope(bytes, 'head'), { kind: 'decode' }, what);
  assert.throws(() => v.decodeEnvelope(new Uint8Array(MIB + 1), 'head'), { kind: 'too-large' });
  assert.throws(() => v.decodeHead(new Uint8Array(MIB + 1)), { kind: 'too-large' });
  assert.throws(() => v.decodeTree(new Uint8Array(16 * MIB + 1)), { kind: 'too-large' });
  // Just at the limit the decoder runs (and fails on content, not size).
  assert.throws(() => v.decodeEnvelope(new Uint8Array(MIB), 'head'), { kind: 'decode' });
});

test('CBOR: invalid UTF-8 and the tree and name rules (§5.5, §6)', () => {
  const entry = (name, media = 'text/html') => ['x', 0, new Uint8Array(32), 1, media].map((x, i) => (i === 0 ? name : x));
  const tree = (...names) => cbor(names.map((n) => entry(n)));
  assert.deepEqual(v.decodeTree(tree('A', 'B', 'a.html', 'é', '新闻')).map((e) => e.name), ['A', 'B', 'a.html', 'é', '新闻']);
  const utf8Bad = (bytes) => cat([0x81, 0x85, 0x60 + bytes.length], bytes, [0x00, 0x58, 0x20], new Uint8Array(32), [0x01, 0x60]);
  assert.equal(v.decodeTree(utf8Bad([0x61]))[0].name, 'a');
  for (const bytes of [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe6, 0x96]]) {
    assert.throws(() => v.decodeTree(utf8Bad(bytes)), { kind: 'decode', message: /UTF-8/ }, bytes.join());
  }
  const bad = {
    unsorted: tree('b', 'a'),
    duplicate: tree('a', 'a'),
    'case collision': tree('Index.html', 'index.html'),
    'final sigma collision': tree('ΣΑΣ', 'σας'),
    'bytewise order, not UTF-16 order': tree('\u{10000}', '\uffff'),
    NFD: tree('cafe\u0301'),
    BOM: tree('\ufeffa'),
    'zero width': tree('a\u200bb'),
    slash: tree('a/b'),
    dotdot: tree('..'),
    empty: tree(''),
    'device name': tree('lpt9.txt'),
    colon: tree('a:b'),
    'C1 control': tree('a\u0085'),
    'name of 256 bytes': tree('é'.repeat(128)),
    'media not ASCII': cbor([entry('a', 'text/hétml')]),
    'media with newline': cbor([entry('a', 'text/html\n')]),
    'kind 0 with 4 items': cbor([['a', 0, new Uint8Array(32), 1]]),
    'kind 1 with 5 items': cbor([['a', 1, new Uint8Array(32), 1, 'x']]),
    'kind 2': cbor([['a', 2, new Uint8Array(32), 1]]),
    'subtree over 16 MiB': cbor([['a', 1, new Uint8Array(32), 16 * MIB + 1]]),
    'not a list': cbor(new Map([[0, 1]])),
  };
  assert.equal(v.decodeTree(tree('\uffff', '\u{10000}')).length, 2); // bytewise: EF BF BF < F0 90 80 80
  for (const [what, bytes] of Object.entries(bad)) assert.throws(() => v.decodeTree(bytes), { kind: 'decode' }, what);
  assert.equal(v.decodeTree(tree('é'.repeat(127) + 'a')).length, 1); // 255 bytes
  assert.equal(v.decodeTree(cbor([['a', 1, new Uint8Array(32), 16 * MIB]]))[0].treeLen, BigInt(16 * MIB));
});

test('verifyTree checks the exact length and the hash', async () => {
  const id = state2.snapshot.root.hash;
  const bytes = read('repo/' + treePath(id));
  assert.equal((await v.verifyTree(bytes, id, 206n)).length, 4);
  await rejects(v.verifyTree(bytes, id, 205n), 'verify', /signed length/);
  await rejects(v.verifyTree(cat(bytes, [0]), id, 207n), 'verify', /hash/);
  await rejects(v.verifyTree(read('negative/tree-tampered'), id, 206n), 'verify', /hash/);
});

// --- Ed25519, strict (§4.3) -------------------------------------------------------

const P = 2n ** 255n - 19n;
const le32 = (n) => Uint8Array.from({ length: 32 }, (_, i) => Number((n >> BigInt(8 * i)) & 255n));
const leNum = (b) => [...b].reduceRight((n, x) => (n << 8n) | BigInt(x), 0n);
const sha512 = async (b) => new Uint8Array(await crypto.subtle.digest('SHA-512', b));
const headEnv = v.decodeEnvelope(read('repo/head'), 'head');
const HEAD_MSG = cat(v.fromHex(expected['signing_prefix.head']), headEnv.body);
const SIGNING_KEY = headEnv.signatures[0].key;
const HEAD_SIG = headEnv.signatures[0].sig;
const secret = await ed.utils.getExtendedPublicKeyAsync(v.fromHex(expected['key.signing.seed']));
const IDENTITY = le32(1n); // the identity point, y = 1
// A point of order 8 (from the RFC 8032 torsion subgroup).
const T8 = v.fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a');

// A signature by the test signing key with nonce point R = rB + extra, S = r + k·a:
// valid under the cofactorless equation iff extra is the identity.
async function signWithR(message, extra) {
  const r = leNum(await sha512(cat(enc.encode('nonce'), message))) % L;
  const R = ed.Point.BASE.multiply(r).add(ed.Point.fromBytes(extra)).toBytes();
  const k = leNum(await sha512(cat(R, secret.pointBytes, message))) % L;
  return cat(R, le32((r + k * secret.scalar) % L));
}
// [S]B − [k]A encoded, as §4.3 rule 5 computes it.
async function equationHolds(key, sig, message) {
  const k = leNum(await sha512(cat(sig.subarray(0, 32), key, message))) % L;
  const S = leNum(sig.subarray(32));
  const A = ed.Point.fromBytes(key);
  const lhs = (S ? ed.Point.BASE.multiply(S) : ed.Point.ZERO).subtract(k ? A.multiply(k, false) : ed.Point.ZERO);
  return v.hex(lhs.toBytes()) === v.hex(sig.subarray(0, 32));
}

const webcryptoEd25519 = await crypto.subtle
  .importKey('raw', SIGNING_KEY, { name: 'Ed25519' }, false, ['verify'])
  .then(() => true, () => false);
const BACKENDS = webcryptoEd25519 ? ['webcrypto', 'noble'] : ['noble'];

test('node has WebCrypto Ed25519 and the automatic choice uses it', async () => {
  assert.ok(webcryptoEd25519, `node ${process.version} lacks WebCrypto Ed25519: only the noble path is tested`);
  v._setEd25519Backend(null);
  assert.equal(await v._ed25519Backend(), 'webcrypto');
  v._setEd25519Backend('noble');
  assert.equal(await v._ed25519Backend(), 'noble');
  v._setEd25519Backend(null);
});

for (const backend of BACKENDS) {
  test(`Ed25519 (${backend}): valid signatures and the signing prefixes`, async (t) => {
    v._setEd25519Backend(backend);
    t.after(() => v._setEd25519Backend(null));
    assert.equal(await v._ed25519Backend(), backend);
    assert.equal(await v.verifySignature(SIGNING_KEY, HEAD_SIG, HEAD_MSG), true);
    for (const role of ['root', 'keyset', 'snapshot']) {
      assert.equal(expected[`signing_prefix.${role}`], v.hex(enc.encode(`samizdat-v1/${role}\0`)));
      const other = cat(v.fromHex(expected[`signing_prefix.${role}`]), headEnv.body);
      assert.equal(await v.verifySignature(SIGNING_KEY, HEAD_SIG, other), false, role);
    }
    const flipped = HEAD_SIG.slice();
    flipped[63] ^= 1;
    assert.equal(await v.verifySignature(SIGNING_KEY, flipped, HEAD_MSG), false);
    assert.equal(await v.verifySignature(SIGNING_KEY, HEAD_SIG.subarray(0, 63), HEAD_MSG), false);
    assert.equal(await v.verifySignature(SIGNING_KEY.subarray(1), HEAD_SIG, HEAD_MSG), false);
    // A signature made here with the test key verifies too (the helper below is sound).
    const mine = await signWithR(HEAD_MSG, IDENTITY);
    assert.ok(await equationHolds(SIGNING_KEY, mine, HEAD_MSG));
    assert.equal(await v.verifySignature(SIGNING_KEY, mine, HEAD_MSG), true);
    // Whole-state verification with this backend.
    const state = await v.loadVerified(repo(), SITE);
    assert.deepEqual(state.snapshotId, state2.snapshotId);
    await rejects(v.loadVerified(repo({ head: read('negative/head-bad-signature') }), SITE), 'verify', /signature/);
  });

  test(`Ed25519 (${backend}): strict rules of §4.3`, async (t) => {
    v._setEd25519Backend(backend);
    t.after(() => v._setEd25519Backend(null));
    // Rule 3: S + L is the same scalar mod L, but not canonical.
    const S = leNum(HEAD_SIG.subarray(32));
    const highS = cat(HEAD_SIG.subarray(0, 32), le32(S + L));
    assert.equal(await v.verifySignature(SIGNING_KEY, highS, HEAD_MSG), false);
    assert.equal(await v.verifySignature(SIGNING_KEY, cat(HEAD_SIG.subarray(0, 32), le32(L)), HEAD_MSG), false);
    // Rule 2: the identity as public key; R = [s]B, S = s satisfies the equation for any message.
    const s = 12345n;
    const anyMessage = enc.encode('anything at all');
    const forged = cat(ed.Point.BASE.multiply(s).toBytes(), le32(s));
    assert.ok(await equationHolds(IDENTITY, forged, anyMessage));
    assert.equal(await v.verifySignature(IDENTITY, forged, anyMessage), false);
    // The same with a public key of order 8.
    assert.equal(await v.verifySignature(T8, forged, anyMessage), false);
    // Rule 4: R = identity with S = k·a also satisfies the equation: R is of small order.
    const k = leNum(await sha512(cat(IDENTITY, SIGNING_KEY, HEAD_MSG))) % L;
    const smallR = cat(IDENTITY, le32((k * secret.scalar) % L));
    assert.ok(await equationHolds(SIGNING_KEY, smallR, HEAD_MSG));
    assert.equal(await v.verifySignature(SIGNING_KEY, smallR, HEAD_MSG), false);
    // Rule 1: a key that is not a point, and a non-canonical y (y = p + 1 encodes the identity again).
    assert.equal(await v.verifySignature(le32(2n), HEAD_SIG, HEAD_MSG), false);
    assert.equal(await v.verifySignature(le32(P + 1n), forged, anyMessage), false);
    // Rule 5 is cofactorless: R + T (T of order 8) passes noble's cofactored check, not §4.3.
    const torsion = await signWithR(HEAD_MSG, T8);
    assert.equal(await ed.verifyAsync(torsion, HEAD_MSG, SIGNING_KEY, { zip215: false }), true);
    assert.equal(await equationHolds(SIGNING_KEY, torsion, HEAD_MSG), false);
    assert.equal(await v.verifySignature(SIGNING_KEY, torsion, HEAD_MSG), false);
  });
}

test('Ed25519: the WebCrypto and noble backends agree', { skip: !webcryptoEd25519 && 'no WebCrypto Ed25519' }, async (t) => {
  t.after(() => v._setEd25519Backend(null));
  const cases = [[SIGNING_KEY, HEAD_SIG, HEAD_MSG]];
  for (let i = 0; i < 64; i += 7) {
    const sig = HEAD_SIG.slice();
    sig[i] ^= 0x10;
    cases.push([SIGNING_KEY, sig, HEAD_MSG]);
  }
  for (const name of ['snapshots/' + expected['state.2.snapshot.id'] + '.snap', 'keysets/1.keyset', 'roots/1.root']) {
    const role = name.split('/')[0].replace(/s$/, '');
    const env = v.decodeEnvelope(read('repo/' + name), role);
    const message = cat(enc.encode(`samizdat-v1/${role}\0`), env.body);
    for (const { key, sig } of env.signatures) cases.push([key, sig, message], [key, sig, HEAD_MSG]);
  }
  cases.push([SIGNING_KEY, await signWithR(HEAD_MSG, T8), HEAD_MSG], [SIGNING_KEY, await signWithR(HEAD_MSG, IDENTITY), HEAD_MSG]);
  const results = {};
  for (const backend of ['webcrypto', 'noble']) {
    v._setEd25519Backend(backend);
    results[backend] = [];
    for (const [key, sig, message] of cases) results[backend].push(await v.verifySignature(key, sig, message));
  }
  assert.deepEqual(results.webcrypto, results.noble);
  // Both outcomes occur: 1 head + 3 documents valid, the rest not.
  assert.equal(results.noble.filter(Boolean).length, 5);
});

// --- Documents signed here with the public test seeds -----------------------------
//
// The vectors' seeds are public (tests/vectors/README.md), so the tests can sign new roots,
// keysets, snapshots and heads to reach the checks no committed vector reaches.

const SEED = {
  root: v.fromHex(expected['key.root.seed']),
  signing: v.fromHex(expected['key.signing.seed']),
  old: v.fromHex(expected['key.old_signing.seed']),
  root2: await v.sha256(enc.encode('web/test: second root key')),
  other: await v.sha256(enc.encode('web/test: second signing key')),
};
const PUB = Object.fromEntries(await Promise.all(Object.entries(SEED).map(async ([k, s]) => [k, await ed.getPublicKeyAsync(s)])));
const byBytes = (a, b) => v.hex(a.key ?? a).localeCompare(v.hex(b.key ?? b));

const rootBody = (r) => cborMap([1, r.name, r.version, r.threshold, r.keys, r.created, r.prev, r.site]);
const keysetBody = (k) =>
  cborMap([1, k.site, k.version, k.rootVersion, k.threshold, k.keys.map((e) => [e.key, e.expires]), k.revoked.map((e) => [e.key, e.maxSeq]), k.created]);
const snapshotBody = (s) =>
  cborMap([1, s.site, s.seq, s.created, s.expires, s.prev, [s.root.hash, s.root.len], s.keysetVersion, s.files, s.bytes, s.mirrors]);
const headBody = (h) => cborMap([1, h.site, h.seq, h.snapshot, h.issued, h.expires, h.keysetVersion, h.rootVersion]);

async function envelope(role, body, signers) {
  const message = cat(enc.encode(`samizdat-v1/${role}\0`), body);
  const sigs = [];
  for (const name of signers) sigs.push([1, PUB[name], await ed.signAsync(message, SEED[name])]);
  return cbor([role, body, sigs]);
}

// Repository files for the given documents (defaults: those of seq 2); the head names the snapshot.
async function publish({ roots = [], keyset = {}, snapshot = {}, head = {} } = {}) {
  const files = {};
  for (const [i, r] of roots.entries()) files[`roots/${i + 2}.root`] = await envelope('root', rootBody(r.doc), r.signers);
  const ks = { ...state2.keyset, ...keyset.doc };
  files[`keysets/${ks.version}.keyset`] = await envelope('keyset', keysetBody(ks), keyset.signers ?? ['root']);
  const sbody = snapshotBody({ ...state2.snapshot, ...snapshot.doc });
  const id = await v.sha256(sbody);
  files[`snapshots/${v.hex(id)}.snap`] = await envelope('snapshot', sbody, snapshot.signers ?? ['signing']);
  const h = { ...state2.head, snapshot: id, ...head.doc };
  files.head = await envelope('head', headBody(h), head.signers ?? ['signing']);
  return files;
}
const loadPublished = async (docs) => v.loadVerified(repo(await publish(docs)), SITE);

test('the test signer reproduces the committed documents byte for byte', async () => {
  assert.deepEqual(rootBody(v.decodeRoot(read('documents/root-1.body.cbor'))), read('documents/root-1.body.cbor'));
  assert.deepEqual(keysetBody(state2.keyset), read('documents/keyset-1.body.cbor'));
  assert.deepEqual(snapshotBody(state2.snapshot), read('documents/snapshot-2.body.cbor'));
  const files = await publish();
  assert.deepEqual(files.head, read('repo/head'));
  assert.deepEqual(files['keysets/1.keyset'], read('repo/keysets/1.keyset'));
  assert.deepEqual(files[`snapshots/${expected['state.2.snapshot.id']}.snap`], read(`repo/snapshots/${expected['state.2.snapshot.id']}.snap`));
  assert.deepEqual(await envelope('root', v.decodeEnvelope(GENESIS, 'root').body, ['root']), GENESIS);
});

test('§8.4, §8.5: a key counts only up to its expiry, at the document’s own time', async () => {
  const expires = state2.keyset.keys[0].expires;
  assert.equal((await loadPublished({ head: { doc: { issued: expires } } })).head.issued, expires);
  await rejects(loadPublished({ head: { doc: { issued: expires + 1n } } }), 'verify', /head: 0 valid signature/);
  const late = { doc: { created: expires + 1n, expires: expires + 2n } };
  await rejects(loadPublished({ snapshot: late }), 'verify', /snapshot [0-9a-f]+: 0 valid signature/);
  assert.equal((await loadPublished({ snapshot: { doc: { created: expires } } })).snapshot.created, expires);
});

test('§4.4: thresholds count distinct allowed keys; others are ignored', async () => {
  const keys = [
    { key: PUB.signing, expires: 2n ** 40n },
    { key: PUB.other, expires: 2n ** 40n },
  ].sort(byBytes);
  const keyset = { doc: { threshold: 2n, keys } };
  const both = await loadPublished({ keyset, snapshot: { signers: ['signing', 'other'] }, head: { signers: ['other', 'signing'] } });
  assert.deepEqual(both.signers.map(v.hex).sort(), [PUB.signing, PUB.other].map(v.hex).sort());
  // One key twice is one signature.
  await rejects(loadPublished({ keyset, snapshot: { signers: ['signing', 'signing'] }, head: { signers: ['other', 'signing'] } }), 'verify', /1 valid signature\(s\), threshold 2/);
  // Signatures by unknown and revoked keys neither count nor fail.
  const one = await loadPublished({ snapshot: { signers: ['old', 'root', 'signing'] }, head: { signers: ['other', 'signing'] } });
  assert.deepEqual(one.signers.map(v.hex), [expected['key.signing.public']]);
  await rejects(loadPublished({ head: { signers: ['old'] } }), 'verify', /head: 0 valid/);
  // A keyset signed by a signing key instead of the root.
  await rejects(loadPublished({ keyset: { signers: ['signing'] } }), 'verify', /keyset version 1: 0 valid/);
});

test('§8.3–8.5: cross-document checks', async () => {
  await rejects(loadPublished({ keyset: { doc: { site: new Uint8Array(32) } } }), 'wrong-publisher', /keyset/);
  await rejects(loadPublished({ head: { doc: { site: new Uint8Array(32) } } }), 'wrong-publisher', /head/);
  await rejects(loadPublished({ snapshot: { doc: { site: new Uint8Array(32) } } }), 'wrong-publisher', /snapshot/);
  await rejects(loadPublished({ snapshot: { doc: { seq: 3n } } }), 'verify', /seq 3, the head says 2/);
  await rejects(loadPublished({ keyset: { doc: { rootVersion: 2n } } }), 'verify', /signed under root version 2/);
  // Snapshot signed under keyset 2 while keyset 1 is served as the head's.
  await rejects(loadPublished({ snapshot: { doc: { keysetVersion: 2n } } }), 'verify', /signed under keyset 2/);
  await rejects(loadPublished({ head: { doc: { rootVersion: 0n } } }), 'verify', /root version 0 out of range/);
  await rejects(loadPublished({ head: { doc: { rootVersion: 1001n } } }), 'verify', /root version 1001 out of range/);
  // The head names one snapshot, the file under that name holds another.
  const files = await publish();
  const sname = `snapshots/${expected['state.2.snapshot.id']}.snap`;
  const seq1 = read(`repo/snapshots/${expected['state.1.snapshot.id']}.snap`);
  await rejects(v.loadVerified(repo({ ...files, [sname]: seq1 }), SITE), 'verify', /the head names snapshot/);
});

test('§8.2: a root chain of two versions, and its failures', async () => {
  const r1 = v.decodeRoot(read('documents/root-1.body.cbor'));
  const r2 = { ...r1, version: 2n, keys: [PUB.root2], prev: await v.sha256(rootBody(r1)), site: SITE };
  const docs = (root, signers, extra = {}) => ({
    roots: [{ doc: root, signers }],
    keyset: { doc: { version: 2n, rootVersion: 2n }, signers: ['root2'] },
    snapshot: { doc: { seq: 3n, keysetVersion: 2n } },
    head: { doc: { seq: 3n, keysetVersion: 2n, rootVersion: 2n } },
    ...extra,
  });
  const state3 = await loadPublished(docs(r2, ['root', 'root2']));
  assert.equal(state3.roots.length, 2);
  assert.equal(state3.seq, 3n);
  assert.equal(v.checkAdvance(state2, state3), 'newer');
  assert.throws(() => v.checkAdvance(state3, state2), { kind: 'rollback', message: /root version 1 is older/ });
  await rejects(loadPublished(docs(r2, ['root2'])), 'verify', /roots\/2\.root \(signatures by the previous root\)/);
  await rejects(loadPublished(docs(r2, ['root'])), 'verify', /roots\/2\.root: 0 valid/);
  await rejects(loadPublished(docs({ ...r2, prev: new Uint8Array(32) }, ['root', 'root2'])), 'verify', /does not link/);
  await rejects(loadPublished(docs({ ...r2, site: new Uint8Array(32) }, ['root', 'root2'])), 'wrong-publisher', /roots\/2/);
  await rejects(loadPublished(docs({ ...r2, version: 3n }, ['root', 'root2'])), 'verify', /says version 3/);
  // The keyset must be signed by the newest root.
  await rejects(loadPublished(docs(r2, ['root', 'root2'], { keyset: { doc: { version: 2n, rootVersion: 2n }, signers: ['root'] } })), 'verify', /keyset version 2: 0 valid/);
});

test('checkAdvance: same seq, lower floor after a revocation: newer, not equivocation', () => {
  const [k1] = state2.signers;
  const current = { ...state2, seq: 10n, snapshotId: new Uint8Array(32).fill(1) };
  const next = { ...state2, seq: 10n, keyset: { ...state2.keyset, version: 2n, revoked: [{ key: k1, maxSeq: 3n }] } };
  assert.equal(v.checkAdvance(current, next), 'newer');
});

test('decodeKeyset: a key both active and revoked; unsorted keys; threshold above the keys', () => {
  const k = state2.keyset;
  assert.equal(v.decodeKeyset(keysetBody(k)).version, 1n);
  const active = k.keys[0];
  const cases = {
    'active and revoked': { revoked: [{ key: active.key, maxSeq: 0n }] },
    'unsorted active keys': { keys: [{ key: new Uint8Array(32).fill(0xff), expires: 1n }, active] },
    'duplicate active key': { keys: [active, active] },
    'threshold 2 of 1': { threshold: 2n },
    'threshold 0': { threshold: 0n },
    'no keys': { keys: [], threshold: 0n },
    'version 0': { version: 0n },
  };
  for (const [what, change] of Object.entries(cases)) assert.throws(() => v.decodeKeyset(keysetBody({ ...k, ...change })), { kind: 'decode' }, what);
  const r1 = v.decodeRoot(read('documents/root-1.body.cbor'));
  for (const change of [{ prev: new Uint8Array(32) }, { version: 2n }, { version: 0n }, { version: 0n, prev: SITE, site: SITE }, { name: 'a\u0007b' }, { name: 'x'.repeat(1025) }, { keys: [] }]) {
    assert.throws(() => v.decodeRoot(rootBody({ ...r1, ...change })), { kind: 'decode' }, JSON.stringify(Object.keys(change)));
  }
  assert.equal(v.decodeRoot(rootBody({ ...r1, name: 'x'.repeat(1024) })).name.length, 1024);
  const s = state2.snapshot;
  for (const change of [{ mirrors: ['a\nb'] }, { mirrors: Array(257).fill('m') }, { seq: 0n }, { root: { hash: s.root.hash, len: BigInt(16 * MIB + 1) } }]) {
    assert.throws(() => v.decodeSnapshot(snapshotBody({ ...s, ...change })), { kind: 'decode' }, JSON.stringify(Object.keys(change)));
  }
  assert.equal(v.decodeSnapshot(snapshotBody({ ...s, mirrors: Array(256).fill('m') })).mirrors.length, 256);
});

test('the Ed25519 backend choice refuses a WebCrypto that is cofactored or missing', async (t) => {
  const subtle = globalThis.crypto.subtle;
  const { verify, importKey } = subtle;
  t.after(() => {
    delete subtle.verify;
    delete subtle.importKey;
    v._setEd25519Backend(null);
  });
  const choose = async () => {
    v._setEd25519Backend(null);
    return v._ed25519Backend();
  };
  assert.equal(await choose(), 'webcrypto');
  subtle.verify = async () => true; // accepts the torsion probe, as a cofactored check would
  assert.equal(await choose(), 'noble');
  subtle.verify = async () => false; // rejects a valid signature
  assert.equal(await choose(), 'noble');
  delete subtle.verify;
  subtle.importKey = async () => {
    throw new DOMException('Unrecognized name.', 'NotSupportedError');
  };
  assert.equal(await choose(), 'noble');
  // With Ed25519 missing, verification goes on through noble, even when WebCrypto is forced.
  assert.equal(await v.verifySignature(SIGNING_KEY, HEAD_SIG, HEAD_MSG), true);
  v._setEd25519Backend('webcrypto');
  assert.equal(await v.verifySignature(SIGNING_KEY, HEAD_SIG, HEAD_MSG), true);
  assert.equal(await v.verifySignature(SIGNING_KEY, await signWithR(HEAD_MSG, T8), HEAD_MSG), false);
  assert.equal(verify, subtle.verify);
  assert.equal(importKey, SubtleCrypto.prototype.importKey);
});
