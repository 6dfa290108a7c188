// The browser driver for tests/browser.rs: a JSON-lines REPL on stdin/stdout.
//
//   node tests/browser/drive.mjs '{"chromium":"/usr/bin/chromium","profile":"/tmp/p","locale":"en-US"}'
//
// It launches Debian's Chromium through playwright-core with a fresh, persistent
// profile (so the service worker and Cache Storage live across commands), then
// answers each command line with one JSON line:
//
//   {"cmd":"goto","url":U,"until":["verified",…],"screenshot":P,"details":true}
//   {"cmd":"reload","until":[…],"screenshot":P}
//   {"cmd":"stopWorkers"}   stop every service worker (its memory is gone; Cache Storage stays)
//   {"cmd":"close"}
//
// goto and reload wait (bounded) until document.documentElement.dataset.samizdat is
// one of `until`, then report what the reader sees: {state, seq, publisher, warning,
// badgeText, detailsText, frameUrl, frameText, frameHtml, images, source, offline,
// timedOut, errors}; a page without the badge (the worker's search page) reports its
// <html data-samizdat> as state and its own text and HTML as frameText and frameHtml. "details": true opens the badge's details before the
// screenshot. A failed command answers {"error": "..."}; the driver goes on.

import { createRequire } from 'node:module';
import readline from 'node:readline';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core'); // tests/browser/node_modules

const opts = JSON.parse(process.argv[2] || '{}');
const WAIT_MS = opts.waitMs || 30000;
// Chromium's first start on a loaded 2-core machine has taken over 30 s (CI, 2026-12-03).
const LAUNCH_MS = opts.launchMs || 90000;

// As web/test/e2e-manual.mjs: no background traffic, and no host name resolves
// (nothing can leave this machine; every server of the tests is on 127.0.0.1).
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic',
  '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-extensions', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'];

const ctx = await chromium.launchPersistentContext(opts.profile, {
  executablePath: opts.chromium || process.env.SAMIZDAT_CHROMIUM || '/usr/bin/chromium',
  args: ARGS,
  headless: true,
  viewport: { width: 1000, height: 640 },
  locale: opts.locale || 'en-US',
  timeout: LAUNCH_MS,
});
const page = ctx.pages()[0] || (await ctx.newPage());
let errors = [];
page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });

// What the reader sees, and what the worker says it served the frame from.
function look() {
  return page.evaluate(async () => {
    const b = document.getElementById('samizdat-badge');
    // No badge: a page the worker made itself (search) says its state on <html>; else raw.
    if (!b) {
      return { state: document.documentElement.dataset.samizdat || 'raw', url: location.href, lang: document.documentElement.lang,
        frameText: (document.body ? document.body.innerText : '').slice(0, 2000), frameHtml: document.body ? document.body.innerHTML.slice(0, 4000) : null };
    }
    const out = {
      state: document.documentElement.dataset.samizdat,
      seq: b.dataset.seq ?? null,
      publisher: b.dataset.publisher ?? null,
      warning: b.dataset.warning ?? null,
      lang: document.documentElement.lang,
      url: location.href,
      badgeText: b.querySelector('.sz-line')?.innerText ?? b.innerText,
      detailsText: b.querySelector('details')?.textContent ?? null,
      frameUrl: null, frameText: null, frameHtml: null, images: [],
    };
    const f = document.getElementById('samizdat-frame');
    try {
      const d = f.contentDocument;
      out.frameUrl = f.contentWindow.location.href;
      out.frameText = d.body.innerText.slice(0, 2000);
      out.frameHtml = d.body.innerHTML.slice(0, 2000);
      out.images = [...d.images].map((i) => ({ src: i.getAttribute('src'), complete: i.complete, width: i.naturalWidth, height: i.naturalHeight }));
    } catch { /* another origin, or no document */ }
    const sw = navigator.serviceWorker;
    const w = sw && (sw.controller || (await sw.getRegistration())?.active);
    if (w && out.frameUrl) {
      const st = await new Promise((resolve) => {
        const ch = new MessageChannel();
        const t = setTimeout(() => resolve(null), 5000);
        ch.port1.onmessage = (e) => { clearTimeout(t); resolve(e.data); };
        w.postMessage({ type: 'status', url: out.frameUrl.split('#')[0] }, [ch.port2]);
      });
      if (st) { out.source = st.source ?? null; out.offline = !!st.offline; out.workerState = st.state; }
    }
    return out;
  });
}

async function settle(cmd) {
  const until = cmd.until || ['verified', 'stale', 'blocked', 'unverified'];
  let timedOut = false;
  await page.waitForFunction((u) => u.includes(document.documentElement.dataset.samizdat), until, { timeout: cmd.waitMs || WAIT_MS })
    .catch(() => { timedOut = true; });
  const seen = await look();
  if (cmd.screenshot) {
    if (cmd.details) await page.click('#samizdat-badge summary');
    await page.screenshot({ path: cmd.screenshot });
  }
  return { ...seen, timedOut };
}

async function stopWorkers() {
  const cdp = await ctx.newCDPSession(page);
  const running = new Map();
  cdp.on('ServiceWorker.workerVersionUpdated', ({ versions }) => {
    for (const v of versions) running.set(v.versionId, v.runningStatus);
  });
  await cdp.send('ServiceWorker.enable');
  await cdp.send('ServiceWorker.stopAllWorkers');
  const deadline = Date.now() + 10000;
  while ([...running.values()].some((s) => s !== 'stopped')) {
    if (Date.now() > deadline) throw new Error(`workers still running: ${JSON.stringify([...running])}`);
    await new Promise((r) => cdp.once('ServiceWorker.workerVersionUpdated', r));
  }
  await cdp.detach();
  return { stopped: running.size };
}

// Waits until the worker's background work (prefetched trees and their
// Cache Storage puts) has finished.
async function idle() {
  return page.evaluate(async () => {
    const sw = navigator.serviceWorker;
    const w = sw && (sw.controller || (await sw.getRegistration())?.active);
    if (!w) return { idle: false };
    return new Promise((resolve) => {
      const ch = new MessageChannel();
      ch.port1.onmessage = (e) => resolve(e.data);
      w.postMessage({ type: 'idle' }, [ch.port2]);
    });
  });
}

async function run(cmd) {
  switch (cmd.cmd) {
    case 'goto':
      await page.goto(cmd.url, { waitUntil: 'load', timeout: WAIT_MS });
      return settle(cmd);
    case 'reload':
      await page.reload({ waitUntil: 'load', timeout: WAIT_MS });
      return settle(cmd);
    case 'stopWorkers':
      return stopWorkers();
    case 'idle':
      return idle();
    default:
      throw new Error(`unknown command ${JSON.stringify(cmd.cmd)}`);
  }
}

const say = (v) => process.stdout.write(JSON.stringify(v) + '\n');
say({ ready: true, version: ctx.browser()?.version() ?? null });
for await (const line of readline.createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  let cmd;
  try { cmd = JSON.parse(line); } catch (e) { say({ error: `bad JSON: ${e.message}` }); continue; }
  if (cmd.cmd === 'close') break;
  errors = [];
  try {
    const out = await run(cmd);
    say({ ...out, errors });
  } catch (e) {
    say({ error: String((e && e.message) || e), errors });
  }
}
await ctx.close();
say({ closed: true });
