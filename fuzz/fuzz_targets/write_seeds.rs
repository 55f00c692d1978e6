//! Writes the seed corpus (valid answers to the fuzz request in several spellings) to
//! `seeds/response_parser/`: `cargo +nightly run --bin write_seeds`.

fn main() -> std::io::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/response_parser");
    std::fs::create_dir_all(&dir)?;
    for (i, seed) in callpulse::probe::fuzzing::seeds().iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i}")), seed)?;
    }
    Ok(())
}
