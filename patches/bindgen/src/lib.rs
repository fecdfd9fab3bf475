//! The part of bindgen 0.66.1's API that pg_query 18.1's build script calls
//! (`Builder::default().header(h).generate()?.write_to_file(out)?`), answered with
//! bindings the real bindgen generated once from the same headers, so that PostgreSQL's
//! parser builds with no libclang.
//!
//! Invariant: `generate` succeeds only when every header it read bindings for is
//! byte-identical to the copy kept in `headers/`, and only for an x86_64 or aarch64
//! Linux target (the layouts each kept file asserts: the system headers' sizes differ);
//! anything else is refused with what to do. The kept bindings are what `regen/` writes
//! from `headers/` for each target (scripts/check-bindings).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The bindings the real bindgen 0.66.1 wrote for `headers/pg_query.h`, x86_64 Linux.
const BINDINGS: &str = include_str!("../pg_query_bindings.rs");

/// The same for aarch64 Linux (`TARGET=aarch64-unknown-linux-gnu`, the Debian
/// `libc6-dev-arm64-cross` headers).
const BINDINGS_AARCH64: &str = include_str!("../pg_query_bindings_aarch64.rs");

/// The headers those bindings were generated from: pg_query.h and what it includes
/// from its own directory (system headers are the target's).
const HEADERS: [(&str, &[u8]); 3] = [
    ("pg_query.h", include_bytes!("../headers/pg_query.h")),
    (
        "postgres_deparse.h",
        include_bytes!("../headers/postgres_deparse.h"),
    ),
    (
        "pg_query_scan_tokens.h",
        include_bytes!("../headers/pg_query_scan_tokens.h"),
    ),
];

/// Why no bindings were made.
#[derive(Debug)]
pub struct BindgenError(String);

impl fmt::Display for BindgenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BindgenError {}

/// Collects the header, as bindgen's `Builder` does.
#[derive(Debug, Default)]
pub struct Builder {
    headers: Vec<String>,
}

impl Builder {
    /// Add a header to generate bindings for.
    pub fn header<T: Into<String>>(mut self, header: T) -> Builder {
        self.headers.push(header.into());
        self
    }

    /// The kept bindings, if the header and the target are the ones they were made for.
    pub fn generate(self) -> Result<Bindings, BindgenError> {
        let [header] = self.headers.as_slice() else {
            return Err(refuse("expected exactly one header, pg_query.h"));
        };
        let header = Path::new(header);
        if header.file_name().and_then(|n| n.to_str()) != Some("pg_query.h") {
            return Err(refuse(&format!("{} is not pg_query.h", header.display())));
        }
        let dir = header.parent().map(Path::to_path_buf).unwrap_or_default();
        for (name, kept) in HEADERS {
            let path: PathBuf = dir.join(name);
            let now = std::fs::read(&path)
                .map_err(|e| refuse(&format!("cannot read {}: {e}", path.display())))?;
            if now != kept {
                return Err(refuse(&format!(
                    "{} differs from the header the kept bindings were generated from (a new pg_query?)",
                    path.display()
                )));
            }
        }
        let target = std::env::var("TARGET").unwrap_or_default();
        let linux = target.contains("-linux-");
        if linux && target.starts_with("x86_64-") {
            Ok(Bindings(BINDINGS))
        } else if linux && target.starts_with("aarch64-") {
            Ok(Bindings(BINDINGS_AARCH64))
        } else {
            Err(refuse(&format!(
                "the kept bindings are for x86_64 and aarch64 Linux, not {target:?}"
            )))
        }
    }
}

fn refuse(why: &str) -> BindgenError {
    BindgenError(format!(
        "airlock's pre-generated pg_query bindings (patches/bindgen): {why}. \
         Regenerate them where libclang is installed (scripts/check-bindings --update), \
         or build with the real bindgen by removing bindgen from [patch.crates-io]"
    ))
}

/// Generated bindings (the kept file of the target).
#[derive(Debug)]
pub struct Bindings(&'static str);

impl Bindings {
    /// Write the bindings to `path`.
    pub fn write_to_file<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        std::fs::write(path, self.0)
    }
}

impl fmt::Display for Bindings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept_headers(dir: &Path) {
        for (name, bytes) in HEADERS {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }

    fn generate(header: &Path) -> Result<Bindings, BindgenError> {
        Builder::default()
            .header(header.to_str().unwrap())
            .generate()
    }

    // One test: it sets TARGET, which the others would race on.
    #[test]
    fn only_the_kept_headers_on_x86_64_or_aarch64_linux_get_the_kept_bindings() {
        let dir = std::env::temp_dir().join(format!("airlock-bindgen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        kept_headers(&dir);
        let header = dir.join("pg_query.h");

        std::env::set_var("TARGET", "x86_64-unknown-linux-gnu");
        let out = dir.join("bindings.rs");
        generate(&header).unwrap().write_to_file(&out).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), BINDINGS);
        std::env::set_var("TARGET", "x86_64-unknown-linux-musl");
        assert!(generate(&header).is_ok());

        // aarch64 Linux: its own kept file.
        std::env::set_var("TARGET", "aarch64-unknown-linux-gnu");
        generate(&header).unwrap().write_to_file(&out).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), BINDINGS_AARCH64);
        assert_ne!(BINDINGS, BINDINGS_AARCH64);
        // Another target: refused, whatever the headers.
        for other in ["aarch64-apple-darwin", "riscv64gc-unknown-linux-gnu"] {
            std::env::set_var("TARGET", other);
            let e = generate(&header).unwrap_err().to_string();
            assert!(e.contains("x86_64 and aarch64 Linux"), "{e}");
        }
        std::env::set_var("TARGET", "x86_64-unknown-linux-gnu");

        // An included header changed by one byte: refused, naming it.
        let deparse = dir.join("postgres_deparse.h");
        let mut bytes = std::fs::read(&deparse).unwrap();
        bytes.push(b'\n');
        std::fs::write(&deparse, bytes).unwrap();
        let e = generate(&header).unwrap_err().to_string();
        assert!(e.contains("postgres_deparse.h differs"), "{e}");
        kept_headers(&dir);

        // Another header, or two: refused.
        let other = dir.join("other.h");
        std::fs::write(&other, b"int f(void);\n").unwrap();
        assert!(generate(&other).is_err());
        let two = Builder::default()
            .header(header.to_str().unwrap())
            .header(other.to_str().unwrap())
            .generate();
        assert!(two.is_err());
        // A header that cannot be read: refused.
        std::fs::remove_file(dir.join("pg_query_scan_tokens.h")).unwrap();
        let e = generate(&header).unwrap_err().to_string();
        assert!(e.contains("cannot read"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
