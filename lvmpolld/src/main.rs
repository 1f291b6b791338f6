//! lvmpolld: SKELETON, being written.

fn main() {
    eprintln!("lvmpolld: not built yet");
    std::process::exit(1);
}
