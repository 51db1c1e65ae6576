//! Running one variant of one row: child processes with bounded waits, killed
//! when dropped (and by the kernel if this process dies: PR_SET_PDEATHSIG;
//! zmtp-bench children also exit when their stdin pipe closes).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::plan::{End, Impl, Kind, Row, Runtime, Variant};
use crate::report::{expect, fields, number, Sample};

/// How long a server may take to print READY.
const READY_WAIT: Duration = Duration::from_secs(30);
/// Added to the children's own `--timeout` before we kill them.
const GRACE: Duration = Duration::from_secs(5);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// SIGINT, SIGTERM and SIGHUP set a flag the waits check, so the driver can
/// kill its children, remove its files and print what it has.
pub fn catch_signals() {
    let handler = on_signal as extern "C" fn(libc::c_int);
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        unsafe {
            libc::signal(signal, handler as *const () as libc::sighandler_t);
        }
    }
}

/// A signal asked us to stop.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Where the binaries are and what every child gets.
pub struct Runner {
    pub zmtp_bench: PathBuf,
    /// The directory of anchor-libzmq, anchor-zmqrs and anchor-omq.
    pub anchors: PathBuf,
    pub timeout: u64,
    pub hwm: Option<u64>,
    pub curve: bool,
    /// A fresh directory for ipc:// sockets.
    pub ipc_dir: PathBuf,
    pub serial: AtomicU64,
    /// The CPUs this program may use ([`usable_cpus`]), where placed latency
    /// rows pin their processes.
    pub cpus: Vec<usize>,
}

impl Runner {
    /// The executable of an implementation.
    pub fn exe(&self, imp: Impl) -> PathBuf {
        match imp {
            Impl::Zmtp => self.zmtp_bench.clone(),
            other => self.anchors.join(format!("anchor-{}", other.name())),
        }
    }

    /// Starts one end; `cpu` (an index into [`Runner::cpus`]) pins it there.
    fn spawn(&self, end: End, mut args: Vec<String>, cpu: Option<usize>) -> Result<Kid, String> {
        args.extend(["--timeout".to_string(), self.timeout.to_string()]);
        if self.curve {
            args.push("--curve".into());
        }
        if let Some(hwm) = self.hwm {
            args.extend(["--hwm".to_string(), hwm.to_string()]);
        }
        let holds = args.first().is_some_and(|mode| mode == "send");
        if holds {
            // Keeps its connection until we close its stdin (Kid::release), after
            // the receiver has reported: see `--hold` in the anchors' harness.
            args.push("--hold".into());
        }
        match (end.imp, end.runtime) {
            (Impl::Zmtp, runtime) => {
                if !holds {
                    // A held sender ends with its stdin anyway.
                    args.push("--exit-with-stdin".into());
                }
                if runtime == Some(Runtime::Current) {
                    args.push("--current-thread".into());
                }
            }
            (_, Some(Runtime::Current)) => args.push("--current-thread".into()),
            (_, Some(Runtime::Multi)) => args.push("--multi-thread".into()),
            (_, None) => {}
        }
        let cpu = match cpu {
            Some(i) => Some(*self.cpus.get(i).ok_or_else(|| {
                format!(
                    "this placement needs {} CPUs, {} usable",
                    i + 1,
                    self.cpus.len()
                )
            })?),
            None => None,
        };
        Kid::spawn(&self.exe(end.imp), args, cpu)
    }

    fn endpoint(&self, transport: &str) -> (String, Option<RemoveOnDrop>) {
        if transport == "ipc" {
            let n = self.serial.fetch_add(1, Ordering::Relaxed);
            let path = self.ipc_dir.join(format!("{n}.sock"));
            let endpoint = format!("ipc://{}", path.display());
            (endpoint, Some(RemoveOnDrop(path)))
        } else {
            ("tcp://127.0.0.1:0".to_string(), None)
        }
    }

    /// One run of `variant` in `row`, with the CPU its processes took (they are
    /// this process's only children while it runs, and all are waited for).
    pub fn run(&self, row: &Row, variant: &Variant) -> Result<Sample, String> {
        let before = children_cpu_ns();
        let mut sample = self.run_children(row, variant)?;
        let per = match row.kind {
            Kind::Latency => row.count + row.warmup,
            _ => row.count,
        };
        let spent = children_cpu_ns().saturating_sub(before);
        sample.cpu_ns = (per > 0).then(|| spent as f64 / per as f64);
        Ok(sample)
    }

    fn run_children(&self, row: &Row, variant: &Variant) -> Result<Sample, String> {
        let deadline = Instant::now() + Duration::from_secs(self.timeout) + GRACE;
        let ready_by = deadline.min(Instant::now() + READY_WAIT);
        let size = row.size.to_string();
        let count = row.count.to_string();
        let s = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        match row.kind {
            Kind::Inproc => {
                let kid = self.spawn(
                    variant.sender,
                    s(&["inproc", row.pattern, &size, &count]),
                    None,
                )?;
                let line = kid.line("RESULT ", deadline)?;
                kid.finish(deadline)?;
                throughput(&line, variant.sender.imp, row)
            }
            Kind::Throughput => {
                let (endpoint, _file) = self.endpoint(row.transport);
                let args =
                    |mode: &str, endpoint: &str| s(&[mode, endpoint, row.pattern, &size, &count]);
                let receiver = self.spawn(variant.receiver, args("recv", &endpoint), None)?;
                let bound = ready(&receiver, ready_by)?;
                let mut sender = self.spawn(variant.sender, args("send", &bound), None)?;
                let line = receiver.line("RESULT ", deadline)?;
                sender.release();
                sender.finish(deadline)?;
                receiver.finish(deadline)?;
                throughput(&line, variant.receiver.imp, row)
            }
            Kind::Latency => {
                let (endpoint, _file) = self.endpoint(row.transport);
                let total = (row.count + row.warmup).to_string();
                let (server_cpu, client_cpu) = row.placement.cpus();
                let server =
                    self.spawn(variant.receiver, s(&["rep", &endpoint, &total]), server_cpu)?;
                let bound = ready(&server, ready_by)?;
                let warmup = row.warmup.to_string();
                let client = self.spawn(
                    variant.sender,
                    s(&["req", &bound, &size, &count, &warmup]),
                    client_cpu,
                )?;
                let line = client.line("RESULT ", deadline)?;
                client.finish(deadline)?;
                server.finish(deadline)?;
                let f = fields(&line);
                expect(&f, "impl", variant.sender.imp.name())?;
                expect(&f, "count", &count)?;
                Ok(Sample {
                    value: number(&f, "p50_us")?,
                    p99: Some(number(&f, "p99_us")?),
                    cpu_ns: None,
                })
            }
        }
    }
}

/// The CPUs this process may run on (`sched_getaffinity`), in order.
pub fn usable_cpus() -> Vec<usize> {
    // SAFETY: `set` is a plain C bit set, zeroed is a valid (empty) value; the
    // kernel writes at most `size_of::<cpu_set_t>()` bytes into it, and CPU_ISSET
    // only reads it within that size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

/// The set holding only `cpu`.
fn cpu_set_of(cpu: usize) -> libc::cpu_set_t {
    // SAFETY: zeroed is the empty set; CPU_SET writes one bit within the set (the
    // CPU numbers come from `usable_cpus`, below CPU_SETSIZE).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        set
    }
}

/// User and system CPU time of this process's children that have been waited
/// for, in ns (`getrusage(RUSAGE_CHILDREN)`).
fn children_cpu_ns() -> u64 {
    // SAFETY: `usage` is a plain C struct that getrusage fills; zeroed is a valid
    // value of it, and the pointer is valid for the call.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) != 0 {
            return 0;
        }
        usage
    };
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    ns(usage.ru_utime) + ns(usage.ru_stime)
}

/// The endpoint of a `READY <endpoint>` line.
fn ready(kid: &Kid, deadline: Instant) -> Result<String, String> {
    let line = kid.line("READY ", deadline)?;
    Ok(line["READY ".len()..].trim().to_string())
}

/// msg/s of a receiver's RESULT line, checked against the row.
fn throughput(line: &str, receiver: Impl, row: &Row) -> Result<Sample, String> {
    let f = fields(line);
    expect(&f, "impl", receiver.name())?;
    expect(&f, "size", &row.size.to_string())?;
    expect(&f, "count", &row.count.to_string())?;
    Ok(Sample {
        value: number(&f, "msgs_per_s")?,
        p99: None,
        cpu_ns: None,
    })
}

/// A child process, killed when dropped; stdout is read line by line on a thread
/// so waits are bounded, and the end of stderr is kept for error messages.
struct Kid {
    name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl Kid {
    /// Starts `exe`, pinned to `cpu` (with all its threads) if given.
    fn spawn(exe: &Path, args: Vec<String>, cpu: Option<usize>) -> Result<Kid, String> {
        let base = exe.file_name().map_or_else(
            || exe.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let name = format!("{base} {}", args.join(" "));
        let parent = std::process::id();
        let pin = cpu.map(cpu_set_of);
        let mut command = Command::new(exe);
        command
            .args(&args)
            // Never written: a child sees end of file when we are gone or when we
            // release it (zmtp-bench --exit-with-stdin, senders' --hold).
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: prctl, getppid and sched_setaffinity are plain system calls
        // (async-signal-safe), the CPU set was built before the fork; nothing is
        // allocated.
        unsafe {
            command.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() as u32 != parent {
                    libc::_exit(1);
                }
                if let Some(set) = &pin {
                    // The threads the child starts inherit the mask.
                    if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        let stdout = child.stdout.take();
        let stderr_pipe = child.stderr.take();
        let (tx, lines) = mpsc::channel();
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let kid = Kid {
            name,
            child,
            lines,
            stderr: stderr.clone(),
        };
        if let Some(stdout) = stdout {
            thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        if let Some(pipe) = stderr_pipe {
            thread::spawn(move || keep_tail(pipe, &stderr));
        }
        Ok(kid)
    }

    /// " (stderr: ...)" with the child's last stderr lines, if any.
    fn said(&self) -> String {
        // Let the reader catch the last words of a child that just exited.
        thread::sleep(Duration::from_millis(20));
        let tail = self.stderr.lock().map(|t| t.clone()).unwrap_or_default();
        if tail.is_empty() {
            String::new()
        } else {
            let joined: Vec<String> = tail
                .into_iter()
                .map(|l| match l.char_indices().nth(150) {
                    Some((i, _)) => format!("{}...", &l[..i]),
                    None => l,
                })
                .collect();
            format!(" (stderr: {})", joined.join(" / "))
        }
    }

    /// The next stdout line starting with `prefix` (others are skipped).
    fn line(&self, prefix: &str, deadline: Instant) -> Result<String, String> {
        loop {
            if interrupted() {
                return Err("interrupted".into());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "`{}`: no {}line in time (timeout){}",
                    self.name,
                    prefix,
                    self.said()
                ));
            }
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                Ok(line) if line.starts_with(prefix) => return Ok(line),
                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(format!(
                        "`{}` exited without a {}line{}",
                        self.name,
                        prefix,
                        self.said()
                    ))
                }
            }
        }
    }

    /// Waits for a successful exit until `deadline`.
    /// Closes the child's stdin: a `--hold` sender closes its connection and exits.
    fn release(&mut self) {
        drop(self.child.stdin.take());
    }

    fn finish(mut self, deadline: Instant) -> Result<(), String> {
        loop {
            if interrupted() {
                return Err("interrupted".into());
            }
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => {
                    return Err(format!("`{}` failed: {status}{}", self.name, self.said()))
                }
                Ok(None) => {}
                Err(e) => return Err(format!("`{}`: {e}", self.name)),
            }
            if Instant::now() >= deadline {
                return Err(format!("`{}` did not exit in time (timeout)", self.name));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Keeps the last 2 non-empty lines read from `pipe`.
fn keep_tail(pipe: impl Read, tail: &Mutex<VecDeque<String>>) {
    for line in BufReader::new(pipe).lines() {
        let Ok(line) = line else { break };
        let line = line.trim().to_string();
        if line.is_empty() {
            continue;
        }
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == 2 {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
}

/// Removes a file when dropped.
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Removes a directory tree when dropped.
pub struct RemoveDirOnDrop(pub PathBuf);

impl Drop for RemoveDirOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
