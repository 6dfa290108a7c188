// The shell around the publisher's page: registers the verifying service
// worker, frames the page, and draws the badge from what the worker reports.
// Design: docs/BROWSER.md. No inline script; all state comes from the data-*
// attributes of this module's own <script> tag (filled into shell.html).

const script = document.querySelector('script[data-fp][data-scope]');
const SCOPE = script.dataset.scope; // W, ends in '/'
const FP = script.dataset.fp;
const REPO = script.dataset.repo;
const LOADER = SCOPE + '_samizdat/';
const LANGS = ['en', 'zh-Hans', 'zh-Hant'];
const root = document.documentElement;
const badge = document.getElementById('samizdat-badge');
const frame = document.getElementById('samizdat-frame');

let strings = {};
let lang = pickLang();
let last = { state: 'checking' }; // what the badge shows now
const pin = /^#sz1[a-z0-9]+$/.test(location.hash) ? location.hash.slice(1) : null;

function pickLang() {
  try {
    const saved = localStorage.getItem('samizdat.lang');
    if (LANGS.includes(saved)) return saved;
  } catch { /* storage off */ }
  for (const l of navigator.languages || [navigator.language || 'en']) {
    const x = l.toLowerCase();
    if (/^zh-(tw|hk|mo|hant)/.test(x)) return 'zh-Hant';
    if (x.startsWith('zh')) return 'zh-Hans';
    if (x.startsWith('en')) return 'en';
  }
  return 'en';
}

function t(key, vars = {}) {
  const s = (strings[lang] && strings[lang][key]) ?? (strings.en && strings.en[key]) ?? key;
  return s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
}

function ageText(seconds) {
  const s = Number(seconds);
  if (!Number.isFinite(s) || s < 60) return t('age.now');
  const units = [['year', 365 * 86400], ['day', 86400], ['hour', 3600], ['minute', 60]];
  for (const [u, n] of units) {
    if (s >= n) {
      const v = Math.floor(s / n);
      return v === 1 ? t('age.' + u) : t('age.' + u + 's', { n: v });
    }
  }
  return t('age.now');
}

function reasonText(r) {
  const s = String(r);
  const k = /head/i.test(s) ? 'stale.head' : /signer|key/i.test(s) ? 'stale.signer' : /snapshot/i.test(s) ? 'stale.snapshot' : null;
  return k ? t(k) : s;
}

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

function draw(st) {
  last = st;
  const state = st.state || 'checking';
  root.dataset.samizdat = state;
  badge.className = state;
  badge.dataset.state = state;
  if (st.seq !== undefined && st.seq !== null) badge.dataset.seq = String(st.seq);
  else delete badge.dataset.seq;
  if (st.publisher) badge.dataset.publisher = st.publisher;
  else delete badge.dataset.publisher;
  badge.lang = lang;

  const parts = [];
  if (state === 'verified' || state === 'stale') {
    parts.push(state === 'stale' ? t('badge.stale') + ' · ' + t('badge.verified') : t('badge.verified'));
    if (st.publisher) parts.push(st.publisher);
    if (st.seq !== undefined) parts.push(t('badge.snapshot', { seq: st.seq }));
    if (st.age !== undefined && st.age !== null) parts.push(ageText(st.age));
    if (state === 'stale') parts.push(t('badge.stale_hint'));
    if (st.blockedParts && st.blockedParts.length) parts.push('⚠ ' + t('badge.parts', { n: st.blockedParts.length }));
  } else if (state === 'blocked') {
    parts.push(t('badge.blocked'), st.error || t('blocked.title'));
  } else if (state === 'unverified') {
    parts.push(t('badge.unverified'), st.error || '', t('unverified.open'));
  } else {
    parts.push(t('badge.checking'));
  }
  const line = el('span', { class: 'sz-line' }, parts.filter(Boolean).join(' · '));

  const select = el('select', { 'aria-label': t('lang.label'), title: t('lang.label') });
  for (const l of LANGS) {
    const o = el('option', { value: l }, t('lang.' + l));
    if (l === lang) o.selected = true;
    select.append(o);
  }
  select.addEventListener('change', () => {
    lang = select.value;
    try { localStorage.setItem('samizdat.lang', lang); } catch { /* storage off */ }
    root.lang = lang;
    draw(last);
  });

  const dl = el('dl');
  const row = (k, v) => { if (v !== undefined && v !== null && v !== '') dl.append(el('dt', {}, t(k)), el('dd', {}, v)); };
  row('detail.publisher', st.publisher);
  const fp = st.fingerprint || pin || FP;
  const pinned = st.pinned ?? !!pin;
  row('detail.fingerprint', el('span', {}, el('code', {}, fp), ' (', pinned ? t('detail.pinned') : t('detail.tofu'), ')'));
  if (st.seq !== undefined && st.seq !== null) row('detail.snapshot', String(st.seq));
  if (st.snapshotCreated) row('detail.created', new Date(Number(st.snapshotCreated) * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC'));
  row('detail.source', st.source);
  if (Array.isArray(st.mirrors)) {
    row('detail.mirrors', st.mirrors.length ? el('span', {}, ...st.mirrors.flatMap((m, i) => [i ? ', ' : '', el('a', { href: m, rel: 'noreferrer', target: '_top' }, m)])) : t('detail.none'));
  }
  const notes = el('div');
  const explain = { verified: 'detail.explain_verified', stale: 'detail.explain_stale', unverified: 'detail.explain_unverified' }[state];
  if (explain) notes.append(el('p', {}, t(explain)));
  if (state === 'stale' && st.staleReasons && st.staleReasons.length) {
    notes.append(el('p', {}, st.staleReasons.map(reasonText).join('; ')));
  }
  if (st.offline) notes.append(el('p', { class: 'sz-offline' }, t('badge.offline')));
  if (st.warning) notes.append(el('p', { class: 'sz-warning' }, '⚠ ' + st.warning));
  if (st.blockedParts && st.blockedParts.length) notes.append(el('p', { class: 'sz-warning' }, '⚠ ' + t('badge.parts_list', { list: st.blockedParts.join(', ') })));
  if (st.refreshError) notes.append(el('p', { class: 'sz-warning' }, '⚠ ' + t('warning.refused', { error: st.refreshError })));

  const details = el('details', {}, el('summary', {}, t('badge.details')), dl, notes);
  if (badge.querySelector('details')?.open) details.open = true;
  const top = el('div', { class: 'sz-row' }, line, select);
  badge.replaceChildren(top, details);
  if (st.warning) badge.dataset.warning = st.warning;
  else delete badge.dataset.warning;
}

// Asks the active worker one question; resolves to its reply or null on timeout.
function ask(worker, msg, ms = 5000) {
  return new Promise((resolve) => {
    if (!worker) return resolve(null);
    const ch = new MessageChannel();
    const timer = setTimeout(() => resolve(null), ms);
    ch.port1.onmessage = (e) => { clearTimeout(timer); resolve(e.data); };
    worker.postMessage(msg, [ch.port2]);
  });
}


// The page to frame: this page's own address, or W for the loader.
function frameTarget() {
  if (location.pathname === LOADER || location.pathname === LOADER + 'index.html') return SCOPE;
  return location.pathname + location.search + (pin ? '' : location.hash);
}

let worker = null;
let fallback = null; // why the frame is not verified, before it even loads

async function start() {
  try {
    const r = await fetch(SCOPE + '_samizdat/web/i18n.json');
    strings = await r.json();
  } catch { /* strings stay keys; still usable */ }
  root.lang = lang;
  draw({ state: 'checking' });

  if (pin && pin !== FP) {
    // The link given out of band names another publisher: never a silent switch.
    draw({ state: 'blocked', error: t('blocked.pin', { pin, fp: FP }), fingerprint: pin, pinned: true });
    return;
  }
  if (!('serviceWorker' in navigator)) {
    fallback = t('unverified.no_sw');
  } else {
    try {
      const url = `${SCOPE}_samizdat-sw.js?fp=${encodeURIComponent(FP)}&repo=${encodeURIComponent(REPO)}`;
      const reg = await navigator.serviceWorker.register(url, { scope: SCOPE, type: 'module' });
      if (!reg) {
        fallback = t('unverified.no_sw');
      } else {
        // First visit, or the host now registers another worker URL (another fp or
        // repository): wait for that one, so the old one does not answer for it.
        const pending = reg.installing || reg.waiting;
        if (pending) {
          await new Promise((resolve) => {
            const settled = () => pending.state === 'activated' || pending.state === 'redundant';
            if (settled()) return resolve();
            pending.addEventListener('statechange', () => settled() && resolve());
            setTimeout(resolve, 15000);
          });
        }
        worker = reg.active;
        if (!worker) fallback = t('unverified.timeout');
      }
    } catch (e) {
      fallback = t('unverified.register', { error: (e && e.message) || String(e) });
    }
  }
  if (worker) {
    const r = await ask(worker, { type: 'hello', pin, lang });
    if (r && r.state === 'blocked') draw(r);
  }
  if (fallback) draw({ state: 'unverified', error: fallback });
  frame.addEventListener('load', onFrameLoad);
  frame.src = frameTarget();
}

async function onFrameLoad() {
  let loc;
  try {
    loc = frame.contentWindow.location;
    void loc.href; // throws when the frame left the origin
  } catch {
    draw({ state: 'unverified', error: t('unverified.outside') });
    return;
  }
  if (loc.href === 'about:blank') return;
  const inScope = loc.pathname.startsWith(SCOPE) && !loc.pathname.startsWith(SCOPE + '_samizdat');
  try {
    const keep = loc.hash || (pin ? '#' + pin : '');
    history.replaceState(null, '', loc.pathname + loc.search + keep);
  } catch { /* another origin's URL: leave the address bar */ }
  try {
    const title = frame.contentDocument && frame.contentDocument.title;
    if (title) document.title = title;
  } catch { /* not readable */ }
  if (fallback) return draw({ state: 'unverified', error: fallback });
  if (!inScope) return draw({ state: 'unverified', error: t('unverified.outside') });
  let controlled = false;
  try { controlled = !!frame.contentWindow.navigator.serviceWorker.controller; } catch { /* no API */ }
  if (!controlled) return draw({ state: 'unverified', error: t('unverified.not_controlled') });
  const url = loc.href.split('#')[0];
  const st = await ask(navigator.serviceWorker.controller || worker, { type: 'status', url, lang });
  if (!st) return draw({ state: 'unverified', error: t('unverified.not_served') });
  if (st.state === 'unverified' && !st.error) st.error = t('unverified.not_served');
  draw(st);
}

// A pin typed or pasted into the address bar changes only the fragment: start over.
addEventListener('hashchange', () => {
  if (/^#sz1/.test(location.hash) && location.hash.slice(1) !== pin) location.reload();
});

start();
