// samizdat search in the browser: the signed full-text index of docs/FORMAT.md §15, read
// from files of the verified snapshot. No DOM, no worker API (node runs it too).
//
//   tokens(text, fold)            §15.3, fold: Map code point → code point
//   riceDecode(bytes, n, k, universe, what)   §15.4, every rejection
//   decodeManifest / decodeFold / decodeTerms / decodeDocs   §15.2, strict
//   search(query, readFile, {offset, limit})  §15.5; readFile(treePath) → verified bytes or null
//   renderSearch(t, …)            the worker's results page body (sw.js wraps it)

import { CborMap, VerifyError, decodeCbor, nameProblem, sha256, splitPath } from './verify.js';

export const DIR = '_samizdat/search';
export const MAX_QUERY_BYTES = 1024;
export const MAX_QUERY_TOKENS = 32;
const MIB = 1 << 20;
const MAX_MANIFEST = MIB;
export const MAX_SHARD = 16 * MIB;
const MAX_SEGMENTS = 1024;
const MAX_DOCS = 1 << 24;
const MAX_TERM_BITS = 16;
const MAX_K = 24;
const MAX_TOKEN = 128;
const MAX_TITLE = 1024;
const MAX_LEAD = 480;
const MAX_DATE = 10;
// Search formats this reader knows; documents per document shard in each (§15.2).
const FORMATS = new Map([[1n, 64], [2n, 16]]);
const MAX_WORD = 32;

const utf8 = new TextEncoder();
const bad = (what, why) => {
  throw new VerifyError('decode', `${what}: malformed: ${why}`);
};
const need = (ok, what, why) => ok || bad(what, why);

function compareBytes(a, b) {
  for (let i = 0; i < a.length && i < b.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

// ---------- §15.3 tokens ----------

const isCjk = (c) =>
  (c >= 0x3040 && c <= 0x30ff) || (c >= 0x3400 && c <= 0x4dbf) || (c >= 0x4e00 && c <= 0x9fff)
  || (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) || (c >= 0x20000 && c <= 0x323af);
const WORD = /[\p{Alphabetic}\p{Nd}\p{Nl}\p{No}]/u;

function stem(w) {
  if (w.length < 4 || !/^[a-z]+$/.test(w)) return w;
  if (w.endsWith('ies') && !w.endsWith('eies') && !w.endsWith('aies')) return w.slice(0, -3) + 'y';
  if (w.endsWith('es') && !w.endsWith('aes') && !w.endsWith('ees') && !w.endsWith('oes')) return w.slice(0, -1);
  if (w.endsWith('s') && !w.endsWith('us') && !w.endsWith('ss')) return w.slice(0, -1);
  return w;
}

function foldChar(c, fold) {
  if (c >= 0xff01 && c <= 0xff5e) c -= 0xfee0;
  else if (c === 0x3000) c = 0x20;
  return fold.get(c) ?? c;
}

/** §15.3: the tokens of `text`, in order, repeats included. `fold`: Map from → to. */
export function tokens(text, fold) {
  let folded = '';
  for (const ch of String(text)) folded += String.fromCodePoint(foldChar(ch.codePointAt(0), fold));
  const s = folded.toLowerCase();
  const out = [];
  let word = [];
  let run = [];
  const endWord = () => {
    if (word.length) out.push(stem(word.slice(0, MAX_WORD).join('')));
    word = [];
  };
  const endRun = () => {
    if (run.length === 1) out.push(run[0]);
    run = [];
  };
  for (const ch of s) {
    if (isCjk(ch.codePointAt(0))) {
      endWord();
      if (run.length) out.push(run[run.length - 1] + ch);
      run.push(ch);
    } else {
      endRun();
      if (WORD.test(ch)) word.push(ch);
      else endWord();
    }
  }
  endRun();
  endWord();
  return out;
}

/** §15.5: tokens of the query's first 1024 bytes, repeats dropped, at most 32 → {tokens, cut}. */
export function queryTokens(query, fold) {
  let bytes = utf8.encode(String(query)); // a lone surrogate becomes U+FFFD, a separator
  let cut = false;
  if (bytes.length > MAX_QUERY_BYTES) {
    let end = MAX_QUERY_BYTES;
    while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--; // a character boundary
    bytes = bytes.subarray(0, end);
    cut = true;
  }
  const out = [];
  for (const t of tokens(new TextDecoder().decode(bytes), fold)) {
    if (out.length >= MAX_QUERY_TOKENS) cut = true;
    else if (!out.includes(t)) out.push(t);
  }
  return { tokens: out, cut };
}

// ---------- §15.4 Rice-coded document numbers ----------

/** Exactly `n` ascending numbers below `universe`; refuses short lists, numbers ≥ universe, extra bytes, non-zero padding. */
export function riceDecode(bytes, n, k, universe, what = 'list') {
  const no = (why) => bad(what, why);
  if (n > universe) no('more documents than the segment has');
  const total = bytes.length * 8;
  const bit = (p) => (bytes[p >> 3] >> (7 - (p & 7))) & 1;
  const pow = 2 ** k; // k ≤ 24; q·2^k + low stays below 2^53
  const out = new Array(n);
  let pos = 0;
  let prev = -1;
  for (let i = 0; i < n; i++) {
    let q = 0;
    for (;;) {
      if (pos >= total) no('list ends early');
      if (!bit(pos++)) break;
      if (++q > universe) no('gap beyond the segment');
    }
    if (pos + k > total) no('list ends early');
    let low = 0;
    for (let j = 0; j < k; j++) low = low * 2 + bit(pos++);
    const d = prev + 1 + q * pow + low;
    if (d >= universe) no('document number beyond the segment');
    out[i] = d;
    prev = d;
  }
  if (total - pos >= 8) no('bytes after the list');
  for (; pos < total; pos++) if (bit(pos)) no('non-zero padding');
  return out;
}

// ---------- §15.2 files ----------

const isUint = (v) => typeof v === 'bigint';
const small = (v, what, field, max) => {
  need(isUint(v) && v <= BigInt(max), what, `${field}: expected an unsigned integer of at most ${max}`);
  return Number(v);
};
const tuple = (v, n, what, field) => need(Array.isArray(v) && v.length === n, what, `${field}: expected an array of ${n}`);
const textOf = (v, what, field, maxBytes) => {
  need(typeof v === 'string' && utf8.encode(v).length <= maxBytes, what, `${field}: expected text of at most ${maxBytes} bytes`);
  return v;
};

/** The manifest → [{name, docs, termBits, deleted: Set, perShard}], oldest first. */
export function decodeManifest(bytes, what = `search index ${DIR}/index`) {
  const m = decodeCbor(bytes, what, MAX_MANIFEST);
  need(m instanceof CborMap, what, 'not a map');
  const [first, second] = m.entries;
  need(first && first[0] === 0n, what, 'key 0 (search format) expected first');
  const perShard = FORMATS.get(first[1]);
  if (!perShard) throw new VerifyError('decode', `${what}: search format ${String(first[1])} is not supported (this reader knows 1 and 2); upgrade samizdat`);
  need(m.entries.length === 2 && second[0] === 1n, what, `map of ${m.entries.length} entries, expected keys 0 and 1`);
  const segs = second[1];
  need(Array.isArray(segs) && segs.length >= 1 && segs.length <= MAX_SEGMENTS, what, 'segments: 1 to 1024 expected');
  const names = new Set();
  return segs.map((s, i) => {
    tuple(s, 4, what, `segment ${i}`);
    const name = textOf(s[0], what, `segment ${i} name`, 255);
    need(!nameProblem(name), what, `segment ${JSON.stringify(name)}: ${nameProblem(name)}`);
    need(!names.has(name), what, `segment ${JSON.stringify(name)} listed twice`);
    names.add(name);
    const at = `segment ${JSON.stringify(name)}`;
    const docs = small(s[1], what, `${at} docs`, MAX_DOCS);
    need(docs >= 1, what, `${at}: 0 documents (1 to 2^24)`);
    const termBits = small(s[2], what, `${at} term_bits`, MAX_TERM_BITS);
    need(Array.isArray(s[3]), what, `${at} deleted: expected an array`);
    const deleted = s[3].map((d) => small(d, what, `${at} deleted`, MAX_DOCS));
    need(deleted.every((d, j) => !j || deleted[j - 1] < d) && !(deleted.length && deleted[deleted.length - 1] >= docs),
      what, `${at}: deleted list not strictly ascending below ${docs}`);
    return { name, docs, termBits, deleted: new Set(deleted), perShard };
  });
}

/** The folding table → Map from → to (strictly ascending, scalar values, idempotent). */
export function decodeFold(bytes, what = `search index ${DIR}/fold`) {
  const v = decodeCbor(bytes, what, MAX_MANIFEST);
  need(Array.isArray(v), what, 'not an array');
  const map = new Map();
  let prev = -1;
  for (const p of v) {
    tuple(p, 2, what, 'pair');
    const [a, b] = p.map((x) => small(x, what, 'code point', 0x10ffff));
    need(!(a >= 0xd800 && a <= 0xdfff) && !(b >= 0xd800 && b <= 0xdfff), what, 'a surrogate is not a Unicode scalar value');
    need(a > prev, what, 'entries not strictly ascending by `from`');
    prev = a;
    map.set(a, b);
  }
  for (const b of map.values()) need(!map.has(b), what, `U+${b.toString(16).toUpperCase().padStart(4, '0')} is both a source and a target (not idempotent)`);
  return map;
}

/** A term shard → Map token → {token, df, k, docs, tdf, tk, title}; lists are decoded on use (riceDecode). */
export function decodeTerms(bytes, what = 'search term shard') {
  const v = decodeCbor(bytes, what, MAX_SHARD);
  need(Array.isArray(v), what, 'not an array');
  const out = new Map();
  let prev = null;
  for (const t of v) {
    tuple(t, 7, what, 'term');
    const token = textOf(t[0], what, 'token', MAX_TOKEN);
    const at = `token ${JSON.stringify(token)}`;
    need(token.length > 0, what, 'empty token');
    const raw = utf8.encode(token);
    need(!prev || compareBytes(prev, raw) < 0, what, 'tokens not strictly ascending');
    prev = raw;
    const df = small(t[1], what, `${at} df`, Number.MAX_SAFE_INTEGER);
    const k = small(t[2], what, `${at} k`, MAX_K);
    const tdf = small(t[4], what, `${at} tdf`, Number.MAX_SAFE_INTEGER);
    const tk = small(t[5], what, `${at} tk`, MAX_K);
    need(t[3] instanceof Uint8Array && t[6] instanceof Uint8Array, what, `${at}: lists are not byte strings`);
    need(df >= 1 && tdf <= df, what, `${at}: df, tdf or k out of range`);
    out.set(token, { token, df, k, docs: t[3], tdf, tk, title: t[6] });
  }
  return out;
}

/** Document shard `shard` of segment `seg` → [{path, title, date, lead}]. */
export function decodeDocs(bytes, seg, shard, what = 'search document shard') {
  const want = Math.min(seg.perShard, Math.max(0, seg.docs - shard * seg.perShard));
  const v = decodeCbor(bytes, what, MAX_SHARD);
  need(Array.isArray(v) && v.length === want, what, `${Array.isArray(v) ? v.length : 'no'} documents, expected ${want}`);
  return v.map((d, i) => {
    tuple(d, 4, what, `document ${i}`);
    const path = textOf(d[0], what, 'path', 4096);
    try {
      splitPath(path);
    } catch (e) {
      bad(what, e.message);
    }
    return {
      path,
      title: textOf(d[1], what, 'title', MAX_TITLE),
      date: textOf(d[2], what, 'date', MAX_DATE),
      lead: textOf(d[3], what, 'lead', MAX_LEAD),
    };
  });
}

/** `n` in hex, one digit per path level, as many digits as `max` needs. */
export function shardPath(n, max) {
  const digits = max.toString(16).length;
  return n.toString(16).padStart(digits, '0').split('').join('/');
}
export const termsPath = (seg, s) => `${DIR}/${seg.name}/terms/${shardPath(s, 2 ** seg.termBits - 1)}`;
export const docsPath = (seg, s) => `${DIR}/${seg.name}/docs/${shardPath(s, Math.max(0, Math.ceil(seg.docs / seg.perShard) - 1))}`;

/** The term shard of `token` in a segment of `bits` term bits. */
export async function shardOf(token, bits) {
  const b = await sha256(utf8.encode(token));
  return ((b[0] << 8) | b[1]) >> (16 - bits);
}

// ---------- §15.5 queries ----------

// A promise awaited later (with others): its rejection is reported there, not as unhandled.
const quiet = (p) => (p.catch(() => {}), p);

/**
 * Answers `query` from the index. readFile(treePath) → Promise of the snapshot file's
 * verified bytes, or null when the snapshot has no such file. → {available, tokens, cut,
 * total, hits: [{path, title, date, lead, titleMatches}]}, results offset .. offset+limit
 * best first; throws VerifyError (naming the file) on an index that breaks §15.
 */
export async function search(query, readFile, { offset = 0, limit = 20 } = {}) {
  const read = async (path) => {
    const b = await readFile(path);
    if (b == null) throw new VerifyError('not-found', `search index ${path}: missing (the snapshot's index is incomplete)`);
    return b;
  };
  const manifestBytes = await readFile(`${DIR}/index`);
  if (manifestBytes == null) return { available: false, tokens: [], cut: false, total: 0, hits: [] };
  const [segs, fold] = await Promise.all([
    decodeManifest(manifestBytes),
    read(`${DIR}/fold`).then((b) => decodeFold(b)),
  ]);
  const { tokens: toks, cut } = queryTokens(query, fold);
  const res = { available: true, tokens: toks, cut, total: 0, hits: [], segments: segs.length };
  if (!toks.length) return res;

  // Every segment's term shard of every token, fetched at once (§15.5: what a static reader fetches).
  const shards = new Map(); // path → Promise<Map token → term>
  const plan = await Promise.all(segs.map(async (seg) => Promise.all(toks.map(async (t) => {
    const path = termsPath(seg, await shardOf(t, seg.termBits));
    if (!shards.has(path)) shards.set(path, quiet(read(path).then((b) => decodeTerms(b, `search index ${path}`))));
    return path;
  }))));
  await Promise.all(shards.values());

  const matches = []; // [titleMatches, segment, doc]
  for (const [si, seg] of segs.entries()) {
    const lists = [];
    for (const [i, t] of toks.entries()) {
      const path = plan[si][i];
      const term = (await shards.get(path)).get(t);
      if (!term) break;
      const what = `search index ${path}: token ${JSON.stringify(t)}`;
      lists.push({
        docs: riceDecode(term.docs, term.df, term.k, seg.docs, what),
        title: new Set(riceDecode(term.title, term.tdf, term.tk, seg.docs, what)),
      });
    }
    if (lists.length !== toks.length) continue;
    lists.sort((a, b) => a.docs.length - b.docs.length);
    const others = lists.slice(1).map((l) => new Set(l.docs));
    for (const d of lists[0].docs) {
      if (seg.deleted.has(d) || !others.every((s) => s.has(d))) continue;
      matches.push([lists.filter((l) => l.title.has(d)).length, si, d]);
    }
  }
  matches.sort((a, b) => b[0] - a[0] || b[1] - a[1] || b[2] - a[2]);
  res.total = matches.length;
  const shown = matches.slice(offset, offset + limit);
  const docShards = new Map();
  for (const [, si, d] of shown) {
    const seg = segs[si];
    const s = Math.floor(d / seg.perShard);
    const path = docsPath(seg, s);
    if (!docShards.has(path)) docShards.set(path, quiet(read(path).then((b) => decodeDocs(b, seg, s, `search index ${path}`))));
  }
  await Promise.all(docShards.values());
  for (const [tm, si, d] of shown) {
    const seg = segs[si];
    const doc = (await docShards.get(docsPath(seg, Math.floor(d / seg.perShard))))[d % seg.perShard];
    res.hits.push({ ...doc, titleMatches: tm });
  }
  return res;
}

// ---------- the worker's page ----------

const esc = (v) => String(v).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const href = (scope, path) => scope + path.split('/').map(encodeURIComponent).join('/');

/**
 * The results page: t is the worker's translator, scope the web root path, seq the verified
 * snapshot, outcome {results} | {error} | {} (form only). → {status, state, title, body}.
 */
export function renderSearch(t, { scope, query, offset = 0, limit = 20, seq, outcome }) {
  const base = `${scope}_samizdat/search`;
  const title = query ? `${query} · ${t('search.title')}` : t('search.title');
  let h = `<form method="get" action="${esc(base)}" role="search"><input type="search" name="q" value="${esc(query)}"`
    + ` placeholder="${esc(t('search.placeholder'))}" size="40" autofocus><input type="hidden" name="lang" value="${esc(t.lang)}">`
    + ` <button>${esc(t('search.button'))}</button></form>`;
  const qArg = (off) => `${base}?q=${encodeURIComponent(query)}&lang=${encodeURIComponent(t.lang)}&offset=${off}`;
  let status = 200;
  let state = 'verified';
  const r = outcome.results;
  if (outcome.error) {
    const e = outcome.error;
    status = 502;
    state = 'blocked';
    const key = e.kind === 'verify' || e.kind === 'too-large' || e.kind === 'decode' ? 'search.refused' : 'search.failed';
    h += `<p class="failed"><b>${esc(t(key, { why: t('reason.' + e.kind) === 'reason.' + e.kind ? e.kind : t('reason.' + e.kind) }))}</b></p>`
      + `<p><small><code>${esc(e.message)}</code></small></p>`;
  } else if (r && !r.available) {
    h += `<p>${esc(t('search.unavailable'))}</p>`;
  } else if (r && r.total === 0) {
    h += `<p>${esc(t('search.none', { q: query }))}</p>`;
  } else if (r) {
    h += `<p>${esc(t('search.results', { n: r.total, q: query }))}</p>`;
    if (r.cut) h += `<p>${esc(t('search.cut', { n: r.tokens.length }))}</p>`;
    h += `<ol start="${offset + 1}" class="results">`;
    for (const d of r.hits) {
      const date = d.date ? ` · ${esc(d.date)}` : '';
      h += `<li><a href="${esc(href(scope, d.path))}">${esc(d.title || d.path)}</a><br><small><code>/${esc(d.path)}</code>${date}</small>`
        + `<br>${esc(d.lead)}</li>`;
    }
    h += '</ol><p>';
    if (offset > 0) h += `<a href="${esc(qArg(Math.max(0, offset - limit)))}">${esc(t('search.prev'))}</a> `;
    if (offset + r.hits.length < r.total) h += `<a href="${esc(qArg(offset + limit))}">${esc(t('search.next'))}</a>`;
    h += '</p>';
  }
  if (r && r.available) h += `<p class="verified"><small>${esc(t('search.verified', { seq: String(seq) }))}</small></p>`;
  return { status, state, title, body: h };
}
