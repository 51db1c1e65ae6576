//! A worker whose handler is Python: `mdp::Worker` serves the service, and each
//! request it receives waits in a queue until Python takes it (`next`), then
//! Python's parts go back through the request's own channel: `part` for each
//! partial reply, `finish` for the last. The handler
//! code (routes, MessagePack, threads for plain functions) is Python's
//! (`zmdp.Worker`).

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use mdp::worker::{HandlerResult, Worker, WorkerOptions};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use tokio::sync::{mpsc, Mutex};
use tokio_util::sync::CancellationToken;
use zmtp::Message;

use crate::{dialect, message};

/// One request for Python: its body, and where its reply parts go.
type Job = (Message, mpsc::Sender<HandlerResult>);

/// Requests that wait for Python at most: past it the worker stops taking more
/// (its sessions wait), so a slow handler holds requests at the broker.
const QUEUED: usize = 64;

/// A running worker of one service (see the module documentation).
#[pyclass(module = "zmdp._zmdp", frozen)]
pub struct NativeWorker {
    jobs: Arc<Mutex<mpsc::Receiver<Job>>>,
    stop: CancellationToken,
}

/// Where the parts of one request's reply go; `None` once finished or failed
/// (which ends the reply: the last part sent goes out as FINAL). Errors are
/// replies too, made by the Python side (`zmdp.RemoteError` for the client).
#[pyclass(module = "zmdp._zmdp", frozen)]
pub struct Reply {
    parts: std::sync::Mutex<Option<mpsc::Sender<HandlerResult>>>,
}

impl Reply {
    /// The sender, kept (`part`) or taken (`finish`, `fail`).
    fn sender(&self, take: bool) -> Option<mpsc::Sender<HandlerResult>> {
        let mut parts = self.parts.lock().unwrap_or_else(|e| e.into_inner());
        if take {
            parts.take()
        } else {
            parts.clone()
        }
    }

    fn send<'py>(&self, py: Python<'py>, part: Message, last: bool) -> PyResult<Bound<'py, PyAny>> {
        let parts = self.sender(last);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            if let Some(parts) = parts {
                let _ = parts.send(Ok(part)).await;
            }
            Ok(())
        })
    }
}

#[pymethods]
impl NativeWorker {
    /// Starts serving `service` at `brokers` with `concurrency` requests at once.
    #[new]
    #[pyo3(signature = (brokers, service, *, dialect = "mdp02", concurrency = 8, heartbeat = 2.5, curve = None))]
    fn new(
        brokers: Vec<String>,
        service: Vec<u8>,
        dialect: &str,
        concurrency: usize,
        heartbeat: f64,
        curve: Option<(String, String)>,
    ) -> PyResult<NativeWorker> {
        if !(heartbeat > 0.0 && heartbeat.is_finite()) {
            return Err(PyValueError::new_err(
                "heartbeat must be a positive number of seconds",
            ));
        }
        let options = WorkerOptions::default()
            .dialect(self::dialect(dialect)?)
            .concurrency(concurrency.max(1))
            .heartbeat_interval(Duration::from_secs_f64(heartbeat))
            .mechanism(crate::mechanism(curve)?);
        let worker = Worker::new(brokers, service).options(options);
        let (jobs_tx, jobs) = mpsc::channel::<Job>(QUEUED);
        let stop = CancellationToken::new();
        let handler = move |body: Message| {
            let jobs = jobs_tx.clone();
            let (parts_tx, parts) = mpsc::channel::<HandlerResult>(16);
            stream::once(async move {
                if jobs.send((body, parts_tx)).await.is_err() {
                    return stream::iter(vec![Err("the worker is stopping".into())]).left_stream();
                }
                tokio_stream_of(parts).right_stream()
            })
            .flatten()
        };
        let stopped = stop.clone();
        let runtime = pyo3_async_runtimes::tokio::get_runtime();
        runtime.spawn(async move {
            if let Err(e) = worker
                .run_streaming_until(handler, stopped.cancelled_owned())
                .await
            {
                eprintln!("zmdp worker: {e}");
            }
        });
        Ok(NativeWorker {
            jobs: Arc::new(Mutex::new(jobs)),
            stop,
        })
    }

    /// The next request: an awaitable of `(frames, reply)`, or of `None` once
    /// the worker stopped.
    fn next<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let jobs = self.jobs.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let job = jobs.lock().await.recv().await;
            Ok(job.map(|(body, parts)| {
                let reply = Reply {
                    parts: std::sync::Mutex::new(Some(parts)),
                };
                (crate::frames(body), reply)
            }))
        })
    }

    /// Stops taking requests; DISCONNECT goes to every broker.
    fn stop(&self) {
        self.stop.cancel();
    }
}

#[pymethods]
impl Reply {
    /// A partial reply (clients without partial replies get every part gathered
    /// into one reply).
    fn part<'py>(&self, py: Python<'py>, frames: Vec<Vec<u8>>) -> PyResult<Bound<'py, PyAny>> {
        self.send(py, message(frames), false)
    }

    /// The last part: the reply is complete.
    fn finish<'py>(&self, py: Python<'py>, frames: Vec<Vec<u8>>) -> PyResult<Bound<'py, PyAny>> {
        self.send(py, message(frames), true)
    }
}

/// The parts Python sends, until `finish` or `fail` drops the sender.
fn tokio_stream_of(
    parts: mpsc::Receiver<HandlerResult>,
) -> impl futures_util::Stream<Item = HandlerResult> {
    stream::unfold(parts, |mut parts| async move {
        parts.recv().await.map(|part| (part, parts))
    })
}
