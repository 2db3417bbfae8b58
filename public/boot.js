// Starts the wasm app (Trunk's inline loader is replaced by this file so that the page can keep a
// Content-Security-Policy without 'unsafe-inline'). The offline service worker is registered
// first and given a moment to take control, so that the wasm and the weights are downloaded once,
// through it, and stored on the way (see sw.js); without it the app starts all the same.
const tag = document.querySelector('script[data-js][data-wasm]');
const CONTROL_TIMEOUT_MS = 3000;

function fatal(message) {
  const box = document.getElementById('fatal');
  if (box) {
    box.textContent = message;
    box.hidden = false;
  }
}

async function offlineWorker() {
  if (!('serviceWorker' in navigator)) return;
  try {
    await navigator.serviceWorker.register('sw.js');
    if (navigator.serviceWorker.controller) return;
    // First visit: wait until the worker claims this page (a few hundred ms: it caches only the
    // small shell), but never hold the app back for long.
    const claimed = new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
    await Promise.race([claimed, new Promise((resolve) => setTimeout(resolve, CONTROL_TIMEOUT_MS))]);
  } catch (error) {
    console.warn('offline mode unavailable:', error);
  }
}

await offlineWorker();
try {
  const js = new URL(tag.dataset.js, document.baseURI).href;
  const wasm = new URL(tag.dataset.wasm, document.baseURI).href;
  const { default: init } = await import(js);
  await init({ module_or_path: wasm });
} catch (error) {
  console.error(error);
  fatal(`Pneumoscope could not start in this browser (WebAssembly failed to load): ${error}`);
}
