//! The fixed CURVE keys of the benchmarks: libzmq's test keys (`tests/testutil_security`),
//! so every implementation can be given the same ones. They are public knowledge:
//! benchmarks only, never for real traffic.
//!
//! This file has no dependencies on purpose: the libzmq anchor in `bench/` includes
//! it with `#[path]`, so both programs use exactly these keys.

/// The binding side's (CURVE server's) public key, Z85.
pub const SERVER_PUBLIC: &str = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
/// The binding side's (CURVE server's) secret key, Z85.
pub const SERVER_SECRET: &str = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6";
/// The connecting side's (CURVE client's) public key, Z85.
pub const CLIENT_PUBLIC: &str = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
/// The connecting side's (CURVE client's) secret key, Z85.
pub const CLIENT_SECRET: &str = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs";
