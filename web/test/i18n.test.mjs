// web/i18n.json: every language has every key with the same {placeholders}, and
// every key the shell and the worker ask for exists. Run: node --test web/test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const web = (f) => readFileSync(new URL(`../${f}`, import.meta.url), 'utf8');
const strings = JSON.parse(web('i18n.json'));
const LANGS = ['en', 'zh-Hans', 'zh-Hant'];
const holes = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort().join(',');

test('the three languages have the same keys and placeholders', () => {
  assert.deepEqual(Object.keys(strings).sort(), [...LANGS].sort());
  const keys = Object.keys(strings.en).sort();
  for (const l of LANGS) {
    assert.deepEqual(Object.keys(strings[l]).sort(), keys, l);
    for (const k of keys) {
      assert.equal(typeof strings[l][k], 'string', `${l} ${k}`);
      assert.ok(strings[l][k].length > 0, `${l} ${k} is empty`);
      assert.equal(holes(strings[l][k]), holes(strings.en[k]), `${l} ${k}: placeholders differ from en`);
    }
  }
});

test('every key used by shell.js and sw.js exists', () => {
  const used = new Set();
  for (const f of ['shell.js', 'sw.js', 'search.js']) {
    for (const m of web(f).matchAll(/\bt\('([a-z_.-]+[a-z])'/g)) used.add(m[1]);
  }
  // Keys built at run time.
  for (const u of ['minute', 'hour', 'day', 'year']) used.add(`age.${u}`).add(`age.${u}s`);
  for (const l of LANGS) used.add(`lang.${l}`);
  for (const k of ['verify', 'too-large', 'not-found', 'fetch', 'decode', 'wrong-publisher']) used.add(`reason.${k}`);
  for (const k of ['explain_verified', 'explain_stale', 'explain_unverified']) used.add(`detail.${k}`);
  assert.ok(used.size > 40);
  for (const k of used) assert.ok(k in strings.en, `missing key ${k}`);
});

// The mirror's own strings (mirror.*, read.*) are used by the Rust side and checked there
// (web::tests::every_language_has_every_string).

test('Simplified and Traditional Chinese are not the same text', () => {
  for (const k of ['badge.verified', 'detail.publisher', 'detail.mirrors', 'mirror.title']) {
    assert.notEqual(strings['zh-Hans'][k], strings['zh-Hant'][k], k);
  }
});
