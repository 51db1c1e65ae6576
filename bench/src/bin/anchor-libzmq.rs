//! `anchor-libzmq`: the system's libzmq (4.3, through src/libzmq/anchor.c) with
//! zmtp-bench's `recv`/`send` command line; RESULT lines say `impl=libzmq`.
//! See the crate documentation for the command line.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::process::ExitCode;

use bench_anchors::{curve_keys, print_ready, run, Args, BoxError, Clock, Mode, Pattern};

/// The C side's socket (`struct lza`), opaque here.
#[repr(C)]
struct Lza {
    _private: [u8; 0],
}

extern "C" {
    #[allow(clippy::too_many_arguments)]
    fn lza_open(
        receiver: c_int,
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
        let pattern = match args.pattern {
            Pattern::Pushpull => 0,
            Pattern::Dealerrouter => 1,
        };
        let hwm = c_int::try_from(args.hwm)?;
        // SAFETY: the key pointers are valid NUL-terminated strings for the call;
        // lza_open copies what it keeps (libzmq copies socket options).
        let raw = unsafe {
            lza_open(
                c_int::from(args.mode == Mode::Recv),
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
            Mode::Recv => {
                let bound = socket.bind(&args.endpoint)?;
                print_ready(&bound);
                let mut clock = Clock::default();
                socket.recv(args.size)?;
                clock.start();
                for _ in 1..args.count {
                    socket.recv(args.size)?;
                }
                clock.finish("libzmq", args);
            }
            Mode::Send => {
                socket.connect(&args.endpoint)?;
                let body = vec![0u8; args.size];
                for _ in 0..args.count {
                    socket.send(&body)?;
                }
            }
        }
        // Dropping the socket lingers until what is queued has gone out.
        drop(socket);
        Ok(())
    })
}
