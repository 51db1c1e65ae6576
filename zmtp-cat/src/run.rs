//! The run loop: set the socket up, then move lines between stdin, the socket and
//! stdout in the pattern the socket type calls for.

use std::future::Future;
use std::io::{BufRead, Write};
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use zmtp::{Error, Message, Monitor, Socket, SocketOptions, SocketType};

use crate::cli::Args;
use crate::{events, text};

/// How long queued messages may take to go out when we exit.
const LINGER: Duration = Duration::from_secs(2);

/// Why the run ended other than by finishing its work.
#[derive(Debug)]
pub enum Stop {
    /// Ctrl-C: a clean exit.
    Interrupted,
    /// `--timeout` ran out.
    Timeout(Duration),
    /// Anything else, as one line for humans.
    Error(String),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Error(e.to_string())
    }
}

/// Adds --curve-keys/--curve-server/--curve-allow or --plain to `options`.
fn security(args: &Args, options: SocketOptions) -> Result<SocketOptions, Stop> {
    use zmtp::auth::{Authenticator, CurveKeyList};
    use zmtp::certificate;
    use zmtp::proto::MechanismConfig;
    let failed = |e: zmtp::auth::LoadError| Stop::Error(e.to_string());
    if let Some(plain) = &args.plain {
        let (user, password) = plain
            .split_once(':')
            .ok_or_else(|| Stop::Error("--plain wants USER:PASSWORD".into()))?;
        let mechanism = MechanismConfig::plain_client(user.to_owned(), password.to_owned());
        return Ok(options.mechanism(mechanism));
    }
    let Some(keys) = &args.curve_keys else {
        return Ok(options);
    };
    let keys = certificate::load_secret_key(keys).map_err(failed)?;
    if let Some(server) = &args.curve_server {
        let server = certificate::load_public_key(server).map_err(failed)?;
        return Ok(options.mechanism(MechanismConfig::curve_client(keys, server)));
    }
    let options = options.mechanism(MechanismConfig::curve_server(keys));
    match &args.curve_allow {
        Some(path) => {
            let allowed = CurveKeyList::load(path).map_err(failed)?;
            Ok(options.authenticator(Authenticator::curve_keys(allowed)))
        }
        None => Ok(options),
    }
}

/// One stdin line: its number (from 1) and its bytes, line ending included.
type Line = (u64, Vec<u8>);

/// Runs `zmtp-cat` with parsed arguments until it is done.
pub async fn run(args: Args) -> Result<(), Stop> {
    let socket_type = args.socket_type;
    check_args(&args)?;
    // ROUTER_MANDATORY: a line for an unknown peer is an error message, not a silent drop.
    let mut options = SocketOptions::default()
        .linger(LINGER)
        .router_mandatory(socket_type == SocketType::Router);
    if let Some(id) = &args.identity {
        let id = text::decode_field(id.as_bytes())
            .map_err(|e| Stop::Error(format!("--identity {e}")))?;
        options = options.routing_id(id);
    }
    let options = security(&args, options)?;
    let mut socket = Socket::with_options(socket_type, options)?;
    if socket_type == SocketType::Sub {
        // Without --subscribe, everything (the empty prefix).
        let topics = if args.subscribe.is_empty() {
            vec![String::new()]
        } else {
            args.subscribe.clone()
        };
        for topic in topics {
            let topic = text::decode_field(topic.as_bytes())
                .map_err(|e| Stop::Error(format!("--subscribe {e}")))?;
            socket.subscribe(topic)?;
        }
    }
    let monitor = args
        .monitor
        .then(|| spawn_event_printer(socket.monitor(), args.separator.clone()));
    for endpoint in &args.bind {
        let bound = socket.bind(endpoint).await?;
        eprintln!("zmtp-cat: bound {bound}");
    }
    for endpoint in &args.connect {
        socket.connect(endpoint)?;
    }
    let reads_stdin = sends(socket_type) && !(socket_type == SocketType::Rep && args.echo);
    let input = if reads_stdin {
        Some(spawn_stdin_reader()?)
    } else {
        None
    };
    let mut cat = Cat {
        socket,
        input,
        separator: args.separator,
        count: args.count,
        echo: args.echo,
        timeout: args.timeout.map(Duration::from_millis),
        received: 0,
        interrupted: Box::pin(ctrl_c()),
    };
    let result = match socket_type {
        SocketType::Req => cat.run_req().await,
        SocketType::Rep => cat.run_rep().await,
        _ => cat.run_streaming().await,
    };
    // Give queued messages up to the linger period; a second Ctrl-C skips that.
    tokio::select! {
        () = cat.socket.close() => {}
        () = ctrl_c() => {}
    }
    if let Some(printer) = monitor {
        // The socket is gone, so the monitor ends after `# closed`: let that print.
        let _ = tokio::time::timeout(Duration::from_millis(500), printer).await;
    }
    result
}

/// `--monitor`: prints each event on stderr until the socket is closed.
fn spawn_event_printer(mut monitor: Monitor, separator: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(event) = monitor.recv().await {
            eprintln!("{}", events::describe(&event, &separator));
        }
    })
}

fn check_args(args: &Args) -> Result<(), Stop> {
    let t = args.socket_type;
    if args.bind.is_empty() && args.connect.is_empty() {
        return Err(Stop::Error(
            "nothing to talk to: give at least one --bind or --connect".into(),
        ));
    }
    text::check_separator(&args.separator).map_err(Stop::Error)?;
    if args.echo
        && !matches!(
            t,
            SocketType::Rep | SocketType::Router | SocketType::Dealer | SocketType::Pair
        )
    {
        return Err(Stop::Error(format!(
            "--echo needs a rep, router, dealer or pair socket, not {}",
            t.as_str().to_lowercase()
        )));
    }
    if !args.subscribe.is_empty() && t != SocketType::Sub {
        return Err(Stop::Error("--subscribe is for sub sockets".into()));
    }
    Ok(())
}

/// Whether the type sends messages of its own (SUB and PULL only receive).
fn sends(t: SocketType) -> bool {
    !matches!(t, SocketType::Sub | SocketType::Pull)
}

/// Whether the type receives messages (PUB and PUSH only send).
fn receives(t: SocketType) -> bool {
    !matches!(t, SocketType::Pub | SocketType::Push)
}

async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        // No signal handling available: never interrupt.
        std::future::pending::<()>().await;
    }
}

/// Reads stdin on a plain thread (a blocked read must not hold up the exit) and hands
/// lines over one by one.
fn spawn_stdin_reader() -> Result<mpsc::Receiver<Line>, Stop> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut number = 0;
            loop {
                let mut line = Vec::new();
                match stdin.read_until(b'\n', &mut line) {
                    Ok(0) => break,
                    Ok(_) => {
                        number += 1;
                        if tx.blocking_send((number, line)).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        eprintln!("zmtp-cat: cannot read stdin: {e}");
                        break;
                    }
                }
            }
        })
        .map_err(|e| Stop::Error(format!("cannot start the stdin reader: {e}")))?;
    Ok(rx)
}

/// Sleeps until `deadline`, forever when there is none.
async fn expire(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

struct Cat {
    socket: Socket,
    /// Stdin lines; None when stdin is not read or at its end.
    input: Option<mpsc::Receiver<Line>>,
    separator: String,
    count: Option<u64>,
    echo: bool,
    timeout: Option<Duration>,
    received: u64,
    interrupted: Pin<Box<dyn Future<Output = ()>>>,
}

impl Cat {
    fn deadline(&self) -> Option<Instant> {
        self.timeout.map(|t| Instant::now() + t)
    }

    fn timed_out(&self) -> Stop {
        Stop::Timeout(self.timeout.unwrap_or_default())
    }

    /// Prints a received message and counts it; true once `-n` is reached.
    fn print(&mut self, msg: &Message) -> Result<bool, Stop> {
        let line = text::encode_message(msg, &self.separator);
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| Stop::Error(format!("cannot write to stdout: {e}")))?;
        self.received += 1;
        Ok(self.count.is_some_and(|n| self.received >= n))
    }

    /// Decodes a stdin line; a bad one is reported and skipped (None).
    fn decode(&self, (number, line): Line) -> Option<Message> {
        match text::decode_line(text::trim_line_ending(&line), &self.separator) {
            Ok(msg) => Some(msg),
            Err(e) => {
                eprintln!("zmtp-cat: skipping input line {number}: {e}");
                None
            }
        }
    }

    /// The next stdin line, None at the end of input.
    async fn next_line(&mut self) -> Result<Option<Line>, Stop> {
        let Some(input) = &mut self.input else {
            return Ok(None);
        };
        tokio::select! {
            () = &mut self.interrupted => Err(Stop::Interrupted),
            line = input.recv() => {
                if line.is_none() {
                    self.input = None;
                }
                Ok(line)
            }
        }
    }

    /// Sends, giving up on Ctrl-C or at `deadline`. A message the socket refuses
    /// (bad routing, empty) is reported and dropped; a socket that cannot send at all
    /// ends the run.
    async fn send(&mut self, msg: Message, deadline: Option<Instant>) -> Result<(), Stop> {
        let sent = tokio::select! {
            () = &mut self.interrupted => return Err(Stop::Interrupted),
            () = expire(deadline) => return Err(self.timed_out()),
            sent = self.socket.send(msg) => sent,
        };
        match sent {
            Ok(()) => Ok(()),
            Err(e @ (Error::EmptyMessage | Error::HostUnreachable(_) | Error::WrongState(_))) => {
                eprintln!("zmtp-cat: message not sent: {e}");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Receives, giving up on Ctrl-C or at `deadline`.
    async fn recv(&mut self, deadline: Option<Instant>) -> Result<Message, Stop> {
        tokio::select! {
            () = &mut self.interrupted => Err(Stop::Interrupted),
            () = expire(deadline) => Err(self.timed_out()),
            msg = self.socket.recv() => Ok(msg?),
        }
    }

    /// REQ: a line out, its reply printed, and again; done at the end of input.
    async fn run_req(&mut self) -> Result<(), Stop> {
        while let Some(line) = self.next_line().await? {
            let Some(request) = self.decode(line) else {
                continue;
            };
            let deadline = self.deadline();
            self.send(request, deadline).await?;
            let reply = self.recv(deadline).await?;
            if self.print(&reply)? {
                break;
            }
        }
        Ok(())
    }

    /// REP: a request printed, answered with the next line (or itself with --echo).
    /// At the end of input the request just printed stays unanswered and we are done.
    async fn run_rep(&mut self) -> Result<(), Stop> {
        loop {
            let request = self.recv(self.deadline()).await?;
            let done = self.print(&request)?;
            let reply = if self.echo {
                request
            } else {
                loop {
                    let Some(line) = self.next_line().await? else {
                        return Ok(());
                    };
                    if let Some(reply) = self.decode(line) {
                        break reply;
                    }
                }
            };
            self.send(reply, None).await?;
            if done {
                return Ok(());
            }
        }
    }

    /// Every other type: stdin lines go out as they come while received messages are
    /// printed (and echoed). Send-only types are done at the end of input; the others
    /// keep receiving until -n, --timeout or Ctrl-C.
    async fn run_streaming(&mut self) -> Result<(), Stop> {
        let socket_type = self.socket.socket_type();
        let receiving = receives(socket_type);
        let mut deadline = self.deadline();
        loop {
            if !receiving && self.input.is_none() {
                return Ok(());
            }
            enum Event {
                Received(Result<Message, Error>),
                Line(Option<Line>),
            }
            let event = tokio::select! {
                () = &mut self.interrupted => return Err(Stop::Interrupted),
                () = expire(deadline) => return Err(self.timed_out()),
                msg = self.socket.recv(), if receiving => Event::Received(msg),
                line = async {
                    match &mut self.input {
                        Some(input) => input.recv().await,
                        None => std::future::pending().await,
                    }
                }, if self.input.is_some() => Event::Line(line),
            };
            match event {
                Event::Received(msg) => {
                    let msg = msg?;
                    deadline = self.deadline();
                    let done = self.print(&msg)?;
                    if self.echo {
                        self.send(msg, None).await?;
                    }
                    if done {
                        return Ok(());
                    }
                }
                Event::Line(None) => self.input = None,
                Event::Line(Some(line)) => {
                    if let Some(msg) = self.decode(line) {
                        self.send(msg, deadline).await?;
                        if !receiving {
                            deadline = self.deadline();
                        }
                    }
                }
            }
        }
    }
}
