// The browser half of bench/web.sh (see BENCHMARKS.md, "Verifying in the browser"):
// drives Debian's Chromium with playwright-core (tests/browser/node_modules) against a
// running `samizdat mirror` and, optionally, nginx serving `samizdat export --static` of
// the same snapshot, and measures what the service worker's verification costs.
//
//   node bench/web-bench.mjs CONFIG.json      (CONFIG is written by bench/web.sh)
//
// CONFIG: {chromium, site (the generated site dir), repo (the repository dir), fp,
//          origins: [{name, url}], nA, nB, nPage, out (JSON path)}
//
// Per origin, in one persistent Chromium profile (so the worker persists):
//   1. first visit of W_samizdat/ (the loader): the worker installs and controls;
//      every request the browser made (page and worker) is logged;
//   2. N distinct ~7 KB articles never fetched before, three ways each, interleaved
//      (order rotating per article):
//        verified  fetch(article URL) from the controlled page: worker resolves the
//                  path through the trees, fetches the object, verifies it, puts it in
//                  Cache Storage, answers;
//        passthru  fetch(repository object URL, no-store) from the controlled page:
//                  the worker sees it and lets it go to the network (no verification);
//        raw       fetch(article URL, no-store) from a page whose requests bypass the
//                  worker (CDP Network.setBypassServiceWorker): what a reader without
//                  the worker pays.
//      Set A: articles in directories whose trees the worker has already verified (a
//      sibling page was read first); set B: the first article read in its directory.
//      After each verified fetch the worker's Resource Timing entries tell which
//      repository files it fetched and how long each took.
//   3. inside the worker: SHA-256 of 7 KB (WebCrypto), caches.open + match (miss) +
//      put of 7 KB into a scratch cache, for the share of each step;
//   4. page views: navigation to a new article until the shell's badge is set
//      (dataset.samizdat), and, as peer, the raw page from the static host without worker.
import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

const HERE = path.dirname(new URL(import.meta.url).pathname);
const require = createRequire(path.join(HERE, '../tests/browser/package.json'));
const { chromium } = require('playwright-core');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const log = (...a) => console.error(`[web-bench ${new Date().toISOString().slice(11, 19)}]`, ...a);

// ------------------------------------------------------------ articles --
function walk(dir, rel = '') {
  const out = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...walk(dir, r));
    else out.push(r);
  }
  return out;
}
const TARGET = 7168;
const files = walk(cfg.site).filter((f) => /article-[^/]*\.html$/.test(f)).map((f) => {
  const bytes = fs.readFileSync(path.join(cfg.site, f));
  // §2.1: an object of at most 16 KiB is addressed by the SHA-256 of its bytes.
  const hex = crypto.createHash('sha256').update(bytes).digest('hex');
  return { path: f, dir: path.posix.dirname(f), size: bytes.length, hex };
});
const near = files.filter((f) => f.size <= 16384).sort((a, b) => Math.abs(a.size - TARGET) - Math.abs(b.size - TARGET));
const byDir = new Map();
for (const f of near) (byDir.get(f.dir) ?? byDir.set(f.dir, []).get(f.dir)).push(f);
// Set B: the article nearest 7 KB of each of nB directories that nothing else touches.
// Set A and the page views: the remaining near-7 KB articles of the other directories,
// whose trees are warmed by reading one non-measured sibling first.
// cfg.rounds rounds, each with its own articles (nA + nB per round), one after the other.
const ROUNDS = cfg.rounds || 1;
const dirs = [...byDir.keys()].sort();
const dirsB = new Set(dirs.filter((_, i) => i % 2 === 1).slice(0, cfg.nB * ROUNDS));
if (dirsB.size < cfg.nB * ROUNDS) throw new Error(`only ${dirsB.size} directories for set B; use a larger site`);
const setB = [...dirsB].map((d) => byDir.get(d)[0]);
const candA = near.filter((f) => !dirsB.has(f.dir));
const setA = candA.slice(0, cfg.nA * ROUNDS);
// Spread sizes evenly over the rounds: deal articles out in turn.
const roundOf = (i) => i % ROUNDS;
const pages = candA.slice(cfg.nA * ROUNDS, cfg.nA * ROUNDS + cfg.nPage);
const used = new Set([...setA, ...setB, ...pages].map((f) => f.path));
const warmDirs = [...new Set([...setA, ...pages].map((f) => f.dir))];
const warm = warmDirs.map((d) => files.find((f) => f.dir === d && !used.has(f.path))
  ?? fs.readdirSync(path.join(cfg.site, d)).map((n) => ({ path: `${d}/${n}` })).find((f) => !used.has(f.path)));
for (const f of [...setA, ...setB]) {
  const obj = path.join(cfg.repo, 'objects', f.hex.slice(0, 2), f.hex);
  if (!fs.existsSync(obj)) throw new Error(`no object ${obj} for ${f.path}`);
}
log(`articles: set A ${setA.length} (sizes ${Math.min(...setA.map((f) => f.size))}-${Math.max(...setA.map((f) => f.size))} B), `
  + `set B ${setB.length} in ${dirsB.size} fresh directories, ${pages.length} page views, ${warm.length} warm-up siblings`);

// --------------------------------------------------------------- browser --
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-dev-shm-usage', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'];
// A fresh profile; inside bench/web.sh's scratch, so it goes with it whatever happens here.
const profile = fs.mkdtempSync(path.join(cfg.scratch || os.tmpdir(), 'szd-webbench-profile-'));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: cfg.chromium, args: ARGS, headless: true, viewport: { width: 1000, height: 700 },
});
const result = { chromium: '', articles: { A: setA, B: setB, pages }, origins: [] };

const requests = []; // every request the context saw: {url, sw, phase}
let phase = 'first-visit';
ctx.on('request', (r) => {
  const rec = { url: r.url(), sw: !!r.serviceWorker(), phase, body: null };
  requests.push(rec);
  r.response().then(async (res) => {
    if (!res) return;
    rec.status = res.status();
    rec.fromCache = res.fromServiceWorker() ? 'worker' : '';
    await res.finished().catch(() => {});
    const z = await r.sizes().catch(() => null);
    if (z) rec.body = z.responseBodySize;
  }).catch(() => {});
});

// In every top-level document: when the shell's badge leaves 'checking', note the time
// since the navigation started (performance.now() counts from it).
await ctx.addInitScript(() => {
  if (window.top !== window) return;
  const mark = () => {
    const s = document.documentElement && document.documentElement.dataset.samizdat;
    if (s && s !== 'checking' && window.__szSettled === undefined) window.__szSettled = { state: s, ms: performance.now() };
  };
  new MutationObserver(mark).observe(document, { attributes: true, subtree: true, attributeFilter: ['data-samizdat'] });
});
// → {state, ms}: the badge's first settled state and when, in ms from the navigation's start.
async function settled(page) {
  await page.waitForFunction(() => window.__szSettled !== undefined, null, { timeout: 30000, polling: 10 });
  return page.evaluate(() => window.__szSettled);
}

// One timed fetch inside a page: ms until the whole body is read.
const timedFetch = (page, url, init) => page.evaluate(async ([u, i]) => {
  const t0 = performance.now();
  const r = await fetch(u, i);
  const b = await r.arrayBuffer();
  return { ms: performance.now() - t0, status: r.status, len: b.byteLength };
}, [url, init || {}]);

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => {
    if (!s.length) return null;
    const i = (s.length - 1) * p;
    const lo = Math.floor(i);
    return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (i - lo);
  };
  return { n: s.length, median: q(0.5), p10: q(0.1), p90: q(0.9), min: s[0], max: s[s.length - 1] };
}

try {
  for (const origin of cfg.origins) {
    const W = origin.url.endsWith('/') ? origin.url : origin.url + '/';
    const R = origin.repo; // repository base URL
    const o = { name: origin.name, url: W, entry: W + (origin.entry || ''), samples: { A: [], B: [] }, pageViews: [], micro: {} };
    result.origins.push(o);
    const entry = W + (origin.entry || ''); // the mirror frames any page; a static host has its loader
    log(`${origin.name}: first visit of ${entry}`);

    // 1. First visit.
    phase = `${origin.name} first visit`;
    const page = await ctx.newPage();
    await page.goto(entry);
    ({ state: o.firstVisitState, ms: o.firstVisitMs } = await settled(page));
    await page.waitForTimeout(500); // let the install's remaining requests finish
    o.firstVisitRequests = requests.filter((r) => r.phase === phase)
      .map((r) => ({ url: r.url.slice(W.length - 1), sw: r.sw, status: r.status, body: r.body, fromWorker: r.fromCache === 'worker' }));
    phase = `${origin.name} measure`;
    // A second navigation: the shell now comes from the worker, and the page is controlled.
    await page.goto(W);
    ({ state: o.secondVisitState, ms: o.secondVisitMs } = await settled(page));
    const controlled = await page.evaluate(() => !!navigator.serviceWorker.controller);
    if (!controlled) throw new Error(`${origin.name}: the page is not controlled by the worker`);
    const sw = ctx.serviceWorkers().find((w) => w.url().startsWith(W));
    if (!sw) throw new Error(`${origin.name}: no service worker handle`);
    const swEntries = () => sw.evaluate(() => {
      const e = performance.getEntriesByType('resource').map((x) => ({ name: x.name, ms: x.duration }));
      performance.clearResourceTimings();
      return e;
    });

    // The uncontrolled peer page: same origin, its requests bypass the worker.
    const raw = await ctx.newPage();
    const cdp = await ctx.newCDPSession(raw);
    await cdp.send('Network.enable');
    await cdp.send('Network.setBypassServiceWorker', { bypass: true });
    await raw.goto(`${W}_samizdat/web/i18n.json`);
    if (await raw.evaluate(() => !!navigator.serviceWorker?.controller)) throw new Error('raw page is controlled');

    // The floor page: controlled by a trivial worker that answers from memory.
    let floor = null;
    if (origin.floor) {
      floor = await ctx.newPage();
      await floor.goto(origin.floor + 'index.html');
      await floor.evaluate(() => navigator.serviceWorker.ready);
      await floor.reload();
      if (!(await floor.evaluate(() => !!navigator.serviceWorker.controller))) throw new Error('floor page not controlled');
      for (let i = 0; i < 5; i++) await timedFetch(floor, `${origin.floor}warm-${i}`);
    }

    // Warm-up: trees of set A's directories, and every code path once (JIT).
    for (const f of warm) {
      const r = await timedFetch(page, W + f.path);
      if (r.status !== 200) throw new Error(`${origin.name}: warm-up ${f.path}: HTTP ${r.status}`);
    }
    for (const f of warm.slice(0, 5)) {
      await timedFetch(page, `${R}objects/00/${'0'.repeat(64)}`, { cache: 'no-store' }).catch(() => {});
      await timedFetch(raw, W + f.path, { cache: 'no-store' });
    }
    await swEntries();

    // 2. Interleaved samples.
    for (let round = 0; round < ROUNDS; round++) for (const set of ['A', 'B']) {
      const list = (set === 'A' ? setA : setB).filter((_, i) => roundOf(i) === round);
      for (const [i, f] of list.entries()) {
        const objUrl = `${R}objects/${f.hex.slice(0, 2)}/${f.hex}`;
        const kinds = ['verified', 'passthru', 'raw'];
        const order = kinds.slice(i % 3).concat(kinds.slice(0, i % 3));
        const s = { path: f.path, size: f.size, round, order: order.join(',') };
        for (const k of order) {
          let r;
          if (k === 'verified') r = await timedFetch(page, W + f.path);
          else if (k === 'passthru') r = await timedFetch(page, objUrl, { cache: 'no-store' });
          else r = await timedFetch(raw, W + f.path, { cache: 'no-store' });
          if (r.status !== 200 || r.len !== f.size) throw new Error(`${origin.name} ${k} ${f.path}: HTTP ${r.status}, ${r.len} bytes`);
          s[k] = r.ms;
          if (k === 'verified') {
            const e = (await swEntries()).filter((x) => x.name.startsWith(R));
            s.swTrees = e.filter((x) => x.name.startsWith(R + 'trees/')).length;
            s.swTreeMs = e.filter((x) => x.name.startsWith(R + 'trees/')).reduce((a, x) => a + x.ms, 0);
            const obj = e.find((x) => x.name === objUrl);
            s.swObjectMs = obj ? obj.ms : null;
            s.swOther = e.filter((x) => !x.name.startsWith(R + 'trees/') && x.name !== objUrl).map((x) => x.name.slice(R.length));
          }
        }
        // Two worker-answered peers, after the triple: a path in the same directory that
        // the snapshot lacks (the worker's fixed cost: dispatch, resolvePath over trees in
        // memory, a 404 page made in the worker, no fetch, no Cache Storage), and the same
        // article again (Cache Storage hit, verified again).
        const nf = await timedFetch(page, `${W}${f.dir}/no-such-page-${i}.html`);
        if (nf.status !== 404) throw new Error(`${origin.name}: expected 404 for a missing page, got ${nf.status}`);
        s.notfound = nf.ms;
        const again = await timedFetch(page, W + f.path);
        if (again.status !== 200 || again.len !== f.size) throw new Error(`${origin.name} again ${f.path}: HTTP ${again.status}`);
        s.again = again.ms;
        if (floor) {
          const fl = await timedFetch(floor, `${origin.floor}a-${set}-${round}-${i}`);
          if (fl.status !== 200 || fl.len !== 7168) throw new Error(`floor: HTTP ${fl.status}, ${fl.len} bytes`);
          s.floor = fl.ms;
        }
        await swEntries();
        o.samples[set].push(s);
      }
      const ss = o.samples[set].filter((x) => x.round === round);
      log(`${origin.name} round ${round + 1} set ${set}: verified median ${stats(ss.map((s) => s.verified)).median.toFixed(2)} ms, `
        + `passthru ${stats(ss.map((s) => s.passthru)).median.toFixed(2)} ms, raw ${stats(ss.map((s) => s.raw)).median.toFixed(2)} ms`);
    }

    // 3. The worker's steps, alone, on 7 KB of bytes (a scratch cache, deleted after).
    o.micro = await sw.evaluate(async (rounds) => {
      const bytes = new Uint8Array(7168);
      crypto.getRandomValues(bytes);
      const out = { digest: [], open: [], matchMiss: [], put: [], matchHit: [] };
      const name = 'samizdat-bench-scratch';
      for (let i = 0; i < rounds; i++) {
        bytes[0] = i & 255;
        bytes[1] = i >> 8;
        let t = performance.now();
        await crypto.subtle.digest('SHA-256', bytes);
        out.digest.push(performance.now() - t);
        t = performance.now();
        const c = await caches.open(name);
        out.open.push(performance.now() - t);
        const key = `${self.registration.scope}_samizdat/bench/${i}`;
        t = performance.now();
        await c.match(key);
        out.matchMiss.push(performance.now() - t);
        t = performance.now();
        await c.put(key, new Response(bytes.slice()));
        out.put.push(performance.now() - t);
        t = performance.now();
        const h = await c.match(key);
        await h.arrayBuffer();
        out.matchHit.push(performance.now() - t);
      }
      await caches.delete(name);
      return out;
    }, 60);

    // 3b. verify.js alone, in the page's main thread (the same V8 as the worker; a
    // worker cannot import() a module, a page can): what each navigation's head refresh
    // (loadVerified) and each object and tree cost in JavaScript, from bytes in memory.
    const probeA = setA[0];
    o.verifyJs = await page.evaluate(async ([W, R, fp, art, artHex, dir, rounds]) => {
      const V = await import(`${W}_samizdat/web/verify.js`);
      const siteId = V.parseFingerprint(fp);
      const files = new Map();
      const get = async (rel) => {
        if (!files.has(rel)) {
          const r = await fetch(R + rel, { cache: 'no-store' });
          files.set(rel, r.status === 200 ? new Uint8Array(await r.arrayBuffer()) : null);
        }
        return files.get(rel);
      };
      const st = await V.loadVerified(get, siteId);
      const mem = async (rel) => files.get(rel) ?? null;
      const time = async (fn, n = rounds) => {
        const out = [];
        for (let i = 0; i < n; i++) { const t = performance.now(); await fn(); out.push(performance.now() - t); }
        return out;
      };
      const out = { backend: await V._ed25519Backend(), files: [...files].map(([k, v]) => [k, v ? v.length : 0]) };
      out.loadVerified = await time(() => V.loadVerified(mem, siteId), 20);
      // The trees on the way to the article, and the article itself.
      const treeBytes = async (h) => {
        const hx = V.hex(h);
        const r = await fetch(`${R}trees/${hx.slice(0, 2)}/${hx}`, { cache: 'no-store' });
        return new Uint8Array(await r.arrayBuffer());
      };
      const rootB = await treeBytes(st.snapshot.root.hash);
      const rootE = await V.verifyTree(rootB, st.snapshot.root.hash, st.snapshot.root.len);
      let e = rootE;
      let leaf = { bytes: rootB, hash: st.snapshot.root.hash, len: st.snapshot.root.len, n: rootE.length };
      for (const name of dir.split('/')) {
        const d = e.find((x) => x.name === name);
        const b = await treeBytes(d.tree);
        e = await V.verifyTree(b, d.tree, d.treeLen);
        leaf = { bytes: b, hash: d.tree, len: d.treeLen, n: e.length };
      }
      out.rootTree = { bytes: rootB.length, entries: rootE.length };
      out.leafTree = { bytes: leaf.bytes.length, entries: leaf.n };
      out.verifyRootTree = await time(() => V.verifyTree(rootB, st.snapshot.root.hash, st.snapshot.root.len));
      out.verifyLeafTree = await time(() => V.verifyTree(leaf.bytes, leaf.hash, leaf.len));
      const ab = new Uint8Array(await (await fetch(R + `objects/${artHex.slice(0, 2)}/${artHex}`, { cache: 'no-store' })).arrayBuffer());
      const entry = e.find((x) => x.name === art.split('/').pop());
      out.verifyObject = await time(() => V.verifyObject(ab, entry.address, entry.size));
      out.resolvePath = await time(() => {
        const cache = new Map();
        return V.resolvePath(st, art, async (h, l) => {
          const k = V.hex(h);
          if (!cache.has(k)) cache.set(k, k === V.hex(st.snapshot.root.hash) ? rootE : e);
          return cache.get(k);
        });
      });
      return out;
    }, [W, R, cfg.fp, probeA.path, probeA.hex, probeA.dir, 50]);

    // 4. Page views: a new article, from navigation until the badge is set.
    for (const f of pages) {
      await page.goto(W + f.path);
      const { state, ms } = await settled(page);
      // Milestones, in ms from the navigation's start (absolute times aligned by timeOrigin).
      const swAbs = await sw.evaluate(() => {
        const e = performance.getEntriesByType('resource').map((x) => ({
          name: x.name, start: performance.timeOrigin + x.startTime, end: performance.timeOrigin + x.responseEnd,
        }));
        performance.clearResourceTimings();
        return e;
      });
      const mil = await page.evaluate(() => {
        const t0 = performance.timeOrigin;
        const n = performance.getEntriesByType('navigation')[0];
        const fw = document.getElementById('samizdat-frame').contentWindow;
        const fn = fw.performance.getEntriesByType('navigation')[0];
        const off = fw.performance.timeOrigin - t0;
        return {
          t0, shellResponseEnd: n.responseEnd, shellDomContentLoaded: n.domContentLoadedEventEnd,
          frameStart: off, frameResponseStart: off + fn.responseStart, frameResponseEnd: off + fn.responseEnd,
          frameLoadEnd: off + fn.loadEventEnd,
        };
      });
      const rel = (x) => x - mil.t0;
      const head = swAbs.find((x) => x.name === R + 'head');
      const objE = swAbs.find((x) => x.name === `${R}objects/${f.hex.slice(0, 2)}/${f.hex}`);
      const m = {
        shellResponseEnd: mil.shellResponseEnd, shellDomContentLoaded: mil.shellDomContentLoaded,
        headFetchStart: head ? rel(head.start) : null, headFetchEnd: head ? rel(head.end) : null,
        frameStart: mil.frameStart, objectFetchStart: objE ? rel(objE.start) : null, objectFetchEnd: objE ? rel(objE.end) : null,
        frameResponseStart: mil.frameResponseStart, frameLoadEnd: mil.frameLoadEnd, badge: ms,
      };
      const e = swAbs;
      const frameOk = await page.evaluate((p) => {
        const fr = document.getElementById('samizdat-frame');
        try { return fr.contentWindow.location.pathname.endsWith(p); } catch { return false; }
      }, f.path);
      o.pageViews.push({ path: f.path, size: f.size, state, ms, frameOk, milestones: m,
        swFetched: e.map((x) => (x.name.startsWith(R) ? 'R/' + x.name.slice(R.length) : x.name.slice(W.length - 1))) });
      if (origin.rawPages) {
        // The same page with no worker, as a static host serves it.
        await raw.goto(W + f.path, { waitUntil: 'load' });
        o.pageViews.at(-1).rawMs = await raw.evaluate(() => performance.getEntriesByType('navigation')[0].loadEventEnd);
      }
    }
    log(`${origin.name}: page view median ${stats(o.pageViews.map((p) => p.ms)).median.toFixed(1)} ms`
      + (origin.rawPages ? `, raw ${stats(o.pageViews.map((p) => p.rawMs)).median.toFixed(1)} ms` : ''));
    await raw.close();
    await page.close();
    if (floor) await floor.close();
  }
} finally {
  await ctx.close();
  fs.rmSync(profile, { recursive: true, force: true });
}

// ------------------------------------------------------------- summary --
for (const o of result.origins) {
  o.summary = {};
  for (const set of ['A', 'B']) {
    const ss = o.samples[set];
    if (!ss.length) continue;
    const g = (k) => stats(ss.map((s) => s[k]));
    o.summary[set] = {
      verified: g('verified'), passthru: g('passthru'), raw: g('raw'), notfound: g('notfound'), again: g('again'),
      floor: ss[0].floor !== undefined ? g('floor') : null,
      diffRaw: stats(ss.map((s) => s.verified - s.raw)),
      diffPassthru: stats(ss.map((s) => s.verified - s.passthru)),
      ratioRaw: stats(ss.map((s) => s.verified / s.raw)),
      swObject: stats(ss.filter((s) => s.swObjectMs != null).map((s) => s.swObjectMs)),
      swRest: stats(ss.filter((s) => s.swObjectMs != null).map((s) => s.verified - s.swObjectMs - s.swTreeMs)),
      trees: stats(ss.map((s) => s.swTrees)),
      rounds: [...new Set(ss.map((s) => s.round))].map((r) => {
        const rs = ss.filter((s) => s.round === r);
        return { round: r + 1, n: rs.length, verified: stats(rs.map((s) => s.verified)).median, raw: stats(rs.map((s) => s.raw)).median,
          passthru: stats(rs.map((s) => s.passthru)).median, diffRaw: stats(rs.map((s) => s.verified - s.raw)).median };
      }),
      size: stats(ss.map((s) => s.size)),
    };
  }
  const m = {};
  for (const [k, v] of Object.entries(o.micro)) m[k] = stats(v);
  o.summary.micro = m;
  const vj = {};
  for (const k of ['loadVerified', 'verifyRootTree', 'verifyLeafTree', 'verifyObject', 'resolvePath']) vj[k] = stats(o.verifyJs[k]);
  o.summary.verifyJs = vj;
  const ms = {};
  for (const k of Object.keys(o.pageViews[0]?.milestones || {})) {
    const v = o.pageViews.map((p) => p.milestones[k]).filter((x) => x != null);
    ms[k] = stats(v);
  }
  o.summary.milestones = ms;
  o.summary.pageView = stats(o.pageViews.map((p) => p.ms));
  if (o.pageViews.length && o.pageViews[0].rawMs !== undefined) o.summary.rawPageView = stats(o.pageViews.map((p) => p.rawMs));
}
result.chromium = cfg.chromiumVersion || '';
fs.writeFileSync(cfg.out, JSON.stringify(result, null, 1));
log(`wrote ${cfg.out}`);

// Raw samples, one row per article and kind.
const csv = ['origin,set,round,path,size,order,kind,ms,sw_trees,sw_tree_ms,sw_object_ms'];
for (const o of result.origins) {
  for (const set of ['A', 'B']) {
    for (const s of o.samples[set]) {
      for (const k of ['verified', 'passthru', 'raw', 'notfound', 'again', 'floor']) {
        if (s[k] === undefined) continue;
        csv.push([o.name, set, s.round + 1, s.path, s.size, `"${s.order}"`, k, s[k].toFixed(3),
          k === 'verified' ? s.swTrees : '', k === 'verified' ? s.swTreeMs.toFixed(3) : '',
          k === 'verified' && s.swObjectMs != null ? s.swObjectMs.toFixed(3) : ''].join(','));
      }
    }
  }
  for (const p of o.pageViews) {
    csv.push([o.name, 'page', '', p.path, p.size, '', 'page-view', p.ms.toFixed(3), '', '', ''].join(','));
    if (p.rawMs !== undefined) csv.push([o.name, 'page', '', p.path, p.size, '', 'raw-page-view', p.rawMs.toFixed(3), '', '', ''].join(','));
  }
}
fs.writeFileSync(cfg.csv, csv.join('\n') + '\n');

// The markdown tables bench/web.sh puts in the results file.
const f2 = (x) => (x == null ? '' : x.toFixed(2));
const f1 = (x) => (x == null ? '' : x.toFixed(1));
const md = [];
md.push('## Verifying a ~7 KB article (fetch through the worker vs the same bytes unverified)', '');
md.push(`Chromium ${result.chromium}. Times in ms, measured in the page (\`performance.now()\` around`
  + ' `fetch()` + `arrayBuffer()`), one sample per article and kind, the three kinds interleaved per article'
  + ' with the order rotating. **verified**: `fetch(article)` from the controlled page (the worker'
  + ' resolves the path, fetches the object from the repository, verifies it, puts it in Cache Storage,'
  + ' answers). **passthru**: `fetch(repository object URL, {cache: "no-store"})` from the same page'
  + ' (the worker sees it and lets it go to the network). **raw**: `fetch(article, {cache: "no-store"})`'
  + ' from a page of the same origin whose requests bypass the worker (CDP'
  + ' `Network.setBypassServiceWorker`), i.e. no verification at all. Set **A**: articles whose'
  + ' directory the worker has already read (a sibling page was read first: the trees are in its'
  + ' memory); set **B**: the first article read in its directory (one or two trees to fetch and verify).', '');
const sA = result.articles.A.map((f) => f.size);
const sB = result.articles.B.map((f) => f.size);
md.push(`Article sizes: A ${Math.min(...sA)}-${Math.max(...sA)} bytes (median ${stats(sA).median}), `
  + `B ${Math.min(...sB)}-${Math.max(...sB)} bytes (median ${stats(sB).median}).`, '');
md.push('| origin | set | n | verified median | p90 | passthru median | p90 | raw median | p90 | **verified − raw, median of per-article differences** | p90 | verified − passthru, median | verified ÷ raw, median | trees fetched per article (median) |');
md.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const o of result.origins) {
  for (const set of ['A', 'B']) {
    const x = o.summary[set];
    if (!x) continue;
    md.push(`| ${o.name} | ${set} | ${x.verified.n} | ${f2(x.verified.median)} | ${f2(x.verified.p90)} | ${f2(x.passthru.median)} | ${f2(x.passthru.p90)} | `
      + `${f2(x.raw.median)} | ${f2(x.raw.p90)} | **${f2(x.diffRaw.median)}** | ${f2(x.diffRaw.p90)} | ${f2(x.diffPassthru.median)} | ${f2(x.ratioRaw.median)}× | ${x.trees.median} |`);
  }
}
md.push('', 'Worker-answered peers, fetched right after each triple (median ms, p90): **404** = a page the'
  + ' snapshot lacks in the same directory (dispatch to the worker, path resolved over trees in memory, a page'
  + ' made in the worker: no fetch, no Cache Storage); **again** = the same article once more (Cache Storage'
  + ' hit, verified again, no network).', '');
md.push('On the static host also **floor**: a trivial worker (not samizdat\'s; nginx on another port, scope'
  + ' `/bench-floor/`) whose fetch handler answers every request with 7,168 bytes from memory: what any worker-answered'
  + ' fetch costs in this Chromium on this machine.', '');
md.push('| origin | set | 404 from the worker | again (from Cache Storage) | floor: trivial worker | verified − 404 − raw |');
md.push('|---|---|---:|---:|---:|---:|');
for (const o of result.origins) {
  for (const set of ['A', 'B']) {
    const x = o.summary[set];
    if (!x) continue;
    const rest = stats(o.samples[set].map((q) => q.verified - q.notfound - q.raw)).median;
    const fl = x.floor ? `${f2(x.floor.median)} (${f2(x.floor.p90)})` : '';
    md.push(`| ${o.name} | ${set} | ${f2(x.notfound.median)} (${f2(x.notfound.p90)}) | ${f2(x.again.median)} (${f2(x.again.p90)}) | ${fl} | ${f2(rest)} |`);
  }
}
md.push('', 'Per round (median ms; verified − raw is the median of per-article differences):', '');
md.push('| origin | set | round | n | verified | passthru | raw | verified − raw |');
md.push('|---|---|---:|---:|---:|---:|---:|---:|');
for (const o of result.origins) {
  for (const set of ['A', 'B']) {
    for (const r of (o.summary[set] || { rounds: [] }).rounds) {
      md.push(`| ${o.name} | ${set} | ${r.round} | ${r.n} | ${f2(r.verified)} | ${f2(r.passthru)} | ${f2(r.raw)} | ${f2(r.diffRaw)} |`);
    }
  }
}
md.push('', 'Inside the worker (Resource Timing of its own fetches, median ms): the object fetch, the tree fetches,'
  + ' and the rest of the verified time (verify, Cache Storage, dispatch, answer):', '');
md.push('| origin | set | object fetch by the worker | tree fetches (sum) | verified − worker\'s fetches |');
md.push('|---|---|---:|---:|---:|');
for (const o of result.origins) {
  for (const set of ['A', 'B']) {
    const ss = o.samples[set];
    if (!ss.length) continue;
    md.push(`| ${o.name} | ${set} | ${f2(o.summary[set].swObject.median)} | ${f2(stats(ss.map((s) => s.swTreeMs)).median)} | ${f2(o.summary[set].swRest.median)} |`);
  }
}
md.push('', '## The worker\'s steps alone (in the worker, 60 rounds on 7,168 random bytes, a scratch cache)', '');
md.push('| origin | `crypto.subtle.digest(SHA-256)` | `caches.open` | `match` (miss) | `put` | `match` (hit) + `arrayBuffer` |');
md.push('|---|---:|---:|---:|---:|---:|');
for (const o of result.origins) {
  const m = o.summary.micro;
  md.push(`| ${o.name} | ${f2(m.digest.median)} (p90 ${f2(m.digest.p90)}) | ${f2(m.open.median)} (p90 ${f2(m.open.p90)}) | ${f2(m.matchMiss.median)} (p90 ${f2(m.matchMiss.p90)}) | ${f2(m.put.median)} (p90 ${f2(m.put.p90)}) | ${f2(m.matchHit.median)} (p90 ${f2(m.matchHit.p90)}) |`);
}
md.push('', 'verify.js alone, in the page\'s main thread, from bytes already in memory (median ms of 20-50 rounds):', '');
md.push('| origin | Ed25519 backend | `loadVerified` (head, snapshot, keyset, root: what each navigation\'s head refresh re-verifies) | `verifyTree`, root tree | `verifyTree`, a month directory | `verifyObject`, ~7 KB | `resolvePath`, trees in memory |');
md.push('|---|---|---:|---:|---:|---:|---:|');
for (const o of result.origins) {
  const v = o.summary.verifyJs;
  const j = o.verifyJs;
  md.push(`| ${o.name} | ${j.backend} | ${f2(v.loadVerified.median)} (p90 ${f2(v.loadVerified.p90)}) | ${f2(v.verifyRootTree.median)} (${j.rootTree.bytes} B, ${j.rootTree.entries} entries) | `
    + `${f2(v.verifyLeafTree.median)} (${j.leafTree.bytes} B, ${j.leafTree.entries} entries) | ${f2(v.verifyObject.median)} | ${f2(v.resolvePath.median)} |`);
}
md.push('', '## Page views (context)', '');
md.push('A navigation to an article not read before, with the worker installed, from `page.goto` until the'
  + ' shell\'s badge is set (`document.documentElement.dataset.samizdat`; the worker serves the shell, the'
  + ' frame loads the article through the worker, the shell asks the worker what it served). On the static'
  + ' host, the same page without the worker (what nginx alone gives a reader) until its `load` event.', '');
md.push('| origin | n | median ms | p10 | p90 | state | repository files the worker fetched per view |');
md.push('|---|---:|---:|---:|---:|---|---|');
for (const o of result.origins) {
  const pv = o.summary.pageView;
  const states = [...new Set(o.pageViews.map((p) => p.state))].join(', ');
  const fetched = o.pageViews[1] ? o.pageViews[1].swFetched.map((x) => x.replace(/[0-9a-f]{64}/, '…')).join(', ') : '';
  md.push(`| ${o.name}, verified | ${pv.n} | ${f1(pv.median)} | ${f1(pv.p10)} | ${f1(pv.p90)} | ${states} | ${fetched} |`);
  if (o.summary.rawPageView) {
    const r = o.summary.rawPageView;
    md.push(`| ${o.name}, raw page, no worker | ${r.n} | ${f1(r.median)} | ${f1(r.p10)} | ${f1(r.p90)} | | |`);
  }
}
md.push('', 'Where a verified page view\'s time goes (median ms from the navigation\'s start; worker times aligned by `performance.timeOrigin`):', '');
md.push('| origin | shell received | shell DOMContentLoaded | worker fetches head | head received | frame navigation starts | worker fetches the object | object received | frame gets its first byte | frame load | badge set |');
md.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const o of result.origins) {
  const x = o.summary.milestones;
  const g = (k) => (x[k] && x[k].n ? f1(x[k].median) : '');
  md.push(`| ${o.name} | ${g('shellResponseEnd')} | ${g('shellDomContentLoaded')} | ${g('headFetchStart')} | ${g('headFetchEnd')} | ${g('frameStart')} | ${g('objectFetchStart')} | ${g('objectFetchEnd')} | ${g('frameResponseStart')} | ${g('frameLoadEnd')} | ${g('badge')} |`);
}
md.push('', '## First visit', '');
for (const o of result.origins) {
  // Requests for the verifier's own files, each counted with its file's size (both servers
  // send them without Content-Encoding: see the table above) and, for comparison, gzip -9.
  const webFile = (u) => {
    const p0 = u.split('?')[0];
    if (p0.endsWith('/_samizdat-sw.js')) return 'sw.js';
    const m = p0.match(/\/_samizdat\/web\/(.+)$/);
    return m ? m[1] : null;
  };
  const fv = o.firstVisitRequests.map((r) => webFile(r.url)).filter(Boolean);
  const sizeOf = (f) => fs.statSync(path.join(cfg.web, f)).size;
  const gzOf = (f) => zlib.gzipSync(fs.readFileSync(path.join(cfg.web, f)), { level: 9 }).length;
  const jsReq = fv.filter((f) => f.endsWith('.js'));
  const sum = (xs, fn) => xs.reduce((a, f) => a + fn(f), 0);
  md.push(`${o.name}: the first visit requested the verifier's files ${fv.length} times (${jsReq.length} of them JavaScript: `
    + `${[...new Set(jsReq)].map((f) => `${f} ×${jsReq.filter((x) => x === f).length}`).join(', ')}). `
    + `JavaScript requested, counted uncompressed (the files' own sizes, not what the wire carried: see the Content-Encoding table above): **${sum(jsReq, sizeOf)}** bytes (it would be ${sum(jsReq, gzOf)} with gzip -9 on every request; `
    + `${sum([...new Set(jsReq)], gzOf)} with gzip -9 and each file once); all of the verifier's files, uncompressed: ${sum(fv, sizeOf)} bytes.`, '');
  md.push(`${o.name}: \`${o.entry}\` to a settled badge (\`${o.firstVisitState}\`) in ${f1(o.firstVisitMs)} ms, `
    + `${o.firstVisitRequests.length} requests:`, '');
  md.push('| # | request | made by | status |', '|---:|---|---|---:|');
  for (const [i, r] of o.firstVisitRequests.entries()) {
    md.push(`| ${i + 1} | \`${r.url.replace(/[0-9a-f]{64}/, '…').replace(/sz1[a-z0-9]{50,}/g, '<fp>')}\` | ${r.sw ? 'worker' : 'page'} | ${r.status ?? ''} |`);
  }
  md.push('');
}
fs.writeFileSync(cfg.md, md.join('\n') + '\n');
