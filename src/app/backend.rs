//! Chooses where the model runs: WebGPU when the browser offers an adapter, else burn's flex
//! CPU backend (also forced by `?backend=cpu` or the "Force CPU" control). The choice is made
//! in the analysis worker (`super::worker::guest`), where the model runs; the switches are the page's.

use burn::prelude::Device;
use serde::{Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum BrowserBackend {
    WebGpu { adapter: String },
    Cpu(CpuReason),
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum CpuReason {
    Unavailable,
    Forced,
    DeviceLost,
}

/// `?backend=cpu` in the page URL.
pub fn cpu_forced_by_url() -> bool {
    web_sys::window()
        .and_then(|w| w.location().search().ok())
        .and_then(|q| web_sys::UrlSearchParams::new_with_str(&q).ok())
        .and_then(|p| p.get("backend"))
        .is_some_and(|b| b.eq_ignore_ascii_case("cpu"))
}

/// Reloads the page with or without `?backend=cpu` (burn's wgpu runtime can be initialised once
/// per page, so switching back to the GPU needs a fresh page).
pub fn set_cpu_forced(forced: bool) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let location = window.location();
    let Ok(search) = location.search() else {
        return;
    };
    let Ok(params) = web_sys::UrlSearchParams::new_with_str(&search) else {
        return;
    };
    if forced {
        params.set("backend", "cpu");
    } else {
        params.delete("backend");
    }
    let query: String = params.to_string().into();
    let path = location.pathname().unwrap_or_default();
    let _ = location.set_href(&if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    });
}

/// The device to run on (in the page or a worker). `on_lost` is called if the GPU device is
/// lost later.
pub async fn choose(
    force_cpu: bool,
    on_lost: impl Fn(String) + Send + 'static,
) -> (Device, BrowserBackend) {
    if force_cpu {
        return (Device::flex(), BrowserBackend::Cpu(CpuReason::Forced));
    }
    if !has_webgpu() {
        return (Device::flex(), BrowserBackend::Cpu(CpuReason::Unavailable));
    }
    match Device::wgpu_options().init_with_setup_async().await {
        Ok((device, setup)) => {
            setup
                .device
                .set_device_lost_callback(move |reason, message| {
                    on_lost(format!("{reason:?}: {message}"));
                });
            let mut adapter = setup.adapter.get_info().name;
            if adapter.trim().is_empty() {
                adapter = adapter_description().await.unwrap_or_else(|| "GPU".into());
            }
            (device, BrowserBackend::WebGpu { adapter })
        }
        Err(e) => {
            web_sys::console::warn_1(&format!("WebGPU unavailable, using the CPU: {e}").into());
            (Device::flex(), BrowserBackend::Cpu(CpuReason::Unavailable))
        }
    }
}

/// `navigator.gpu` of the page or the worker this runs in.
fn gpu() -> Option<JsValue> {
    let navigator = js_sys::Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
    js_sys::Reflect::get(&navigator, &"gpu".into())
        .ok()
        .filter(|g| !g.is_undefined() && !g.is_null())
}

fn has_webgpu() -> bool {
    gpu().is_some()
}

/// Browsers often leave `GPUAdapterInfo.description` empty; name the adapter from its vendor
/// and architecture instead (e.g. "google swiftshader").
async fn adapter_description() -> Option<String> {
    let gpu = gpu()?;
    let request = js_sys::Reflect::get(&gpu, &"requestAdapter".into())
        .ok()?
        .dyn_into::<js_sys::Function>()
        .ok()?;
    let adapter = JsFuture::from(
        request
            .call0(&gpu)
            .ok()?
            .dyn_into::<js_sys::Promise>()
            .ok()?,
    )
    .await
    .ok()?;
    let info = js_sys::Reflect::get(&adapter, &"info".into()).ok()?;
    let field = |name: &str| {
        js_sys::Reflect::get(&info, &name.into())
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    };
    let parts: Vec<String> = ["description", "vendor", "architecture", "device"]
        .iter()
        .map(|f| field(f))
        .filter(|s| !s.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}
