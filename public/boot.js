// Starts the wasm app (Trunk's inline loader is replaced by this file so that the page can keep a
// Content-Security-Policy without 'unsafe-inline'), then registers the offline service worker.
const tag = document.querySelector('script[data-js][data-wasm]');

function fatal(message) {
  const box = document.getElementById('fatal');
  if (box) {
    box.textContent = message;
    box.hidden = false;
  }
}

try {
  const js = new URL(tag.dataset.js, document.baseURI).href;
  const wasm = new URL(tag.dataset.wasm, document.baseURI).href;
  const { default: init } = await import(js);
  await init({ module_or_path: wasm });
} catch (error) {
  console.error(error);
  fatal(`Pneumoscope could not start in this browser (WebAssembly failed to load): ${error}`);
}

if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('sw.js').catch((error) => console.warn('offline mode unavailable:', error));
}
