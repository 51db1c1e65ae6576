//! `mdp worker SERVICE -- CMD [ARG...]`: a service served by a command, run once per
//! request: the request's frames on its stdin, its stdout as the one-frame reply.

use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mdp::worker::HandlerResult;
use mdp::Worker;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use zmtp::Message;

use super::connection::BrokerArgs;

/// `mdp worker`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The request's frames are written to the command's stdin one after \
                        the other (a request of one frame is the usual case); its stdout \
                        is the reply, one frame. Its stderr goes to ours. The command also \
                        gets MDP_SERVICE and MDP_FRAMES (the frame count) in its \
                        environment.\n\
                        A command that fails (non-zero exit, killed, or past --timeout) \
                        is logged, and the client still gets what it wrote to stdout, so \
                        it is never left waiting.\n\n\
                        Example: mdp worker upper -- tr a-z A-Z"
)]
pub struct WorkerArgs {
    /// The service to serve.
    pub service: String,
    /// Requests served at once (each with its own broker connection and command).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub concurrency: usize,
    /// Seconds a command may run before it is killed (0: no limit).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub timeout: u64,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// What runs for each request.
#[derive(Debug)]
struct Job {
    service: String,
    program: String,
    args: Vec<String>,
    timeout: Option<Duration>,
}

impl Job {
    /// Runs the command on `request`; its stdout, whatever became of it.
    async fn run(&self, request: Message) -> HandlerResult {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .env("MDP_SERVICE", &self.service)
            .env("MDP_FRAMES", request.len().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.program))?;
        let mut stdin = child.stdin.take();
        let feed = async move {
            if let Some(stdin) = &mut stdin {
                for frame in request.iter() {
                    // A command that does not read its input is not an error.
                    if stdin.write_all(frame).await.is_err() {
                        break;
                    }
                }
            }
            drop(stdin);
        };
        let output = async {
            let (_, output) = tokio::join!(feed, child.wait_with_output());
            output
        };
        let output = match self.timeout {
            Some(limit) => match tokio::time::timeout(limit, output).await {
                Ok(output) => output,
                Err(_) => {
                    // The child is killed when its future is dropped (kill_on_drop).
                    tracing::warn!(program = %self.program, ?limit, "the command ran too long: killed");
                    eprintln!("mdp worker: {} ran longer than {limit:?}: killed", self.program);
                    return Ok(Message::from(Bytes::new()));
                }
            },
            None => output.await,
        }
        .map_err(|e| format!("{}: {e}", self.program))?;
        if !output.status.success() {
            eprintln!("mdp worker: {} exited with {}", self.program, output.status);
        }
        Ok(Message::from(Bytes::from(output.stdout)))
    }
}

/// Serves until SIGINT or SIGTERM, then sends DISCONNECT.
pub async fn run(broker: &BrokerArgs, args: WorkerArgs) -> Result<ExitCode, String> {
    let Some((program, rest)) = args.command.split_first() else {
        return Err("no command after --".into());
    };
    let job = Arc::new(Job {
        service: args.service.clone(),
        program: program.clone(),
        args: rest.to_vec(),
        timeout: (args.timeout > 0).then(|| Duration::from_secs(args.timeout)),
    });
    let options = broker
        .worker_options()?
        .concurrency(args.concurrency.max(1));
    eprintln!(
        "mdp worker: serving {} through {} with {}",
        args.service,
        broker.names(),
        args.command.join(" ")
    );
    Worker::new(broker.broker.clone(), args.service.into_bytes())
        .options(options)
        .run_until(
            move |request| {
                let job = job.clone();
                async move { job.run(request).await }
            },
            crate::signal::shutdown_signal(),
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}
