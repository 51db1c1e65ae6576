//! The torture run: a real broker process, a well-behaved client and worker beside
//! it, and every attack of [`crate::attacks`] at once. It passes when the broker is
//! still up, the side client got every reply (one attempt each: a lost request is a
//! failure), a fresh client is served afterwards, and the broker's peak RSS stayed
//! under the bound.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mdp::{CallOptions, Client, Worker, WorkerOptions};
use zmtp::Message;

use crate::attacks::{flood_mdp, flood_tcp, flood_unread, slowloris};
use crate::broker_process::{memory_kib, BrokerProcess};
use crate::hostile;
use crate::wait::within;

/// The broker's heartbeat interval, and its workers'.
const HEARTBEAT: Duration = Duration::from_millis(500);

/// What to throw at the broker.
#[derive(Debug, Clone)]
pub struct Config {
    /// The `mdp-broker` binary.
    pub broker: PathBuf,
    /// Rounds of invalid MDP messages (about 30 messages a round).
    pub mdp_rounds: usize,
    /// Rounds of non-ZMTP byte streams (16 connections a round).
    pub tcp_rounds: usize,
    /// Of those, how many send a byte per write.
    pub bytewise_rounds: usize,
    /// Connections that send half a greeting and then nothing.
    pub slowloris: usize,
    /// Requests with 16 KiB bodies whose replies are never read.
    pub unread: usize,
    /// Requests for 11 services nobody serves, from one connection.
    pub unserved: usize,
    /// Workers registering 256 KiB service names.
    pub long_names: usize,
    /// Workers registering a new name each and leaving.
    pub churn: usize,
    /// PARTIALs of 65 000 empty frames for an MDP 0.1 client.
    pub empty_partials: usize,
    /// Rounds of a routing id taken over by a newcomer.
    pub stolen_ids: usize,
    /// Requests of the asynchronous burst, all sent before any reply is read.
    pub burst: usize,
    /// The broker's peak RSS must stay under this, in KiB.
    pub rss_bound_kib: u64,
}

impl Config {
    /// Seconds, for `cargo test`.
    pub fn short(broker: PathBuf) -> Config {
        Config {
            broker,
            mdp_rounds: 200,
            tcp_rounds: 20,
            bytewise_rounds: 2,
            slowloris: 500,
            unread: 1500,
            unserved: 20_000,
            long_names: 8,
            churn: 1100,
            empty_partials: 16,
            stolen_ids: 5,
            burst: 20_000,
            rss_bound_kib: 200 << 10,
        }
    }

    /// Minutes, for `scripts/torture` (the slowloris needs `ulimit -n` above 5000).
    pub fn long(broker: PathBuf) -> Config {
        Config {
            broker,
            mdp_rounds: 20_000,
            tcp_rounds: 500,
            bytewise_rounds: 20,
            slowloris: 5000,
            unread: 5000,
            unserved: 100_000,
            long_names: 32,
            churn: 5000,
            empty_partials: 256,
            stolen_ids: 50,
            burst: 100_000,
            rss_bound_kib: 200 << 10,
        }
    }
}

/// What a torture run did and saw.
#[derive(Debug, Clone)]
pub struct Report {
    /// Invalid MDP messages sent.
    pub mdp_messages: usize,
    /// Bad TCP connections made (each closed by the broker).
    pub bad_connections: usize,
    /// Slowloris connections held open.
    pub slowloris: usize,
    /// Replies never read.
    pub unread: usize,
    /// Requests for unserved services sent.
    pub unserved: usize,
    /// Workers with huge names refused (all of them, or the run fails).
    pub long_names_refused: usize,
    /// Names registered and left behind.
    pub churn: usize,
    /// Frames of the reply gathered from the PARTIALs of empty frames.
    pub gathered_frames: usize,
    /// Routing ids taken over (the newcomer always got its own reply, or the run
    /// fails).
    pub stolen_ids: usize,
    /// Requests of the asynchronous burst answered (all, or the run fails).
    pub burst_answered: usize,
    /// Side requests served during the attacks.
    pub side_served: usize,
    /// The broker's RSS after the attacks, KiB.
    pub rss_kib: u64,
    /// The broker's peak RSS, KiB.
    pub peak_kib: u64,
    /// The bound on the peak, KiB.
    pub bound_kib: u64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RESULT torture mdp_messages={} bad_connections={} slowloris={} unread={} \
             unserved={} long_names_refused={} churn={} gathered_frames={} stolen_ids={} \
             burst_answered={} side_served={} side_lost=0 broker_alive=yes rss_kib={} \
             peak_kib={} bound_kib={}",
            self.mdp_messages,
            self.bad_connections,
            self.slowloris,
            self.unread,
            self.unserved,
            self.long_names_refused,
            self.churn,
            self.gathered_frames,
            self.stolen_ids,
            self.burst_answered,
            self.side_served,
            self.rss_kib,
            self.peak_kib,
            self.bound_kib
        )
    }
}

/// `error`, with the end of the broker's log.
fn with_log(error: String, broker: &BrokerProcess) -> String {
    let log = broker.stderr();
    let tail: Vec<&str> = log.lines().rev().take(40).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    format!(
        "{error}\n--- the broker's last log lines ---\n{}",
        tail.join("\n")
    )
}

/// What the hostile peers saw.
struct Hostile {
    long_names_refused: usize,
    gathered_frames: usize,
    burst_answered: usize,
}

/// The attacks of [`hostile`], one after the other (the side client goes on
/// meanwhile); `Err` when the broker let one through.
async fn hostile_peers(endpoint: &str, config: &Config) -> Result<Hostile, String> {
    let flood = hostile::flood_unserved(endpoint, config.unserved, 11).await?;
    let long_names_refused = hostile::long_names(endpoint, config.long_names, 256 << 10).await?;
    if long_names_refused != config.long_names {
        return Err(format!(
            "{long_names_refused} of {} workers with 256 KiB names got DISCONNECT",
            config.long_names
        ));
    }
    hostile::history_churn(endpoint, config.churn).await?;
    let gathered_frames = hostile::empty_partials(endpoint, config.empty_partials, 65_000).await?;
    if gathered_frames > 65_536 {
        return Err(format!("a gathered reply of {gathered_frames} frames"));
    }
    let wrong = hostile::stolen_identity(endpoint, config.stolen_ids).await?;
    if wrong > 0 {
        return Err(format!(
            "{wrong} of {} newcomers that took a departed client's routing id got its reply",
            config.stolen_ids
        ));
    }
    let burst_answered = hostile::async_burst(endpoint, config.burst).await?;
    if burst_answered != config.burst {
        return Err(format!(
            "{burst_answered} of {} requests of the asynchronous burst answered",
            config.burst
        ));
    }
    drop(flood);
    Ok(Hostile {
        long_names_refused,
        gathered_frames,
        burst_answered,
    })
}

/// Runs the attacks of `config` against a fresh broker; `Err` says what failed.
pub async fn run(config: &Config) -> Result<Report, String> {
    let mut broker = BrokerProcess::launch(
        &config.broker,
        "tcp://127.0.0.1:0",
        &["--heartbeat-interval", &HEARTBEAT.as_millis().to_string()],
    )?;
    let endpoint = broker.endpoint.clone();
    // Heartbeats as often as the broker's, so a worker is never expired while idle.
    let options = WorkerOptions::default().heartbeat_interval(HEARTBEAT);
    let worker = |service| Worker::new(&endpoint, service).options(options.clone());
    tokio::spawn(worker("echo").run(|request| async move { Ok(request) }));
    let sink_served = Arc::new(AtomicUsize::new(0));
    let counter = sink_served.clone();
    tokio::spawn(worker("sink").run(move |request| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move { Ok(request) }
    }));
    let client = Client::connect(&endpoint).map_err(|e| e.to_string())?;
    for service in ["echo", "sink"] {
        within(&format!("a worker of {service} to register"), async {
            while !client.service_exists(service).await.unwrap_or(false) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await?;
    }

    // The well-behaved client: one attempt each, so a lost request fails the run.
    let attacking = Arc::new(AtomicBool::new(true));
    let side = tokio::spawn({
        let attacking = attacking.clone();
        async move {
            let limits = CallOptions {
                timeout: Duration::from_secs(30),
                attempts: 1,
            };
            let mut served = 0;
            while served < 50 || attacking.load(Ordering::SeqCst) {
                let body = format!("side {served}");
                let reply = client
                    .request_with("echo", body.clone(), limits)
                    .await
                    .map_err(|e| format!("side request {body:?} during the attacks: {e}"))?;
                if reply != Message::from(body.clone()) {
                    return Err(format!("side request {body:?} got {reply:?}"));
                }
                served += 1;
            }
            Ok::<usize, String>(served)
        }
    });

    let attacks = async {
        // The slowloris connections stay open while everything else runs.
        let held = slowloris(&endpoint, config.slowloris).await?;
        let (sent, bad, unread) = tokio::join!(
            flood_mdp(&endpoint, config.mdp_rounds),
            flood_tcp(&endpoint, config.tcp_rounds, config.bytewise_rounds),
            flood_unread(&endpoint, config.unread, &sink_served),
        );
        Ok::<_, String>((held, sent?, bad?, unread?))
    };
    let outcome = attacks.await;
    let hostile = hostile_peers(&endpoint, config).await;
    attacking.store(false, Ordering::SeqCst);
    let side = within("the side client", side)
        .await?
        .map_err(|e| e.to_string())?;
    let (held, mdp_messages, bad_connections, unread) =
        outcome.map_err(|e| with_log(e, &broker))?;
    let hostile = hostile.map_err(|e| with_log(e, &broker))?;
    let side_served = side?;

    if !broker.is_running() {
        return Err(format!(
            "the broker died during the attacks\n{}",
            broker.stderr()
        ));
    }
    let fresh = Client::connect(&endpoint).map_err(|e| e.to_string())?;
    let reply = within("a fresh client's request", fresh.request("echo", "after"))
        .await?
        .map_err(|e| format!("a fresh client after the attacks: {e}"))?;
    if reply != Message::from("after") {
        return Err(format!("a fresh client after the attacks got {reply:?}"));
    }
    let report = Report {
        mdp_messages,
        bad_connections,
        slowloris: held.len(),
        unread: config.unread,
        unserved: config.unserved,
        long_names_refused: hostile.long_names_refused,
        churn: config.churn,
        gathered_frames: hostile.gathered_frames,
        stolen_ids: config.stolen_ids,
        burst_answered: hostile.burst_answered,
        side_served,
        rss_kib: memory_kib(broker.pid(), "VmRSS").unwrap_or(0),
        peak_kib: memory_kib(broker.pid(), "VmHWM").unwrap_or(0),
        bound_kib: config.rss_bound_kib,
    };
    drop((held, unread));
    if report.peak_kib >= report.bound_kib {
        return Err(format!(
            "the broker's RSS peaked at {} KiB, over the bound of {} KiB\n{report}",
            report.peak_kib, report.bound_kib
        ));
    }
    Ok(report)
}
