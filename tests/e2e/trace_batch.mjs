// Where the main thread's long tasks go during 20-image batches on the CPU path: records a
// Chromium performance trace (DevTools protocol) of two batches and prints, for every task of
// 50 ms or more, what it spent its time on (script, layout, style, paint, GC, wasm compile …).
// A diagnostic, not a test: build dist/ first (`trunk build --release`).
//
//   node tests/e2e/trace_batch.mjs [trace.json]
import { chromium } from 'playwright-core';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { serve } from './serve.mjs';

const ROOT = resolve(import.meta.dirname, '../..');
const DATA = resolve(ROOT, process.env.PNEUMOSCOPE_DATA || '../shared/data/chest_xray', 'test');
const xrays = (kind) => readdirSync(join(DATA, kind)).filter((f) => /\.jpe?g$/i.test(f)).sort().slice(0, 10)
  .map((f) => join(DATA, kind, f));
const TWENTY = [...xrays('NORMAL'), ...xrays('PNEUMONIA')];
const LONG_US = 50_000;

const { server, url } = await serve({ dir: join(ROOT, 'dist'), prefix: '/pneumoscope/' });
const profile = mkdtempSync(join(tmpdir(), 'pneumoscope-trace-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: false,
  args: ['--headless=new', '--no-sandbox', '--disable-background-networking', '--no-first-run',
    ...(process.env.CHROMIUM_FLAGS ? process.env.CHROMIUM_FLAGS.split(' ') : [])],
  viewport: { width: 1280, height: 1000 },
});
try {
  const page = context.pages()[0] || (await context.newPage());
  await page.goto(`${url}?backend=cpu`);
  await page.waitForFunction(() => document.querySelector('[data-testid=engine]')?.dataset.state === 'ready',
    null, { timeout: 300_000 });
  const cdp = await context.newCDPSession(page);
  const events = [];
  cdp.on('Tracing.dataCollected', ({ value }) => events.push(...value));
  const done = new Promise((r) => cdp.once('Tracing.tracingComplete', r));
  await cdp.send('Tracing.start', {
    categories: 'devtools.timeline,disabled-by-default-devtools.timeline,v8,v8.execute,blink.user_timing,toplevel',
    transferMode: 'ReportEvents',
  });
  // Twice: what the first batch after loading pays once (code run for the first time) shows
  // against the second.
  for (const batch of [1, 2]) {
    await page.evaluate((b) => performance.mark(`batch ${b}`), batch);
    await page.setInputFiles('[data-testid=file-input]', TWENTY);
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid=batch-table] tbody tr').length === n
      && !document.querySelector('[data-testid=batch-cancel]'), TWENTY.length, { timeout: 600_000 });
    await page.waitForTimeout(500);
  }
  await cdp.send('Tracing.end');
  await done;
  if (process.argv[2]) writeFileSync(process.argv[2], JSON.stringify(events));

  // The page's main thread: the renderer thread named CrRendererMain that ran the most tasks.
  const names = new Map(events.filter((e) => e.name === 'thread_name').map((e) => [`${e.pid}:${e.tid}`, e.args.name]));
  const tasks = events.filter((e) => e.ph === 'X' && (e.name === 'RunTask' || e.name === 'ThreadControllerImpl::RunTask'));
  const count = new Map();
  for (const t of tasks) if (names.get(`${t.pid}:${t.tid}`) === 'CrRendererMain') count.set(`${t.pid}:${t.tid}`, (count.get(`${t.pid}:${t.tid}`) || 0) + 1);
  const main = [...count.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  const onMain = events.filter((e) => `${e.pid}:${e.tid}` === main && e.ph === 'X');
  const long = onMain.filter((e) => e.name === 'RunTask' && e.dur >= LONG_US).sort((a, b) => a.ts - b.ts);
  const t0 = onMain.reduce((m, e) => Math.min(m, e.ts), Infinity);
  const marks = events.filter((e) => e.cat?.includes('blink.user_timing') && /^batch \d$/.test(e.name) && e.ph !== 'e')
    .map((e) => `${e.name} at ${((e.ts - t0) / 1000).toFixed(0)} ms`);
  console.log(`main thread ${main}: ${long.length} task(s) ≥ 50 ms; ${[...new Set(marks)].join(', ')}`);
  for (const task of long) {
    // Time per event name inside the task, each event counted without its children (self time):
    // complete events on one thread nest, so a stack over them sorted by start finds each parent.
    const inside = onMain.filter((e) => e.ts >= task.ts && e.ts + e.dur <= task.ts + task.dur)
      .sort((a, b) => a.ts - b.ts || b.dur - a.dur);
    const own = new Map(inside.map((e) => [e, e.dur]));
    const stack = [];
    for (const e of inside) {
      while (stack.length && stack.at(-1).ts + stack.at(-1).dur < e.ts + e.dur) stack.pop();
      if (stack.length) own.set(stack.at(-1), own.get(stack.at(-1)) - e.dur);
      stack.push(e);
    }
    const self = new Map();
    for (const [e, us] of own) {
      const key = e.name + (e.args?.data?.functionName ? ` ${e.args.data.functionName}` : '') + (e.args?.data?.url ? ` ${e.args.data.url.split('/').pop()}` : '');
      self.set(key, (self.get(key) || 0) + us);
    }
    const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8)
      .map(([k, us]) => `${(us / 1000).toFixed(1)} ms ${k}`);
    console.log(`- at ${((task.ts - t0) / 1000).toFixed(0)} ms, ${(task.dur / 1000).toFixed(1)} ms:\n    ${top.join('\n    ')}`);
  }
} finally {
  await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
  server.close();
}
