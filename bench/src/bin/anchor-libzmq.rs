//! `anchor-libzmq`: the system's libzmq (4.3, through src/libzmq/anchor.c) with
//! zmtp-bench's `recv`/`send` and `rep`/`req` command lines; RESULT lines say
//! `impl=libzmq`. See the crate documentation for the command line.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::process::ExitCode;
use std::time::Instant;

use bench_anchors::{
    check_echo, curve_keys, print_ready, run, Args, BoxError, Clock, Latency, Mode, Pattern,
};

/// The C side's socket (`struct lza`), opaque here.
#[repr(C)]
struct Lza {
    _private: [u8; 0],
}

extern "C" {
    #[allow(clippy::too_many_arguments)]
    fn lza_open(
        binds: c_int,
        pattern: c_int,
        hwm: c_int,
        curve: c_int,
        server_public: *const c_char,
        server_secret: *const c_char,
        client_public: *const c_char,
        client_secret: *const c_char,
    ) -> *mut Lza;
    fn lza_error(a: *const Lza) -> *const c_char;
    fn lza_bind(a: *mut Lza, endpoint: *const c_char, bound: *mut c_char, len: usize) -> c_int;
    fn lza_connect(a: *mut Lza, endpoint: *const c_char) -> c_int;
    fn lza_recv(a: *mut Lza, size: usize) -> c_int;
    fn lza_send(a: *mut Lza, body: *const c_void, size: usize) -> c_int;
    fn lza_echo(a: *mut Lza) -> c_int;
    fn lza_recv_into(
        a: *mut Lza,
        buf: *mut c_void,
        cap: usize,
        len: *mut usize,
        frames: *mut usize,
    ) -> c_int;
    fn lza_close(a: *mut Lza);
}

/// One libzmq socket with its own context; closed (lingering) on drop.
struct Socket(*mut Lza);

impl Socket {
    fn open(args: &Args) -> Result<Socket, BoxError> {
        let key = |k: &str| CString::new(k).expect("Z85 keys have no NUL");
        let (sp, ss) = (
            key(curve_keys::SERVER_PUBLIC),
            key(curve_keys::SERVER_SECRET),
        );
        let (cp, cs) = (
            key(curve_keys::CLIENT_PUBLIC),
            key(curve_keys::CLIENT_SECRET),
        );
        // The C side's pattern codes (PUSHPULL, DEALERROUTER, REQREP).
        let code = |pattern| match pattern {
            Pattern::Pushpull => 0,
            Pattern::Dealerrouter => 1,
        };
        let (binds, pattern) = match args.mode {
            Mode::Recv(run) => (true, code(run.pattern)),
            Mode::Send(run) => (false, code(run.pattern)),
            Mode::Rep { .. } => (true, 2),
            Mode::Req(_) => (false, 2),
        };
        let hwm = c_int::try_from(args.hwm)?;
        // SAFETY: the key pointers are valid NUL-terminated strings for the call;
        // lza_open copies what it keeps (libzmq copies socket options).
        let raw = unsafe {
            lza_open(
                c_int::from(binds),
                pattern,
                hwm,
                c_int::from(args.curve),
                sp.as_ptr(),
                ss.as_ptr(),
                cp.as_ptr(),
                cs.as_ptr(),
            )
        };
        if raw.is_null() {
            return Err("out of memory".into());
        }
        let socket = Socket(raw);
        let error = socket.error();
        if !error.is_empty() {
            return Err(error.into());
        }
        Ok(socket)
    }

    fn error(&self) -> String {
        // SAFETY: self.0 is live; lza_error returns its NUL-terminated buffer.
        unsafe { CStr::from_ptr(lza_error(self.0)) }
            .to_string_lossy()
            .into_owned()
    }

    fn check(&self, rc: c_int) -> Result<(), BoxError> {
        if rc == 0 {
            Ok(())
        } else {
            Err(self.error().into())
        }
    }

    fn bind(&mut self, endpoint: &str) -> Result<String, BoxError> {
        let endpoint = CString::new(endpoint)?;
        let mut bound = vec![0u8; 1024];
        // SAFETY: valid socket, NUL-terminated endpoint, `bound` is writable for its length.
        let rc = unsafe {
            lza_bind(
                self.0,
                endpoint.as_ptr(),
                bound.as_mut_ptr().cast(),
                bound.len(),
            )
        };
        self.check(rc)?;
        let end = bound.iter().position(|&b| b == 0).unwrap_or(bound.len());
        Ok(String::from_utf8_lossy(&bound[..end]).into_owned())
    }

    fn connect(&mut self, endpoint: &str) -> Result<(), BoxError> {
        let endpoint = CString::new(endpoint)?;
        // SAFETY: valid socket and NUL-terminated endpoint.
        let rc = unsafe { lza_connect(self.0, endpoint.as_ptr()) };
        self.check(rc)
    }

    fn recv(&mut self, size: usize) -> Result<(), BoxError> {
        // SAFETY: valid socket.
        let rc = unsafe { lza_recv(self.0, size) };
        self.check(rc)
    }

    fn send(&mut self, body: &[u8]) -> Result<(), BoxError> {
        // SAFETY: valid socket; libzmq copies `body` before returning.
        let rc = unsafe { lza_send(self.0, body.as_ptr().cast(), body.len()) };
        self.check(rc)
    }

    /// REP: receives one request and sends it back.
    fn echo(&mut self) -> Result<(), BoxError> {
        // SAFETY: valid socket; lza_echo touches nothing else of ours.
        let rc = unsafe { lza_echo(self.0) };
        self.check(rc)
    }

    /// Receives one message: its number of frames and its first frame, copied into
    /// `buf` (an error if it does not fit).
    fn recv_into<'b>(&mut self, buf: &'b mut [u8]) -> Result<(usize, &'b [u8]), BoxError> {
        let (mut len, mut frames) = (0usize, 0usize);
        // SAFETY: valid socket; `buf` is writable for `buf.len()` bytes and lza_recv_into
        // writes at most that many; `len` and `frames` are writable `usize`s (`size_t`)
        // for the call. None of the pointers is kept.
        let rc = unsafe {
            lza_recv_into(
                self.0,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut len,
                &mut frames,
            )
        };
        self.check(rc)?;
        let cap = buf.len();
        let first = buf
            .get(..len)
            .ok_or_else(|| format!("a {len}-byte frame where at most {cap} bytes were expected"))?;
        Ok((frames, first))
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: self.0 came from lza_open and is freed only here.
        unsafe { lza_close(self.0) }
    }
}

fn main() -> ExitCode {
    run("anchor-libzmq", |args| {
        let mut socket = Socket::open(args)?;
        match args.mode {
            Mode::Recv(run) => {
                let bound = socket.bind(&args.endpoint)?;
                print_ready(&bound);
                let mut clock = Clock::default();
                socket.recv(run.size)?;
                clock.start();
                for _ in 1..run.count {
                    socket.recv(run.size)?;
                }
                clock.finish("libzmq", args.mechanism(), &run);
            }
            Mode::Send(run) => {
                socket.connect(&args.endpoint)?;
                let body = vec![0u8; run.size];
                for _ in 0..run.count {
                    socket.send(&body)?;
                }
                if args.hold {
                    bench_anchors::wait_for_stdin_eof();
                }
            }
            Mode::Rep { total } => {
                let bound = socket.bind(&args.endpoint)?;
                print_ready(&bound);
                for _ in 0..total {
                    socket.echo()?;
                }
            }
            Mode::Req(run) => {
                socket.connect(&args.endpoint)?;
                let body = vec![0u8; run.size];
                let mut reply = vec![0u8; run.size];
                let mut round_trip = || -> Result<(), BoxError> {
                    socket.send(&body)?;
                    let (frames, first) = socket.recv_into(&mut reply)?;
                    check_echo(&body, frames, Some(first))
                };
                for _ in 0..run.warmup {
                    round_trip()?;
                }
                let mut latency = Latency::start(&run);
                for _ in 0..run.count {
                    let t0 = Instant::now();
                    round_trip()?;
                    latency.record(t0.elapsed());
                }
                latency.finish("libzmq", args.mechanism());
            }
        }
        // Dropping the socket lingers until what is queued has gone out.
        drop(socket);
        Ok(())
    })
}
