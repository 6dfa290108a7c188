// web/search.js against tests/vectors/search (docs/FORMAT.md §15). Run: node --test web/test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as s from '../search.js';
import { objectAddress, hex } from '../verify.js';

const DIR = fileURLToPath(new URL('../../tests/vectors/search/', import.meta.url));
const expected = JSON.parse(readFileSync(DIR + 'expected.json', 'utf8'));
const file = (rel) => (existsSync(DIR + 'index/' + rel) ? new Uint8Array(readFileSync(DIR + 'index/' + rel)) : null);
const reads = [];
const readFile = async (rel) => (reads.push(rel), file(rel));
const fold = () => s.decodeFold(file('_samizdat/search/fold'));

test('the index files are the ones expected.json names', async () => {
  for (const [rel, h] of Object.entries(expected.files)) assert.equal(hex(await objectAddress(file(rel))), h, rel);
});

test('every token vector (§15.3)', () => {
  const f = fold();
  assert.ok(expected.tokens.length >= 10);
  for (const v of expected.tokens) assert.deepEqual(s.tokens(v.text, f), v.tokens, v.text);
});

test('tokens: Alphabetic marks, other numbers, separators, astral CJK, the 32-code-point cut', () => {
  const f = new Map([[0x81fa, 0x53f0]]);
  assert.deepEqual(s.tokens('naïve café', f), ['naïve', 'café']);
  assert.deepEqual(s.tokens('x²½ Ⅻ', f), ['x²½', 'ⅻ']); // No and Nl are word characters
  assert.deepEqual(s.tokens('a\u00a0b—c…d', f), ['a', 'b', 'c', 'd']);
  assert.deepEqual(s.tokens('𠀀𠀁 𠀂', f), ['𠀀𠀁', '𠀂']);
  assert.deepEqual(s.tokens('臺ａｂ臺', f), ['台', 'ab', '台']);
  assert.deepEqual(s.tokens('é'.repeat(40), f), ['é'.repeat(32)]);
  assert.deepEqual(s.tokens('cases eies aies shoes', f), ['case', 'eie', 'aie', 'shoe']); // eies: not rule 1, so rule 2
  assert.deepEqual(s.tokens('ies bus glass', f), ['ies', 'bus', 'glass']);
  assert.deepEqual(s.tokens('', f), []);
});

test('query tokens: repeats dropped, at most 32, the first 1024 bytes', () => {
  const f = fold();
  assert.deepEqual(s.queryTokens('lawyer LAWYERS lawyer', f), { tokens: ['lawyer'], cut: false });
  const many = Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ');
  const q = s.queryTokens(many, f);
  assert.equal(q.tokens.length, 32);
  assert.equal(q.cut, true);
  // 1024 bytes end inside a three-byte character: it is left out, not split.
  const long = 'a'.repeat(1022) + '人权';
  assert.deepEqual(s.queryTokens(long, f), { tokens: ['a'.repeat(32)], cut: true });
  assert.deepEqual(s.queryTokens('a'.repeat(1021) + '人', f), { tokens: ['a'.repeat(32), '人'], cut: false });
});

test('every query vector gives its tokens and ranked paths (§15.5)', async () => {
  assert.ok(expected.queries.length >= 8);
  for (const q of expected.queries) {
    const r = await s.search(q.query, readFile, { limit: 100 });
    assert.deepEqual([r.tokens, r.hits.map((h) => h.path)], [q.tokens, q.results], q.query);
    assert.equal(r.total, q.results.length, q.query);
    assert.equal(r.available, true);
  }
});

test('offset and limit page through the ranking; document shards only for the results shown', async () => {
  const all = await s.search('人权', readFile, { limit: 100 });
  assert.equal(all.total, 3);
  assert.ok(all.hits.every((h, i) => !i || all.hits[i - 1].titleMatches >= h.titleMatches));
  reads.length = 0;
  const second = await s.search('人权', readFile, { offset: 1, limit: 1 });
  assert.deepEqual(second.hits.map((h) => h.path), [all.hits[1].path]);
  assert.equal(second.total, 3);
  reads.length = 0;
  const none = await s.search('人权', readFile, { offset: 5 });
  assert.deepEqual(none.hits, []);
  assert.ok(!reads.some((r) => r.includes('/docs/')), `${reads}`);
});

test('an empty query reads only the manifest and fold; no index is "unavailable"', async () => {
  reads.length = 0;
  const r = await s.search('  , ', readFile);
  assert.deepEqual([r.tokens, r.total, r.hits], [[], 0, []]);
  assert.deepEqual(reads.sort(), ['_samizdat/search/fold', '_samizdat/search/index']);
  const none = await s.search('x', async () => null);
  assert.equal(none.available, false);
});

test('a missing index file is refused, naming it', async () => {
  const get = async (rel) => (rel.includes('/terms/') ? null : file(rel));
  await assert.rejects(s.search('court', get), (e) => e.kind === 'not-found' && /terms\/0/.test(e.message));
});

test('every negative vector is refused', async () => {
  const list = readFileSync(DIR + 'negative/list.txt', 'utf8').trim().split('\n');
  assert.ok(list.length >= 7);
  for (const line of list) {
    const [name, target] = line.split(/\s+/);
    const badBytes = new Uint8Array(readFileSync(DIR + 'negative/' + name));
    const get = async (rel) => (rel === target ? badBytes : file(rel));
    const attempt = async () => {
      s.decodeManifest(await get('_samizdat/search/index'));
      s.decodeFold(await get('_samizdat/search/fold'));
      for (const q of expected.queries) await s.search(q.query, get);
      if (target.includes('/terms/')) {
        // Lists no query asks for are decoded too, as verify.py does.
        const seg = s.decodeManifest(await get('_samizdat/search/index')).find((g) => target.includes(`/${g.name}/`));
        for (const t of s.decodeTerms(badBytes).values()) {
          s.riceDecode(t.docs, t.df, t.k, seg.docs);
          s.riceDecode(t.title, t.tdf, t.tk, seg.docs);
        }
      }
    };
    await assert.rejects(attempt, (e) => e.name === 'VerifyError' && e.kind === 'decode', name);
  }
});

test('Rice: round trip, and short, long, padded and out-of-range lists refused (§15.4)', () => {
  // 1, 5, 9 with k = 2: gaps 1, 3, 3 → 0 01 | 0 11 | 0 11 → 00101101 1 + padding
  const enc = Uint8Array.of(0b00101101, 0b10000000);
  assert.deepEqual(s.riceDecode(enc, 3, 2, 100), [1, 5, 9]);
  assert.throws(() => s.riceDecode(enc, 10, 2, 100), /ends early/);
  assert.throws(() => s.riceDecode(Uint8Array.of(...enc, 0), 3, 2, 100), /bytes after/);
  assert.throws(() => s.riceDecode(enc, 3, 2, 9), /beyond the segment/);
  assert.throws(() => s.riceDecode(Uint8Array.of(0b00101101, 0b10000001), 3, 2, 100), /padding/);
  assert.throws(() => s.riceDecode(enc, 200, 2, 100), /more documents/);
  assert.deepEqual(s.riceDecode(new Uint8Array(0), 0, 0, 1), []);
  // A large gap with k = 24 stays exact (no 32-bit shifts).
  const big = new Uint8Array(4); // q = 0, low = 24 bits
  big[0] = 0b01111111; big[1] = 0xff; big[2] = 0xff; big[3] = 0b10000000;
  assert.deepEqual(s.riceDecode(big, 1, 24, 1 << 24), [(1 << 24) - 1]);
});

test('shard paths: one hex digit per level (§15.2)', () => {
  assert.equal(s.shardPath(10, 299), '0/0/a');
  assert.equal(s.shardPath(10, 15), 'a');
  assert.equal(s.shardPath(0, 0), '0');
  assert.equal(s.shardPath(255, 8191), '0/0/f/f');
  const seg = { name: 's1', docs: 300, termBits: 4, perShard: 16 };
  // 300 documents make 19 shards of 16 (§15.2), so two digits.
  assert.equal(s.docsPath(seg, 4), '_samizdat/search/s1/docs/0/4');
  assert.equal(s.docsPath({ ...seg, docs: 256 }, 15), '_samizdat/search/s1/docs/f');
  // Format 1 put 64 documents in a shard: 300 make 5.
  assert.equal(s.docsPath({ ...seg, perShard: 64 }, 4), '_samizdat/search/s1/docs/4');
  assert.equal(s.termsPath(seg, 10), '_samizdat/search/s1/terms/a');
});

test('the manifest, fold, term and document shards are decoded strictly', () => {
  const m = s.decodeManifest(file('_samizdat/search/index'));
  assert.deepEqual(m.map((g) => g.name), ['s1', 's2']);
  assert.throws(() => s.decodeManifest(Uint8Array.of(0xa0)), /malformed/);
  assert.throws(() => s.decodeFold(Uint8Array.of(0x81, 0x82, 0x19, 0xd8, 0x00, 0x01)), /surrogate|scalar/);
  assert.throws(() => s.decodeFold(Uint8Array.of(0x82, 0x82, 0x02, 0x01, 0x82, 0x01, 0x03)), /ascending/);
  assert.throws(() => s.decodeTerms(Uint8Array.of(0x81, 0x80)), /array of 7/);
  const docs = file('_samizdat/search/s1/docs/0');
  // The first segment has 18 documents: 16 in shard 0, 2 in shard 1.
  assert.equal(m[0].docs, 18);
  assert.equal(m[0].perShard, 16);
  assert.equal(s.decodeDocs(docs, m[0], 0).length, 16);
  assert.equal(s.decodeDocs(file('_samizdat/search/s1/docs/1'), m[0], 1).length, 2);
  assert.throws(() => s.decodeDocs(docs, { ...m[0], docs: 15 }, 0), /documents, expected/);
  assert.throws(() => s.decodeDocs(docs, m[0], 1), /documents, expected/);
  // A trailing byte is not canonical.
  assert.throws(() => s.decodeDocs(Uint8Array.of(...docs, 0), m[0], 0), /trailing/);
});

test('the results page: links under the scope, the verified line, a failure says so', async () => {
  const t = (k, vars = {}) => `${k}${JSON.stringify(vars)}`;
  t.lang = 'en';
  const r = await s.search('臺灣', readFile);
  const page = s.renderSearch(t, { scope: '/p/', query: '臺灣', seq: 2n, outcome: { results: r } });
  assert.equal(page.state, 'verified');
  assert.match(page.body, /href="\/p\/2014\/05\/taiwan.html"/);
  assert.match(page.body, /search\.verified\{&#34;seq&#34;:&#34;2&#34;\}/);
  assert.match(page.body, /action="\/p\/_samizdat\/search"/);
  const failed = s.renderSearch(t, { scope: '/p/', query: 'x', seq: 2n, outcome: { error: { kind: 'verify', message: 'object 12: tampered' } } });
  assert.equal(failed.state, 'blocked');
  assert.match(failed.body, /search\.refused/);
  assert.doesNotMatch(failed.body, /<ol/);
  const form = s.renderSearch(t, { scope: '/p/', query: '', seq: 2n, outcome: {} });
  assert.doesNotMatch(form.body, /search\.(verified|none)/);
});

test('format 1 indexes (64 documents per shard) are still read and answer as they did', async () => {
  const V1 = fileURLToPath(new URL('../../tests/vectors/search-v1/', import.meta.url));
  const want = JSON.parse(readFileSync(V1 + 'expected.json', 'utf8'));
  const get = async (rel) => (existsSync(V1 + 'index/' + rel) ? new Uint8Array(readFileSync(V1 + 'index/' + rel)) : null);
  const m = s.decodeManifest(await get('_samizdat/search/index'));
  assert.deepEqual(m.map((g) => g.perShard), [64, 64]);
  for (const q of want.queries) {
    const r = await s.search(q.query, get);
    assert.deepEqual([r.tokens, r.hits.map((h) => h.path)], [q.tokens, q.results], q.query);
  }
});
