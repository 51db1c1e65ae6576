//! `mdp-broker`: a Majordomo broker for every MDP dialect in use (MDP 0.1 and 0.2,
//! majortomo, Overseer), on one socket. See `mdp-broker --help`.

fn main() -> std::process::ExitCode {
    mdp_broker::broker_main(std::env::args_os())
}
