//! `zmtp-keygen`: makes a CURVE key pair (libzmq's `curve_keygen`, czmq's `zcert`).
//!
//! ```text
//! zmtp-keygen          # prints the public and the secret key, Z85
//! zmtp-keygen NAME     # writes NAME.key and NAME.key_secret (czmq certificates)
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use zmtp::{certificate, CurveKeyPair};

/// Make a CURVE key pair for zmtp, libzmq, pyzmq or czmq peers.
///
/// Without NAME, prints both keys as 40-character Z85 text (as libzmq's
/// curve_keygen). With NAME, writes NAME.key (the public certificate, to hand out
/// or put in a broker's --allow-keys directory) and NAME.key_secret (both keys,
/// mode 0600; what --curve-secret-key and pyzmq's zmq.auth.load_certificate read),
/// and prints the public key.
#[derive(Debug, Parser)]
#[command(name = "zmtp-keygen", version)]
struct Args {
    /// Base name of the certificate files to write (never overwritten).
    #[arg(value_name = "NAME")]
    name: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let pair = CurveKeyPair::generate();
    let Some(base) = args.name else {
        println!("== CURVE PUBLIC KEY ==\n{}", pair.public_z85());
        println!("== CURVE SECRET KEY ==\n{}", pair.secret_z85());
        return ExitCode::SUCCESS;
    };
    match certificate::write_pair(&pair, &base) {
        Ok((public, secret)) => {
            println!("{}", pair.public_z85());
            eprintln!(
                "zmtp-keygen: wrote {} and {}",
                public.display(),
                secret.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("zmtp-keygen: error: {e}");
            ExitCode::FAILURE
        }
    }
}
