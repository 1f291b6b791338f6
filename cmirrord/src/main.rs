//! cmirrord: SKELETON, being written.

fn main() {
    eprintln!("cmirrord: not built yet");
    std::process::exit(1);
}
