// The onnxruntime-web peer of our in-page bench hook (src/app/bench.rs): the same model
// (benches/convert_weights.py → /models/densenet121-<size>.onnx), the same input shape, one
// warm-up, then `runs` timed `session.run` calls whose output is read back on the CPU.
// Served by benches/browser/bench.mjs: /ort/ is node_modules/onnxruntime-web/dist (local files).
const q = new URLSearchParams(location.search);
const ep = q.get('ep') || 'wasm';
const threads = Number(q.get('threads') || 1);
const size = Number(q.get('size') || 128);
const runs = Number(q.get('runs') || 5);

async function main() {
  const ort = await import(ep === 'webgpu' ? '/ort/ort.webgpu.min.mjs' : '/ort/ort.wasm.min.mjs');
  ort.env.wasm.wasmPaths = '/ort/';
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.proxy = false;
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(`/models/densenet121-${size}.onnx`, {
    executionProviders: [ep], graphOptimizationLevel: 'all',
  });
  const createMs = performance.now() - t0;
  const values = new Float32Array(3 * size * size).map((_, i) => ((i % 251) / 125) - 1);
  const feeds = { input: new ort.Tensor('float32', values, [1, 3, size, size]) };
  const times = [];
  let logit = null;
  for (let i = 0; i <= runs; i++) {
    await new Promise((r) => setTimeout(r, 0));
    const start = performance.now();
    const out = await session.run(feeds);
    logit = (await out.logits.getData())[0];
    if (i > 0) times.push(performance.now() - start);
  }
  let adapter = null;
  if (ep === 'webgpu' && navigator.gpu) {
    const a = await navigator.gpu.requestAdapter();
    adapter = a && a.info ? [a.info.vendor, a.info.architecture, a.info.description].filter(Boolean).join(' ') : null;
  }
  return { ep, threads, size, forward_ms: times, create_ms: createMs, logit, adapter, crossOriginIsolated, ort: ort.env.versions };
}

main().then(
  (r) => { window.__ortBench = r; document.getElementById('out').textContent = JSON.stringify(r, null, 2); },
  (e) => { window.__ortBench = { ep, threads, size, error: String(e && e.stack || e) }; document.getElementById('out').textContent = String(e); },
);
