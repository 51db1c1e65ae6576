//! `mdp-broker`: placeholder until the broker issue lands.

fn main() {
    eprintln!("mdp-broker: not implemented yet; see the broker issue");
    std::process::exit(2);
}
