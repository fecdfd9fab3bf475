//! Building bundles by hand, byte by byte, to craft hostile or tampered archives.
#![allow(dead_code)]

use super::*;
use std::io::{Read, Write};

/// The exact gzip header airlock writes.
pub const GZ_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

#[derive(Clone)]
pub struct Entry {
    pub name: Vec<u8>,
    pub data: Vec<u8>,
    pub typeflag: u8,
    pub link: Vec<u8>,
    /// Declared size, when it must differ from data.len().
    pub size: Option<u64>,
}

pub fn file(name: &str, data: &[u8]) -> Entry {
    Entry {
        name: name.as_bytes().to_vec(),
        data: data.to_vec(),
        typeflag: b'0',
        link: vec![],
        size: None,
    }
}

pub fn octal(field: &mut [u8], v: u64) {
    let s = format!("{:0width$o}\0", v, width = field.len() - 1);
    if s.len() == field.len() {
        field.copy_from_slice(s.as_bytes());
    } else {
        // GNU base-256 for values that do not fit in octal.
        field.fill(0);
        field[0] = 0x80;
        let be = v.to_be_bytes();
        let n = field.len();
        field[n - 8..].copy_from_slice(&be);
    }
}

/// The header `pack` writes for this entry (byte for byte, checksum encoding too),
/// with the entry's type and link name.
pub fn header(e: &Entry) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..e.name.len().min(100)].copy_from_slice(&e.name[..e.name.len().min(100)]);
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], e.size.unwrap_or(e.data.len() as u64));
    octal(&mut h[136..148], 0);
    h[148..156].copy_from_slice(b"        ");
    h[156] = e.typeflag;
    h[157..157 + e.link.len()].copy_from_slice(&e.link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    let s = format!("{sum:07o}\0");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

pub fn tar(entries: &[Entry]) -> Vec<u8> {
    let mut out = vec![];
    for e in entries {
        out.extend_from_slice(&header(e));
        out.extend_from_slice(&e.data);
        let pad = (512 - e.data.len() % 512) % 512;
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

/// `tar(entries)` with entry `index`'s header changed by `edit` (checksum
/// recomputed as `pack` encodes it, so only the edited fields differ).
pub fn tar_with_header(entries: &[Entry], index: usize, edit: impl Fn(&mut [u8; 512])) -> Vec<u8> {
    let mut out = tar(entries);
    let offset: usize = entries[..index]
        .iter()
        .map(|e| 512 + e.data.len().div_ceil(512) * 512)
        .sum();
    let mut h: [u8; 512] = out[offset..offset + 512].try_into().unwrap();
    edit(&mut h);
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:07o}\0").as_bytes());
    out[offset..offset + 512].copy_from_slice(&h);
    out
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
    enc.write_all(data).unwrap();
    let body = enc.finish().unwrap();
    let mut crc = flate2::Crc::new();
    crc.update(data);
    let mut out = GZ_HEADER.to_vec();
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// A valid signed bundle's entries (manifest, signature, SHA256SUMS, payload).
pub struct Base {
    pub dir: tempfile::TempDir,
    pub entries: Vec<Entry>,
}

pub fn base() -> Base {
    let dir = tempdir();
    let d = dir.path();
    keygen(d, "rm");
    let src = MiniSource::new(
        d,
        "x",
        "SELECT true AS ready",
        &[("t1", "CREATE TABLE app.t1(i int);", false)],
        "DROP TABLE IF EXISTS app.t1;",
    );
    pack(d, &src.dir, "rm.key", "good.tar.gz");
    let mut raw = vec![];
    flate2::read::GzDecoder::new(std::fs::File::open(d.join("good.tar.gz")).unwrap())
        .read_to_end(&mut raw)
        .unwrap();
    let mut ar = tar::Archive::new(&raw[..]);
    let entries = ar
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path_bytes().into_owned();
            let mut data = vec![];
            e.read_to_end(&mut data).unwrap();
            Entry {
                name,
                data,
                typeflag: b'0',
                link: vec![],
                size: None,
            }
        })
        .collect();
    Base { dir, entries }
}
