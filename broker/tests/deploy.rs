//! `deploy/` runs as written: brokers started with exactly the arguments of
//! `deploy/compose.yaml`'s `command:` lines, of the Kubernetes manifest's `args:`
//! (as many as its `replicas:`) and of the Dockerfile's `CMD`, with only the
//! listening address 0.0.0.0 replaced by a loopback address per broker (each
//! container or pod has its own IP), and the peer name resolved by an
//! `MDP_HOSTS_FILE` as Docker's or the cluster's DNS would. They must peer, say
//! ready on the probe paths the manifest names, and serve a request across
//! brokers through the name.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{bounded, http_get, wait_for_service, wait_until_async, BROKER};
use mdp::Client;
use mdp_torture::broker_process::{BrokerProcess, STARTUP};

fn deploy(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The JSON arrays after `key:` (YAML) or `key ` (a Dockerfile) on the lines of
/// `text` that start with it.
fn arrays(text: &str, key: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix(key)?;
            let rest = rest.strip_prefix(':').unwrap_or(rest).trim();
            rest.starts_with('[').then_some(rest)
        })
        .map(|rest| {
            serde_json::from_str(rest.trim())
                .unwrap_or_else(|e| panic!("{key}: {rest} is not a one-line JSON array: {e}"))
        })
        .collect()
}

/// The broker's value of `flag` in `args`.
fn flag<'a>(args: &'a [String], flag: &str) -> &'a str {
    let at = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("no {flag} in {args:?}"));
    &args[at + 1]
}

/// A hosts file in a fresh directory naming `name` for each of `hosts`.
fn hosts_file(tag: &str, name: &str, hosts: &[String]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mdp-deploy-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("hosts");
    let text: String = hosts.iter().map(|h| format!("{h} {name}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// Brokers with `args` each (0.0.0.0 becoming `hosts[i]`), the peer name in a
/// hosts file; checks they all say ready and serve a request across them.
async fn run_as_written(tag: &str, args: &[Vec<String>], hosts: &[String], readyz: &'static str) {
    let peer = flag(&args[0], "--peer").to_owned();
    let name = peer
        .strip_prefix("tcp://")
        .and_then(|rest| rest.rsplit_once(':'))
        .map(|(host, _)| host.to_owned())
        .unwrap_or_else(|| panic!("--peer {peer} is not tcp://NAME:PORT"));
    let hosts_path = hosts_file(tag, &name, hosts);
    let mut brokers = Vec::new();
    for (i, (args, host)) in args.iter().zip(hosts).enumerate() {
        let args: Vec<String> = args.iter().map(|a| a.replace("0.0.0.0", host)).collect();
        let mut command = Command::new(BROKER);
        command
            .args(&args)
            .env(mdp::discovery::HOSTS_FILE_VAR, &hosts_path)
            .env("HOSTNAME", format!("{tag}-{i}"));
        let broker = BrokerProcess::spawn(command, STARTUP).unwrap_or_else(|e| panic!("{e}"));
        let metrics = common::metrics_address(&broker);
        brokers.push((broker, metrics));
    }
    for (_, metrics) in &brokers {
        wait_until_async("every broker to say it is ready", || {
            let metrics = metrics.clone();
            async move {
                let status = tokio::task::spawn_blocking(move || http_get(&metrics, readyz).0);
                status.await.unwrap().contains("200")
            }
        })
        .await;
    }
    // A worker on the first broker, a client on the last: served across.
    let first = &brokers[0].0.endpoint;
    let worker = mdp::Worker::new(first.as_str(), "deploy.echo");
    let worker = tokio::spawn(worker.run(|request| async move { Ok(request) }));
    let last = Client::connect(brokers[brokers.len() - 1].0.endpoint.as_str()).unwrap();
    wait_for_service(&last, "deploy.echo").await;
    let reply = bounded("a reply across brokers", last.request("deploy.echo", "hi")).await;
    assert_eq!(reply.unwrap(), zmtp::Message::from("hi"));
    // And a client that knows only the name (the mdp command line, which reads
    // the hosts file).
    let mdp_cli = Path::new(BROKER).with_file_name("mdp");
    let child = Command::new(mdp_cli)
        .args([
            "-b",
            &peer,
            "call",
            "--timeout",
            "10000",
            "deploy.echo",
            "by name",
        ])
        .env(mdp::discovery::HOSTS_FILE_VAR, &hosts_path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = common::output_within(child, "mdp call by name");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "by name");
    worker.abort();
    let _ = std::fs::remove_dir_all(hosts_path.parent().unwrap());
}

fn hosts(first: u8, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("127.0.0.{}", usize::from(first) + i))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_file_runs_as_written() {
    let compose = deploy("compose.yaml");
    let commands = arrays(&compose, "command");
    assert_eq!(commands.len(), 3, "three brokers in compose.yaml");
    assert_eq!(compose.matches("aliases: [brokers]").count(), 3);
    run_as_written("compose", &commands, &hosts(11, 3), "/readyz").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_manifest_runs_as_written() {
    let manifest = deploy("kubernetes/mdp-brokers.yaml");
    let [args] = &arrays(&manifest, "args")[..] else {
        panic!("one args: line in the manifest");
    };
    let replicas: usize = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("replicas:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("replicas: N");
    // The probes ask the paths the broker answers, on the port it serves them.
    let metrics_port = flag(args, "--metrics")
        .rsplit_once(':')
        .unwrap()
        .1
        .to_owned();
    assert!(manifest.contains(&format!(
        "{{ name: metrics, containerPort: {metrics_port} }}"
    )));
    assert!(manifest.contains("httpGet: { path: /healthz, port: metrics }"));
    assert!(manifest.contains("httpGet: { path: /readyz, port: metrics }"));
    // The peer name is the headless Service's.
    assert!(flag(args, "--peer").starts_with("tcp://mdp-brokers:"));
    assert!(manifest.contains("clusterIP: None"));
    let all = vec![args.clone(); replicas];
    run_as_written("kubernetes", &all, &hosts(21, replicas), "/readyz").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_images_default_command_starts_a_broker() {
    let dockerfile = deploy("Dockerfile");
    let [cmd] = &arrays(&dockerfile, "CMD")[..] else {
        panic!("one CMD line in the Dockerfile");
    };
    let entrypoint = arrays(&dockerfile, "ENTRYPOINT");
    assert_eq!(entrypoint, [vec!["/mdp-broker".to_string()]]);
    assert!(dockerfile.contains("FROM scratch"));
    let args: Vec<String> = cmd
        .iter()
        .map(|a| a.replace("0.0.0.0", "127.0.0.31"))
        .collect();
    let mut command = Command::new(BROKER);
    command.args(&args);
    let broker = BrokerProcess::spawn(command, STARTUP).unwrap_or_else(|e| panic!("{e}"));
    let metrics = common::metrics_address(&broker);
    assert_eq!(metrics, flag(&args, "--metrics"));
    // Ready once the broker loop has turned (a moment after the metrics line).
    for path in ["/healthz", "/readyz"] {
        wait_until_async(&format!("{path} to say 200"), || {
            let metrics = metrics.clone();
            async move {
                let status = tokio::task::spawn_blocking(move || http_get(&metrics, path).0);
                status.await.unwrap().contains("200")
            }
        })
        .await;
    }
    drop(broker);
}
