//! `zmdp._zmdp`: the native half of the `zmdp` Python package. The Rust
//! Majordomo client (`mdp::Client`), and the `mdp-broker` and `mdp` command lines
//! run in-process. The Python half (`python/zmdp/`) wraps it in the API users see:
//! `async with Client(...)`, `BlockingClient`, the console scripts.
//!
//! Every wait happens with the GIL released: blocking calls in
//! `Python::allow_threads`, async ones on a tokio runtime of their own (two
//! threads, shared by every client of the process) whose futures asyncio awaits.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use mdp::{CallOptions, ClientError, ClientOptions, Dialect};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use zmtp::proto::MechanismConfig;
use zmtp::Message;

create_exception!(
    _zmdp,
    ZmdpError,
    PyException,
    "Anything that went wrong talking to a broker."
);
create_exception!(
    _zmdp,
    Timeout,
    ZmdpError,
    "No reply within the timeout, after every attempt (no worker for the service, or the broker is unreachable)."
);

mod completions;
mod events;
mod worker;

/// The frames of a reply, as a list of `bytes`.
type Frames = Vec<Cow<'static, [u8]>>;

/// Frames from Python as a message.
fn message(frames: Vec<Vec<u8>>) -> Message {
    frames
        .into_iter()
        .map(bytes::Bytes::from)
        .collect::<Vec<_>>()
        .into()
}

fn frames(msg: Message) -> Frames {
    msg.into_vec()
        .into_iter()
        .map(|f| Cow::Owned(f.to_vec()))
        .collect()
}

fn to_py(e: ClientError) -> PyErr {
    match e {
        ClientError::Timeout { .. } => Timeout::new_err(e.to_string()),
        other => ZmdpError::new_err(other.to_string()),
    }
}

/// NULL, or CURVE with our secret key and the broker's public key, each read
/// from a certificate file (`zmtp-keygen`, pyzmq's `zmq.auth`, czmq's zcert) or
/// a file holding the Z85 key.
pub(crate) fn mechanism(curve: Option<(String, String)>) -> PyResult<MechanismConfig> {
    let Some((secret, server)) = curve else {
        return Ok(MechanismConfig::Null);
    };
    let keys = zmtp::certificate::load_secret_key(&secret)
        .map_err(|e| PyValueError::new_err(format!("{secret}: {e}")))?;
    let server_key = zmtp::certificate::load_public_key(&server)
        .map_err(|e| PyValueError::new_err(format!("{server}: {e}")))?;
    Ok(MechanismConfig::curve_client(keys, server_key))
}

pub(crate) fn dialect(name: &str) -> PyResult<Dialect> {
    match name {
        "mdp01" => Ok(Dialect::Mdp01),
        "mdp02" => Ok(Dialect::Mdp02),
        "majortomo" => Ok(Dialect::Majortomo),
        "overseer" => Ok(Dialect::Overseer),
        other => Err(PyValueError::new_err(format!(
            "unknown dialect {other:?} (mdp01, mdp02, majortomo or overseer)"
        ))),
    }
}

/// A Majordomo client of one broker or several (see the Python `Client`).
#[pyclass(module = "zmdp._zmdp", frozen)]
struct Client {
    inner: mdp::Client,
    limits: CallOptions,
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (brokers, *, dialect = "mdp02", timeout = 5.0, attempts = 1, curve = None))]
    fn new(
        brokers: Vec<String>,
        dialect: &str,
        timeout: f64,
        attempts: u32,
        curve: Option<(String, String)>,
    ) -> PyResult<Client> {
        if !(timeout > 0.0 && timeout.is_finite()) {
            return Err(PyValueError::new_err(
                "timeout must be a positive number of seconds",
            ));
        }
        let options = ClientOptions::default()
            .dialect(self::dialect(dialect)?)
            .timeout(Duration::from_secs_f64(timeout))
            .attempts(attempts.max(1))
            .mechanism(mechanism(curve)?);
        let limits = CallOptions {
            timeout: options.timeout,
            attempts: options.attempts,
        };
        let runtime = pyo3_async_runtimes::tokio::get_runtime();
        let _entered = runtime.enter();
        let inner = mdp::Client::connect_with(brokers, options).map_err(to_py)?;
        Ok(Client { inner, limits })
    }

    /// Sends `frames` to `service` in the background; its outcome goes to
    /// `completions` under `token` (the asyncio client's fast path).
    fn submit(
        &self,
        completions: &completions::Completions,
        token: u64,
        service: Vec<u8>,
        frames: Vec<Vec<u8>>,
    ) {
        let client = self.inner.clone();
        let limits = self.limits;
        completions.shared.run(token, async move {
            match client.request_with(service, message(frames), limits).await {
                Ok(reply) => Ok(self::frames(reply)),
                Err(e) => Err((matches!(e, ClientError::Timeout { .. }), e.to_string())),
            }
        });
    }

    /// Sends `frames` to `service`; an awaitable of a [`ReplyStream`] of its
    /// replies (MDP 0.2 partial replies as they come, then the final one).
    fn stream<'py>(
        &self,
        py: Python<'py>,
        service: Vec<u8>,
        frames: Vec<Vec<u8>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.inner.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, open_stream(client, service, frames))
    }

    /// [`Client::stream`], blocking this thread (with the GIL released) until the
    /// request is sent.
    fn stream_blocking(
        &self,
        py: Python<'_>,
        service: Vec<u8>,
        frames: Vec<Vec<u8>>,
    ) -> PyResult<ReplyStream> {
        let client = self.inner.clone();
        py.allow_threads(move || {
            pyo3_async_runtimes::tokio::get_runtime().block_on(open_stream(client, service, frames))
        })
    }

    /// The same, blocking this thread (with the GIL released) until the reply.
    fn request_blocking(
        &self,
        py: Python<'_>,
        service: Vec<u8>,
        frames: Vec<Vec<u8>>,
    ) -> PyResult<Frames> {
        let client = self.inner.clone();
        let limits = self.limits;
        py.allow_threads(move || {
            pyo3_async_runtimes::tokio::get_runtime()
                .block_on(client.request_with(service, message(frames), limits))
                .map(self::frames)
                .map_err(to_py)
        })
    }
}

/// The replies of one streamed request.
type PartStream = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<mdp::client::ReplyPart, ClientError>> + Send>,
>;

/// The replies of one request, as they come (see `Client.stream`).
#[pyclass(module = "zmdp._zmdp", frozen)]
struct ReplyStream {
    parts: Arc<tokio::sync::Mutex<PartStream>>,
}

#[pymethods]
impl ReplyStream {
    /// The next reply as [`ReplyStream::next`] gives it, blocking this thread
    /// (with the GIL released) until it comes.
    fn next_blocking(&self, py: Python<'_>) -> PyResult<Option<(bool, Frames)>> {
        let parts = self.parts.clone();
        py.allow_threads(move || {
            pyo3_async_runtimes::tokio::get_runtime().block_on(next_part(parts))
        })
    }

    /// An awaitable of the next reply, `(is_final, frames)`, or of `None` after
    /// the final one.
    fn next<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        pyo3_async_runtimes::tokio::future_into_py(py, next_part(self.parts.clone()))
    }
}

/// Sends a streamed request: its replies as a [`ReplyStream`].
async fn open_stream(
    client: mdp::Client,
    service: Vec<u8>,
    frames: Vec<Vec<u8>>,
) -> PyResult<ReplyStream> {
    let parts = client
        .request_stream(service, message(frames))
        .await
        .map_err(to_py)?;
    let parts: PartStream = Box::pin(parts);
    Ok(ReplyStream {
        parts: Arc::new(tokio::sync::Mutex::new(parts)),
    })
}

/// The next reply of a stream: `(is_final, frames)`, or `None` after the final one.
async fn next_part(parts: Arc<tokio::sync::Mutex<PartStream>>) -> PyResult<Option<(bool, Frames)>> {
    use futures_util::StreamExt;
    match parts.lock().await.next().await {
        None => Ok(None),
        Some(Ok(part)) => Ok(Some((
            part.kind == mdp::proto::ReplyKind::Final,
            self::frames(part.body),
        ))),
        Some(Err(e)) => Err(to_py(e)),
    }
}

/// Runs `mdp-broker` with `argv` (the program name first) until it stops (Ctrl-C
/// or SIGTERM), with the GIL released; returns its exit status.
#[pyfunction]
fn broker_main(py: Python<'_>, argv: Vec<String>) -> u8 {
    py.allow_threads(|| mdp_broker::exit_status(mdp_broker::broker_main(argv)))
}

/// Runs `mdp` with `argv` (the program name first), with the GIL released;
/// returns its exit status.
#[pyfunction]
fn mdp_main(py: Python<'_>, argv: Vec<String>) -> u8 {
    py.allow_threads(|| mdp_broker::exit_status(mdp_broker::mdp_main(argv)))
}

/// Waits (with the GIL released) until the native runtime's tasks are done, at
/// most `max_ms` milliseconds. Registered with `atexit`: a task that finishes an
/// awaitable takes the GIL one last time after Python saw the result, and taking it
/// while the interpreter is being torn down crashes the process.
#[pyfunction]
fn quiesce(py: Python<'_>, max_ms: u64) {
    py.allow_threads(|| {
        let metrics = pyo3_async_runtimes::tokio::get_runtime().metrics();
        let deadline = std::time::Instant::now() + Duration::from_millis(max_ms);
        while metrics.num_alive_tasks() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    });
}

/// The module.
#[pymodule]
fn _zmdp(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Client>()?;
    m.add_class::<worker::NativeWorker>()?;
    m.add_class::<worker::Reply>()?;
    m.add_class::<ReplyStream>()?;
    m.add_class::<completions::Completions>()?;
    m.add_class::<events::NativePublisher>()?;
    m.add_class::<events::NativeSubscriber>()?;
    m.add_function(wrap_pyfunction!(broker_main, m)?)?;
    m.add_function(wrap_pyfunction!(mdp_main, m)?)?;
    m.add_function(wrap_pyfunction!(quiesce, m)?)?;
    m.add("ZmdpError", m.py().get_type::<ZmdpError>())?;
    m.add("Timeout", m.py().get_type::<Timeout>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
