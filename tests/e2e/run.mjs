// End-to-end checks of the built app (dist/) in headless Debian Chromium, driven by
// playwright-core (no downloaded browser). Build first: `trunk build --release`.
//
//   node tests/e2e/run.mjs            # all checks
//   node tests/e2e/run.mjs cpu batch  # only the named checks
//   node tests/e2e/run.mjs ood        # the out-of-distribution refusal only
//
// Ends with "N passed, M failed"; exits non-zero if any check failed. The test X-rays come from
// $PNEUMOSCOPE_DATA/test (default ../shared/data/chest_xray/test).
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { deflateSync } from 'node:zlib';
import { basename, join, resolve } from 'node:path';
import { serve } from './serve.mjs';

const ROOT = resolve(import.meta.dirname, '../..');
const DIST = join(ROOT, 'dist');
const ARTIFACTS = join(ROOT, 'tests/e2e/artifacts');
// The chest X-ray data set's test split: $PNEUMOSCOPE_DATA/test, as in the Rust tests (default
// ../shared/data/chest_xray, relative to the repository root).
const DATA = resolve(ROOT, process.env.PNEUMOSCOPE_DATA || '../shared/data/chest_xray', 'test');
const CLI = join(ROOT, 'target/release/pneumoscope');
const CARD = join(ROOT, 'weights/model-card.json');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const FLAGS = ['--headless=new', '--no-sandbox', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--enable-unsafe-webgpu'];
// DenseNet121 on SwiftShader (a CPU-emulated GPU) is slow: be patient per image.
const IMAGE_TIMEOUT = Number(process.env.E2E_IMAGE_TIMEOUT_MS || 180_000);
const TOLERANCE = 1e-3;

const log = (...a) => console.log(...a);
function assert(cond, message) {
  if (!cond) throw new Error(message);
}

// --- fixtures ---------------------------------------------------------------------------------
function xrays(kind, n) {
  const dir = join(DATA, kind);
  return readdirSync(dir).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort().slice(0, n).map((f) => join(dir, f));
}
const NORMAL = xrays('NORMAL', 10);
const PNEUMONIA = xrays('PNEUMONIA', 10);
const FOUR = [NORMAL[0], PNEUMONIA[0], NORMAL[1], PNEUMONIA[1]];
// Committed fixtures: a photo that is not an X-ray, and a test X-ray (64×64) and its negative.
const NOT_XRAY = join(ROOT, 'tests/data/not_xray_64.png');
const XRAY_64 = join(ROOT, 'tests/data/xray_64.png');
const XRAY_64_INVERTED = join(ROOT, 'tests/data/xray_64_inverted.png');
// One X-ray stored upright, stored turned with an EXIF Orientation, and stored as 12-bit values in
// a 16-bit PNG (make_display_fixtures.py).
const EXIF_UPRIGHT = join(ROOT, 'tests/data/exif_upright.jpg');
const EXIF_TURNED = join(ROOT, 'tests/data/exif_turned.jpg');
const TWELVE_BIT = join(ROOT, 'tests/data/twelve_bit.png');
const TWENTY = [...NORMAL, ...PNEUMONIA];

// Probabilities from the native CLI for the same files, weights and preprocessing.
// `--show-anyway`: the page's "Show the result anyway" gives the same numbers for a refused image.
function cliPredictions(files, extra = []) {
  assert(existsSync(CLI), `native CLI missing: build it with cargo build --release (${CLI})`);
  const out = execFileSync(CLI, ['predict', '--card', CARD, '--show-anyway', ...extra, ...files], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const map = new Map();
  for (const line of out.split('\n').filter((l) => l.trim().startsWith('{'))) {
    const row = JSON.parse(line);
    map.set(basename(row.file), row);
  }
  return map;
}

// A valid grayscale PNG of zeros, `width`×`height` (compresses to a few tens of KB).
function zeroPng(width, height) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'ascii');
    const tail = Buffer.alloc(4);
    tail.writeUInt32BE(crc(Buffer.concat([Buffer.from(type, 'ascii'), data])), 0);
    return Buffer.concat([head, data, tail]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grayscale
  const raw = Buffer.alloc((width + 1) * height); // filter byte 0 + zeros per row
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// --- browser helpers --------------------------------------------------------------------------
async function withBrowser(fn) {
  const profile = mkdtempSync(join(tmpdir(), 'pneumoscope-e2e-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: false, args: FLAGS, acceptDownloads: true,
    viewport: { width: 1280, height: 1000 },
  });
  const page = context.pages()[0] || (await context.newPage());
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e}`));
  try {
    return await fn({ context, page, consoleLines });
  } catch (e) {
    if (consoleLines.length) e.message += `\n  browser console (last 15):\n    ${consoleLines.slice(-15).join('\n    ')}`;
    throw e;
  } finally {
    await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
}

async function open(page, url) {
  await page.goto(url);
  await page.waitForFunction(() => {
    const s = document.querySelector('[data-testid=engine]')?.dataset.state;
    return s === 'ready' || s === 'failed';
  }, null, { timeout: 300_000 });
  const state = await page.getAttribute('[data-testid=engine]', 'data-state');
  if (state !== 'ready') throw new Error(`model did not load: ${await page.textContent('[data-testid=error]').catch(() => '?')}`);
}

async function statusText(page) {
  return (await page.textContent('[data-testid=status]')).trim();
}

// Gives one file to the app and waits for its result; returns what the page shows. An image the
// out-of-distribution check refuses is shown anyway (its `refused` is then true) unless
// `showAnyway` is false, when only the refusal is awaited.
async function classify(page, file, { showAnyway = true } = {}) {
  const before = await page.evaluate(() => document.querySelector('#result')?.dataset.id ?? null);
  await page.setInputFiles('[data-testid=file-input]', file);
  const name = basename(file);
  // A new result (each has its own id), for this file, with its heatmap drawn or refused.
  await page.waitForFunction(([n, old]) => {
    const result = document.querySelector('#result');
    return result && result.dataset.id !== old && result.querySelector('.file-name')?.textContent === n
      && (result.querySelector('[data-testid=heatmap]')?.dataset.ready === 'true' || result.querySelector('[data-testid=ood-refusal]'));
  }, [name, before], { timeout: IMAGE_TIMEOUT });
  const refused = !!(await page.$('[data-testid=ood-refusal]'));
  if (refused && !showAnyway) return { refused };
  if (refused) {
    await page.click('[data-testid=show-anyway]');
    await page.waitForFunction(() => document.querySelector('#result [data-testid=heatmap]')?.dataset.ready === 'true', null, { timeout: IMAGE_TIMEOUT });
  }
  return {
    refused,
    probability: Number(await page.textContent('[data-testid=probability]')),
    probabilityText: (await page.textContent('[data-testid=probability]')).trim(),
    label: (await page.textContent('[data-testid=label]')).trim(),
    band: (await page.textContent('[data-testid=band]')).trim(),
  };
}

// Statistics of the heatmap canvas: how many distinct colours and how much they vary.
async function heatmapStats(page) {
  return page.evaluate(() => {
    const c = document.querySelector('[data-testid=heatmap]');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const colours = new Set();
    let sum = 0, sum2 = 0, n = 0, redish = 0, blueish = 0;
    for (let i = 0; i < d.length; i += 16) {
      colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      const hue = d[i] - d[i + 2];
      sum += hue; sum2 += hue * hue; n++;
      if (d[i] > d[i + 2] + 40) redish++;
      if (d[i + 2] > d[i] + 40) blueish++;
    }
    const mean = sum / n;
    return { width: c.width, height: c.height, colours: colours.size, std: Math.sqrt(sum2 / n - mean * mean), redish: redish / n, blueish: blueish / n };
  });
}

// The heatmap canvas's red-minus-blue per pixel: the colour map alone (the X-ray under it is grey).
async function heatmapHue(page) {
  return page.evaluate(() => {
    const c = document.querySelector('[data-testid=heatmap]');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const hue = [];
    for (let i = 0; i < d.length; i += 4) hue.push(d[i] - d[i + 2]);
    return { width: c.width, height: c.height, hue };
  });
}

function correlation(a, b) {
  const mean = (x) => x.reduce((s, v) => s + v, 0) / x.length;
  const [ma, mb] = [mean(a), mean(b)];
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += (a[i] - ma) * (b[i] - mb); aa += (a[i] - ma) ** 2; bb += (b[i] - mb) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

function checkHeatmap(stats) {
  assert(stats.width > 50 && stats.height > 50, `heatmap canvas is ${stats.width}×${stats.height}`);
  assert(stats.colours > 200 && stats.std > 10, `heatmap looks flat: ${JSON.stringify(stats)}`);
  assert(stats.redish > 0.005 || stats.blueish > 0.005, `heatmap has no jet colours: ${JSON.stringify(stats)}`);
}

function compare(shown, cli, file) {
  const expected = cli.get(basename(file));
  assert(expected && typeof expected.probability === 'number', `CLI gave no probability for ${file}: ${JSON.stringify(expected)}`);
  const delta = Math.abs(shown.probability - expected.probability);
  assert(delta <= TOLERANCE, `${basename(file)}: page ${shown.probabilityText} vs CLI ${expected.probability} (Δ ${delta.toExponential(2)})`);
  assert(shown.label === expected.label, `${basename(file)}: page label ${shown.label} vs CLI ${expected.label}`);
  assert(/^\d\.\d{4}$/.test(shown.probabilityText), `probability text '${shown.probabilityText}' is not 0–1 with 4 decimals`);
  return delta;
}

// --- checks -----------------------------------------------------------------------------------
const checks = {
  async webgpu({ url, cli }) {
    return withBrowser(async ({ page }) => {
      await open(page, url);
      const status = await statusText(page);
      assert(status.startsWith('WebGPU — '), `status is '${status}', expected the WebGPU path`);
      assert(/swiftshader/i.test(status), `status '${status}' does not name the SwiftShader adapter`);
      let worst = 0;
      for (const file of FOUR) {
        const shown = await classify(page, file);
        worst = Math.max(worst, compare(shown, cli, file));
        checkHeatmap(await heatmapStats(page));
      }
      await page.screenshot({ path: join(ARTIFACTS, 'webgpu-result.png'), fullPage: true });
      await page.check('[data-testid=side-by-side]');
      await page.$eval('[data-testid=opacity]', (el) => { el.value = '0.7'; el.dispatchEvent(new Event('input', { bubbles: true })); });
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=download-overlay]')]);
      const png = readFileSync(await download.path());
      assert(png.subarray(1, 4).toString() === 'PNG', 'the overlay download is not a PNG');
      await page.screenshot({ path: join(ARTIFACTS, 'webgpu-side-by-side.png'), fullPage: true });
      return `${status}; ${FOUR.length} X-rays, max |Δp| vs CLI ${worst.toExponential(2)}`;
    });
  },

  async cpu({ url, cli }) {
    return withBrowser(async ({ page }) => {
      await open(page, `${url}?backend=cpu`);
      const status = await statusText(page);
      assert(status.startsWith('CPU'), `status is '${status}', expected the forced CPU path`);
      let worst = 0;
      for (const file of [NORMAL[2], PNEUMONIA[2]]) {
        const shown = await classify(page, file);
        worst = Math.max(worst, compare(shown, cli, file));
        checkHeatmap(await heatmapStats(page));
      }
      await page.screenshot({ path: join(ARTIFACTS, 'cpu-result.png'), fullPage: true });
      return `${status}; max |Δp| vs CLI ${worst.toExponential(2)}`;
    });
  },

  // DICOM files (fixtures from tests/fixtures/make_dicom.py and make_dicom_codecs.py) give the CLI's probability, show
  // the header panel with its warnings, never show the (fake) patient, and an unsupported
  // transfer syntax is named.
  async dicom({ url }) {
    const dir = join(ROOT, 'tests/fixtures/dicom');
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    const files = ['ct_lateral.dcm', 'IM000001', 'windowed_12bit.dcm', 'rle_lossless.dcm', 'explicit_be_16bit.dcm', 'jpeg_lossless_sv1_16bit.dcm']
      .map((f) => join(dir, f));
    const cli = cliPredictions(files);
    const secrets = [manifest.patient_name, manifest.patient_id, 'Zorglub', '99173', 'ACC-7781', 'Fake General Hospital'];
    return withBrowser(async ({ page }) => {
      await open(page, `${url}?backend=cpu`);
      let worst = 0;
      for (const file of files) {
        const shown = await classify(page, file);
        worst = Math.max(worst, compare(shown, cli, file));
        const panel = await page.textContent('[data-testid=dicom]');
        const expected = cli.get(basename(file)).dicom;
        assert(panel.includes(expected.transfer_syntax), `${basename(file)}: DICOM panel '${panel}' lacks ${expected.transfer_syntax}`);
        const warnings = await page.locator('[data-testid=dicom-warnings] li').count();
        assert(warnings === expected.warnings.length, `${basename(file)}: ${warnings} warnings shown, CLI has ${expected.warnings.length}`);
        const text = await page.evaluate(() => document.documentElement.outerHTML);
        for (const secret of secrets) assert(!text.includes(secret), `${basename(file)}: the page contains '${secret}'`);
      }
      await page.setInputFiles('[data-testid=file-input]', join(dir, 'jpeg2000_unsupported.dcm'));
      await page.waitForFunction(() => /JPEG 2000/.test(document.querySelector('[data-testid=error]')?.textContent ?? ''), null, { timeout: 60_000 });
      await page.screenshot({ path: join(ARTIFACTS, 'dicom-error.png'), fullPage: true });
      return `${files.length} DICOM files, max |Δp| vs CLI ${worst.toExponential(2)}; no patient identifier in the page; JPEG 2000 named`;
    });
  },

  // The page shows each file as it was analysed, whatever the browser makes of the file itself:
  // a JPEG stored turned with an EXIF Orientation (browsers show it upright, not all do so for a
  // PNG) and a 16-bit PNG of 12-bit values (browsers show it nearly black) give the upright 8-bit
  // file's probability (and the CLI's), its heatmap over the upright picture, and its brightness.
  async display({ url }) {
    const files = [EXIF_UPRIGHT, EXIF_TURNED, TWELVE_BIT];
    const cli = cliPredictions(files);
    return withBrowser(async ({ page }) => {
      await open(page, `${url}?backend=cpu`);
      const shown = [], maps = [], grey = [];
      let worst = 0;
      for (const file of files) {
        shown.push(await classify(page, file));
        worst = Math.max(worst, compare(shown.at(-1), cli, file));
        maps.push(await heatmapHue(page));
        grey.push(await page.evaluate(() => {
          const c = document.querySelector('[data-testid=original]');
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let sum = 0;
          for (let i = 0; i < d.length; i += 4) sum += d[i];
          return sum / (d.length / 4);
        }));
      }
      const [up] = maps;
      const r = [];
      for (const [i, map] of maps.entries()) {
        const name = basename(files[i]);
        assert(map.width === up.width && map.height === up.height && up.width > up.height,
          `${name}: heatmap ${map.width}×${map.height}, the upright file's ${up.width}×${up.height} (landscape)`);
        const delta = Math.abs(shown[0].probability - shown[i].probability);
        assert(delta < 0.01, `upright p ${shown[0].probabilityText}, ${name} p ${shown[i].probabilityText}`);
        r.push(correlation(up.hue, map.hue));
        assert(r.at(-1) > 0.9, `${name}: heatmap correlates ${r.at(-1).toFixed(3)} with the upright file's`);
        assert(Math.abs(grey[i] - grey[0]) < 0.1 * grey[0],
          `${name}: shown with mean grey ${grey[i].toFixed(1)}, the upright file with ${grey[0].toFixed(1)}`);
      }
      return `upright p ${shown[0].probabilityText}, EXIF-turned ${shown[1].probabilityText}, 12-bit PNG ${shown[2].probabilityText} `
        + `(max |Δp| vs CLI ${worst.toExponential(2)}); heatmaps ${up.width}×${up.height}, correlation ${r[1].toFixed(3)} and ${r[2].toFixed(3)}; `
        + `mean grey shown ${grey.map((g) => g.toFixed(1)).join(', ')}`;
    });
  },

  async privacy({ url, server }) {
    return withBrowser(async ({ context, page }) => {
      const requests = [];
      context.on('request', (r) => requests.push({ method: r.method(), url: r.url(), body: r.postDataBuffer() }));
      const serverStart = server.log.length;
      await open(page, url);
      for (const file of FOUR) await classify(page, file);
      const origin = new URL(url).origin;
      const bad = [];
      for (const r of requests) {
        const u = new URL(r.url);
        if (u.protocol === 'blob:' || u.protocol === 'data:') {
          // Local object URLs of the user's own files, never sent over the network.
          if (!u.href.startsWith(`blob:${origin}/`) && u.protocol !== 'data:') bad.push(`foreign blob ${r.url}`);
          continue;
        }
        if (r.method !== 'GET') bad.push(`${r.method} ${r.url}`);
        if (u.origin !== origin) bad.push(`third-party ${r.url}`);
        if (r.body && r.body.length) bad.push(`request with a body: ${r.url}`);
        const path = decodeURIComponent(u.pathname).replace(/^\/pneumoscope\//, '');
        if (!existsSync(join(DIST, path || 'index.html'))) bad.push(`not a file of the app: ${r.url}`);
      }
      for (const r of server.log.slice(serverStart)) {
        if (r.method !== 'GET') bad.push(`server saw ${r.method} ${r.path}`);
      }
      assert(bad.length === 0, `privacy violations:\n    ${bad.join('\n    ')}`);
      const network = requests.filter((r) => r.url.startsWith('http'));
      return `${network.length} requests, all same-origin GETs of static files; server saw ${server.log.length - serverStart}`;
    });
  },

  async badInputs({ url, cli }) {
    const dir = mkdtempSync(join(tmpdir(), 'pneumoscope-bad-'));
    const text = join(dir, 'notes.png');
    writeFileSync(text, 'This is a text file renamed to .png, not an X-ray.\n');
    const empty = join(dir, 'empty.png');
    writeFileSync(empty, '');
    const truncated = join(dir, 'truncated.jpeg');
    const jpeg = readFileSync(NORMAL[3]);
    writeFileSync(truncated, jpeg.subarray(0, Math.floor(jpeg.length / 3)));
    // 8000×7500 (60 MP) grayscale PNG of zeros: small on disk, refused from its header.
    const huge = join(dir, 'huge-60mp.png');
    writeFileSync(huge, zeroPng(8000, 7500));
    // A 1×1 GIF: an image, but not a format the model takes.
    const gif = join(dir, 'pixel.gif');
    writeFileSync(gif, Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64'));
    const cases = [
      [text, /not an image/i],
      [empty, /empty/i],
      [truncated, /damaged or truncated/i],
      [huge, /60 megapixels.*limit is 50/i],
      [gif, /GIF images are not supported/i],
      // Committed fixtures (tests/fixtures/make_bad_inputs.py), a representative subset of the
      // README's table; tests/cli.rs checks every row through the CLI.
      [join(ROOT, 'tests/data/bad/drawing.svg'), /SVG \(vector\) images are not supported/i],
      [join(ROOT, 'tests/data/bad/archive_renamed.dcm'), /zip archive, not an image/i],
      [join(ROOT, 'tests/data/bad/zero_by_zero.png'), /no pixels \(0×0\)/i],
      [join(ROOT, 'tests/data/bad/deflate_bomb.dcm'), /inflates to more than 111 MB/i],
      [join(ROOT, 'tests/data/bad/no_pixel_data.dcm'), /no Pixel Data/i],
    ];
    return withBrowser(async ({ page }) => {
      await open(page, url);
      for (const [file, expected] of cases) {
        await page.setInputFiles('[data-testid=file-input]', file);
        await page.waitForSelector('[data-testid=error]', { timeout: IMAGE_TIMEOUT });
        const message = (await page.textContent('[data-testid=error]')).trim();
        assert(expected.test(message), `${basename(file)}: error '${message}' does not match ${expected}`);
        await page.screenshot({ path: join(ARTIFACTS, `bad-${basename(file)}.png`) });
        // The app must still work for the next image.
        const shown = await classify(page, NORMAL[3]);
        compare(shown, cli, NORMAL[3]);
        assert(!(await page.$('[data-testid=error]')), `the error stayed after a good image (${basename(file)})`);
      }
      rmSync(dir, { recursive: true, force: true });
      return 'text-as-png, 0-byte, truncated JPEG, 60-MP PNG, GIF, SVG, zip renamed .dcm, 0×0 PNG, DICOM deflate bomb and DICOM without pixels each show a clear error; the next image works';
    });
  },

  // Weights that fail their sha256 (altered in transit) are refused with a clear message, and
  // "Try again" loads them once they arrive intact.
  async badWeights({ url, cli }) {
    return withBrowser(async ({ context, page }) => {
      await context.route(/\.safetensors/, async (route) => {
        const response = await route.fetch();
        const body = Buffer.from(await response.body());
        body[body.length >> 1] ^= 0xff;
        await route.fulfill({ response, body });
      });
      await page.goto(url);
      await page.waitForFunction(() => document.querySelector('[data-testid=engine]')?.dataset.state === 'failed', null, { timeout: 300_000 });
      const message = (await page.textContent('[data-testid=error]')).trim();
      assert(/do not match the model card/.test(message), `unexpected error for altered weights: ${message}`);
      await page.screenshot({ path: join(ARTIFACTS, 'bad-weights.png'), fullPage: true });
      await context.unroute(/\.safetensors/);
      await page.getByRole('button', { name: 'Try again' }).click();
      await page.waitForFunction(() => document.querySelector('[data-testid=engine]')?.dataset.state === 'ready', null, { timeout: 300_000 });
      const shown = await classify(page, NORMAL[2]);
      compare(shown, cli, NORMAL[2]);
      return `altered weights refused ("${message.slice(0, 60)}…"); after "Try again" p = ${shown.probabilityText}`;
    });
  },

  async language({ url }) {
    return withBrowser(async ({ page }) => {
      await open(page, url);
      await page.selectOption('[data-testid=language]', 'fr');
      await page.waitForFunction(() => document.body.innerText.includes('Aide pédagogique'));
      assert((await page.getAttribute('html', 'lang')) === 'fr', 'html lang is not fr');
      await page.setInputFiles('[data-testid=file-input]', join(ROOT, 'package.json'));
      await page.waitForSelector('[data-testid=error]');
      const frError = await page.textContent('[data-testid=error]');
      assert(/n'est pas une image/.test(frError), `error not in French: ${frError}`);
      await page.reload();
      await page.waitForFunction(() => document.body.innerText.includes('Aide pédagogique'));
      assert((await page.inputValue('[data-testid=language]')) === 'fr', 'French was not remembered after reload');
      await page.screenshot({ path: join(ARTIFACTS, 'french.png'), fullPage: true });
      await page.selectOption('[data-testid=language]', 'en');
      await page.waitForFunction(() => document.body.innerText.includes('Educational aid only'));
      return 'EN → FR (texts and errors translated, remembered across reload) → EN';
    });
  },

  async batch({ url, cli }) {
    return withBrowser(async ({ page }) => {
      // The batch UI is what is under test here; the CPU backend keeps it fast under SwiftShader.
      await open(page, `${url}?backend=cpu`);
      // Every main-thread task of 50 ms or more while the batch runs (the analysis itself runs
      // in the worker): the goal is none; the longest is reported, not asserted (it depends on
      // the machine).
      await page.evaluate(() => {
        window.__longTasks = [];
        new PerformanceObserver((list) => list.getEntries().forEach((e) => window.__longTasks.push(e.duration)))
          .observe({ type: 'longtask' });
      });
      await page.setInputFiles('[data-testid=file-input]', TWENTY);
      await page.waitForSelector('[data-testid=batch-table]');
      // The page stays responsive while the batch runs.
      const t0 = Date.now();
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r())));
      const frameMs = Date.now() - t0;
      await page.waitForFunction((n) => document.querySelectorAll('[data-testid=batch-table] tbody tr').length === n,
        TWENTY.length, { timeout: IMAGE_TIMEOUT * 4 });
      const longTasks = await page.evaluate(() => window.__longTasks);
      const longest = longTasks.length ? `${Math.round(Math.max(...longTasks))} ms` : 'none ≥ 50 ms';
      // Rows refused by the out-of-distribution check have no probability: they sort last.
      const all = await page.$$eval('[data-testid=batch-table] tbody tr', (rows) => rows.map((r) => ({
        file: r.querySelector('.file').textContent, p: Number(r.querySelector('[data-col=probability]').textContent),
        refused: r.dataset.refused === 'true',
      })));
      const firstRefused = all.findIndex((r) => r.refused);
      assert(firstRefused < 0 || all.slice(firstRefused).every((r) => r.refused), 'refused rows are not last');
      const shown = all.filter((r) => !r.refused);
      const sortedDesc = shown.every((r, i) => i === 0 || shown[i - 1].p >= r.p);
      assert(sortedDesc, `table not sorted high → low: ${shown.map((r) => r.p).join(', ')}`);
      await page.click('[data-testid=sort-probability]');
      const asc = await page.$$eval('[data-testid=batch-table] tbody tr:not([data-refused=true]) [data-col=probability]', (c) => c.map((x) => Number(x.textContent)));
      assert(asc.every((p, i) => i === 0 || asc[i - 1] <= p), 'table not sorted low → high after clicking the header');
      let worst = 0;
      for (const r of shown) {
        const d = Math.abs(r.p - cli.get(r.file).probability);
        worst = Math.max(worst, d);
        assert(d <= TOLERANCE, `${r.file}: table ${r.p} vs CLI ${cli.get(r.file).probability}`);
      }
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=csv-export]')]);
      const csv = readFileSync(await download.path(), 'utf8').trim().split('\n');
      assert(csv[0].startsWith('file,probability,label,band'), `CSV header: ${csv[0]}`);
      assert(csv.length === TWENTY.length + 1, `CSV has ${csv.length - 1} rows`);
      writeFileSync(join(ARTIFACTS, 'triage.csv'), csv.join('\n') + '\n');
      await page.screenshot({ path: join(ARTIFACTS, 'batch.png'), fullPage: true });
      // A row opens the detail view.
      await page.click('[data-testid=batch-table] tbody tr:first-child');
      await page.waitForSelector('[data-testid=probability]');
      // Cancel: start another batch and stop it at once.
      await page.setInputFiles('[data-testid=file-input]', [...TWENTY, ...TWENTY]);
      // The click lands when the page yields between two images.
      await page.click('[data-testid=batch-cancel]', { timeout: IMAGE_TIMEOUT });
      await page.waitForFunction(() => /Cancelled/.test(document.querySelector('[data-testid=batch-progress]')?.textContent || ''), null, { timeout: IMAGE_TIMEOUT });
      const done = await page.$$eval('[data-testid=batch-table] tbody tr', (r) => r.length);
      assert(done < 2 * TWENTY.length, `cancel did not stop the batch (${done} rows)`);
      return `20 rows (${all.length - shown.length} refused as out of distribution), sorted both ways, CSV ${csv.length - 1} rows, max |Δp| ${worst.toExponential(2)}, cancel stopped at ${done}; first frame during batch ${frameMs} ms; main-thread tasks ≥ 50 ms during the batch: ${longTasks.length} (longest ${longest})`;
    });
  },

  // Crash containment: the analysis runs in a worker. Terminated mid-batch, a fresh worker loads,
  // the file it was on is tried once more, and the batch goes on with the CLI's probabilities;
  // a cut DICOM fragment (which once panicked dicom-rs) gets its message and is not fatal.
  async worker({ url, cli }) {
    return withBrowser(async ({ page, consoleLines }) => {
      await open(page, `${url}?backend=cpu`);
      const cut = join(ROOT, 'tests/data/bad/fragment_cut_short.dcm');
      const files = [...TWENTY.slice(0, 6), cut, ...TWENTY.slice(6, 12)];
      await page.setInputFiles('[data-testid=file-input]', files);
      await page.waitForFunction(() => document.querySelectorAll('[data-testid=batch-table] tbody tr').length >= 3,
        null, { timeout: IMAGE_TIMEOUT * 2 });
      const first = page.workers();
      assert(first.length === 1, `${first.length} workers before the kill`);
      const atKill = await page.$$eval('[data-testid=batch-table] tbody tr', (r) => r.length);
      // Through the DevTools protocol, inside the worker: it ends without a word to the page.
      await first[0].evaluate(() => { setTimeout(() => self.close(), 0); });
      await page.waitForFunction((n) => document.querySelectorAll('[data-testid=batch-table] tbody tr').length === n,
        files.length, { timeout: IMAGE_TIMEOUT * 4 });
      const rows = await page.$$eval('[data-testid=batch-table] tbody tr', (rs) => rs.map((r) => ({
        file: r.querySelector('.file').textContent, p: r.querySelector('[data-col=probability]').textContent,
        failed: r.classList.contains('failed'), message: r.querySelector('[data-col=band]').textContent,
      })));
      const cutRow = rows.find((r) => r.file.startsWith('fragment_cut_short'));
      assert(cutRow?.failed && /DICOM/.test(cutRow.message), `cut DICOM row: ${JSON.stringify(cutRow)}`);
      const stopped = rows.filter((r) => r.failed && r !== cutRow);
      assert(stopped.length <= 1, `${stopped.length} rows failed after the kill: ${JSON.stringify(stopped)}`);
      assert(stopped.every((r) => /analysis stopped/.test(r.message)), `unexpected failure: ${JSON.stringify(stopped)}`);
      assert(consoleLines.some((l) => /analysis worker ended/.test(l)), 'the page did not notice the worker end');
      const now = page.workers();
      assert(now.length === 1 && now[0] !== first[0], `${now.length} workers after the restart`);
      let worst = 0;
      for (const r of rows.filter((r) => !r.failed && r.p !== '')) {
        const d = Math.abs(Number(r.p) - cli.get(r.file).probability);
        worst = Math.max(worst, d);
        assert(d <= TOLERANCE, `${r.file}: ${r.p} vs CLI ${cli.get(r.file).probability}`);
      }
      return `worker terminated after ${atKill} of ${files.length} rows: ${stopped.length} file(s) failed, a new worker finished the batch (${rows.length} rows, max |Δp| ${worst.toExponential(2)}); the cut DICOM: "${cutRow.message}"`;
    });
  },

  // Out-of-distribution refusal: a photo is refused with no probability, label or heatmap until
  // "Show the result anyway"; a negative X-ray is recognised as inverted and "Invert" analyses
  // it; refused rows are marked in the triage table and its CSV; the refusal is translated.
  async ood({ url }) {
    const cli = cliPredictions([NOT_XRAY, XRAY_64]);
    const cliInverted = cliPredictions([XRAY_64_INVERTED], ['--invert']);
    assert(cli.get(basename(NOT_XRAY)).refused === true, `the CLI does not refuse ${NOT_XRAY}`);
    return withBrowser(async ({ page }) => {
      await open(page, `${url}?backend=cpu`);
      const card = await page.textContent('[data-testid=card-ood]');
      assert(/threshold/.test(card), `model card panel shows no OOD threshold: ${card}`);

      const refused = await classify(page, NOT_XRAY, { showAnyway: false });
      assert(refused.refused, 'the photo was not refused');
      const text = await page.textContent('[data-testid=ood-refusal]');
      assert(/does not look like a chest X-ray the model was trained on/.test(text), `refusal text: ${text}`);
      assert(!(await page.$('[data-testid=probability]')) && !(await page.$('[data-testid=heatmap]')) && !(await page.$('[data-testid=label]')),
        'a refused image shows a probability, label or heatmap');
      await page.screenshot({ path: join(ARTIFACTS, 'ood-refused.png'), fullPage: true });
      await page.click('[data-testid=show-anyway]');
      await page.waitForFunction(() => document.querySelector('#result [data-testid=heatmap]')?.dataset.ready === 'true', null, { timeout: IMAGE_TIMEOUT });
      const status = await page.getAttribute('[data-testid=ood-status]', 'data-status');
      assert(status === 'refused', `shown-anyway result has OOD status ${status}`);
      const anyway = { probability: Number(await page.textContent('[data-testid=probability]')), probabilityText: (await page.textContent('[data-testid=probability]')).trim(), label: (await page.textContent('[data-testid=label]')).trim() };
      compare(anyway, cli, NOT_XRAY);
      await page.screenshot({ path: join(ARTIFACTS, 'ood-shown-anyway.png'), fullPage: true });

      const accepted = await classify(page, XRAY_64, { showAnyway: false });
      assert(!accepted.refused, 'the test X-ray was refused');
      assert((await page.getAttribute('[data-testid=ood-status]', 'data-status')) === 'passed', 'the X-ray did not pass the OOD check');
      compare(accepted, cli, XRAY_64);

      const negative = await classify(page, XRAY_64_INVERTED, { showAnyway: false });
      assert(negative.refused, 'the inverted X-ray was not refused');
      assert((await page.getAttribute('[data-testid=apply-fix]', 'data-fix')) === 'invert', 'no "Invert" offered for the negative');
      assert(/inverted/.test(await page.textContent('[data-testid=ood-hint]')), 'no "looks inverted" hint');
      const before = await page.evaluate(() => document.querySelector('#result').dataset.id);
      await page.click('[data-testid=apply-fix]');
      await page.waitForFunction((old) => {
        const r = document.querySelector('#result');
        return r && r.dataset.id !== old && r.querySelector('[data-testid=heatmap]')?.dataset.ready === 'true';
      }, before, { timeout: IMAGE_TIMEOUT });
      assert(/Invert/.test(await page.textContent('[data-testid=fix-applied]')), 'the applied fix is not named');
      const fixed = { probability: Number(await page.textContent('[data-testid=probability]')), probabilityText: (await page.textContent('[data-testid=probability]')).trim(), label: (await page.textContent('[data-testid=label]')).trim() };
      compare(fixed, cliInverted, XRAY_64_INVERTED);
      await page.screenshot({ path: join(ARTIFACTS, 'ood-inverted-fixed.png'), fullPage: true });

      await page.setInputFiles('[data-testid=file-input]', [NOT_XRAY, XRAY_64]);
      await page.waitForFunction(() => document.querySelectorAll('[data-testid=batch-table] tbody tr').length === 2 && !document.querySelector('[data-testid=batch-cancel]'),
        null, { timeout: IMAGE_TIMEOUT * 2 });
      const rows = await page.$$eval('[data-testid=batch-table] tbody tr', (rs) => rs.map((r) => ({
        file: r.querySelector('.file').textContent.trim(), refused: r.dataset.refused, p: r.querySelector('[data-col=probability]').textContent.trim(),
        label: r.querySelector('[data-col=label]').textContent.trim(),
      })));
      const photoRow = rows.find((r) => r.file.startsWith('not_xray'));
      assert(photoRow && photoRow.refused === 'true' && photoRow.p === '' && photoRow.label === 'refused', `batch row of the photo: ${JSON.stringify(photoRow)}`);
      assert(rows.find((r) => r.file.startsWith('xray_64'))?.refused === 'false', 'the X-ray row is marked refused');
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=csv-export]')]);
      const csv = readFileSync(await download.path(), 'utf8');
      assert(/"not_xray_64.png",,,,[\d.]+,[\d.]+,refused,/.test(csv), `CSV does not mark the photo refused:\n${csv}`);

      await page.selectOption('[data-testid=language]', 'fr');
      await classify(page, NOT_XRAY, { showAnyway: false });
      const fr = await page.textContent('[data-testid=ood-refusal]');
      assert(/ne ressemble pas aux radiographies/.test(fr) && /Afficher le résultat quand même/.test(fr), `refusal not in French: ${fr}`);
      await page.selectOption('[data-testid=language]', 'en');
      return `photo refused (no probability/label/heatmap), shown anyway p = ${anyway.probabilityText}; X-ray passed; negative → "Invert" → p = ${fixed.probabilityText}; batch row and CSV marked refused; French refusal`;
    });
  },

  // A Keras model imported by the CLI (tests/fixtures/keras/mlp.keras: Rescaling, DenseNet,
  // Dense-ReLU-Dropout-Dense) and served as the app's weights/ folder: the page loads it, shows
  // its provenance and the unavailable OOD check, and gives the CLI's probability.
  async keras() {
    const site = mkdtempSync(join(tmpdir(), 'pneumoscope-keras-site-'));
    try {
      cpSync(DIST, site, { recursive: true });
      rmSync(join(site, 'weights'), { recursive: true, force: true });
      execFileSync(CLI, ['import', join(ROOT, 'tests/fixtures/keras/mlp.keras'), '--out', join(site, 'weights')], { stdio: 'pipe' });
      const card = join(site, 'weights/model-card.json');
      const image = join(ROOT, 'tests/data/keras_pneumonia_128.png');
      const out = execFileSync(CLI, ['predict', '--card', card, image], { encoding: 'utf8' });
      const expected = JSON.parse(out.split('\n').find((l) => l.startsWith('{')));
      const { server, url } = await serve({ dir: site, prefix: '/imported/' });
      try {
        return await withBrowser(async ({ page }) => {
          await open(page, `${url}?backend=cpu`);
          const panel = await page.textContent('[data-testid=model-card]');
          assert(/imported from Keras/.test(panel), `model card panel shows no provenance: ${panel.slice(0, 300)}`);
          assert(/unavailable/i.test(await page.textContent('[data-testid=card-ood]')), 'the OOD check is not said to be unavailable');
          const shown = await classify(page, image);
          compare(shown, new Map([[basename(image), expected]]), image);
          return `imported mlp.keras served as weights/: provenance shown, OOD check unavailable, p = ${shown.probabilityText} (CLI ${expected.probability.toFixed(4)})`;
        });
      } finally {
        server.close();
      }
    } finally {
      rmSync(site, { recursive: true, force: true });
    }
  },

  async offline({ url, cli, server }) {
    return withBrowser(async ({ context, page }) => {
      const serverStart = server.log.length;
      await open(page, url);
      await page.evaluate(() => navigator.serviceWorker.ready);
      // Wait until the service worker has stored the weights.
      await page.waitForFunction(async () => {
        for (const name of await caches.keys()) {
          const keys = await (await caches.open(name)).keys();
          if (keys.some((k) => k.url.includes('sha256='))) return true;
        }
        return false;
      }, null, { timeout: 120_000, polling: 500 });
      // A first visit downloads the wasm, the JS glue and each weights file once (the service
      // worker stores what the page fetches; it does not fetch them a second time itself). The
      // 7 kB stylesheet is the exception: the page loads it before the worker exists, and the
      // worker's install stores its own copy. Trunk's hash drops leading zeros: ≤ 16 hex digits.
      const immutable = (path) => /(-[0-9a-f]{1,16}(_bg)?\.(js|wasm|css)|\.safetensors)$/.test(path.split('?')[0]);
      const downloads = new Map();
      for (const r of server.log.slice(serverStart)) {
        if (immutable(r.path) && !/\.css$/.test(r.path)) downloads.set(r.path, (downloads.get(r.path) ?? 0) + 1);
      }
      const twice = [...downloads].filter(([, n]) => n > 1).map(([path, n]) => `${path} ×${n}`);
      assert(twice.length === 0, `first visit downloaded files more than once: ${twice.join(', ')}`);
      for (const kind of [/\.wasm$/, /\.js$/, /\.safetensors/]) {
        assert([...downloads.keys()].some((p) => kind.test(p.split('?')[0])), `first visit: expected ${kind} from the server, saw ${[...downloads.keys()].join(', ')}`);
      }
      // A second visit online takes these content-addressed files from the cache: nothing again.
      const secondStart = server.log.length;
      await open(page, url);
      const again = server.log.slice(secondStart).filter((r) => immutable(r.path)).map((r) => r.path);
      assert(again.length === 0, `second visit downloaded again: ${again.join(', ')}`);
      await context.setOffline(true);
      await page.reload();
      await open(page, url.replace(/$/, ''));
      const shown = await classify(page, PNEUMONIA[4]);
      compare(shown, cli, PNEUMONIA[4]);
      await page.screenshot({ path: join(ARTIFACTS, 'offline.png'), fullPage: true });
      await context.setOffline(false);
      return `first visit downloaded ${downloads.size} wasm/JS/weights files once each, a second visit no build or weights file; reloaded and classified offline (p = ${shown.probabilityText})`;
    });
  },
};

// --- main -------------------------------------------------------------------------------------
const CHECK_TIMEOUT = Number(process.env.E2E_CHECK_TIMEOUT_MS || 600_000);

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  assert(existsSync(join(DIST, 'index.html')), 'dist/ is missing: run `trunk build --release` first');
  const wanted = process.argv.slice(2);
  const names = Object.keys(checks).filter((n) => wanted.length === 0 || wanted.includes(n));
  const { server, log: serverLog, url } = await serve({ dir: DIST, prefix: '/pneumoscope/' });
  log(`serving dist/ at ${url}`);
  const files = [...new Set([...TWENTY, ...FOUR])];
  const cli = cliPredictions(files);
  log(`native CLI: ${cli.size} predictions`);
  const ctx = { url, cli, server: { log: serverLog } };
  let passed = 0, failed = 0;
  for (const name of names) {
    const start = Date.now();
    try {
      // A hung page must fail its check, not the whole run.
      const detail = await Promise.race([
        checks[name](ctx),
        new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out after ${CHECK_TIMEOUT / 1000} s`)), CHECK_TIMEOUT)),
      ]);
      passed++;
      log(`PASS ${name} (${((Date.now() - start) / 1000).toFixed(1)} s): ${detail}`);
    } catch (e) {
      failed++;
      log(`FAIL ${name} (${((Date.now() - start) / 1000).toFixed(1)} s): ${e.message}`);
    }
  }
  server.close();
  log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  console.log('0 passed, 1 failed');
  process.exit(1);
});
