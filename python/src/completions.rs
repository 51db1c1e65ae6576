//! Replies handed to asyncio in batches. An awaitable per request
//! (`future_into_py`) makes a tokio thread take the GIL and wake the event loop
//! once per reply; with many requests in flight that handoff is the cost. Here a
//! finished request only queues its outcome; the first one queued since the loop
//! last drained wakes the loop (one GIL handoff), and the loop takes every outcome
//! queued by then at once (`take`), setting its futures' results.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;

use crate::Frames;

/// How a request ended: `Ok(frames)`, or `Err((is_timeout, message))`.
pub(crate) type Outcome = Result<Frames, (bool, String)>;

/// What the tokio side shares with the loop.
pub(crate) struct Shared {
    /// Outcomes not taken yet, by token; and whether the loop was woken for them.
    queue: Mutex<(Vec<(u64, Outcome)>, bool)>,
    /// Wakes the loop (`lambda: loop.call_soon_threadsafe(drain)`).
    wake: Py<PyAny>,
    /// The requests under way, by token, to withdraw one whose caller stopped
    /// waiting.
    running: Mutex<HashMap<u64, tokio::task::AbortHandle>>,
}

impl Shared {
    /// Runs `request` for `token`, its outcome queued when it ends (unless
    /// cancelled first).
    pub(crate) fn run(
        self: &Arc<Self>,
        token: u64,
        request: impl std::future::Future<Output = Outcome> + Send + 'static,
    ) {
        let shared = self.clone();
        // Held while spawning, so the task cannot forget its entry before it is
        // made.
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let task = pyo3_async_runtimes::tokio::get_runtime().spawn(async move {
            let outcome = request.await;
            let removed = shared
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&token);
            if removed.is_some() {
                shared.finished(token, outcome);
            }
        });
        running.insert(token, task.abort_handle());
    }

    /// Queues request `token`'s outcome, waking the loop if it is the first since
    /// the last `take`.
    pub(crate) fn finished(&self, token: u64, outcome: Outcome) {
        let wake = {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.0.push((token, outcome));
            !std::mem::replace(&mut queue.1, true)
        };
        if wake {
            Python::with_gil(|py| {
                // The loop may be closed: its outcomes have nobody to go to.
                let _ = self.wake.call0(py);
            });
        }
    }
}

/// The outcomes of one event loop's requests (see the module documentation).
#[pyclass(module = "zmdp._zmdp", frozen)]
pub struct Completions {
    pub(crate) shared: Arc<Shared>,
}

#[pymethods]
impl Completions {
    /// Completions that call `wake` (from any thread, with the GIL) when the
    /// first outcome since the last `take` is queued.
    #[new]
    fn new(wake: Py<PyAny>) -> Completions {
        Completions {
            shared: Arc::new(Shared {
                queue: Mutex::new((Vec::new(), false)),
                wake,
                running: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Request `token`'s caller stopped waiting: it is withdrawn (its place at the
    /// broker connection freed at once, as a dropped Rust request's is).
    fn cancel(&self, token: u64) {
        let task = self
            .shared
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&token);
        if let Some(task) = task {
            task.abort();
        }
    }

    /// Every outcome queued: `(token, kind, value)` with kind 0 (value: the
    /// reply's frames), 1 (a timeout; value: the message) or 2 (another error).
    fn take(&self) -> Vec<(u64, u8, PyObject)> {
        let taken = {
            let mut queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.1 = false;
            std::mem::take(&mut queue.0)
        };
        Python::with_gil(|py| {
            taken
                .into_iter()
                .map(|(token, outcome)| match outcome {
                    Ok(frames) => (
                        token,
                        0,
                        frames
                            .into_pyobject(py)
                            .map_or_else(|_| py.None(), |o| o.into_any().unbind()),
                    ),
                    Err((timeout, message)) => (
                        token,
                        if timeout { 1 } else { 2 },
                        message
                            .into_pyobject(py)
                            .map_or_else(|_| py.None(), |o| o.into_any().unbind()),
                    ),
                })
                .collect()
        })
    }
}
