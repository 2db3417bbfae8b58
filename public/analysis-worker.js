// The analysis worker: runs the app's own wasm in its worker role (src/app/worker/guest.rs), so
// that decoding, the model and Grad-CAM never block the page. The page names the worker with
// `{js, wasm, lock}`: the app's JS and wasm URLs (as Trunk named them) and a Web Lock this worker
// holds for as long as it lives. The page asks for the same lock and is granted it when this
// worker ends, however it ends (a panic, running out of memory, being terminated), and then
// starts a fresh one. (A name rather than a query string, so that the offline cache holds one
// copy of this file.)
const { js, wasm, lock } = JSON.parse(self.name);

if (self.navigator.locks) {
  await new Promise((held) => {
    self.navigator.locks.request(lock, () => {
      held();
      return new Promise(() => {}); // never released while this worker lives
    });
  });
}
const { default: init } = await import(js);
await init({ module_or_path: wasm });
