//! Building blocks of pack and verify, one at a time, on SQL text like a data release:
//! SHA-256, deterministic parallel gzip (1 and 2 threads), strict inflate (and flate2's
//! plain one, to price the padding checks), the tier-file lexer, and a whole bundle
//! read (inflate + tar + hash) from disk.
//!
//!   cargo bench --bench blocks
//!
//! End-to-end figures against tar/gzip/pigz/sha256sum/minisign: benches/compare.sh.

use airlock::archive::gz::ParallelGzWriter;
use airlock::archive::inflate::StrictGzBody;
use airlock::archive::{read_bundle, Discard, Judge, Limits};
use airlock::sql_lint::ScriptChecker;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};

const MIB: usize = 1 << 20;

/// `n` bytes of INSERT statements (compresses about 6x, like the benchmark source).
fn sql_text(n: usize) -> Vec<u8> {
    let words = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
    ];
    let mut out = Vec::with_capacity(n + 200);
    let mut i: u64 = 0;
    while out.len() < n {
        let r = i
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        writeln!(
            out,
            "INSERT INTO bench.items (id, name, qty, note) VALUES ({i}, '{}-{}', {}, '{} {}');",
            words[(r >> 33) as usize % 8],
            i % 977,
            (r >> 40) % 100_000,
            words[(r >> 20) as usize % 8],
            words[(r >> 50) as usize % 8]
        )
        .unwrap();
        i += 1;
    }
    out.truncate(n);
    out
}

fn gzip(data: &[u8], threads: usize) -> Vec<u8> {
    let mut w = ParallelGzWriter::new(Vec::new(), 6, threads);
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

fn blocks(c: &mut Criterion) {
    let data = sql_text(32 * MIB);
    let compressed = gzip(&data, 2);
    let mut g = c.benchmark_group("blocks");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(data.len() as u64));

    g.bench_function("sha256", |b| b.iter(|| Sha256::digest(&data)));
    for threads in [1, 2] {
        g.bench_function(format!("gzip-6 x{threads} (deterministic)"), |b| {
            b.iter(|| gzip(&data, threads))
        });
    }
    g.bench_function("inflate strict (flate2 raw, framing checked)", |b| {
        b.iter(|| {
            let mut d = StrictGzBody::new(std::io::BufReader::with_capacity(
                256 << 10,
                &compressed[10..],
            ))
            .unwrap();
            std::io::copy(&mut d, &mut std::io::sink()).unwrap()
        })
    });
    g.bench_function("inflate flate2 (reference)", |b| {
        b.iter(|| {
            let mut d = flate2::read::GzDecoder::new(&compressed[..]);
            std::io::copy(&mut d, &mut std::io::sink()).unwrap()
        })
    });
    g.bench_function("lint tier file", |b| {
        b.iter(|| {
            let mut l = ScriptChecker::new("data.sql");
            for piece in data.chunks(256 << 10) {
                l.feed(piece);
            }
            assert!(l.finish().is_empty());
        })
    });

    // A real bundle on disk: one verifying pass (structure and hashes, no trust store).
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("sql")).unwrap();
    std::fs::write(src.join("sql/data.sql"), &data).unwrap();
    std::fs::write(
        src.join("bundle.toml"),
        "[bundle]\nname = \"bench\"\nversion = \"1\"\nsequence = 1\n\n[target]\ndatabase = \"bench\"\n\n[[tier]]\nname = \"data\"\nfiles = [\"sql/data.sql\"]\n",
    )
    .unwrap();
    let key = airlock::minisign::SecretKey::generate().unwrap();
    let bundle = dir.path().join("b.tar.gz");
    airlock::commands::pack::pack_dir(&src, &key, Some(&bundle), 6, true).unwrap();
    g.bench_function("read bundle (inflate + tar + sha256)", |b| {
        b.iter(|| {
            read_bundle(
                &bundle,
                Judge::StructureOnly,
                &Limits::default(),
                &mut Discard,
            )
            .unwrap()
        })
    });
    g.finish();
    let mut sink = Vec::new();
    std::fs::File::open(&bundle)
        .unwrap()
        .read_to_end(&mut sink)
        .unwrap();
    eprintln!(
        "source {} bytes, bundle {} bytes (ratio {:.1})",
        data.len(),
        sink.len(),
        data.len() as f64 / sink.len() as f64
    );
}

criterion_group!(benches, blocks);
criterion_main!(benches);
