//! The fully static broker builds of `scripts/build-static`: the x86_64 binary, and the
//! aarch64 one cross-built with Debian's rustc-web and run under `qemu-aarch64-static`.
//! Each test builds its binary (the script installs the aarch64 toolchain with apt on
//! first use, and fails, never skips, when it cannot), checks that it is statically
//! linked, starts it on a fresh loopback port and asks it `mmi.service` before and
//! after a worker of our `mdp` crate registers.
//!
//! The builds go to `static` and `static-aarch64` next to this test's own target
//! directory: separate cargo target directories, so the nested `cargo build` never
//! waits for the lock that the running `cargo test` holds, and the two compilers never
//! share artifacts. Warm, each build is a cargo no-op.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::BrokerProcess;
use mdp::{Client, ClientOptions, Worker};
use zmtp::Message;

/// Longest wait for `scripts/build-static`: a cold aarch64 run installs the Debian
/// toolchain (hundreds of MB) before compiling everything in release mode.
const BUILD_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// Longest wait for the broker's "listening on" line; qemu can be very slow to start
/// on a loaded machine.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Longest wait for the whole MMI exchange (worker registration included).
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The service the worker registers; nobody else serves it.
const SERVICE: &str = "static.echo";

#[test]
fn x86_64_static_binary_answers_mmi() {
    let binary = build("x86_64");
    assert_static_elf(&binary, "X86-64");
    // The criterion: glibc's ldd says it. It prints "statically linked" for a
    // static PIE (what rustc makes with crt-static) and "not a dynamic executable"
    // (on stderr, exit status 1) for a plain static executable.
    let ldd = run_tool(Command::new("ldd").arg(&binary));
    assert!(
        ldd.contains("statically linked") || ldd.contains("not a dynamic executable"),
        "ldd does not say {} is static:\n{ldd}",
        binary.display()
    );
    let broker = start(Command::new(&binary));
    answers_mmi(&broker);
}

#[test]
fn aarch64_static_binary_answers_mmi_under_qemu() {
    let binary = build("aarch64");
    // The host's ldd cannot read a foreign binary ("not a dynamic executable" for any
    // of them), so the check is readelf's alone.
    assert_static_elf(&binary, "AArch64");
    let mut qemu = Command::new("qemu-aarch64-static");
    qemu.arg(&binary);
    let broker = start(qemu);
    answers_mmi(&broker);
}

/// Runs `scripts/build-static ARCH` and returns the binary it prints last. The script's
/// stderr (cargo and apt progress) goes straight to ours, visible without
/// `--nocapture`, and its tail is repeated in the panic message when it fails.
fn build(arch: &str) -> PathBuf {
    let script = testkit::workspace_root().join("scripts/build-static");
    // CARGO_TARGET_TMPDIR is `<target dir>/tmp`: its parent is the target directory of
    // this `cargo test`, wherever the caller put it.
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR has a parent")
        .join("static");
    eprintln!("static_binary: running {} {arch}", script.display());
    let started = Instant::now();
    let mut build = ScriptProcess::spawn(
        Command::new(&script)
            .arg(arch)
            .env("CARGO_TARGET_DIR", &target_dir),
    );
    let status = build.wait(BUILD_TIMEOUT);
    let stdout = build.stdout();
    if !status.success() {
        panic!(
            "{} {arch} failed ({status}); stdout:\n{stdout}\n--- last lines of its stderr ---\n{}",
            script.display(),
            build.stderr_tail()
        );
    }
    let binary = stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .map(|line| PathBuf::from(line.trim()))
        .unwrap_or_else(|| panic!("{} {arch} printed no binary path", script.display()));
    assert!(
        binary.is_file(),
        "{} {arch} printed {}, which is not a file",
        script.display(),
        binary.display()
    );
    eprintln!(
        "static_binary: {arch} build took {:.1?}: {}",
        started.elapsed(),
        binary.display()
    );
    binary
}

/// Asserts with binutils' readelf that `binary` is an ELF executable for `machine`
/// with no program interpreter and no needed shared library.
fn assert_static_elf(binary: &Path, machine: &str) {
    let headers = run_tool(
        Command::new("readelf")
            .args(["--file-header", "--program-headers", "--dynamic"])
            .arg(binary),
    );
    let machine_line = headers
        .lines()
        .find(|line| line.trim_start().starts_with("Machine:"))
        .unwrap_or_else(|| panic!("readelf shows no Machine line:\n{headers}"));
    assert!(
        machine_line.contains(machine),
        "{} is not a {machine} binary: {}",
        binary.display(),
        machine_line.trim()
    );
    let dynamic: Vec<&str> = headers
        .lines()
        .filter(|line| line.contains("INTERP") || line.contains("(NEEDED)"))
        .collect();
    assert!(
        dynamic.is_empty(),
        "{} is dynamically linked:\n{}",
        binary.display(),
        dynamic.join("\n")
    );
}

/// stdout and stderr of a short inspection tool, whatever its exit status.
fn run_tool(command: &mut Command) -> String {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `mmi.service` says 404 while nobody serves [`SERVICE`], 200 once our worker has
/// registered, and the worker's echo comes back through the broker.
/// The broker `command` runs, on a fresh loopback port.
fn start(mut command: Command) -> BrokerProcess {
    command.args(["-b", "tcp://127.0.0.1:0"]);
    BrokerProcess::spawn(command, STARTUP_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

fn answers_mmi(broker: &BrokerProcess) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let exchange = async {
        // Retries cover a reply lost while qemu is busy; the overall bound is
        // EXCHANGE_TIMEOUT.
        let options = ClientOptions::default()
            .timeout(Duration::from_secs(20))
            .attempts(5);
        let client = Client::connect_with(&broker.endpoint, options).expect("client");
        assert_eq!(mmi_service(&client).await, "404", "before any worker");

        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let worker = tokio::spawn(Worker::new(broker.endpoint.clone(), SERVICE).run_until(
            |request| async move { Ok(request) },
            async {
                let _ = stopped.await;
            },
        ));
        // Registration is asynchronous: 404 until the broker has the READY.
        loop {
            match mmi_service(&client).await.as_str() {
                "200" => break,
                "404" => tokio::time::sleep(Duration::from_millis(50)).await,
                other => panic!("mmi.service answered {other:?}"),
            }
        }
        let reply = client
            .request(SERVICE, "ping")
            .await
            .expect("echo through the broker");
        assert_eq!(reply, Message::from("ping"));

        let _ = stop.send(());
        worker
            .await
            .expect("worker task")
            .expect("worker stops cleanly");
    };
    let done = runtime.block_on(async { tokio::time::timeout(EXCHANGE_TIMEOUT, exchange).await });
    if done.is_err() {
        panic!(
            "MMI exchange not done within {EXCHANGE_TIMEOUT:?}; broker stderr:\n{}",
            broker.stderr()
        );
    }
}

/// The status code `mmi.service` answers for [`SERVICE`].
async fn mmi_service(client: &Client) -> String {
    let reply = client
        .request("mmi.service", SERVICE)
        .await
        .expect("mmi.service reply");
    let code = reply.first().expect("mmi.service reply has a frame");
    String::from_utf8_lossy(code).into_owned()
}

/// `scripts/build-static` in a process group of its own, so that a timeout can stop
/// it with everything it started (cargo, rustc, apt). Killed on drop unless it
/// finished. Its stderr is copied to ours as it comes (straight to the file
/// descriptor, past the test harness's capture) and its tail kept.
struct ScriptProcess {
    child: Child,
    finished: bool,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<Vec<String>>>,
}

/// Lines of the script's stderr kept for the panic message.
const STDERR_TAIL: usize = 60;

impl ScriptProcess {
    fn spawn(command: &mut Command) -> ScriptProcess {
        use std::os::unix::process::CommandExt;
        let mut child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
        let mut stdout_pipe = child.stdout.take().expect("piped stdout");
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout_pipe.read_to_string(&mut text);
            text
        });
        let stderr_pipe = child.stderr.take().expect("piped stderr");
        let stderr = std::thread::spawn(move || {
            let mut tail = std::collections::VecDeque::new();
            let mut reader = BufReader::new(stderr_pipe);
            let mut buf = Vec::new();
            while let Ok(1..) = reader.read_until(b'\n', &mut buf) {
                let _ = std::io::stderr().write_all(&buf);
                if tail.len() == STDERR_TAIL {
                    tail.pop_front();
                }
                tail.push_back(String::from_utf8_lossy(&buf).trim_end().to_owned());
                buf.clear();
            }
            tail.into()
        });
        ScriptProcess {
            child,
            finished: false,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    /// Waits for the script to exit; kills its process group and panics after
    /// `timeout`.
    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.finished = true;
                    return status;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Ok(None) => {
                    self.kill_group();
                    panic!(
                        "build script not done within {timeout:?} (killed); last lines:\n{}",
                        self.stderr_tail()
                    );
                }
                Err(e) => panic!("cannot wait for the build script: {e}"),
            }
        }
    }

    /// Everything the script printed on stdout (it has exited).
    fn stdout(&mut self) -> String {
        self.stdout
            .take()
            .and_then(|thread| thread.join().ok())
            .unwrap_or_default()
    }

    /// The last lines of the script's stderr (it has exited).
    fn stderr_tail(&mut self) -> String {
        self.stderr
            .take()
            .and_then(|thread| thread.join().ok())
            .unwrap_or_default()
            .join("\n")
    }

    /// SIGKILL to the whole process group (the group id is the script's pid), then
    /// reaps the script. Without libc (no unsafe code here) the signal goes through
    /// the shell's kill builtin.
    fn kill_group(&mut self) {
        let group = self.child.id();
        let _ = Command::new("sh")
            .args(["-c", &format!("kill -s KILL -- -{group}")])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.finished = true;
    }
}

impl Drop for ScriptProcess {
    fn drop(&mut self) {
        if !self.finished {
            self.kill_group();
        }
    }
}
