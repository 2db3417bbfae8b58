//! Small browser helpers: yielding to the event loop, fetching same-origin files, reading the
//! user's files, downloads, the panic hook.

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// Lets the browser render and handle input before the next piece of work.
pub async fn yield_now() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// A successful response for `url`, or why not.
async fn fetch(url: &str) -> Result<web_sys::Response, String> {
    let window = web_sys::window().ok_or("no window")?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(js_error)?
        .unchecked_into();
    if !response.ok() {
        return Err(format!(
            "HTTP {} {}",
            response.status(),
            response.status_text()
        ));
    }
    Ok(response)
}

pub async fn fetch_text(url: &str) -> Result<String, String> {
    let response = fetch(url).await?;
    let text = JsFuture::from(response.text().map_err(js_error)?)
        .await
        .map_err(js_error)?;
    text.as_string()
        .ok_or_else(|| "the response is not text".into())
}

/// Streams a download, reporting the bytes received so far.
pub async fn fetch_bytes(url: &str, progress: impl Fn(u64)) -> Result<Vec<u8>, String> {
    let response = fetch(url).await?;
    let body = response.body().ok_or("empty response")?;
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut bytes = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(js_error)?;
        let done = js_sys::Reflect::get(&chunk, &JsValue::from_str("done")).map_err(js_error)?;
        if done.as_bool().unwrap_or(true) {
            break;
        }
        let value = js_sys::Reflect::get(&chunk, &JsValue::from_str("value")).map_err(js_error)?;
        bytes.extend_from_slice(&js_sys::Uint8Array::new(&value).to_vec());
        progress(bytes.len() as u64);
    }
    Ok(bytes)
}

pub fn js_error(value: JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}

/// The bytes of a user's file (read locally; nothing is uploaded), in a buffer of their own.
pub async fn read_buffer(file: &web_sys::File) -> Result<js_sys::Uint8Array, String> {
    let buffer = JsFuture::from(file.array_buffer())
        .await
        .map_err(js_error)?;
    Ok(js_sys::Uint8Array::new(&buffer))
}

/// A `blob:` URL for showing a local file; revoke it when no longer shown.
pub fn object_url(blob: &web_sys::Blob) -> String {
    web_sys::Url::create_object_url_with_blob(blob).unwrap_or_default()
}

/// A `blob:` URL of `bytes` (e.g. a PNG the analysis worker made); revoke it like
/// [`object_url`]'s.
pub fn blob_url(bytes: &[u8], mime: &str) -> String {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options)
        .map(|b| object_url(&b))
        .unwrap_or_default()
}

pub fn revoke(url: &str) {
    if url.starts_with("blob:") {
        let _ = web_sys::Url::revoke_object_url(url);
    }
}

/// Saves `href` (a blob: or data: URL made by this page) as a file called `name`.
pub fn download(href: &str, name: &str) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let Ok(anchor) = document.create_element("a") else {
        return;
    };
    let anchor: web_sys::HtmlAnchorElement = anchor.unchecked_into();
    anchor.set_href(href);
    anchor.set_download(name);
    anchor.set_hidden(true);
    if let Some(body) = document.body() {
        let _ = body.append_child(&anchor);
        anchor.click();
        let _ = body.remove_child(&anchor);
    }
}

/// Saves `text` as a file.
pub fn download_text(text: &str, mime: &str, name: &str) {
    let parts = js_sys::Array::of1(&JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    if let Ok(blob) = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options) {
        let url = object_url(&blob);
        download(&url, name);
        // The download has started from the URL; keep it alive briefly, then free it.
        let revoke_later = Closure::once_into_js(move || revoke(&url));
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(
                revoke_later.unchecked_ref(),
                10_000,
            );
        }
    }
}

/// Panics should not happen; if one does, log it and tell the user plainly instead of leaving
/// a frozen page.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        let fr = super::i18n::Lang::initial() == super::i18n::Lang::Fr;
        let message = if fr {
            format!(
                "Erreur interne de Pneumoscope : {info}. Rechargez la page pour continuer ; aucune donnée n'a quitté cet ordinateur."
            )
        } else {
            format!(
                "Pneumoscope hit an internal error: {info}. Reload the page to continue; no data has left this computer."
            )
        };
        if let Some(fatal) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.get_element_by_id("fatal"))
        {
            fatal.set_text_content(Some(&message));
            let _ = fatal.remove_attribute("hidden");
        }
    }));
}

/// Waits `ms` milliseconds without blocking the page.
pub async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = JsFuture::from(promise).await;
}
