//! The page side: starts the analysis worker, sends it one request at a time, and learns of
//! its end however it comes (a panic, running out of memory, being terminated): through an
//! `error` event, or through the Web Lock the worker holds for as long as it lives
//! (public/analysis-worker.js). Whatever was pending then fails, and the page is told.

use super::protocol::{self, Reply, Request};
use futures::channel::oneshot;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ErrorEvent, MessageEvent, Worker, WorkerOptions, WorkerType};

/// The worker ended (why, in words); nothing more can be asked of it.
#[derive(Debug, Clone)]
pub struct Ended(pub String);

type Answer = Result<(Reply, Vec<Vec<u8>>), Ended>;

/// What the handlers and the page share.
struct Shared {
    pending: RefCell<HashMap<u64, oneshot::Sender<Answer>>>,
    ended: Cell<bool>,
    /// Set when the page itself stops the worker: its end is then no news.
    retired: Cell<bool>,
    on_device_lost: Box<dyn Fn(String)>,
    on_end: Box<dyn Fn(String)>,
}

impl Shared {
    fn end(&self, why: String) {
        if self.ended.replace(true) {
            return;
        }
        // The page learns first, so that nothing pending resumes before it knows.
        if !self.retired.get() {
            (self.on_end)(why.clone());
        }
        for (_, pending) in self.pending.borrow_mut().drain() {
            let _ = pending.send(Err(Ended(why.clone())));
        }
    }

    fn receive(&self, event: &MessageEvent) {
        match protocol::unpack::<Reply>(&event.data()) {
            Ok((_, Reply::DeviceLost(why), _)) => (self.on_device_lost)(why),
            Ok((id, reply, payloads)) => {
                if let Some(pending) = self.pending.borrow_mut().remove(&id) {
                    let _ = pending.send(Ok((reply, payloads)));
                }
            }
            Err(why) => self.end(why),
        }
    }
}

pub struct AnalysisWorker {
    worker: Worker,
    shared: Rc<Shared>,
    next_id: Cell<u64>,
    _on_message: Closure<dyn Fn(MessageEvent)>,
    _on_error: Closure<dyn Fn(ErrorEvent)>,
}

impl AnalysisWorker {
    /// Starts a worker and waits until its wasm runs. `on_device_lost`: the worker's GPU is
    /// gone. `on_end`: the worker ended by itself (not by [`Self::retire`]).
    pub async fn start(
        on_device_lost: impl Fn(String) + 'static,
        on_end: impl Fn(String) + 'static,
    ) -> Result<Rc<Self>, String> {
        let lock = format!("pneumoscope-analysis-{}", js_sys::Math::random());
        let options = WorkerOptions::new();
        options.set_type(WorkerType::Module);
        options.set_name(&worker_name(&lock)?);
        let worker = Worker::new_with_options("analysis-worker.js", &options)
            .map_err(crate::app::util::js_error)?;
        let shared = Rc::new(Shared {
            pending: RefCell::new(HashMap::new()),
            ended: Cell::new(false),
            retired: Cell::new(false),
            on_device_lost: Box::new(on_device_lost),
            on_end: Box::new(on_end),
        });
        let on_message = {
            let shared = Rc::clone(&shared);
            Closure::<dyn Fn(MessageEvent)>::new(move |event: MessageEvent| shared.receive(&event))
        };
        let on_error = {
            let shared = Rc::clone(&shared);
            Closure::<dyn Fn(ErrorEvent)>::new(move |event: ErrorEvent| {
                event.prevent_default();
                shared.end(event.message());
            })
        };
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let this = Rc::new(Self {
            worker,
            shared,
            next_id: Cell::new(1),
            _on_message: on_message,
            _on_error: on_error,
        });
        // The worker says `Started` (id 0) once its wasm runs; by then it holds its lock.
        match this.wait(0).await {
            Ok((Reply::Started, _)) => {}
            Ok((other, _)) => return Err(format!("unexpected first message {other:?}")),
            Err(Ended(why)) => return Err(why),
        }
        watch_lock(&lock, Rc::clone(&this.shared));
        Ok(this)
    }

    fn wait(&self, id: u64) -> impl Future<Output = Answer> + use<> {
        let (sender, receiver) = oneshot::channel();
        if self.shared.ended.get() {
            let _ = sender.send(Err(Ended("the analysis worker has stopped".into())));
        } else {
            self.shared.pending.borrow_mut().insert(id, sender);
        }
        async move {
            receiver
                .await
                .unwrap_or_else(|_| Err(Ended("the analysis worker has stopped".into())))
        }
    }

    /// Sends `request` with `payloads` (transferred: they become unusable here) and waits for
    /// its reply.
    pub async fn request(&self, request: &Request, payloads: Vec<js_sys::Uint8Array>) -> Answer {
        let id = self.next_id.replace(self.next_id.get() + 1);
        let answer = self.wait(id);
        if !self.shared.ended.get() {
            let (message, transfer) = protocol::pack(id, request, payloads);
            if let Err(e) = self.worker.post_message_with_transfer(&message, &transfer) {
                self.shared.end(crate::app::util::js_error(e));
            }
        }
        answer.await
    }

    /// Stops the worker on the page's own account (e.g. to reload on the CPU).
    pub fn retire(&self) {
        self.shared.retired.set(true);
        self.worker.terminate();
        self.shared.end("the analysis worker was replaced".into());
    }
}

impl Drop for AnalysisWorker {
    fn drop(&mut self) {
        self.retire();
    }
}

/// The worker's name, which `analysis-worker.js` reads: the app's own JS and wasm (the boot
/// script's, as Trunk named them) and the lock the worker is to hold.
fn worker_name(lock: &str) -> Result<String, String> {
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let tag = document
        .query_selector("script[data-js][data-wasm]")
        .ok()
        .flatten()
        .ok_or("the page has no boot script")?;
    let base = document.base_uri().ok().flatten().unwrap_or_default();
    let absolute = |attribute: &str| {
        let relative = tag.get_attribute(attribute).unwrap_or_default();
        web_sys::Url::new_with_base(&relative, &base)
            .map(|u| u.href())
            .map_err(crate::app::util::js_error)
    };
    let name = serde_json::json!({
        "js": absolute("data-js")?,
        "wasm": absolute("data-wasm")?,
        "lock": lock,
    });
    Ok(name.to_string())
}

/// Asks for the worker's lock: it is granted only once the worker has ended.
fn watch_lock(name: &str, shared: Rc<Shared>) {
    let Some(locks) = web_sys::window()
        .map(|w| w.navigator())
        .and_then(|n| js_sys::Reflect::get(&n, &"locks".into()).ok())
        .filter(|l| !l.is_undefined())
    else {
        return; // No Web Locks: `error` events still tell of panics.
    };
    let Ok(request) = js_sys::Reflect::get(&locks, &"request".into())
        .and_then(|f| f.dyn_into::<js_sys::Function>())
    else {
        return;
    };
    let granted = Closure::once_into_js(move || {
        shared.end("the analysis worker stopped unexpectedly".into());
    });
    if let Ok(promise) = request.call2(&locks, &name.into(), &granted) {
        wasm_bindgen_futures::spawn_local(async move {
            let _ = JsFuture::from(js_sys::Promise::from(promise)).await;
        });
    }
}
