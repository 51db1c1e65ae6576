//! The event bus for Python: `mdp::events::Publisher` and `Subscriber` behind the
//! broker's `--pubsub IN OUT` endpoints. Python's `zmdp.Publisher` and
//! `zmdp.Subscriber` (MessagePack bodies, `async for`) wrap these.

use std::sync::Arc;

use mdp::events::{Publisher, Subscriber};
use pyo3::prelude::*;
use tokio::sync::Mutex;

use crate::{frames, message, Frames, ZmdpError};

fn to_py(e: zmtp::Error) -> PyErr {
    ZmdpError::new_err(e.to_string())
}

/// A publisher connected to the bus's publisher side.
#[pyclass(module = "zmdp._zmdp", frozen)]
pub struct NativePublisher {
    inner: Arc<Mutex<Publisher>>,
}

#[pymethods]
impl NativePublisher {
    #[new]
    #[pyo3(signature = (endpoint, *, curve = None))]
    fn new(endpoint: String, curve: Option<(String, String)>) -> PyResult<NativePublisher> {
        let mechanism = crate::mechanism(curve)?;
        let runtime = pyo3_async_runtimes::tokio::get_runtime();
        let publisher = runtime
            .block_on(Publisher::connect_with(&endpoint, mechanism))
            .map_err(to_py)?;
        Ok(NativePublisher {
            inner: Arc::new(Mutex::new(publisher)),
        })
    }

    /// Publishes `frames` under `topic` (an awaitable; it never waits for
    /// subscribers: past their high-water mark events are dropped).
    fn publish<'py>(
        &self,
        py: Python<'py>,
        topic: Vec<u8>,
        frames: Vec<Vec<u8>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            inner
                .lock()
                .await
                .publish(topic, message(frames))
                .await
                .map_err(to_py)
        })
    }
}

/// A subscriber connected to the bus's subscriber side.
#[pyclass(module = "zmdp._zmdp", frozen)]
pub struct NativeSubscriber {
    inner: Arc<Mutex<Subscriber>>,
}

#[pymethods]
impl NativeSubscriber {
    #[new]
    #[pyo3(signature = (endpoint, topics, *, curve = None))]
    fn new(
        endpoint: String,
        topics: Vec<Vec<u8>>,
        curve: Option<(String, String)>,
    ) -> PyResult<NativeSubscriber> {
        let mechanism = crate::mechanism(curve)?;
        let runtime = pyo3_async_runtimes::tokio::get_runtime();
        let subscriber = runtime
            .block_on(Subscriber::connect_with(&endpoint, topics, mechanism))
            .map_err(to_py)?;
        Ok(NativeSubscriber {
            inner: Arc::new(Mutex::new(subscriber)),
        })
    }

    /// An awaitable of the next event: `(topic, frames)`.
    fn recv<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let event = inner.lock().await.recv().await.map_err(to_py)?;
            let topic: Frames = frames(vec![event.topic].into());
            Ok((topic.into_iter().next(), frames(event.body)))
        })
    }
}
