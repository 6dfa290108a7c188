// Developer check of the browser side (web/sw.js, shell.*, verify.js) in headless
// Chromium over a hand-built static export. NOT part of CI (the CI browser tests
// are written in Rust); it may be reused by them.
//
// Setup (outside the repository):
//   mkdir -p /tmp/pw && cd /tmp/pw && npm init -y && npm install playwright-core@1.65.1
//   command -v chromium || (apt-get update -qq && apt-get install -y -qq chromium)
//   cargo build --release
// Build the export D (the site from tests/vectors/repo at its paths,
// D/_samizdat-sw.js = web/sw.js, D/_samizdat/web/* = web/*, D/_samizdat/repo/ = a
// copy of tests/vectors/repo, D/_samizdat/index.html = shell.html filled in with
// scope '/', the vectors' fingerprint and repo '/_samizdat/repo/'), e.g. with
// the script at the end of this comment, then run:
//   NODE_PATH=/tmp/pw/node_modules node web/test/e2e-manual.mjs D
// It serves D with `python3 -m http.server` on 127.0.0.1 (ports PORT..PORT+3, default
// 8765) and walks through: verified/stale badge on the loader, a tampered object never
// fetched before (blocked, error page) and its recovery, a CJK path, a directory redirect,
// a 404, content headers, a failed part of a page, a forced reload, a refused rollback
// head, fragment pins (match and mismatch), language switching, offline reading after the
// server stops (also after the worker was stopped), a mirror-like host that sends the
// shell to navigations, failover to the snapshot's signed mirror (a local TLS server
// standing in for https://mirror.example/), an export under a prefix /p/, and a browser
// with workers blocked (unverified).
// The vectors' head expired in 2023, so "stale" is the expected verified state.
// Screenshots go to /tmp/szd-*.png.
//
//   D=/tmp/szd/D; WT=$PWD; rm -rf $D
//   ./target/release/samizdat extract tests/vectors/repo --out $D --trust tests/vectors/publisher.pub
//   mkdir -p $D/_samizdat/web && cp web/sw.js $D/_samizdat-sw.js
//   cp -r web/shell.html web/shell.js web/shell.css web/i18n.json web/verify.js web/vendor $D/_samizdat/web/
//   cp -r tests/vectors/repo $D/_samizdat/repo
//   FP=$(sed -n 's/^site.fingerprint = //p' tests/vectors/expected.txt)
//   sed -e "s|{{lang}}|en|g; s|{{scope}}|/|g; s|{{fp}}|$FP|g; s|{{repo}}|/_samizdat/repo/|g; s|{{title}}||g" \
//     web/shell.html > $D/_samizdat/index.html

import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

if (process.env.NODE_TEST_CONTEXT) {
  // Picked up by `node --test web/test/`: this is a developer check, run directly.
  console.log('# e2e-manual.mjs skipped under node --test (run it directly; see the top of the file)');
  process.exit(0);
}
const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const D = path.resolve(process.argv[2] || '/tmp/szd/D');
const PORT = Number(process.env.PORT || 8765);
const BASE = `http://127.0.0.1:${PORT}`;
const HERE = path.dirname(new URL(import.meta.url).pathname);
const VECTORS = path.resolve(HERE, '../../tests/vectors');
const expected = Object.fromEntries(
  fs.readFileSync(path.join(VECTORS, 'expected.txt'), 'utf8').split('\n').filter((l) => l.includes(' = ')).map((l) => l.split(' = ')),
);
const FP = expected['site.fingerprint'];
const obj = (key) => {
  const a = expected[key].split(' ')[0];
  return path.join(D, '_samizdat/repo/objects', a.slice(0, 2), a);
};

let failures = 0;
function check(ok, what) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures++;
}

// Like a mirror, the "mirror" server sends the shell (D/_samizdat/index.html) to a browser
// navigation the worker did not handle (Sec-Fetch-Mode: navigate, Sec-Fetch-Dest: document).
const MIRROR_PY = `
import http.server, sys
class H(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if (self.headers.get('Sec-Fetch-Mode') == 'navigate' and self.headers.get('Sec-Fetch-Dest') == 'document'
                and not self.path.startswith('/_samizdat/')):
            self.path = '/_samizdat/index.html'
        return super().do_GET()
http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
`;

function serve(kind = 'static', port = PORT) {
  const args = kind === 'mirror' ? ['-c', MIRROR_PY, String(port)] : ['-m', 'http.server', '--bind', '127.0.0.1', String(port)];
  const p = spawn('python3', args, { cwd: D, stdio: 'ignore' });
  process.on('exit', () => p.kill());
  return new Promise((resolve, reject) => setTimeout(() => {
    if (p.exitCode !== null) reject(new Error(`python3 -m http.server exited (port ${PORT} in use?)`));
    else resolve(p);
  }, 700));
}

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'];

async function launch(opts = {}, args = ARGS) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'szd-profile-'));
  return chromium.launchPersistentContext(dir, {
    executablePath: '/usr/bin/chromium', args, headless: true, viewport: { width: 1000, height: 640 }, ...opts,
  });
}

// Waits for the shell to settle on a state other than 'checking'; returns what the badge says.
async function settle(page, want) {
  await page.waitForFunction((w) => {
    if (!document.getElementById('samizdat-badge')) return true; // a raw page
    const s = document.documentElement.dataset.samizdat;
    return s && s !== 'checking' && (!w || w.includes(s));
  }, want, { timeout: 20000 }).catch(() => {});
  await page.waitForLoadState('load');
  return page.evaluate(() => {
    const b = document.getElementById('samizdat-badge');
    if (!b) return { state: 'raw', text: document.body.innerText, url: location.pathname };
    const f = document.getElementById('samizdat-frame');
    let frameText = null, frameUrl = null;
    try { frameText = f.contentDocument.body.innerText; frameUrl = f.contentWindow.location.pathname; } catch {}
    return {
      state: document.documentElement.dataset.samizdat, seq: b.dataset.seq, publisher: b.dataset.publisher,
      warning: b.dataset.warning, text: b.innerText, frameText, frameUrl, url: location.pathname + location.hash, title: document.title,
    };
  });
}

let server = await serve();
const ctx = await launch();
const page = ctx.pages()[0] || (await ctx.newPage());
page.on('pageerror', (e) => console.log('  page error:', e.message));
try {
  // 1. The loader: worker installs, frame shows index.html, verified (stale: the vectors expired).
  await page.goto(`${BASE}/_samizdat/`);
  let s = await settle(page, ['stale', 'verified', 'blocked', 'unverified']);
  console.log('  badge:', s.text.split('\n')[0]);
  check(s.state === 'stale', `loader: state stale (got ${s.state})`);
  check(s.seq === '2', `loader: data-seq 2 (got ${s.seq})`);
  check(s.publisher === 'Samizdat test vectors', `loader: data-publisher (got ${s.publisher})`);
  check(/Day 2\./.test(s.frameText || ''), 'loader: the frame shows index.html of seq 2');
  check(s.url === '/', `loader: the address bar follows the frame (got ${s.url})`);
  await page.screenshot({ path: '/tmp/szd-verified.png' });
  await page.click('#samizdat-badge summary');
  await page.screenshot({ path: '/tmp/szd-details.png' });

  // 2. A tampered object never fetched before: blocked, error page names path, reason and host.
  const victim = obj('state.2.file.新闻/今日.html');
  const good = fs.readFileSync(victim);
  const bad = Buffer.from(good);
  bad[10] ^= 1;
  fs.writeFileSync(victim, bad);
  await page.goto(`${BASE}/${encodeURI('新闻/今日.html')}`);
  s = await settle(page, ['blocked']);
  check(s.state === 'blocked', `tampered object: state blocked (got ${s.state})`);
  check(/今日\.html/.test(s.frameText || '') && /127\.0\.0\.1/.test(s.frameText || '') && /mirror\.example/.test(s.frameText || ''),
    'error page names the path and both sources');
  await page.screenshot({ path: '/tmp/szd-blocked.png' });
  fs.writeFileSync(victim, good);
  await page.reload();
  s = await settle(page);
  check(s.state === 'stale' && /你好/.test(s.frameText || ''), `restored object: ${s.state} ${JSON.stringify(s.frameText)}`);

  // 2. A CJK path, as a top-level navigation (the worker serves the shell).
  await page.goto(`${BASE}/${encodeURI('新闻/今日.html')}`);
  s = await settle(page);
  check(s.state === 'stale' && s.frameUrl === encodeURI('/新闻/今日.html'), `CJK path: ${s.state} ${decodeURI(s.frameUrl || '')}`);
  const shellIsShell = await page.evaluate(() => !!document.getElementById('samizdat-frame'));
  check(shellIsShell, 'top-level navigation got the shell page');

  // 3. A directory without its slash redirects.
  await page.goto(`${BASE}/${encodeURI('新闻')}`);
  s = await settle(page);
  check(s.frameUrl === encodeURI('/新闻/'), `directory redirect: frame at ${decodeURI(s.frameUrl || '')}`);

  // 4. Not in the snapshot: 404 page, still verified.
  const r404 = await page.evaluate(async () => (await fetch('/nope.html')).status);
  check(r404 === 404, `404 status for a path not in the snapshot (got ${r404})`);
  const hdr = await page.evaluate(async () => {
    const r = await fetch('/index.html');
    return [r.status, r.headers.get('content-type'), r.headers.get('x-content-type-options')];
  });
  check(hdr.join() === '200,text/html,nosniff', `content headers ${hdr.join()}`);

  // 5. A part of a page (here a fetch by the framed page) that fails is listed against its page.
  const big = obj('state.2.file.data/big.bin');
  const bigGood = fs.readFileSync(big);
  const bigBad = Buffer.from(bigGood);
  bigBad[20000] ^= 1;
  fs.writeFileSync(big, bigBad);
  await page.goto(`${BASE}/`);
  await settle(page);
  const partStatus = await page.evaluate(async () => {
    const w = document.getElementById('samizdat-frame').contentWindow;
    const code = (await w.fetch('/data/big.bin')).status;
    const st = await new Promise((r) => {
      const ch = new MessageChannel();
      ch.port1.onmessage = (e) => r(e.data);
      navigator.serviceWorker.controller.postMessage({ type: 'status', url: w.location.href }, [ch.port2]);
    });
    return { code, parts: st.blockedParts };
  });
  check(partStatus.code === 502 && partStatus.parts.includes('/data/big.bin'), `a failed part: ${JSON.stringify(partStatus)}`);
  fs.writeFileSync(big, bigGood);

  // 5b. A forced reload (bypasses the worker): never shown as verified. On a
  // static host the address is the site's own by then, so the raw page shows
  // (no badge at all); a mirror would send the shell, which says unverified.
  const cdp = await ctx.newCDPSession(page);
  await page.goto(`${BASE}/_samizdat/`);
  await settle(page);
  await cdp.send('Page.reload', { ignoreCache: true });
  await page.waitForLoadState('load');
  s = await settle(page);
  console.log('  forced reload:', s.state, s.text.split('\n')[0]);
  check(s.state === 'raw' || s.state === 'unverified', `forced reload: ${s.state}`);

  // 6. A replayed older head (rollback): refused, seq 2 kept, warning shown.
  const headFile = path.join(D, '_samizdat/repo/head');
  const head2 = fs.readFileSync(headFile);
  fs.copyFileSync(path.join(VECTORS, 'negative/head-rollback'), headFile);
  await page.goto(`${BASE}/`);
  s = await settle(page);
  check(s.seq === '2' && /rollback/i.test(s.warning || ''), `rollback refused: seq ${s.seq}, warning "${s.warning}"`);
  fs.writeFileSync(headFile, head2);

  // 7. Pins: a matching fragment pin is accepted, a mismatching one blocks.
  await page.goto(`${BASE}/_samizdat/#${FP}`);
  s = await settle(page);
  check(s.state === 'stale' && /pinned/.test(await page.textContent('#samizdat-badge details').catch(() => '')), `matching pin: ${s.state}`);
  const other = 'sz1' + 'a'.repeat(FP.length - 3);
  await page.goto(`${BASE}/index.html#${other}`);
  s = await settle(page, ['blocked']);
  check(s.state === 'blocked', `mismatching pin: ${s.state}`);

  // 8. Languages.
  await page.goto(`${BASE}/`);
  await settle(page);
  await page.selectOption('#samizdat-badge select', 'zh-Hans');
  s = await settle(page);
  check(/快照 2/.test(s.text) && /已过期/.test(s.text), `zh-Hans badge: ${s.text.split('\n')[0]}`);
  await page.screenshot({ path: '/tmp/szd-zh-Hans.png' });
  await page.selectOption('#samizdat-badge select', 'zh-Hant');
  s = await settle(page);
  check(/已過期/.test(s.text), `zh-Hant badge: ${s.text.split('\n')[0]}`);
  await page.reload();
  s = await settle(page);
  check(/已過期/.test(s.text), 'language remembered across reloads');
  await page.selectOption('#samizdat-badge select', 'en');

  // 9. Offline: the server is gone, the kept state and cached objects still serve.
  server.kill();
  await new Promise((r) => setTimeout(r, 300));
  await page.goto(`${BASE}/${encodeURI('新闻/今日.html')}`).catch((e) => console.log('  goto:', e.message));
  s = await settle(page);
  check(s.state === 'stale' && s.frameUrl === encodeURI('/新闻/今日.html'), `offline reload: ${s.state} ${decodeURI(s.frameUrl || '')}`);
  check(/offline/.test(await page.textContent('#samizdat-badge details').catch(() => '')), 'offline noted in the details');
  await page.screenshot({ path: '/tmp/szd-offline.png' });

  // 9b. Still offline, after the worker was stopped: it re-verifies the kept state at start.
  const cdp2 = await ctx.newCDPSession(page);
  await cdp2.send('ServiceWorker.enable');
  await cdp2.send('ServiceWorker.stopAllWorkers');
  await new Promise((r) => setTimeout(r, 300));
  await page.goto(`${BASE}/`).catch((e) => console.log('  goto:', e.message));
  s = await settle(page);
  check(s.state === 'stale' && s.seq === '2' && /Day 2\./.test(s.frameText || ''), `offline after a worker restart: ${s.state} ${s.text.split('\n')[0]}`);
} finally {
  await ctx.close();
  server.kill();
}

// 10. A mirror-like host: the shell on a first visit to any path, and after a forced reload.
{
  const MPORT = PORT + 1;
  const mserver = await serve('mirror', MPORT);
  const ctx3 = await launch();
  try {
    const p3 = ctx3.pages()[0] || (await ctx3.newPage());
    await p3.goto(`http://127.0.0.1:${MPORT}/${encodeURI('新闻/今日.html')}`);
    let s = await settle(p3);
    check(s.state === 'stale' && /你好/.test(s.frameText || ''), `mirror, first visit to a deep path: ${s.state}`);
    const cdp = await ctx3.newCDPSession(p3);
    await cdp.send('Page.reload', { ignoreCache: true });
    await p3.waitForLoadState('load');
    await p3.waitForFunction(() => { try { return document.getElementById('samizdat-frame').contentDocument.readyState === 'complete' && document.documentElement.dataset.samizdat !== 'checking'; } catch { return false; } }, null, { timeout: 20000 }).catch(() => {});
    s = await settle(p3);
    const controlled = await p3.evaluate(() => !!document.getElementById('samizdat-frame').contentWindow.navigator.serviceWorker.controller);
    console.log(`  mirror, forced reload: ${s.state}, frame controlled: ${controlled}: ${s.text.split('\n')[0]}`);
    check(controlled ? s.state === 'stale' : s.state === 'unverified', 'mirror, forced reload: the badge matches whether the frame is controlled');
    await p3.screenshot({ path: '/tmp/szd-forced-reload.png' });
  } finally {
    await ctx3.close();
  }
  // JavaScript off: the noscript message, and its link opens the page unverified in the frame.
  const ctx3b = await launch({ javaScriptEnabled: false });
  try {
    const p3 = ctx3b.pages()[0] || (await ctx3b.newPage());
    await p3.goto(`http://127.0.0.1:${MPORT}/${encodeURI('新闻/今日.html')}`);
    const msg = await p3.innerText('noscript, .sz-noscript').catch(() => '');
    await p3.click('.sz-noscript a[target=samizdat-frame]');
    await p3.waitForTimeout(1000);
    const text = await p3.frame({ name: 'samizdat-frame' }).innerText('body').catch(() => '');
    check(/JavaScript is off/.test(msg) && /你好/.test(text), `JavaScript off: noscript shown, its link opens the page (${JSON.stringify(text)})`);
    await p3.screenshot({ path: '/tmp/szd-noscript.png' });
  } finally {
    await ctx3b.close();
    mserver.kill();
  }
}

// 11. Failover: the repository on the host serves a tampered object; the snapshot's signed
// mirror (https://mirror.example/site/, here a local TLS server with a throwaway certificate
// and Access-Control-Allow-Origin: *) serves the real one.
{
  const MPORT = PORT + 2;
  const M = fs.mkdtempSync(path.join(os.tmpdir(), 'szd-mirror-'));
  fs.cpSync(path.join(VECTORS, 'repo'), path.join(M, 'site'), { recursive: true });
  const { execFileSync } = await import('node:child_process');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=mirror.example',
    '-addext', 'subjectAltName=DNS:mirror.example', '-keyout', path.join(M, 'key.pem'), '-out', path.join(M, 'cert.pem')], { stdio: 'ignore' });
  const TLS_PY = `
import http.server, ssl, sys
class H(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        self.send_header('Access-Control-Allow-Origin', '*')
        super().end_headers()
s = http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain('cert.pem', 'key.pem')
s.socket = c.wrap_socket(s.socket, server_side=True)
s.serve_forever()
`;
  const tls = spawn('python3', ['-c', TLS_PY, String(MPORT)], { cwd: M, stdio: 'ignore' });
  process.on('exit', () => tls.kill());
  const srv = await serve();
  const victim = obj('state.2.file.新闻/今日.html');
  const good = fs.readFileSync(victim);
  fs.writeFileSync(victim, Buffer.concat([good, Buffer.from('x')])); // one byte too long
  const args = ARGS.filter((a) => !a.startsWith('--host-resolver-rules'))
    .concat([`--host-resolver-rules=MAP mirror.example 127.0.0.1:${MPORT}, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1`, '--ignore-certificate-errors']);
  const ctx4 = await launch({}, args);
  try {
    const p4 = ctx4.pages()[0] || (await ctx4.newPage());
    await p4.goto(`${BASE}/_samizdat/`);
    await settle(p4);
    await p4.goto(`${BASE}/${encodeURI('新闻/今日.html')}`);
    const s = await settle(p4);
    const src = await p4.textContent('#samizdat-badge details').catch(() => '');
    check(s.state === 'stale' && /你好/.test(s.frameText || '') && /mirror\.example/.test(src), `failover to the signed mirror: ${s.state}`);
  } finally {
    fs.writeFileSync(victim, good);
    await ctx4.close();
    srv.kill();
    tls.kill();
  }
}

// 12. A static export under a prefix (W = /p/): the same export moved under p/, its loader
// filled from web/shell.html with scope /p/.
{
  const PP = PORT + 3;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'szd-prefix-'));
  fs.cpSync(D, path.join(root, 'p'), { recursive: true });
  const esc = (v) => String(v).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const vals = { lang: 'en', scope: '/p/', fp: FP, repo: '/p/_samizdat/repo/', title: '' };
  const tpl = fs.readFileSync(path.join(HERE, '../shell.html'), 'utf8');
  fs.writeFileSync(path.join(root, 'p/_samizdat/index.html'), tpl.replace(/\{\{(\w+)\}\}/g, (m, k) => esc(vals[k])));
  const srv = spawn('python3', ['-m', 'http.server', '--bind', '127.0.0.1', String(PP)], { cwd: root, stdio: 'ignore' });
  process.on('exit', () => srv.kill());
  await new Promise((r) => setTimeout(r, 700));
  const ctx5 = await launch();
  try {
    const p5 = ctx5.pages()[0] || (await ctx5.newPage());
    await p5.goto(`http://127.0.0.1:${PP}/p/_samizdat/`);
    let s = await settle(p5);
    check(s.state === 'stale' && /Day 2\./.test(s.frameText || '') && s.url === '/p/', `prefix /p/: loader ${s.state} at ${s.url}`);
    await p5.goto(`http://127.0.0.1:${PP}/p/${encodeURI('新闻')}`);
    s = await settle(p5);
    check(s.state === 'stale' && s.frameUrl === `/p/${encodeURI('新闻')}/`, `prefix /p/: directory redirect ${s.state} ${decodeURI(s.frameUrl || '')}`);

    // The host now names another publisher: trusted on first use, so it is refused.
    const { fingerprint } = await import(new URL('../verify.js', import.meta.url).href);
    const otherFp = fingerprint(new Uint8Array(32).fill(7));
    fs.writeFileSync(path.join(root, 'p/_samizdat/index.html'),
      tpl.replace(/\{\{(\w+)\}\}/g, (m, k) => esc({ ...vals, fp: otherFp }[k])));
    await p5.goto(`http://127.0.0.1:${PP}/p/_samizdat/`);
    s = await settle(p5, ['blocked']);
    check(s.state === 'blocked' && /different publisher/.test(s.text), `host switched publisher: ${s.state}: ${s.text.split('\n')[0]}`);
  } finally {
    await ctx5.close();
    srv.kill();
  }
}

// 13. Workers blocked: the raw page shows, clearly unverified.
server = await serve();
const ctx2 = await launch({ serviceWorkers: 'block' });
try {
  const p2 = ctx2.pages()[0] || (await ctx2.newPage());
  await p2.goto(`${BASE}/_samizdat/`);
  await p2.waitForFunction(() => { try { return /Day/.test(document.getElementById('samizdat-frame').contentDocument.body.innerText); } catch { return false; } }, null, { timeout: 10000 }).catch(() => {});
  const s = await settle(p2);
  console.log('  badge:', s.text.split('\n')[0]);
  check(s.state === 'unverified' && /Day 2\./.test(s.frameText || ''), `workers blocked: ${s.state}, frame still loads`);
  await p2.screenshot({ path: '/tmp/szd-unverified.png' });
} finally {
  await ctx2.close();
  server.kill();
}

console.log(failures ? `${failures} check(s) failed` : 'all checks passed');
process.exit(failures ? 1 : 0);
