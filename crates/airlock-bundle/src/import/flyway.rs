//! Flyway's checksum of a SQL migration, as `flyway_schema_history.checksum` records it,
//! so `import --history` can tell a script edited after Flyway applied it.
//!
//! What Flyway computes: the file decoded as UTF-8 and read line by line as Java's
//! `BufferedReader.readLine` reads it (a line ends at `\n`, `\r` or `\r\n`, which are
//! not part of it), a byte-order mark dropped from the first line, and a CRC-32 (IEEE,
//! `java.util.zip.CRC32`) over each line's UTF-8 bytes in turn, stored as a signed
//! 32-bit integer. Since the line ends are left out and the lines follow each other,
//! that is the CRC-32 of the text without its `\r` and `\n` bytes: line endings never
//! change the checksum.
//!
//! Invariant: bytes that are not UTF-8 count as U+FFFD, as Java's decoder reads them.

/// Flyway's checksum of a migration file's bytes.
pub(crate) fn checksum(bytes: &[u8]) -> i32 {
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut crc = flate2::Crc::new();
    for run in text.as_bytes().split(|&b| b == b'\n' || b == b'\r') {
        crc.update(run);
    }
    // Java's `(int) crc32.getValue()`: the same 32 bits, read as signed.
    crc.sum() as i32
}

#[cfg(test)]
mod tests {
    use super::checksum;

    /// Values computed by Java (`java.util.zip.CRC32` over `BufferedReader.readLine`'s
    /// lines, BOM dropped), not by this code.
    #[test]
    fn checksums_are_flyways() {
        for (text, want) in [
            (
                &b"CREATE TABLE orders (id int PRIMARY KEY, total numeric(10,2));\n"[..],
                -2063562544,
            ),
            (&b"ALTER TABLE orders ADD COLUMN note text;\n"[..], 595524217),
            (
                &b"\xef\xbb\xbf-- orders, as applied\r\nCREATE TABLE orders (\r\n  id int PRIMARY KEY,\r\n  total numeric(10,2)\r\n);\r\n"[..],
                1369891448,
            ),
            (
                &b"-- orders, as applied\nCREATE TABLE orders (\n  id int PRIMARY KEY,\n  total numeric(10,2)\n);\n"[..],
                1369891448,
            ),
            (
                &b"-- orders, as applied\nCREATE TABLE orders (\n  id int PRIMARY KEY,\n  total numeric(12,2)\n);\n"[..],
                476988275,
            ),
            (&b"caf\xc3\xa9\r\rx"[..], 927988930),
            (&b""[..], 0),
        ] {
            assert_eq!(checksum(text), want, "{}", String::from_utf8_lossy(text));
        }
    }
}
