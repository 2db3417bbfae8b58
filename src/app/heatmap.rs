//! The Grad-CAM overlay: the X-ray drawn by the browser, the map coloured with the library's
//! jet colour map on top, an opacity slider, legend, side-by-side view and PNG download.

use super::i18n::T;
use super::util::download;
use super::{Analysis, use_state};
use crate::gradcam::{Cam, jet};
use leptos::html::Canvas;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::{Clamped, JsCast};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, HtmlImageElement};

/// Longest side of the drawn overlay, in pixels.
const MAX_SIDE: f64 = 768.0;

fn context(canvas: &HtmlCanvasElement) -> Option<CanvasRenderingContext2d> {
    canvas.get_context("2d").ok().flatten()?.dyn_into().ok()
}

/// The map as an image of its own size, coloured blue (ignored) → red (very important).
fn cam_canvas(cam: &Cam) -> Option<HtmlCanvasElement> {
    let document = web_sys::window()?.document()?;
    let canvas: HtmlCanvasElement = document.create_element("canvas").ok()?.dyn_into().ok()?;
    canvas.set_width(cam.width as u32);
    canvas.set_height(cam.height as u32);
    let mut rgba = Vec::with_capacity(cam.values.len() * 4);
    for &v in &cam.values {
        let [r, g, b] = jet(v);
        rgba.extend_from_slice(&[r, g, b, 255]);
    }
    let data = web_sys::ImageData::new_with_u8_clamped_array_and_sh(
        Clamped(&rgba),
        cam.width as u32,
        cam.height as u32,
    )
    .ok()?;
    context(&canvas)?.put_image_data(&data, 0.0, 0.0).ok()?;
    Some(canvas)
}

async fn load_image(url: &str) -> Option<HtmlImageElement> {
    let image = HtmlImageElement::new().ok()?;
    image.set_src(url);
    JsFuture::from(image.decode()).await.ok()?;
    Some(image)
}

struct Layers {
    image: HtmlImageElement,
    cam: HtmlCanvasElement,
}

fn draw(target: &HtmlCanvasElement, layers: &Layers, opacity: f64) {
    let (w, h) = (
        layers.image.natural_width() as f64,
        layers.image.natural_height() as f64,
    );
    let scale = (MAX_SIDE / w.max(h)).min(1.0);
    let (w, h) = ((w * scale).round().max(1.0), (h * scale).round().max(1.0));
    target.set_width(w as u32);
    target.set_height(h as u32);
    let Some(ctx) = context(target) else { return };
    let _ = ctx.draw_image_with_html_image_element_and_dw_and_dh(&layers.image, 0.0, 0.0, w, h);
    if opacity > 0.0 {
        // The model saw the whole image squeezed to a square: stretch the map back over it.
        ctx.set_global_alpha(opacity);
        ctx.set_image_smoothing_enabled(true);
        let _ = ctx.draw_image_with_html_canvas_element_and_dw_and_dh(&layers.cam, 0.0, 0.0, w, h);
        ctx.set_global_alpha(1.0);
    }
}

#[component]
pub fn HeatmapView(analysis: Analysis) -> impl IntoView {
    let state = use_state();
    let overlay = NodeRef::<Canvas>::new();
    let original = NodeRef::<Canvas>::new();
    let opacity = RwSignal::new(0.45f64);
    let side_by_side = RwSignal::new(false);
    let layers = StoredValue::new_local(None::<Layers>);
    let ready = RwSignal::new(false);

    let redraw = move || {
        layers.with_value(|l| {
            let Some(l) = l else { return };
            if let Some(canvas) = overlay.get_untracked() {
                draw(&canvas, l, opacity.get_untracked());
            }
            if let Some(canvas) = original.get_untracked() {
                draw(&canvas, l, 0.0);
            }
        })
    };

    let url = analysis.url.clone();
    let cam = analysis.cam.clone();
    spawn_local(async move {
        let (Some(image), Some(cam)) = (load_image(&url).await, cam_canvas(&cam)) else {
            return;
        };
        layers.set_value(Some(Layers { image, cam }));
        ready.set(true);
        redraw();
    });
    Effect::new(move |_| {
        opacity.track();
        side_by_side.track();
        if ready.get() {
            redraw();
        }
    });

    let name = analysis.name.clone();
    let save = move |_| {
        if let Some(canvas) = overlay.get_untracked()
            && let Ok(url) = canvas.to_data_url_with_type("image/png")
        {
            let stem = name.rsplit_once('.').map(|(s, _)| s).unwrap_or(&name);
            download(&url, &format!("{stem}-gradcam.png"));
        }
    };

    view! {
        <div class="heatmap">
            <h3>{move || state.t(T::Heatmap)}</h3>
            <div class="views" class:side=move || side_by_side.get()>
                <figure class:hidden=move || !side_by_side.get()>
                    <canvas node_ref=original data-testid="original"></canvas>
                    <figcaption>{move || state.t(T::Original)}</figcaption>
                </figure>
                <figure>
                    <canvas node_ref=overlay data-testid="heatmap" data-ready=move || ready.get().to_string()></canvas>
                    <figcaption>{move || state.t(T::Heatmap)}</figcaption>
                </figure>
            </div>
            <div class="legend" aria-hidden="false">
                <span class="ramp"></span>
                <span class="swatch red"></span>{move || state.t(T::LegendHigh)}
                <span class="swatch yellow"></span>{move || state.t(T::LegendMid)}
                <span class="swatch blue"></span>{move || state.t(T::LegendLow)}
            </div>
            <div class="controls">
                <label>
                    {move || state.t(T::Opacity)} " "
                    <input type="range" min="0" max="1" step="0.05" data-testid="opacity"
                        prop:value=move || opacity.get().to_string()
                        on:input=move |ev| opacity.set(event_target_value(&ev).parse().unwrap_or(0.45))/>
                </label>
                <label>
                    <input type="checkbox" data-testid="side-by-side" prop:checked=move || side_by_side.get()
                        on:change=move |ev| side_by_side.set(event_target_checked(&ev))/>
                    " " {move || state.t(T::SideBySide)}
                </label>
                <button data-testid="download-overlay" on:click=save>{move || state.t(T::DownloadPng)}</button>
            </div>
        </div>
    }
}
