// Pneumoscope service worker: keeps the app shell, the wasm and the weights in a local cache so
// that after one visit the app loads and classifies with the network cut. It only ever fetches
// this site's own files; nothing is sent anywhere.
//
// Every file is downloaded once: install stores only the small shell; the wasm and the weights
// are stored as the page fetches them through this worker (boot.js waits for it to take control
// before it loads them), instead of a second, parallel download during install.
const CACHE = 'pneumoscope-v1';
const scope = new URL(self.registration.scope);
// Trunk's content-hashed build outputs: `name-<hash>.js`, `name-<hash>_bg.wasm`, `name-<hash>.css`,
// the hash a 64-bit number in hex without leading zeros (so 16 digits or fewer: one build in 16
// has 15, which a fixed {16} once missed, re-downloading the wasm on every online visit).
const HASHED_BUILD_FILE = /-[0-9a-f]{1,16}(_bg)?\.(js|wasm|css)$/;

// The small files of the current build, read from index.html (the JS name carries a content
// hash), plus the model card. Kept as absolute URLs in one set: `cache.addAll` rejects a list
// with the same request twice, and a rejected install silently discards the whole service worker.
async function shellFiles() {
  const files = new Set();
  const add = (path) => {
    const url = new URL(path, scope);
    if (url.origin === scope.origin) files.add(url.href);
  };
  ['./', 'index.html', 'manifest.webmanifest', 'boot.js', 'analysis-worker.js', 'weights/model-card.json'].forEach(add);
  const html = await (await fetch('./', { cache: 'no-cache' })).text();
  for (const match of html.matchAll(/(?:href|src|data-js)="([^"]+)"/g)) add(match[1]);
  return [...files];
}

// Weights are stored only once their bytes match the sha256 in their URL: a file altered or cut
// off in transit must never be served from the cache (the page would refuse it forever).
async function matchesSha256(response, expected) {
  const digest = await crypto.subtle.digest('SHA-256', await response.clone().arrayBuffer());
  const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
  return hex === expected;
}

async function store(cache, key, response, url) {
  const sha256 = url.searchParams.get('sha256');
  if (sha256 && !(await matchesSha256(response, sha256))) {
    console.warn('service worker: not caching weights that fail their sha256', url.href);
    return;
  }
  await cache.put(key, response);
  await dropOlderVersions(cache, url);
}

// One copy of each file: a new build's wasm, or new weights, replaces the previous version
// instead of piling up in the cache with every update of the app.
function stem(url) {
  if (url.searchParams.has('sha256')) return url.pathname;
  return url.pathname.replace(HASHED_BUILD_FILE, '$1.$2');
}

async function dropOlderVersions(cache, url) {
  if (!immutable(url)) return;
  for (const request of await cache.keys()) {
    const other = new URL(request.url);
    if (other.href !== url.href && immutable(other) && stem(other) === stem(url)) await cache.delete(request);
  }
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(await shellFiles());
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

// Content-addressed files (hashed build outputs, weights named by their sha256) never change:
// cache first. Everything else (the page, the card, boot.js): network first, cache when offline.
function immutable(url) {
  return url.searchParams.has('sha256') || HASHED_BUILD_FILE.test(url.pathname);
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== scope.origin) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const key = request.mode === 'navigate' ? new URL('./', scope).href : request;
    if (immutable(url)) {
      const hit = await cache.match(key);
      if (hit) return hit;
    }
    try {
      const response = await fetch(request);
      // Stored in the background so that the page streams the body (and its progress bar) at once.
      if (response.ok && response.type === 'basic') event.waitUntil(store(cache, key, response.clone(), url));
      return response;
    } catch (error) {
      const hit = await cache.match(key, { ignoreSearch: request.mode === 'navigate' });
      if (hit) return hit;
      throw error;
    }
  })());
});
