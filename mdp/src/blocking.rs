//! A blocking [`Client`] for synchronous code: the async client on a private runtime.
//!
//! ```no_run
//! let client = mdp::blocking::Client::connect("tcp://127.0.0.1:5555")?;
//! let reply = client.request("echo", "hello")?;
//! # Ok::<(), mdp::ClientError>(())
//! ```

use bytes::Bytes;
use serde::{de::DeserializeOwned, Serialize};
use zmtp::Message;

use crate::client::{self, ClientError, ClientOptions};
use crate::discovery::Brokers;

/// A Majordomo client whose calls block the calling thread. Do not use it from inside
/// an async runtime (use [`crate::Client`] there).
#[derive(Debug)]
pub struct Client {
    runtime: tokio::runtime::Runtime,
    inner: client::Client,
}

impl Client {
    /// A client of the broker (or brokers, see [`crate::Brokers`]) at `brokers`
    /// with default options.
    pub fn connect(brokers: impl Into<Brokers>) -> Result<Client, ClientError> {
        Client::connect_with(brokers, ClientOptions::default())
    }

    /// A client with the given options.
    pub fn connect_with(
        brokers: impl Into<Brokers>,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let brokers = brokers.into();
        // One worker thread keeps the connections alive between calls.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| ClientError::Socket(zmtp::Error::Runtime(e.to_string())))?;
        let inner = runtime.block_on(async { client::Client::connect_with(brokers, options) })?;
        Ok(Client { runtime, inner })
    }

    /// See [`crate::Client::request`].
    pub fn request(
        &self,
        service: impl Into<Bytes>,
        body: impl Into<Message>,
    ) -> Result<Message, ClientError> {
        self.runtime.block_on(self.inner.request(service, body))
    }

    /// See [`crate::Client::call`].
    pub fn call<Req, Resp>(
        &self,
        service: impl Into<Bytes>,
        request: &Req,
    ) -> Result<Resp, ClientError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        self.runtime.block_on(self.inner.call(service, request))
    }

    /// See [`crate::Client::service_exists`].
    pub fn service_exists(&self, name: impl Into<Bytes>) -> Result<bool, ClientError> {
        self.runtime.block_on(self.inner.service_exists(name))
    }
}
