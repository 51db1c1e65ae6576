//! The real `mdp-broker` binary secured with CURVE: majortomo and pyzmq peers with
//! CURVE options, and our Rust client and worker, are served when their keys are on
//! the allow-list; a client with an unlisted key never gets a reply and the broker
//! logs the refusal. Also PLAIN, and the flags' errors.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{wait_for_service, wait_until, BrokerProcess, StartBroker, BROKER};
use mdp::{Client, ClientOptions, Worker, WorkerOptions};
use testkit::PyPeer;
use zmtp::{certificate, CurveKeyPair, Message};

/// Key pairs written as certificates in a fresh directory, removed on drop.
struct Keys {
    dir: PathBuf,
}

impl Keys {
    fn new(tag: &str) -> Keys {
        let dir = std::env::temp_dir().join(format!("broker-keys-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("allowed")).unwrap();
        Keys { dir }
    }

    /// Makes NAME.key and NAME.key_secret; with `allow`, copies NAME.key into the
    /// broker's allow-list directory.
    fn make(&self, name: &str, allow: bool) -> CurveKeyPair {
        let pair = CurveKeyPair::generate();
        let (public, _) = certificate::write_pair(&pair, &self.dir.join(name)).unwrap();
        if allow {
            std::fs::copy(&public, self.allowed().join(format!("{name}.key"))).unwrap();
        }
        pair
    }

    fn secret(&self, name: &str) -> String {
        self.path(&format!("{name}.key_secret"))
    }

    fn public(&self, name: &str) -> String {
        self.path(&format!("{name}.key"))
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).to_str().unwrap().to_owned()
    }

    fn allowed(&self) -> PathBuf {
        self.dir.join("allowed")
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Python MDP peer talking CURVE with the keys of `name`.
async fn python_peer(
    broker: &BrokerProcess,
    keys: &Keys,
    mode: &str,
    name: &str,
    timeout_s: &str,
) -> PyPeer {
    let args = [
        broker.endpoint.clone(),
        mode.to_owned(),
        "echo".to_owned(),
        keys.secret(name),
        keys.public("broker"),
        timeout_s.to_owned(),
    ];
    let mut peer = PyPeer::spawn_script(common::mdp_peer_script(), args);
    peer.expect("READY").await;
    peer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curve_broker_serves_listed_keys_and_refuses_others() {
    let keys = Keys::new("curve");
    let broker_keys = keys.make("broker", false);
    keys.make("py-worker", true);
    keys.make("py-client", true);
    let rust_worker = keys.make("rust-worker", true);
    let rust_client = keys.make("rust-client", true);
    let mallory = keys.make("mallory", false);
    let allowed = keys.allowed();
    let broker = BrokerProcess::start_with(&[
        "--curve-secret-key",
        &keys.secret("broker"),
        "--allow-keys",
        allowed.to_str().unwrap(),
    ]);

    // majortomo's Worker and Client, with the keys set on their zmq context.
    let _worker = python_peer(&broker, &keys, "majortomo-worker", "py-worker", "20").await;
    let mut client = python_peer(&broker, &keys, "majortomo-client", "py-client", "20").await;
    assert_eq!(
        common::ask(&mut client, "secret plans").await,
        "REPLY SECRET PLANS"
    );
    // A zguide-style pyzmq REQ client too.
    let mut zguide = python_peer(&broker, &keys, "zguide-client", "py-client", "20").await;
    assert_eq!(common::ask(&mut zguide, "hello").await, "REPLY echo|HELLO");

    // Our client and worker, on a service of their own.
    let options = WorkerOptions::default().curve(rust_worker, broker_keys.public);
    let worker = Worker::new(&broker.endpoint, "rust-echo").options(options);
    tokio::spawn(worker.run(|request| async move { Ok(request) }));
    let options = ClientOptions::default().curve(rust_client, broker_keys.public);
    let ours = Client::connect_with(&broker.endpoint, options).unwrap();
    wait_for_service(&ours, "rust-echo").await;
    let reply = ours.request("rust-echo", "over CURVE").await.unwrap();
    assert_eq!(reply, Message::from("over CURVE"));
    // Across: our client to the majortomo worker.
    let reply = ours.request("echo", "across").await.unwrap();
    assert_eq!(reply, Message::from("ACROSS"));

    // An unlisted key: the handshake is refused, the request never reaches the
    // worker, the client never gets a reply, and the broker says why.
    let mut stranger = python_peer(&broker, &keys, "majortomo-client", "mallory", "2").await;
    assert_eq!(common::ask(&mut stranger, "let me in").await, "TIMEOUT");
    let refused = mallory.public_z85();
    wait_until("the broker logs the refusal", || {
        broker.stderr().contains(&refused)
    })
    .await;
    let log = broker.stderr();
    let line = log.lines().find(|l| l.contains(&refused)).unwrap();
    assert!(line.contains("not in the allow-list"), "{line}");
    // The served ones go on being served.
    assert_eq!(
        common::ask(&mut client, "still here").await,
        "REPLY STILL HERE"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_broker_checks_passwords() {
    let dir = std::env::temp_dir().join(format!("broker-plain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let users = dir.join("users");
    std::fs::write(&users, "# who may connect\nservice=s3cret\n").unwrap();
    let broker = BrokerProcess::start_with(&["--plain-users", users.to_str().unwrap()]);
    let options = |password: &str| {
        ClientOptions::default().mechanism(zmtp::proto::MechanismConfig::plain_client(
            "service",
            password.to_owned(),
        ))
    };
    let worker_options = WorkerOptions::default().mechanism(
        zmtp::proto::MechanismConfig::plain_client("service", "s3cret"),
    );
    let worker = Worker::new(&broker.endpoint, "echo").options(worker_options);
    tokio::spawn(worker.run(|request| async move { Ok(request) }));
    let good = Client::connect_with(&broker.endpoint, options("s3cret")).unwrap();
    wait_for_service(&good, "echo").await;
    assert_eq!(
        good.request("echo", "hi").await.unwrap(),
        Message::from("hi")
    );
    let mut bad_options = options("guess");
    bad_options.attempts = 1;
    bad_options.timeout = std::time::Duration::from_millis(500);
    let bad = Client::connect_with(&broker.endpoint, bad_options).unwrap();
    assert!(bad.request("echo", "hi").await.is_err());
    wait_until("the broker logs the refusal", || {
        broker.stderr().contains("invalid user name or password")
    })
    .await;
    std::fs::remove_dir_all(&dir).unwrap();
}

fn broker_error(args: &[&str]) -> String {
    let out = Command::new(BROKER)
        .args(["-b", "tcp://127.0.0.1:0"])
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{args:?} started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn security_flags_fail_with_a_clear_message() {
    let keys = Keys::new("flags");
    keys.make("broker", false);
    let err = broker_error(&["--curve-secret-key", &keys.secret("broker")]);
    assert!(err.contains("--allow-keys"), "{err}");
    let err = broker_error(&[
        "--curve-secret-key",
        &keys.public("broker"),
        "--allow-any-key",
    ]);
    assert!(err.contains("no secret key"), "{err}");
    let empty = keys.allowed();
    let err = broker_error(&[
        "--curve-secret-key",
        &keys.secret("broker"),
        "--allow-keys",
        empty.to_str().unwrap(),
    ]);
    assert!(err.contains("no public key"), "{err}");
    let err = broker_error(&["--allow-keys", empty.to_str().unwrap()]);
    assert!(err.contains("--curve-secret-key"), "{err}");
    let err = broker_error(&["--curve-secret-key", "/nonexistent/broker.key_secret"]);
    assert!(err.contains("/nonexistent/broker.key_secret"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peered_brokers_talk_curve_with_their_shared_key() {
    let keys = Keys::new("cluster");
    keys.make("broker", false);
    keys.make("py-worker", true);
    keys.make("py-client", true);
    let allowed = keys.allowed();
    let secret = keys.secret("broker");
    let args = [
        "--curve-secret-key",
        secret.as_str(),
        "--allow-keys",
        allowed.to_str().unwrap(),
        "--heartbeat-interval",
        "1000",
    ];
    let cluster =
        mdp_torture::cluster::Cluster::start(std::path::Path::new(BROKER), 2, &args).unwrap();
    // A majortomo worker on broker 0, a zguide client on broker 1: the request
    // crosses the peer link, which is CURVE with the brokers' own key pair (not
    // in the allow-list: a broker lets its own key in).
    let worker_broker = cluster.broker(0).unwrap();
    let _worker = python_peer(worker_broker, &keys, "majortomo-worker", "py-worker", "20").await;
    let client_broker = cluster.broker(1).unwrap();
    let mut zguide = python_peer(client_broker, &keys, "zguide-client", "py-client", "30").await;
    assert_eq!(
        common::ask(&mut zguide, "over the link").await,
        "REPLY echo|OVER THE LINK"
    );
    assert!(
        client_broker
            .stderr()
            .contains("allowed keys (its own included)"),
        "{}",
        client_broker.stderr()
    );
}
