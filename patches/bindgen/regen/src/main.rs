//! `airlock-regen-bindings HEADER OUT`: what pg_query's build script does with bindgen,
//! nothing more (scripts/check-bindings compares OUT with the committed bindings).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [header, out] = args.as_slice() else {
        return Err("usage: airlock-regen-bindings HEADER OUT".into());
    };
    bindgen::Builder::default()
        .header(header.as_str())
        .generate()
        .map_err(|e| format!("Unable to generate bindings: {e}"))?
        .write_to_file(out)?;
    Ok(())
}
