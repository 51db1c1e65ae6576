//! Byte-stream transports: TCP and Unix domain sockets (`ipc://`).
//!
//! Everything above this module sees a `Stream` that splits into owned read and write
//! halves (no lock between them), and a `Listener` that yields streams.

mod endpoint;

pub use endpoint::{Endpoint, EndpointError};

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{tcp, unix, TcpListener, TcpStream, UnixListener, UnixStream};

/// A connected byte stream.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    Ipc(UnixStream),
}

/// The read half of a [`Stream`].
#[derive(Debug)]
pub(crate) enum ReadHalf {
    Tcp(tcp::OwnedReadHalf),
    Ipc(unix::OwnedReadHalf),
}

/// The write half of a [`Stream`].
#[derive(Debug)]
pub(crate) enum WriteHalf {
    Tcp(tcp::OwnedWriteHalf),
    Ipc(unix::OwnedWriteHalf),
}

impl Stream {
    pub(crate) fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Tcp(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Tcp(r), WriteHalf::Tcp(w))
            }
            Stream::Ipc(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Ipc(r), WriteHalf::Ipc(w))
            }
        }
    }
}

macro_rules! delegate_read {
    ($t:ty) => {
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_read(cx, buf),
                    Self::Ipc(s) => Pin::new(s).poll_read(cx, buf),
                }
            }
        }
    };
}

macro_rules! delegate_write {
    ($t:ty) => {
        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_write(cx, buf),
                    Self::Ipc(s) => Pin::new(s).poll_write(cx, buf),
                }
            }
            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
                    Self::Ipc(s) => Pin::new(s).poll_write_vectored(cx, bufs),
                }
            }
            fn is_write_vectored(&self) -> bool {
                true
            }
            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_flush(cx),
                    Self::Ipc(s) => Pin::new(s).poll_flush(cx),
                }
            }
            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_shutdown(cx),
                    Self::Ipc(s) => Pin::new(s).poll_shutdown(cx),
                }
            }
        }
    };
}

delegate_read!(Stream);
delegate_read!(ReadHalf);
delegate_write!(Stream);
delegate_write!(WriteHalf);

/// Opens a connection to `endpoint`.
pub(crate) async fn connect(endpoint: &Endpoint) -> io::Result<Stream> {
    match endpoint {
        Endpoint::Tcp { host, port } => {
            let stream = TcpStream::connect((host.as_str(), *port)).await?;
            // libzmq sets TCP_NODELAY: ZMTP batches on its own.
            stream.set_nodelay(true)?;
            Ok(Stream::Tcp(stream))
        }
        Endpoint::Ipc(path) => {
            let stream = UnixStream::connect(path).await?;
            widen_ipc_buffer(&stream);
            Ok(Stream::Ipc(stream))
        }
        Endpoint::Inproc(_) => Err(not_a_stream()),
    }
}

/// The send buffer asked for an `ipc://` connection. A Unix socket's sender may
/// have only its send buffer in flight (the default, 208 KiB, is three 64 KiB
/// messages), so a stream of large messages stopped the sender and woke the
/// receiver every few messages, where loopback TCP grows its buffers up to 4 MiB
/// by itself: PUSH->PULL 64 KiB over ipc went from 52-57 k to 83-90 k msg/s, 4 KiB
/// from 0.91-0.96 M to 1.17-1.20 M (zmtp-bench, current-thread, three runs). The
/// kernel doubles what it is given, up to twice `net.core.wmem_max` (208 KiB on
/// a stock kernel): at most what a TCP connection may hold.
const IPC_SEND_BUFFER: usize = 1024 * 1024;

/// Asks for [`IPC_SEND_BUFFER`]; a kernel that refuses it leaves the default,
/// which works, only slower.
fn widen_ipc_buffer(stream: &UnixStream) {
    if let Err(e) = socket2::SockRef::from(stream).set_send_buffer_size(IPC_SEND_BUFFER) {
        tracing::debug!("ipc send buffer left at the default: {e}");
    }
}

/// `inproc://` endpoints are linked by the socket layer, never through a stream.
fn not_a_stream() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "inproc:// endpoints carry no byte stream",
    )
}

/// A bound listener. An `ipc://` listener removes its socket file when dropped.
#[derive(Debug)]
pub(crate) enum Listener {
    Tcp(TcpListener),
    Ipc(UnixListener, IpcPathGuard),
}

/// Removes an ipc socket file on drop.
#[derive(Debug)]
pub(crate) struct IpcPathGuard(PathBuf);

impl Drop for IpcPathGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Listener {
    /// Binds `endpoint`; returns the listener and the endpoint actually bound (with
    /// the real port when port 0 or `*` was asked for).
    pub(crate) async fn bind(endpoint: &Endpoint) -> io::Result<(Listener, Endpoint)> {
        match endpoint {
            Endpoint::Tcp { host, port } => {
                let host = if host == "*" {
                    "0.0.0.0"
                } else {
                    host.as_str()
                };
                let listener = TcpListener::bind((host, *port)).await?;
                let local = listener.local_addr()?;
                let bound = Endpoint::Tcp {
                    host: local.ip().to_string(),
                    port: local.port(),
                };
                Ok((Listener::Tcp(listener), bound))
            }
            Endpoint::Ipc(path) => {
                remove_stale_socket(path).await?;
                let listener = UnixListener::bind(path)?;
                Ok((
                    Listener::Ipc(listener, IpcPathGuard(path.clone())),
                    endpoint.clone(),
                ))
            }
            Endpoint::Inproc(_) => Err(not_a_stream()),
        }
    }

    /// Accepts one connection; returns it with a printable peer address.
    pub(crate) async fn accept(&self) -> io::Result<(Stream, String)> {
        match self {
            Listener::Tcp(l) => {
                let (stream, addr) = l.accept().await?;
                stream.set_nodelay(true)?;
                Ok((Stream::Tcp(stream), addr.to_string()))
            }
            Listener::Ipc(l, guard) => {
                let (stream, _) = l.accept().await?;
                widen_ipc_buffer(&stream);
                Ok((Stream::Ipc(stream), format!("ipc://{}", guard.0.display())))
            }
        }
    }
}

/// A socket file left behind by a dead process is replaced; one with a live listener
/// is an "address in use" error rather than silently stolen.
async fn remove_stale_socket(path: &std::path::Path) -> io::Result<()> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    match UnixStream::connect(path).await {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{} is in use by a live listener", path.display()),
        )),
        Err(_) => std::fs::remove_file(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_buffer(stream: &Stream) -> usize {
        let Stream::Ipc(stream) = stream else {
            panic!("an ipc stream");
        };
        socket2::SockRef::from(stream).send_buffer_size().unwrap()
    }

    #[tokio::test]
    async fn ipc_connections_get_a_wider_send_buffer_on_both_ends() {
        let path = std::env::temp_dir().join(format!("zmtp-sndbuf-{}", std::process::id()));
        let endpoint = Endpoint::Ipc(path.clone());
        let (listener, _) = Listener::bind(&endpoint).await.unwrap();
        let plain = UnixStream::connect(&path).await.unwrap();
        let default = socket2::SockRef::from(&plain).send_buffer_size().unwrap();
        drop(listener.accept().await.unwrap());
        let (ours, theirs) = tokio::join!(connect(&endpoint), listener.accept());
        let (ours, (theirs, _)) = (ours.unwrap(), theirs.unwrap());
        assert!(
            send_buffer(&ours) > default,
            "{} vs {default}",
            send_buffer(&ours)
        );
        assert!(send_buffer(&theirs) > default);
    }
}
