//! A TCP relay between a ZMTP client and its server that tampers with one chosen
//! frame on the way to the server: the attacker in the middle of the security tests.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the relay does to the chosen frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tamper {
    /// Flip every bit of the frame's last byte.
    FlipLastByte,
    /// Send the frame twice (a replay).
    Duplicate,
}

/// A running relay; stops on drop.
#[derive(Debug)]
pub struct Relay {
    endpoint: String,
    task: JoinHandle<()>,
}

impl Relay {
    /// Listens on a fresh loopback port and forwards every connection to `target`
    /// (`host:port`). On the first connection only, the `nth` (from 1) frame the
    /// client sends whose body starts with `marker` (`b"\x07MESSAGE"`) gets
    /// `tamper`; everything else passes untouched.
    pub async fn start(target: &str, marker: &'static [u8], nth: usize, tamper: Tamper) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("relay: bind a loopback port");
        let endpoint = format!(
            "tcp://{}",
            listener.local_addr().expect("relay: local address")
        );
        let target = target.trim_start_matches("tcp://").to_owned();
        let task = tokio::spawn(async move {
            let mut first = true;
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&target).await else {
                    continue;
                };
                let chosen = if first { Some((nth, tamper)) } else { None };
                first = false;
                tokio::spawn(relay(client, server, marker, chosen));
            }
        });
        Relay { endpoint, task }
    }

    /// The endpoint clients connect to (`tcp://127.0.0.1:PORT`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    marker: &'static [u8],
    chosen: Option<(usize, Tamper)>,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let _ = frames_upstream(&mut client_read, &mut server_write, marker, chosen).await;
        let _ = server_write.shutdown().await;
    };
    let downstream = async {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}

/// Copies the greeting, then frame by frame, tampering with the chosen one.
async fn frames_upstream<R, W>(
    from: &mut R,
    to: &mut W,
    marker: &[u8],
    chosen: Option<(usize, Tamper)>,
) -> std::io::Result<()>
where
    R: AsyncReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    let mut greeting = [0u8; 64];
    from.read_exact(&mut greeting).await?;
    to.write_all(&greeting).await?;
    let mut seen = 0;
    loop {
        let flags = from.read_u8().await?;
        let (len, mut header) = if flags & 0x02 != 0 {
            let len = from.read_u64().await?;
            let mut header = vec![flags];
            header.extend_from_slice(&len.to_be_bytes());
            (len, header)
        } else {
            let len = from.read_u8().await?;
            (u64::from(len), vec![flags, len])
        };
        let mut body = vec![0u8; usize::try_from(len).expect("relay: frame fits in memory")];
        from.read_exact(&mut body).await?;
        let mut copies = 1;
        if body.starts_with(marker) {
            seen += 1;
            match chosen {
                Some((nth, Tamper::FlipLastByte)) if nth == seen => {
                    if let Some(last) = body.last_mut() {
                        *last ^= 0xFF;
                    }
                }
                Some((nth, Tamper::Duplicate)) if nth == seen => copies = 2,
                _ => {}
            }
        }
        header.extend_from_slice(&body);
        for _ in 0..copies {
            to.write_all(&header).await?;
        }
    }
}
