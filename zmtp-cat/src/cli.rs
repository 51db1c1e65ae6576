//! The command line.

use clap::Parser;
use zmtp::SocketType;

const AFTER_HELP: &str = "\
LINE FORMAT:
  Each stdin line is one message; frames are split by the separator (default '|').
  A field '0x' + hex is raw bytes ('0x' alone is an empty frame); anything else is
  sent as is. Received messages are printed the same way, one line each: a frame is
  printed as text when it is valid UTF-8 without control characters, does not start
  with '0x' and does not contain the separator; otherwise as '0x' + hex. So every
  printed line, fed back, is the same message. An empty frame is an empty field.

PER SOCKET TYPE:
  dealer, pair     send stdin lines and print what arrives, at the same time
  router           prints the sender's routing id as the first frame; a stdin
                   line's first frame names the peer to send to (as printed, so
                   0x00… ids work); a line for an unknown peer is reported on
                   stderr and dropped
  req              sends a line, prints the reply, then sends the next line;
                   exits at end of input
  rep              prints each request and answers it with the next stdin line;
                   once stdin is at its end (and without --echo) it prints the next
                   request and exits 0 without answering it
  pub, push        send stdin lines; exit at end of input
  sub, pull        print what arrives (stdin is not read)
  xpub             sends stdin lines, prints subscription messages
  xsub             sends stdin lines as they are (0x01 + the topic in hex
                   subscribes: 0x0161 to 'a', 0x01 to everything; 0x00…
                   cancels) and prints what arrives

  At end of input the sockets that receive keep receiving until -n, --timeout or
  Ctrl-C. Before exiting, queued messages get up to 2 s to go out.

MONITOR (--monitor):
  Each socket event is one stderr line: '# ', the event, then key=value fields
  (reason= comes last and may contain spaces; routing ids are printed as frames):
    # listening endpoint=tcp://127.0.0.1:5555
    # accepted endpoint=tcp://127.0.0.1:5555 peer=127.0.0.1:40312
    # connected endpoint=tcp://127.0.0.1:5555
    # connect_retried endpoint=tcp://127.0.0.1:5555 after_ms=100
    # handshake_ok peer=127.0.0.1:40312 routing_id=0x0080000001
    # handshake_failed peer=127.0.0.1:40312 kind=Handshake reason=...
    # disconnected peer=127.0.0.1:40312 routing_id=0x0080000001 kind=PeerClosed reason=...
    # closed
  routing_id= appears for router sockets only. Other diagnostics start with
  'zmtp-cat: ', so 'grep ^#' picks the events.

EXIT STATUS:
  0  done: -n messages received, end of input (req, pub, push, rep), or Ctrl-C
  1  --timeout: no message arrived in time
  2  usage or other error (one line on stderr)

EXAMPLES:
  Echo server and a client:
    zmtp-cat rep --bind tcp://127.0.0.1:5555 --echo
    printf 'hello\\nworld|2\\n' | zmtp-cat req -c tcp://127.0.0.1:5555
  Send one message and wait at most 5 s for one answer:
    echo 'ping' | zmtp-cat dealer -c tcp://127.0.0.1:5555 -n 1 --timeout 5000
  Watch what arrives at a ROUTER; type 'ID|text' to answer a peer:
    zmtp-cat router -b ipc:///tmp/x.sock
  Binary frames:
    echo '0x00ff|text' | zmtp-cat dealer -c tcp://127.0.0.1:5555

  Talk to a CURVE-secured broker (keys from zmtp-keygen):
    echo 'MDPC01|mmi.service|echo' | zmtp-cat dealer -c tcp://127.0.0.1:5555 -n 1 \\
      --curve-keys client.key_secret --curve-server broker.key

  Endpoints bound are reported on stderr (with the port the OS picked for :0).
  Log verbosity follows RUST_LOG (default 'warn'), e.g. RUST_LOG=zmtp=debug.";

/// Send stdin lines as ZeroMQ messages and print received messages, one per line.
///
/// A pure-Rust ZMTP 3.1 peer for poking ZeroMQ endpoints and scripting interop
/// checks against libzmq, pyzmq and friends.
#[derive(Debug, Parser)]
#[command(
    name = "zmtp-cat",
    version,
    override_usage = "zmtp-cat TYPE [-b|--bind EP]... [-c|--connect EP]... [--identity ID] \
                      [--subscribe TOPIC]...\n       \
                      [-n|--count N] [--echo] [--separator SEP] [--timeout MS] [--monitor]\n       \
                      [--curve-keys FILE [--curve-server FILE | --curve-allow DIR|FILE]] \
                      [--plain USER:PASSWORD]",
    after_help = AFTER_HELP
)]
pub struct Args {
    /// Socket type: dealer, router, req, rep, pub, sub, xpub, xsub, push, pull, pair.
    #[arg(value_name = "TYPE", value_parser = parse_socket_type)]
    pub socket_type: SocketType,

    /// Listen on an endpoint (tcp://HOST:PORT, tcp://*:0, ipc:///PATH); repeatable.
    #[arg(short, long = "bind", value_name = "EP")]
    pub bind: Vec<String>,

    /// Connect to an endpoint (reconnects in the background); repeatable.
    #[arg(short, long = "connect", value_name = "EP")]
    pub connect: Vec<String>,

    /// Routing id to announce (dealer, req, router); '0x…' for binary.
    #[arg(long, value_name = "ID")]
    pub identity: Option<String>,

    /// Topic prefix to subscribe to (sub only; repeatable; '0x…' for binary). Without
    /// it a sub socket subscribes to everything.
    #[arg(long, value_name = "TOPIC")]
    pub subscribe: Vec<String>,

    /// Exit 0 after receiving N messages.
    #[arg(short = 'n', long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Send every received message straight back (rep, router, dealer, pair); a
    /// router keeps the routing id, so the message goes back to its sender.
    #[arg(long)]
    pub echo: bool,

    /// Frame separator within a line.
    #[arg(long, value_name = "SEP", default_value = "|")]
    pub separator: String,

    /// Exit 1 if no message arrives for MS milliseconds (counted from the start or the
    /// last message received; for req, from each request; for send-only types, from
    /// the last message sent).
    #[arg(long, value_name = "MS")]
    pub timeout: Option<u64>,

    /// Print the socket's connection events on stderr, one '# EVENT key=value…' line
    /// each (see MONITOR below).
    #[arg(long)]
    pub monitor: bool,

    /// CURVE: our key pair, from a secret certificate (`zmtp-keygen NAME` writes
    /// NAME.key_secret) or a file with the Z85 secret key. With --curve-server we
    /// are a CURVE client; without, a CURVE server (any client key is let in unless
    /// --curve-allow is given).
    #[arg(long, value_name = "FILE")]
    pub curve_keys: Option<std::path::PathBuf>,

    /// CURVE client: the server's public key (a public certificate NAME.key, or a
    /// file with the Z85 key).
    #[arg(long, value_name = "FILE", requires = "curve_keys")]
    pub curve_server: Option<std::path::PathBuf>,

    /// CURVE server: let in only these client public keys (a file, or a directory
    /// of certificates).
    #[arg(
        long,
        value_name = "DIR|FILE",
        requires = "curve_keys",
        conflicts_with = "curve_server"
    )]
    pub curve_allow: Option<std::path::PathBuf>,

    /// PLAIN client: log in with USER:PASSWORD.
    #[arg(long, value_name = "USER:PASSWORD", conflicts_with = "curve_keys")]
    pub plain: Option<String>,
}

fn parse_socket_type(name: &str) -> Result<SocketType, String> {
    name.parse()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn parses_the_documented_line() {
        let args = Args::try_parse_from([
            "zmtp-cat",
            "router",
            "-b",
            "tcp://*:0",
            "--bind",
            "ipc:///tmp/a",
            "-c",
            "tcp://h:1",
            "--identity",
            "0x01",
            "-n",
            "3",
            "--echo",
            "--separator",
            "::",
            "--timeout",
            "500",
            "--monitor",
        ])
        .unwrap();
        assert_eq!(args.socket_type, SocketType::Router);
        assert_eq!(args.bind, ["tcp://*:0", "ipc:///tmp/a"]);
        assert_eq!(args.connect, ["tcp://h:1"]);
        assert_eq!(args.count, Some(3));
        assert!(args.echo);
        assert_eq!(args.timeout, Some(500));
        assert!(args.monitor);
        assert!(Args::try_parse_from(["zmtp-cat", "stream"]).is_err());
        assert!(Args::try_parse_from(["zmtp-cat", "DEALER"]).is_ok());
        assert!(Args::try_parse_from(["zmtp-cat", "dealer", "-n", "0"]).is_err());
    }
}
