// The samizdat service worker: answers every GET under its scope W with bytes
// verified against the publisher's signed head, snapshot and trees
// (docs/BROWSER.md). Registered as W_samizdat-sw.js?fp=<fingerprint>&repo=<R>
// with scope W and type 'module'.

import * as V from './_samizdat/web/verify.js';

const params = new URLSearchParams(self.location.search);
const FP = params.get('fp') || '';
const REPO = withSlash(new URL(params.get('repo') || '_samizdat/repo/', self.location.href).href);
const SCOPE = self.registration.scope; // absolute, ends in '/'
const SCOPE_PATH = new URL(SCOPE).pathname;
const WEB = SCOPE + '_samizdat/web/';
const REQUIRED = ['shell.html', 'shell.js', 'shell.css', 'i18n.json', 'verify.js'];
const OPTIONAL = ['vendor/noble-ed25519.js'];
const LANGS = ['en', 'zh-Hans', 'zh-Hant'];
const META_MAX = 1 << 20;

// Cache Storage is shared by every scope of the origin (a mirror carries many
// sites), so every name says whose it is.
const C_WEB = 'samizdat-web ' + SCOPE;
const C_STATE = 'samizdat-state ' + SCOPE;
const C_DATA = 'samizdat-data ' + FP; // verified trees and objects (content-addressed)
const K_STATE = SCOPE + '_samizdat/state/kept';
const K_META = SCOPE + '_samizdat/state/meta';
const dataKey = (rel) => SCOPE + '_samizdat/data/' + rel;
// Each cache is opened once per worker life (an open costs ~0.4 ms; no cache
// is ever deleted while the worker runs).
const opened = new Map();
const openCache = (name) => {
  if (!opened.has(name)) opened.set(name, caches.open(name).catch((e) => { opened.delete(name); throw e; }));
  return opened.get(name);
};

function withSlash(u) { return u.endsWith('/') ? u : u + '/'; }
function host(u) { try { return new URL(u).host; } catch { return String(u); } }
const nowSeconds = () => BigInt(Math.floor(Date.now() / 1000));

// ---------- install / activate ----------

self.addEventListener('install', (e) => {
  e.waitUntil((async () => {
    const c = await openCache(C_WEB);
    await c.addAll(REQUIRED.map((f) => new Request(WEB + f, { cache: 'no-cache' })));
    for (const f of OPTIONAL) {
      try { await c.add(new Request(WEB + f, { cache: 'no-cache' })); } catch { /* not shipped */ }
    }
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (e) => { e.waitUntil(self.clients.claim()); });

// ---------- strings ----------

let stringsP = null;
function strings() {
  stringsP ??= (async () => {
    const r = await webAsset(new Request(WEB + 'i18n.json'));
    return r.ok ? r.json() : {};
  })().catch(() => ({}));
  return stringsP;
}
function pickLang(want) {
  if (LANGS.includes(want)) return want;
  for (const l of self.navigator.languages || []) {
    const x = l.toLowerCase();
    if (/^zh-(tw|hk|mo|hant)/.test(x)) return 'zh-Hant';
    if (x.startsWith('zh')) return 'zh-Hans';
    if (x.startsWith('en')) return 'en';
  }
  return 'en';
}
let uiLang = null; // the shell's choice, once it told us
async function tr(lang) {
  const s = await strings();
  const l = pickLang(lang || uiLang);
  const f = (key, vars = {}) => ((s[l] && s[l][key]) ?? (s.en && s.en[key]) ?? key)
    .replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  f.lang = l;
  return f;
}
const esc = (v) => String(v).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// ---------- fetching repository files ----------

class Failure extends Error {
  constructor(kind, message, source) { super(message); this.kind = kind; this.source = source; }
}

// GET base+rel reading at most max bytes; null when absent (404/410).
async function fetchCapped(base, rel, max, init = {}) {
  const url = base + rel;
  let r;
  try {
    r = await fetch(url, {
      mode: 'cors', credentials: 'omit', redirect: 'error', referrerPolicy: 'no-referrer', ...init,
    });
  } catch (e) {
    throw new Failure('fetch', `${url}: ${e.message || e}`, url);
  }
  if (r.status === 404 || r.status === 410) return null;
  if (r.status !== 200) throw new Failure('fetch', `${url}: HTTP ${r.status}`, url);
  const len = Number(r.headers.get('content-length'));
  if (Number.isFinite(len) && len > max) throw new Failure('too-large', `${url}: ${len} bytes, at most ${max} expected`, url);
  const reader = r.body.getReader();
  const parts = [];
  let n = 0;
  for (;;) {
    let chunk;
    try { chunk = await reader.read(); } catch (e) { throw new Failure('fetch', `${url}: ${e.message || e}`, url); }
    if (chunk.done) break;
    n += chunk.value.length;
    if (n > max) { reader.cancel().catch(() => {}); throw new Failure('too-large', `${url}: more than ${max} bytes`, url); }
    parts.push(chunk.value);
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

// ---------- the verified state ----------

let siteId = null;
try { siteId = V.parseFingerprint(FP); } catch { /* reported as blocked */ }

let current = null; // verified State
let keptFiles = null; // Map rel -> bytes of current's envelopes
let meta = { tofu: null, pin: null, warning: null }; // persisted small facts
let offline = false;
let stateError = null; // why no state could be loaded
let refreshError = null; // a source answered with something that did not verify
let initP = null;
let refreshP = null;
let loadedAt = 0; // when init had to load from the network (nothing was kept)

// Runs loadVerified and records every file it read, so exactly those bytes
// can be kept and re-verified at the next start.
async function loadRecording(get) {
  const files = new Map();
  const st = await V.loadVerified(async (rel, max) => {
    const b = await get(rel, max);
    if (b) files.set(rel, b);
    return b;
  }, siteId);
  return { st, files };
}

function pack(files) {
  const index = [];
  let total = 0;
  for (const [rel, b] of files) { index.push([rel, b.length]); total += b.length; }
  const head = new TextEncoder().encode(JSON.stringify(index));
  const out = new Uint8Array(4 + head.length + total);
  new DataView(out.buffer).setUint32(0, head.length);
  out.set(head, 4);
  let o = 4 + head.length;
  for (const b of files.values()) { out.set(b, o); o += b.length; }
  return out;
}
function unpack(bytes) {
  const hl = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0);
  const index = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + hl)));
  const files = new Map();
  let o = 4 + hl;
  for (const [rel, n] of index) { files.set(rel, bytes.slice(o, o + n)); o += n; }
  return files;
}

async function saveState(files) {
  const c = await openCache(C_STATE);
  await c.put(K_STATE, new Response(pack(files), { headers: { 'content-type': 'application/octet-stream' } }));
}
async function saveMeta() {
  const c = await openCache(C_STATE);
  await c.put(K_META, new Response(JSON.stringify(meta), { headers: { 'content-type': 'application/json' } }));
}

function init() {
  initP ??= (async () => {
    const c = await openCache(C_STATE);
    const m = await c.match(K_META);
    if (m) { try { meta = { ...meta, ...(await m.json()) }; } catch { /* rewritten below */ } }
    if (!meta.tofu) { meta.tofu = FP; await saveMeta(); }
    const k = await c.match(K_STATE);
    if (k && siteId) {
      try {
        const files = unpack(new Uint8Array(await k.arrayBuffer()));
        const { st } = await loadRecording(async (rel) => files.get(rel) ?? null);
        current = st; keptFiles = files;
      } catch (e) {
        // Kept bytes that no longer verify are dropped; a fresh load follows.
        await c.delete(K_STATE);
      }
    }
    if (!current) { await refresh(); loadedAt = Date.now(); }
  })();
  initP.catch(() => { initP = null; });
  return initP;
}

function sources() {
  const out = [REPO];
  const ms = (current && current.snapshot && current.snapshot.mirrors) || [];
  for (const m of ms) {
    try {
      const u = withSlash(new URL(m).href);
      if (/^https?:$/.test(new URL(u).protocol) && !out.includes(u)) out.push(u);
    } catch { /* not a URL: skip */ }
  }
  return out;
}

// Fetches the head (and what it names) from the first source that gives a
// state that verifies, then moves to it if checkAdvance allows.
let chain = Promise.resolve();
function refresh() {
  // One at a time, in order: a navigation's refresh starts after it, never
  // reuses one that fetched the head before it.
  const run = chain.then(loadNewest);
  chain = run.catch(() => {});
  refreshP = run;
  run.finally(() => { if (refreshP === run) refreshP = null; }).catch(() => {});
  return run;
}

async function loadNewest() {
  {
    if (!siteId) { stateError = { kind: 'decode', message: `bad fingerprint ${FP}` }; return; }
    let next = null;
    const errors = [];
    let reachable = false;
    for (const base of sources()) {
      try {
        next = await loadRecording((rel, max) => fetchCapped(base, rel, max, rel === 'head' ? { cache: 'no-store' } : {}));
        next.base = base;
        break;
      } catch (e) {
        if (e.kind !== 'fetch') reachable = true;
        errors.push({ kind: e.kind || 'fetch', message: e.message || String(e), source: base });
      }
    }
    refreshError = reachable ? errors.find((x) => x.kind !== 'fetch') : null;
    if (!next) {
      if (current) { offline = !reachable; return; }
      stateError = errors[0] || { kind: 'fetch', message: 'no source' };
      stateError.all = errors;
      return;
    }
    offline = false;
    stateError = null;
    if (!current) { await accept(next); return; }
    try {
      const r = await V.checkAdvance(current, next.st);
      if (r === 'newer' || (r === 'same' && next.st.head.issued > current.head.issued)) await accept(next);
    } catch (e) {
      meta.warning = { kind: e.kind || 'verify', message: e.message || String(e), at: Date.now(), source: next.base };
      await saveMeta();
    }
  }
}

async function accept(next) {
  const moved = current && current.seq !== next.st.seq;
  current = next.st;
  keptFiles = next.files;
  trees.clear();
  await saveState(next.files);
  if (moved && meta.warning) { meta.warning = null; await saveMeta(); }
}

// ---------- trees and objects ----------

const trees = new Map(); // hex -> Promise<entries>

// Fetches rel from each source in turn until check(bytes) passes.
async function fromSources(rel, max, check, init = {}) {
  const tried = [];
  for (const base of sources()) {
    try {
      let b = await fetchCapped(base, rel, max, init);
      if (!b) throw new Failure('not-found', `${base}${rel}: absent`, base);
      let v;
      try {
        v = await check(b);
      } catch {
        // Maybe a bad copy in the HTTP cache: ask the source itself once more.
        b = await fetchCapped(base, rel, max, { cache: 'reload' });
        if (!b) throw new Failure('not-found', `${base}${rel}: absent`, base);
        v = await check(b);
      }
      return { bytes: b, value: v, source: base };
    } catch (e) {
      tried.push({ kind: e.kind || 'verify', message: e.message || String(e), source: base });
    }
  }
  const err = new Failure(tried[0] ? tried[0].kind : 'fetch', tried.map((t) => t.message).join('; '));
  err.tried = tried;
  throw err;
}

function getTree(hash, len, init = {}) {
  const hex = V.hex(hash);
  if (!trees.has(hex)) {
    const p = (async () => {
      const rel = `trees/${hex.slice(0, 2)}/${hex}`;
      const c = await openCache(C_DATA);
      const hit = await c.match(dataKey(rel));
      if (hit) {
        try { return await V.verifyTree(new Uint8Array(await hit.arrayBuffer()), hash, len); } catch { await c.delete(dataKey(rel)); }
      }
      const got = await fromSources(rel, Number(len), (b) => V.verifyTree(b, hash, len), init);
      // Kept for offline reading, off the response path (the verified tree
      // is already in memory; a put takes milliseconds, BENCHMARKS.md).
      inBackground(c.put(dataKey(rel), new Response(got.bytes)));
      return got.value;
    })();
    p.catch(() => trees.delete(hex));
    trees.set(hex, p);
  }
  return trees.get(hex);
}

// The trees of the directories next to one being read (its subdirectories
// and its siblings), fetched after the answer, at low priority: reading on
// in an archive (the next month, another section) then needs no tree fetch
// before the page's own. At most NEAR_MAX per directory, once per directory.
const NEAR_MAX = 16;
// Background work in progress; the 'idle' message waits for it (so a reader's
// tool, or a test, knows when what was prefetched is kept).
const background = new Set();
function inBackground(p) {
  const q = p.catch(() => {}).finally(() => background.delete(q));
  background.add(q);
  return q;
}
const nearDone = new Set();
async function nearbyTrees(st, sitePath) {
  const names = V.splitPath(String(sitePath)).slice(0, -1);
  const key = V.hex(st.snapshotId) + '/' + names.join('/');
  if (nearDone.has(key)) return;
  nearDone.add(key);
  if (nearDone.size > 2000) nearDone.delete(nearDone.values().next().value);
  // The trees of the parent and of the page's own directory (both in memory now).
  const levels = [];
  let entries = await getTree(st.snapshot.root.hash, st.snapshot.root.len);
  for (const name of names) {
    levels.push(entries);
    const e = entries.find((x) => x.name === name && x.kind === 'dir');
    if (!e) return;
    entries = await getTree(e.tree, e.treeLen);
  }
  levels.push(entries);
  const wanted = [];
  for (const level of levels.slice(-2).reverse()) {
    for (const e of level) {
      if (e.kind === 'dir' && !trees.has(V.hex(e.tree)) && wanted.length < NEAR_MAX) wanted.push(e);
    }
  }
  await Promise.all(wanted.map((e) => getTree(e.tree, e.treeLen, { priority: 'low' }).catch(() => {})));
}

// → {bytes, source}; cached bytes are checked again (other sites' pages share this origin's caches).
// Objects being fetched or just fetched, so a page's prefetch and the
// frame's own request share one fetch, one verification and one answer
// about where the bytes came from.
const inflight = new Map();
const KEEP_FETCHED_MS = 30000;

// `keep` extends the fetch event's life over the background put.
function getObject(entry, keep = (p) => p) {
  const hex = V.hex(entry.address);
  if (!inflight.has(hex)) {
    const p = fetchObject(entry, hex, keep);
    const forget = () => { if (inflight.get(hex) === p) inflight.delete(hex); };
    p.then(() => setTimeout(forget, KEEP_FETCHED_MS), forget);
    inflight.set(hex, p);
  }
  return inflight.get(hex);
}

async function fetchObject(entry, hex, keep) {
  const rel = `objects/${hex.slice(0, 2)}/${hex}`;
  const c = await openCache(C_DATA);
  const hit = await c.match(dataKey(rel));
  if (hit) {
    const b = new Uint8Array(await hit.arrayBuffer());
    try { await V.verifyObject(b, entry.address, entry.size); return { bytes: b, source: 'cache' }; } catch { await c.delete(dataKey(rel)); }
  }
  const got = await fromSources(rel, Number(entry.size), (b) => V.verifyObject(b, entry.address, entry.size));
  keep(c.put(dataKey(rel), new Response(got.bytes)).catch(() => {}));
  return { bytes: got.bytes, source: got.source };
}

// ---------- what was served ----------

const served = new Map(); // url without fragment -> record
const docs = new Map(); // client id of a framed document -> its url
function remember(url, rec) {
  served.delete(url);
  served.set(url, rec);
  if (served.size > 500) served.delete(served.keys().next().value);
  if (docs.size > 500) docs.delete(docs.keys().next().value);
}

async function statusOf(st, t) {
  const out = { fingerprint: FP, pinned: !!meta.pin && meta.pin === FP, offline };
  if (meta.warning) {
    const k = meta.warning.kind;
    out.warning = k === 'rollback' ? t('warning.rollback') : k === 'equivocation' ? t('warning.equivocation')
      : t('warning.refused', { error: meta.warning.message });
    out.warningDetail = meta.warning.message;
  }
  if (refreshError) out.refreshError = `${host(refreshError.source)}: ${refreshError.message}`;
  if (!st) return out;
  out.publisher = st.name;
  out.seq = String(st.seq);
  out.snapshotCreated = String(st.snapshot.created);
  out.mirrors = (st.snapshot.mirrors || []).slice();
  let f = { stale: false, reasons: [], age: nowSeconds() - BigInt(st.snapshot.created) };
  try { f = V.freshness(st, nowSeconds()); } catch { /* keep the computed age */ }
  out.stale = !!f.stale;
  out.staleReasons = (f.reasons || []).map(String);
  out.age = String(f.age);
  return out;
}

function blockedReason() {
  if (meta.tofu && meta.tofu !== FP) return { key: 'blocked.changed', vars: { fp: FP, old: meta.tofu } };
  return null;
}

// ---------- pages made here ----------

async function shellPage() {
  await withTimeout(init().catch(() => {}), 3000);
  const t = await tr();
  const r = await webAsset(new Request(WEB + 'shell.html'));
  const tpl = await r.text();
  const title = current ? current.name : '';
  const vals = { lang: t.lang, scope: SCOPE_PATH, fp: FP, repo: params.get('repo') || '', title };
  const html = tpl.replace(/\{\{(lang|scope|fp|repo|title)\}\}/g, (m, k) => esc(vals[k]));
  return new Response(html, {
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    },
  });
}

// `state`, when given, is the page's data-samizdat (as the shell's): verified or blocked.
function page(t, status, title, body, state) {
  const html = `<!doctype html><html lang="${esc(t.lang)}"${state ? ` data-samizdat="${esc(state)}"` : ''}><head><meta charset="utf-8">`
    + '<meta name="viewport" content="width=device-width, initial-scale=1">'
    + `<title>${esc(title)}</title><style>body{font:16px/1.5 system-ui,sans-serif;max-width:46em;margin:2em auto;padding:0 1em}`
    + 'code,a{overflow-wrap:anywhere}table{border-collapse:collapse}th,td{text-align:left;vertical-align:top;padding:4px 12px 4px 0;border-top:1px solid #ccc}td:first-child{white-space:nowrap}</style></head>'
    + `<body><h1>${esc(title)}</h1>${body}</body></html>`;
  return new Response(html, {
    status,
    headers: { 'content-type': 'text/html; charset=utf-8', 'x-content-type-options': 'nosniff', 'cache-control': 'no-store' },
  });
}

// Where a reader can read `sitePath` at a listed repository: a samizdat
// mirror's repository /_samizdat/repo/<fp>/ has the site at
// /_samizdat/site/<fp>/; a static export's W_samizdat/repo/ has it at W
// (its loader W_samizdat/ starts the verifier there). Anything else: the
// repository base as listed.
function readingLink(repoUrl, sitePath) {
  let u;
  try { u = new URL(repoUrl); } catch { return null; }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return null;
  const path = sitePath.split('/').map(encodeURIComponent).join('/');
  const m = u.pathname.match(/^(.*)\/_samizdat\/repo\/(sz1[a-z2-7]+)\/?$/i);
  if (m) return `${u.origin}${m[1]}/_samizdat/site/${m[2]}/${path}`;
  const s = u.pathname.match(/^(.*\/)_samizdat\/repo\/?$/);
  if (s) return `${u.origin}${s[1]}_samizdat/`;
  return u.href;
}

function mirrorLinks(t, sitePath) {
  const ms = (current && current.snapshot && current.snapshot.mirrors) || [];
  const links = [];
  for (const m of ms) {
    const href = readingLink(m, sitePath);
    if (href) links.push(`<li><a href="${esc(href)}" rel="noreferrer">${esc(href)}</a></li>`);
  }
  return links.length ? `<p>${esc(t('error.mirrors'))}</p><ul>${links.join('')}</ul>` : `<p>${esc(t('error.no_mirrors'))}</p>`;
}

function errorPage(t, sitePath, tried, headline) {
  const rows = tried.map((x) => {
    const reason = t('reason.' + x.kind);
    return `<tr><td><code>${esc(host(x.source) || '-')}</code></td><td>${esc(reason === 'reason.' + x.kind ? x.kind : reason)}`
      + (x.message ? `<br><small><code>${esc(x.message)}</code></small>` : '') + '</td></tr>';
  }).join('');
  const body = `<p>${esc(headline || t('error.intro'))}</p>`
    + `<p><b>${esc(t('error.path'))}:</b> <code>/${esc(sitePath)}</code></p>`
    + (rows ? `<table><tr><th>${esc(t('error.source'))}</th><th>${esc(t('error.reason'))}</th></tr>${rows}</table>` : '')
    + mirrorLinks(t, sitePath)
    + `<p><a href="">${esc(t('error.retry'))}</a></p>`;
  return page(t, 502, t('error.title'), body);
}

function notFoundPage(t, sitePath) {
  const body = `<p>${esc(t('notfound.text', { path: '/' + sitePath, seq: current.seq, publisher: current.name }))}</p>`
    + `<p><a href="${esc(SCOPE_PATH)}">${esc(t('notfound.home'))}</a></p>`;
  return page(t, 404, t('notfound.title'), body);
}

// ---------- search (web/search-page.js, web/search.js, FORMAT §15) ----------

// The search code runs in the page, loaded only when a reader searches, so
// the worker (which every first visit downloads) stays small. The worker
// serves that page and hands it index files by tree path, each resolved
// through the verified trees and checked against its address, as a page is.

// W_samizdat/search?q=…[&offset=N][&lang=L]
async function searchPage(url) {
  const t = await tr(url.searchParams.get('lang'));
  const body = `<div id="samizdat-search" data-scope="${esc(SCOPE_PATH)}"><p>${esc(t('badge.checking'))}</p></div>`
    + `<script type="module" src="${esc(SCOPE_PATH)}_samizdat/web/search-page.js"></script>`;
  return page(t, 200, t('search.title'), body);
}

const SEARCH_FILES = '_samizdat/verified/_samizdat/search/';

// W_samizdat/verified/_samizdat/search/…: the verified bytes of one index file;
// on failure a JSON {kind, message} with status 502 (or 503 without a verified state).
async function verifiedIndexFile(url, ev) {
  const json = (status, kind, message) => new Response(JSON.stringify({ kind, message }), {
    status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
  });
  const t = await tr();
  await init().catch(() => {});
  if (refreshP) await withTimeout(refreshP, 8000);
  const st = current;
  const blocked = blockedReason();
  if (blocked) return json(503, 'verify', t(blocked.key, blocked.vars));
  if (!st) return json(503, (stateError && stateError.kind) || 'fetch', t('blocked.state'));
  let path;
  try {
    path = decodeURIComponent(url.pathname.slice(SCOPE_PATH.length + '_samizdat/verified/'.length));
  } catch {
    return json(400, 'decode', 'not a path');
  }
  try {
    const entry = await V.resolvePath(st, path, getTree);
    if (!entry) return json(404, 'missing', `/${path} is not in snapshot ${st.seq}`);
    if (entry.kind === 'dir') return json(404, 'missing', `/${path}: a directory, not a file`);
    const bytes = (await getObject(entry, (p) => ev.waitUntil(p))).bytes;
    return new Response(bytes, {
      headers: { 'content-type': 'application/octet-stream', 'cache-control': 'no-store', 'samizdat-seq': String(st.seq) },
    });
  } catch (e) {
    return json(502, e.kind || 'verify', e.message || String(e));
  }
}

// ---------- routing ----------

// The worker's own files: from the cache at once when kept (a page view
// should not wait on the network for them), refreshed in the background
// (a cheap 304 from a mirror); from the network the first time.
async function webAsset(req, keep = (p) => p) {
  const c = await openCache(C_WEB);
  const refresh = fetch(req, { cache: 'no-cache' }).then((r) => {
    if (r.ok) c.put(req, r.clone()).catch(() => {});
    return r;
  });
  const hit = await c.match(req, { ignoreSearch: true });
  if (hit) {
    keep(refresh.catch(() => {}));
    return hit;
  }
  return refresh;
}

// URL path under W -> site path; null when it cannot name a file.
function sitePathOf(url) {
  let rel = url.pathname.slice(SCOPE_PATH.length);
  try { rel = rel.split('/').map(decodeURIComponent).join('/'); } catch { return null; }
  if (rel === '' || rel.endsWith('/')) rel += 'index.html';
  return rel;
}

// Fetches and verifies the object a navigation is about to need, through
// the same state checks as `content`; its failures are reported by the
// frame's own request.
async function prefetch(url, ev) {
  try {
    await init();
    if (refreshP) await withTimeout(refreshP, 8000);
    const sitePath = sitePathOf(url);
    if (!current || blockedReason() || sitePath === null) return;
    const entry = await V.resolvePath(current, sitePath, getTree);
    if (entry && entry.kind !== 'dir') await getObject(entry, (p) => ev.waitUntil(p));
  } catch { /* reported by the frame's request */ }
}

function withTimeout(p, ms) { return Promise.race([p, new Promise((r) => setTimeout(r, ms))]); }

async function content(req, url, ev) {
  const key = url.href.split('#')[0];
  // A document's own record answers the shell; a part of a page (image, CSS)
  // that fails is added to its document's record.
  const doc = req.mode === 'navigate';
  const note = (rec) => {
    if (doc) {
      remember(key, rec);
      if (ev.resultingClientId) docs.set(ev.resultingClientId, key);
      return;
    }
    const parent = served.get(docs.get(ev.clientId));
    if (parent && rec.state === 'blocked') (parent.parts ??= []).push('/' + sitePath);
  };
  const t = await tr();
  const sitePath = sitePathOf(url) ?? url.pathname.slice(SCOPE_PATH.length);
  await init();
  if (refreshP) await withTimeout(refreshP, 8000);
  const blocked = blockedReason();
  if (blocked) {
    const msg = t(blocked.key, blocked.vars);
    note({ state: 'blocked', error: msg });
    return errorPage(t, sitePath, [], msg);
  }
  if (!current) {
    const tried = (stateError && stateError.all) || [];
    note({ state: 'blocked', error: t('blocked.state'), source: tried[0] && host(tried[0].source) });
    return errorPage(t, sitePath, tried, t('blocked.state'));
  }
  const st = current;
  if (sitePathOf(url) === null) {
    note({ state: 'verified', st, missing: true });
    return notFoundPage(t, sitePath);
  }
  let entry;
  try {
    entry = await V.resolvePath(st, sitePath, getTree);
  } catch (e) {
    if (e.kind === 'not-found' && !e.tried) {
      // Not a path any snapshot can hold (§6).
      note({ state: 'verified', st, missing: true });
      return notFoundPage(t, sitePath);
    }
    const tried = e.tried || [{ kind: e.kind || 'verify', message: e.message || String(e), source: REPO }];
    note({ state: 'blocked', error: `/${sitePath}: ${t('reason.' + tried[0].kind)}`, source: host(tried[0].source), st });
    return errorPage(t, sitePath, tried);
  }
  if (!entry) {
    note({ state: 'verified', st, missing: true });
    return notFoundPage(t, sitePath);
  }
  if (entry.kind === 'dir') {
    const to = new URL(url.href);
    to.pathname += '/';
    return new Response(null, { status: 301, headers: { location: to.pathname + to.search } });
  }
  let got;
  try {
    got = await getObject(entry, (p) => ev.waitUntil(p));
  } catch (e) {
    const tried = e.tried || [{ kind: e.kind || 'verify', message: e.message || String(e), source: REPO }];
    note({ state: 'blocked', error: `/${sitePath}: ${t('reason.' + tried[0].kind)}`, source: host(tried[0].source), st });
    return errorPage(t, sitePath, tried);
  }
  note({ state: 'verified', st, source: got.source === 'cache' ? 'cache' : host(got.source) });
  if (!offline) ev.waitUntil(inBackground(nearbyTrees(st, sitePath)));
  return new Response(got.bytes, {
    status: 200,
    headers: {
      'content-type': entry.media || 'application/octet-stream',
      'content-length': String(got.bytes.length),
      'x-content-type-options': 'nosniff',
      'cache-control': 'no-cache',
    },
  });
}

self.addEventListener('fetch', (e) => {
  const req = e.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin || !url.pathname.startsWith(SCOPE_PATH)) return;
  const rel = url.pathname.slice(SCOPE_PATH.length);
  if (rel === '_samizdat-sw.js') return;
  if (rel.startsWith('_samizdat/web/')) { e.respondWith(webAsset(req, (p) => e.waitUntil(p))); return; }
  if (rel === '_samizdat/search') { e.respondWith(searchPage(url)); return; }
  if (rel.startsWith(SEARCH_FILES)) { e.respondWith(verifiedIndexFile(url, e)); return; }
  // The loader, the repository and the mirror's own /_samizdat/ pages go to
  // the network. (On a mirror W may itself be /_samizdat/site/<fp>/: paths
  // under it are site content.)
  if (rel === '_samizdat' || rel.startsWith('_samizdat/')) return;
  if (req.mode === 'navigate' && req.destination === 'document') {
    // Revalidate the head, unless this very navigation just made the first load.
    const first = !initP;
    e.waitUntil(init().then(() => (first && loadedAt ? null : refresh())).catch(() => {}));
    e.respondWith(shellPage());
    // The frame will ask for this page in a moment: fetch and verify it
    // while the shell loads.
    e.waitUntil(prefetch(url, e));
    return;
  }
  e.respondWith(content(req, url, e).catch(async (err) => {
    const t = await tr();
    return errorPage(t, url.pathname, [{ kind: err.kind || 'verify', message: err.message || String(err), source: REPO }]);
  }));
});

// ---------- messages from the shell ----------

self.addEventListener('message', (e) => {
  const port = e.ports && e.ports[0];
  const reply = (v) => (port ? port.postMessage(v) : e.source && e.source.postMessage(v));
  const msg = e.data || {};
  e.waitUntil((async () => {
    if (msg.lang) uiLang = pickLang(msg.lang);
    const t = await tr(msg.lang);
    try { await init(); } catch { /* reported below */ }
    if (msg.type === 'hello') {
      const base = await statusOf(current, t);
      if (msg.pin && msg.pin !== FP) {
        // A pin given out of band that this host does not serve: an error,
        // never a silent switch (and not remembered: a bad link must not lock the site).
        reply({ ...base, state: 'blocked', error: t('blocked.pin', { pin: msg.pin, fp: FP }), fingerprint: msg.pin, pinned: true });
        return;
      }
      if (msg.pin && (meta.pin !== FP || meta.tofu !== FP)) {
        meta.pin = FP;
        meta.tofu = FP;
        await saveMeta();
        base.pinned = true;
      }
      const b = blockedReason();
      reply(b ? { ...base, state: 'blocked', error: t(b.key, b.vars) } : { ...base, state: current ? 'ok' : 'blocked' });
      return;
    }
    if (msg.type === 'idle') {
      while (background.size) await Promise.all([...background]);
      reply({ idle: true });
      return;
    }
    if (msg.type === 'status') {
      const rec = served.get(String(msg.url || '').split('#')[0]);
      if (!rec) { reply({ ...(await statusOf(current, t)), state: 'unverified' }); return; }
      const base = await statusOf(rec.st || current, t);
      let state = rec.state;
      if (state === 'verified' && base.stale) state = 'stale';
      reply({ ...base, state, error: rec.error, source: rec.source, missing: !!rec.missing, blockedParts: rec.parts || [] });
    }
  })());
});
