//! `mdp call SERVICE [BODY...]`: one request, its replies printed as they arrive.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use futures_util::StreamExt;
use mdp::proto::ReplyKind;
use zmtp::Message;

use super::connection::BrokerArgs;
use super::json::{self, Encoding};

/// `mdp call`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Each reply frame is printed on a line of its own (a newline is added \
                        unless it ends with one). Without BODY the \
                        request is stdin (one frame) unless stdin is a terminal; '-' as a \
                        BODY also reads stdin.\n\
                        Exit status: 0 when the final reply came, 1 when none did."
)]
pub struct CallArgs {
    /// The service to call.
    pub service: String,
    /// The request's frames, one per argument.
    pub body: Vec<String>,
    /// BODY is JSON, sent as MessagePack; MessagePack reply frames print as JSON
    /// (for workers with typed, msgpack bodies: Overseer, mdp's run_typed).
    #[arg(long, conflicts_with = "json")]
    pub msgpack: bool,
    /// BODY is JSON, sent as JSON text; reply frames are JSON, printed compact.
    #[arg(long)]
    pub json: bool,
    /// Milliseconds to wait for a reply (or the next partial reply) per attempt.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub timeout: u64,
    /// Attempts after the first when no reply comes.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,
}

impl CallArgs {
    fn encoding(&self) -> Encoding {
        if self.msgpack {
            Encoding::MessagePack
        } else if self.json {
            Encoding::Json
        } else {
            Encoding::Raw
        }
    }

    /// The request's frames: the arguments, stdin for `-` or for no argument when
    /// stdin is not a terminal.
    fn request(&self) -> Result<Message, String> {
        let read_stdin = || {
            let mut input = Vec::new();
            std::io::stdin()
                .read_to_end(&mut input)
                .map_err(|e| format!("cannot read stdin: {e}"))?;
            Ok::<_, String>(input)
        };
        let mut frames: Vec<Vec<u8>> = Vec::new();
        if self.body.is_empty() {
            if !std::io::stdin().is_terminal() {
                frames.push(read_stdin()?);
            }
        } else {
            for arg in &self.body {
                frames.push(if arg == "-" {
                    read_stdin()?
                } else {
                    arg.clone().into_bytes()
                });
            }
        }
        let mut request = Message::new();
        for frame in frames {
            request.push_back(json::encode(&frame, self.encoding())?);
        }
        Ok(request)
    }
}

/// Sends the request; prints every reply frame as it comes.
pub async fn run(broker: &BrokerArgs, args: CallArgs) -> Result<ExitCode, String> {
    let request = args.request()?;
    let client = broker.client(Duration::from_millis(args.timeout.max(1)), args.retries + 1)?;
    let mut replies = Box::pin(
        client
            .request_stream(args.service.clone().into_bytes(), request)
            .await
            .map_err(|e| e.to_string())?,
    );
    let mut stdout = std::io::stdout().lock();
    while let Some(part) = replies.next().await {
        let part = part.map_err(|e| e.to_string())?;
        for frame in part.body.iter() {
            let mut line = json::decode(frame, args.encoding());
            if line.last() != Some(&b'\n') {
                line.push(b'\n');
            }
            stdout
                .write_all(&line)
                .and_then(|()| stdout.flush())
                .map_err(|e| format!("cannot write the reply: {e}"))?;
        }
        if part.kind == ReplyKind::Final {
            return Ok(ExitCode::SUCCESS);
        }
    }
    Err("the client stopped before the final reply".into())
}
