// Browser half of scripts/bench.sh: our app (dist/, built by `trunk build --release`) against
// onnxruntime-web on the same model, in headless Debian Chromium (playwright-core, launched as
// tests/e2e/run.mjs does: fresh --user-data-dir, no sandbox, no background networking, WebGPU
// on the software adapter Chromium offers headless).
//
//   node benches/browser/bench.mjs [--runs 5] [--sizes 128,224] [--out target/bench] [--smoke]
//
// Prints JSON lines (one per figure) on stdout, progress on stderr. Everything is served from
// 127.0.0.1 by this script: dist/ under /pneumoscope/, onnxruntime-web's dist/ under /ort/,
// this folder under /ortbench/, the ONNX exports under /models/, the test X-rays under /xray/.
// A second server adds the COOP/COEP headers that onnxruntime-web's WASM threads need (crossOriginIsolated).
import { chromium } from 'playwright-core';
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve, sep } from 'node:path';

const HERE = import.meta.dirname;
const ROOT = resolve(HERE, '../..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const SMOKE = process.argv.includes('--smoke');
const RUNS = Number(arg('--runs', SMOKE ? 1 : 5));
const SIZES = arg('--sizes', SMOKE ? '128' : '128,224').split(',').map(Number);
// WebGPU here is SwiftShader (a CPU-emulated GPU): tens of seconds per image; limit its sizes.
const WEBGPU_SIZES = arg('--webgpu-sizes', SIZES.join(',')).split(',').map(Number);
const OUT = resolve(ROOT, arg('--out', 'target/bench'));
const MEMORY_IMAGES = Number(arg('--memory-images', SMOKE ? 2 : 50));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const FLAGS = ['--headless=new', '--no-sandbox', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--enable-unsafe-webgpu'];
// The test X-rays: $XRAY_DIR, else $PNEUMOSCOPE_DATA/test (default ../shared/data/chest_xray/test,
// relative to the repository root, as in the tests).
const DATA = process.env.XRAY_DIR
  ? resolve(ROOT, process.env.XRAY_DIR)
  : resolve(ROOT, process.env.PNEUMOSCOPE_DATA || '../shared/data/chest_xray', 'test');
// The X-ray whose whole analysis the app times (the one the native bench uses).
const BENCH_XRAY = 'PNEUMONIA/person1_virus_6.jpeg';
const TIMEOUT = 1_200_000;

const say = (...a) => console.error('[browser]', ...a);
const emit = (record) => console.log(JSON.stringify({ group: 'browser', ...record }));

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm',
  '.css': 'text/css', '.json': 'application/json', '.webmanifest': 'application/manifest+json', '.svg': 'image/svg+xml',
  '.png': 'image/png', '.onnx': 'application/octet-stream', '.safetensors': 'application/octet-stream',
};
const MOUNTS = [
  ['/pneumoscope/', join(ROOT, 'dist')],
  ['/ort/', join(HERE, 'node_modules/onnxruntime-web/dist')],
  ['/ortbench/', HERE],
  ['/models/', OUT],
  ['/xray/', DATA],
];

function serve(isolated) {
  const log = [];
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    const mount = MOUNTS.find(([prefix]) => url.pathname.startsWith(prefix));
    const headers = isolated ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cross-Origin-Resource-Policy': 'same-origin' } : {};
    if (!mount) {
      res.writeHead(404, headers);
      return res.end();
    }
    let path = decodeURIComponent(url.pathname.slice(mount[0].length)) || 'index.html';
    if (path.endsWith('/')) path += 'index.html';
    const root = resolve(mount[1]);
    const file = normalize(join(root, path));
    if (!file.startsWith(root + sep)) {
      res.writeHead(403, headers);
      return res.end();
    }
    try {
      if (!(await stat(file)).isFile()) throw new Error('not a file');
      const body = await readFile(file);
      res.writeHead(200, { ...headers, 'Content-Type': TYPES[extname(file)] || 'application/octet-stream', 'Content-Length': body.length, 'Cache-Control': 'no-cache' });
      res.end(body);
      log.push({ path: url.pathname, bytes: body.length });
    } catch {
      res.writeHead(404, headers);
      res.end();
    }
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok({ server, log, origin: `http://127.0.0.1:${server.address().port}` })));
}

async function withBrowser(fn) {
  const profile = mkdtempSync(join(tmpdir(), 'pneumoscope-bench-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: false, args: FLAGS, viewport: { width: 1280, height: 1000 } });
  const page = context.pages()[0] || (await context.newPage());
  const lines = [];
  page.on('console', (m) => lines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => lines.push(`pageerror: ${e}`));
  try {
    return await fn({ context, page });
  } catch (e) {
    e.message += `\n  console: ${lines.slice(-10).join('\n  ')}`;
    throw e;
  } finally {
    await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
}

function stats(ms) {
  const v = [...ms].sort((a, b) => a - b);
  return { median_s: v[v.length >> 1] / 1e3, min_s: v[0] / 1e3, max_s: v[v.length - 1] / 1e3, runs: v.length };
}

const xrays = readdirSync(join(DATA, 'NORMAL')).filter((f) => f.endsWith('.jpeg')).sort().slice(0, 30).map((f) => join(DATA, 'NORMAL', f))
  .concat(readdirSync(join(DATA, 'PNEUMONIA')).filter((f) => f.endsWith('.jpeg')).sort().slice(0, 30).map((f) => join(DATA, 'PNEUMONIA', f)));

async function waitReady(page) {
  await page.waitForFunction(() => ['ready', 'failed'].includes(document.querySelector('[data-testid=engine]')?.dataset.state), null, { timeout: TIMEOUT, polling: 20 });
  const state = await page.getAttribute('[data-testid=engine]', 'data-state');
  if (state !== 'ready') throw new Error(`model did not load: ${await page.textContent('[data-testid=error]').catch(() => '?')}`);
}

// One real X-ray through the UI, until its heatmap is drawn or the out-of-distribution check
// refuses it (a refused image shows no heatmap); returns when it finished and whether it was refused.
async function classify(page, file) {
  const before = await page.evaluate(() => document.querySelector('#result')?.dataset.id ?? null);
  await page.setInputFiles('[data-testid=file-input]', file);
  await page.waitForFunction((old) => {
    const r = document.querySelector('#result');
    return r && r.dataset.id !== old && (r.querySelector('[data-testid=heatmap]')?.dataset.ready === 'true' || r.querySelector('[data-testid=ood-refusal]'));
  }, before, { timeout: TIMEOUT, polling: 20 });
  return page.evaluate(() => ({ at: performance.now(), refused: !!document.querySelector('#result [data-testid=ood-refusal]') }));
}

async function backendName(page) {
  return (await page.textContent('[data-testid=status]')).trim();
}

// --- cold start: page open → ready → first result, bytes transferred -------------------------
async function coldStart(srv, backend) {
  const wasmFile = readdirSync(join(ROOT, 'dist')).find((f) => f.endsWith('.wasm'));
  const wasmGzip = gzipSync(readFileSync(join(ROOT, 'dist', wasmFile)), { level: 9 }).length;
  return withBrowser(async ({ page }) => {
    srv.log.length = 0;
    await page.goto(`${srv.origin}/pneumoscope/${backend === 'cpu' ? '?backend=cpu' : ''}`);
    await waitReady(page);
    const readyMs = await page.evaluate(() => performance.now());
    const { at: firstMs } = await classify(page, xrays[0]);
    const appMs = await page.textContent('[data-testid=timings]').catch(() => null);
    // Let the service worker finish its install (it caches the app and the weights).
    await page.waitForTimeout(3000);
    const bytes = { wasm: 0, weights: 0, js: 0, other: 0, total: 0 };
    for (const { path, bytes: n } of srv.log) {
      const kind = path.endsWith('.wasm') ? 'wasm' : path.includes('.safetensors') ? 'weights' : /\.m?js$/.test(path) ? 'js' : 'other';
      bytes[kind] += n;
      bytes.total += n;
    }
    const requests = srv.log.map((r) => `${r.path} ${r.bytes}`);
    emit({ kind: 'cold_start', backend, adapter: await backendName(page), ready_ms: readyMs, first_result_ms: firstMs, app_timings_shown: appMs && appMs.trim(), bytes, wasm_raw: readFileSync(join(ROOT, 'dist', wasmFile)).length, wasm_gzip: wasmGzip, requests });
  });
}

// --- forward timings ---------------------------------------------------------------------------
async function ours(srv, backend, size) {
  return withBrowser(async ({ page }) => {
    const q = new URLSearchParams({ bench: String(RUNS), benchsize: String(size), benchimage: `/xray/${BENCH_XRAY}` });
    if (backend === 'cpu') q.set('backend', 'cpu');
    await page.goto(`${srv.origin}/pneumoscope/?${q}`);
    await waitReady(page);
    await page.waitForFunction(() => window.__pneumoscopeBench, null, { timeout: TIMEOUT, polling: 100 });
    const r = await page.evaluate(() => window.__pneumoscopeBench);
    if (r.error) throw new Error(`our bench hook failed: ${r.error}`);
    if (r.backend !== backend) throw new Error(`asked for ${backend}, the app ran on ${r.backend}`);
    const adapter = await backendName(page);
    emit({ impl: 'ours', backend, kind: 'forward', size, adapter, ...stats(r.forward_ms) });
    if (r.analyse_ms.length) {
      emit({ impl: 'ours', backend, kind: 'analyse', size, adapter, image: BENCH_XRAY, ood: r.ood, ...stats(r.analyse_ms) });
      emit({ impl: 'ours', backend, kind: 'gradcam', size, adapter, ...stats(r.gradcam_ms) });
    }
  });
}

async function ort(srv, ep, threads, size) {
  return withBrowser(async ({ page }) => {
    await page.goto(`${srv.origin}/ortbench/ort.html?ep=${ep}&threads=${threads}&size=${size}&runs=${RUNS}`);
    await page.waitForFunction(() => window.__ortBench, null, { timeout: TIMEOUT, polling: 100 });
    const r = await page.evaluate(() => window.__ortBench);
    if (r.error) throw new Error(`onnxruntime-web ${ep} failed: ${r.error}`);
    const impl = ep === 'webgpu' ? 'ort-webgpu' : `ort-wasm-${threads}`;
    emit({ impl, kind: 'forward', size, threads, adapter: r.adapter, cross_origin_isolated: r.crossOriginIsolated, session_create_ms: r.create_ms, logit: r.logit, ...stats(r.forward_ms) });
  });
}

// --- memory: JS heap and wasm memory while images go through the UI one at a time ------------
async function memory(srv, backend) {
  return withBrowser(async ({ context, page }) => {
    const q = new URLSearchParams({ bench: '0' });
    if (backend === 'cpu') q.set('backend', 'cpu');
    await page.goto(`${srv.origin}/pneumoscope/?${q}`);
    await waitReady(page);
    const cdp = await context.newCDPSession(page);
    const sample = async (images) => {
      await cdp.send('HeapProfiler.collectGarbage');
      const heap = await cdp.send('Runtime.getHeapUsage');
      // The page's wasm instance plus the analysis worker's (where the model lives).
      const pageWasm = await page.evaluate(() => window.__pneumoscopeWasmMemory?.buffer.byteLength ?? null);
      const worker = page.workers()[0];
      const workerWasm = worker ? await worker.evaluate(() => self.__pneumoscopeWasmMemory?.buffer.byteLength ?? null) : null;
      const wasm = pageWasm === null && workerWasm === null ? null : (pageWasm ?? 0) + (workerWasm ?? 0);
      return { images, js_heap: heap.usedSize, js_heap_total: heap.totalSize, wasm, page_wasm: pageWasm, worker_wasm: workerWasm };
    };
    const samples = [await sample(0)];
    const every = Math.max(1, Math.floor(MEMORY_IMAGES / 5));
    let refused = 0;
    for (let i = 1; i <= MEMORY_IMAGES; i++) {
      if ((await classify(page, xrays[(i - 1) % xrays.length])).refused) refused += 1;
      if (i === 1 || i % every === 0) samples.push(await sample(i));
    }
    emit({ kind: 'browser_memory', backend, refused, samples });
  });
}

// --only REGEX runs only the steps whose name matches (e.g. --only ORT).
const ONLY = new RegExp(arg('--only', '.'));

async function step(name, fn) {
  if (!ONLY.test(name)) return;
  const t = Date.now();
  try {
    await fn();
    say(`${name}: ${((Date.now() - t) / 1000).toFixed(1)} s`);
  } catch (e) {
    say(`${name} FAILED: ${e.message}`);
    emit({ kind: 'error', step: name, error: e.message.slice(0, 500) });
  }
}

const plain = await serve(false);
const isolated = await serve(true);
await step('cold start, WebGPU', () => coldStart(plain, 'webgpu'));
await step('cold start, CPU', () => coldStart(plain, 'cpu'));
for (const size of SIZES) {
  if (WEBGPU_SIZES.includes(size)) {
    await step(`ours WebGPU ${size}²`, () => ours(plain, 'webgpu', size));
    await step(`ORT-web WebGPU ${size}²`, () => ort(plain, 'webgpu', 1, size));
  }
  await step(`ours CPU (wasm) ${size}²`, () => ours(plain, 'cpu', size));
  await step(`ORT-web WASM 1 thread ${size}²`, () => ort(plain, 'wasm', 1, size));
  await step(`ORT-web WASM 2 threads ${size}²`, () => ort(isolated, 'wasm', 2, size));
}
await step(`memory, CPU, ${MEMORY_IMAGES} images`, () => memory(plain, 'cpu'));
plain.server.close();
isolated.server.close();
