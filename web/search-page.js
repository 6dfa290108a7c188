// The search results page, run in the page (FORMAT §15, docs/BROWSER.md
// "Search"). Loaded only when a reader searches: the worker serves the page
// (sw.js searchPage) and every index file through
// W_samizdat/verified/<tree path>, verified against the signed trees; this
// module decodes and ranks them (search.js) and draws the results.

import * as S from './search.js';

const root = document.getElementById('samizdat-search');
const scope = root.dataset.scope;
const url = new URL(location.href);
const query = url.searchParams.get('q') ?? '';
const offset = Math.min(100000, Math.max(0, parseInt(url.searchParams.get('offset'), 10) || 0));
const limit = 20;
const esc = (v) => String(v).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function translator() {
  let strings = {};
  try {
    strings = await (await fetch(`${scope}_samizdat/web/i18n.json`)).json();
  } catch { /* English keys below */ }
  const lang = document.documentElement.lang || 'en';
  const t = (key, vars = {}) => ((strings[lang] && strings[lang][key]) ?? (strings.en && strings.en[key]) ?? key)
    .replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  t.lang = lang;
  return t;
}

let seq = '';
async function readFile(path) {
  const r = await fetch(`${scope}_samizdat/verified/${path.split('/').map(encodeURIComponent).join('/')}`, { cache: 'no-store' });
  if (r.status === 404) return null;
  if (!r.ok) {
    const e = await r.json().catch(() => ({}));
    const err = new Error(e.message || `${r.status} ${r.statusText}`);
    err.kind = e.kind || 'fetch';
    throw err;
  }
  seq = r.headers.get('samizdat-seq') || seq;
  return new Uint8Array(await r.arrayBuffer());
}

const t = await translator();
let outcome = {};
if (query.trim()) {
  try {
    outcome = { results: await S.search(query, readFile, { offset, limit }) };
  } catch (e) {
    outcome = { error: { kind: e.kind || 'verify', message: e.message || String(e) } };
  }
}
const r = S.renderSearch(t, { scope, query, offset, limit, seq, outcome });
document.title = r.title;
document.body.innerHTML = `<h1>${esc(r.title)}</h1>${r.body}`;
document.documentElement.dataset.samizdat = r.state;
