//! The browser app's entry point; everything lives in `pneumoscope::app`.
//! Build and serve it with Trunk: `trunk serve --release` (or `trunk build --release` → `dist/`).

#[cfg(target_arch = "wasm32")]
fn main() {
    // Static constructors (burn's GPU compiler registers its dialects through `inventory`) run
    // once, here, in the page and in the analysis worker alike. Without this explicit call the
    // linker runs them again at the start of every call from JavaScript into the wasm (each
    // closure, each value handed over): tens of milliseconds per table row on the main thread.
    // SAFETY: the linker-made `__wasm_call_ctors` only runs the constructors; called first.
    unsafe { __wasm_call_ctors() };
    pneumoscope::app::mount();
}

#[cfg(target_arch = "wasm32")]
unsafe extern "C" {
    fn __wasm_call_ctors();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "pneumoscope-web is the browser app; it runs as WebAssembly.\n\
         Build it with Trunk (rustup target add wasm32-unknown-unknown; cargo install --locked trunk --version 0.21.14):\n\
         \n    trunk serve --release      # http://127.0.0.1:8080\n    trunk build --release      # static site in dist/\n\
         \nThe native command line is the `pneumoscope` binary: cargo run --release -- --help"
    );
    std::process::exit(2);
}
