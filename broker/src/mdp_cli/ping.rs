//! `mdp ping`: round trips to the broker itself. Each is an `mmi.service` question
//! (RFC 8), which every Majordomo broker answers at once without a worker.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use zmtp::Message;

use super::connection::BrokerArgs;

/// `mdp ping`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit status: 0 when every ping was answered, 1 otherwise.")]
pub struct PingArgs {
    /// Round trips to make.
    #[arg(short, long, value_name = "N", default_value_t = 1)]
    pub count: u32,
    /// Milliseconds between round trips.
    #[arg(short, long, value_name = "MS", default_value_t = 1000)]
    pub interval: u64,
    /// Milliseconds to wait for each answer.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub timeout: u64,
}

/// Pings; prints each round trip and a summary line.
pub async fn run(broker: &BrokerArgs, args: PingArgs) -> Result<ExitCode, String> {
    let client = broker.client(Duration::from_millis(args.timeout.max(1)), 1)?;
    let mut times = Vec::new();
    for n in 0..args.count {
        if n > 0 {
            tokio::time::sleep(Duration::from_millis(args.interval)).await;
        }
        let start = Instant::now();
        match client
            .request(&b"mmi.service"[..], Message::from("mmi.ping"))
            .await
        {
            Ok(_) => {
                let ms = start.elapsed().as_secs_f64() * 1000.0;
                println!("reply from {}: seq={n} time={ms:.3} ms", broker.names());
                times.push(ms);
            }
            Err(e) => println!("no reply from {}: seq={n}: {e}", broker.names()),
        }
    }
    let answered = times.len();
    let sent = args.count as usize;
    if answered > 0 {
        let min = times.iter().copied().fold(f64::INFINITY, f64::min);
        let max = times.iter().copied().fold(0.0, f64::max);
        let avg = times.iter().sum::<f64>() / answered as f64;
        println!("{sent} sent, {answered} answered, min/avg/max = {min:.3}/{avg:.3}/{max:.3} ms");
    } else {
        println!("{sent} sent, 0 answered");
    }
    Ok(if answered == sent {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
