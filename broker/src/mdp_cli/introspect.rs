//! `mdp services`, `mdp workers`, `mdp stats`: the broker's `mmi.services`,
//! `mmi.workers` and `mmi.stats` answers as tables (or JSON).

use std::process::ExitCode;
use std::time::Duration;

use mdp::broker::snapshot::{ServiceSummary, Stats, WorkerSummary};
use serde::de::DeserializeOwned;
use serde::Serialize;
use zmtp::Message;

use super::connection::BrokerArgs;

/// Options of the listing subcommands.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Milliseconds to wait for the broker's answer.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub timeout: u64,
}

/// `mdp workers`.
#[derive(Debug, clap::Args)]
pub struct WorkersArgs {
    /// Only this service's workers.
    pub service: Option<String>,
    #[command(flatten)]
    pub list: ListArgs,
}

/// Asks `mmi.NAME` (with `body`) and decodes the MessagePack answer.
async fn ask<T: DeserializeOwned>(
    broker: &BrokerArgs,
    list: &ListArgs,
    name: &str,
    body: Message,
) -> Result<T, String> {
    let client = broker.client(Duration::from_millis(list.timeout.max(1)), 1)?;
    let reply = client
        .request(format!("mmi.{name}").into_bytes(), body)
        .await
        .map_err(|e| format!("{e} (is {} a broker?)", broker.names()))?;
    let frame = reply.first().ok_or("an empty answer")?;
    if &frame[..] == b"501" {
        return Err(format!(
            "the broker does not answer mmi.{name} (only mdp-broker does)"
        ));
    }
    rmp_serde::from_slice(frame).map_err(|e| format!("cannot read the mmi.{name} answer: {e}"))
}

fn print_json(value: &impl Serialize) -> Result<ExitCode, String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// `mdp services`.
pub async fn services(broker: &BrokerArgs, list: ListArgs) -> Result<ExitCode, String> {
    let services: Vec<ServiceSummary> = ask(broker, &list, "services", Message::new()).await?;
    if list.json {
        return print_json(&services);
    }
    print!("{}", ServiceSummary::table(&services));
    Ok(ExitCode::SUCCESS)
}

/// `mdp workers [SERVICE]`.
pub async fn workers(broker: &BrokerArgs, args: WorkersArgs) -> Result<ExitCode, String> {
    let body = args
        .service
        .clone()
        .map_or_else(Message::new, Message::from);
    let workers: Vec<WorkerSummary> = ask(broker, &args.list, "workers", body).await?;
    if args.list.json {
        return print_json(&workers);
    }
    print!("{}", WorkerSummary::table(&workers));
    Ok(ExitCode::SUCCESS)
}

/// `mdp stats`.
pub async fn stats(broker: &BrokerArgs, list: ListArgs) -> Result<ExitCode, String> {
    let stats: Stats = ask(broker, &list, "stats", Message::new()).await?;
    if list.json {
        return print_json(&stats);
    }
    print!("{stats}");
    Ok(ExitCode::SUCCESS)
}
