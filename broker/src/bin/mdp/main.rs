//! `mdp`: call Majordomo services by hand, see what a broker serves, and put a
//! shell command behind a service. See `mdp --help`.

fn main() -> std::process::ExitCode {
    mdp_broker::mdp_main(std::env::args_os())
}
