//! The decoder bundles were read with before `deflate.rs`: zlib (zlib-rs) under
//! `Z_BLOCK`, stopping at every block boundary to check the bits no decoder reads. Kept
//! for the tests only, as the reference the new decoder is held to: the same streams
//! accepted, to the same bytes, and the same refused.

use libz_rs_sys as z;
use std::io::{self, BufRead, Read};

/// Consumed bytes kept for looking back at block headers; zlib holds at most 63 bits of
/// look-ahead, so a header is never more than 8 bytes behind `consumed`.
const TAIL: usize = 64;

fn corrupt(what: impl Into<String>) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("gzip stream is corrupt or truncated: {}", what.into()),
    )
}

/// Decodes the deflate body and trailer of a gzip member whose 10-byte header the
/// caller has already consumed, then requires the end of the input.
pub struct ZlibGzBody<R: BufRead> {
    inner: R,
    /// Boxed: zlib's state points back at its stream, so it must never move.
    strm: Box<z::z_stream>,
    /// Compressed bytes handed to inflate and taken by it.
    consumed: u64,
    /// The last bytes consumed, ending at `consumed`.
    tail: Vec<u8>,
    /// Block boundaries (bit positions) whose headers are still to be checked.
    pending: Vec<u64>,
    last_boundary: Option<u64>,
    /// Where the final block's last code ended (zlib stops there under `Z_BLOCK`
    /// before it passes over the padding, so this is exact).
    final_end: Option<u64>,
    crc: flate2::Crc,
    done: bool,
    stalls: u32,
}

impl<R: BufRead> ZlibGzBody<R> {
    pub fn new(inner: R) -> io::Result<Self> {
        let mut strm = Box::<z::z_stream>::default();
        // SAFETY: a default stream (Rust allocator) initialised for raw deflate (-15).
        let ret = unsafe {
            z::inflateInit2_(
                &mut *strm,
                -15,
                z::zlibVersion(),
                std::mem::size_of::<z::z_stream>() as i32,
            )
        };
        if ret != z::Z_OK {
            return Err(io::Error::other(format!("cannot start inflate ({ret})")));
        }
        Ok(ZlibGzBody {
            inner,
            strm,
            consumed: 0,
            tail: Vec::with_capacity(2 * TAIL),
            pending: Vec::new(),
            last_boundary: None,
            final_end: None,
            crc: flate2::Crc::new(),
            done: false,
            stalls: 0,
        })
    }

    /// Bit `i` of the compressed stream (LSB first), if it is among the bytes in view:
    /// the kept tail, then the bytes just consumed (`chunk`).
    fn bit(&self, chunk: &Window, i: u64) -> Option<u8> {
        let byte = i / 8;
        let tail_start = self.consumed - self.tail.len() as u64;
        let b = if byte >= tail_start && byte < self.consumed {
            self.tail[(byte - tail_start) as usize]
        } else {
            chunk.byte(byte.checked_sub(self.consumed)?)?
        };
        Some((b >> (i % 8)) & 1)
    }

    /// Bits `from` up to the next byte boundary must all be zero.
    fn zero_to_boundary(&self, chunk: &Window, from: u64) -> io::Result<()> {
        let mut i = from;
        while !i.is_multiple_of(8) {
            if self.bit(chunk, i) != Some(0) {
                return Err(corrupt(format!(
                    "padding bit {} of compressed byte {} is set (airlock writes zeros there)",
                    i % 8,
                    i / 8 + 10
                )));
            }
            i += 1;
        }
        Ok(())
    }

    /// Check every pending block header that is now in view: a stored block's
    /// alignment bits must be zero.
    fn check_pending(&mut self, chunk: &Window) -> io::Result<()> {
        let mut keep = Vec::new();
        for &p in &self.pending {
            let header = (
                self.bit(chunk, p),
                self.bit(chunk, p + 1),
                self.bit(chunk, p + 2),
            );
            match header {
                (Some(_), Some(t0), Some(t1)) => {
                    if t0 == 0 && t1 == 0 {
                        self.zero_to_boundary(chunk, p + 3)?;
                    }
                }
                _ => keep.push(p),
            }
        }
        self.pending = keep;
        Ok(())
    }

    fn remember(&mut self, chunk: &Window) {
        self.tail.extend_from_slice(chunk.last());
        let excess = self.tail.len().saturating_sub(TAIL);
        self.tail.drain(..excess);
        self.consumed += chunk.len;
    }

    /// The stream ended: padding after the final block, then the 8-byte trailer, then
    /// nothing.
    fn finish(&mut self) -> io::Result<()> {
        let Some(end) = self.final_end else {
            return Err(corrupt("the end of the final block was not seen"));
        };
        if !self.pending.is_empty() {
            return Err(corrupt("a block header was never seen whole"));
        }
        self.zero_to_boundary(&Window::default(), end)?;
        let trailer_start = end.div_ceil(8);
        let mut trailer: Vec<u8> = Vec::with_capacity(8);
        let tail_start = self.consumed - self.tail.len() as u64;
        if trailer_start < tail_start {
            return Err(corrupt("trailer position out of view"));
        }
        trailer.extend(
            self.tail[(trailer_start - tail_start) as usize..]
                .iter()
                .take(8),
        );
        if self.consumed > trailer_start + 8 {
            return Err(data_after());
        }
        while trailer.len() < 8 {
            let avail = self.inner.fill_buf()?;
            if avail.is_empty() {
                return Err(corrupt("the gzip trailer is truncated"));
            }
            let n = avail.len().min(8 - trailer.len());
            trailer.extend_from_slice(&avail[..n]);
            self.inner.consume(n);
        }
        let crc = u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes"));
        let size = u32::from_le_bytes(trailer[4..].try_into().expect("4 bytes"));
        if crc != self.crc.sum() {
            return Err(corrupt(format!(
                "CRC-32 mismatch (trailer {crc:08x}, data {:08x})",
                self.crc.sum()
            )));
        }
        if size != self.crc.amount() {
            return Err(corrupt(format!(
                "length mismatch (trailer {size}, data {})",
                self.crc.amount()
            )));
        }
        if !self.inner.fill_buf()?.is_empty() {
            return Err(data_after());
        }
        Ok(())
    }
}

/// What header checks can need of the bytes one inflate call consumed: headers left
/// pending by the previous call sit in its first bytes, new boundaries in its last.
struct Window {
    len: u64,
    head: [u8; 16],
    head_len: usize,
    end: [u8; TAIL],
    end_len: usize,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            len: 0,
            head: [0; 16],
            head_len: 0,
            end: [0; TAIL],
            end_len: 0,
        }
    }
}

impl Window {
    fn of(bytes: &[u8]) -> Window {
        let mut w = Window {
            len: bytes.len() as u64,
            ..Window::default()
        };
        w.head_len = bytes.len().min(16);
        w.head[..w.head_len].copy_from_slice(&bytes[..w.head_len]);
        w.end_len = bytes.len().min(TAIL);
        w.end[..w.end_len].copy_from_slice(&bytes[bytes.len() - w.end_len..]);
        w
    }

    /// Byte `i` of the consumed bytes, if in view.
    fn byte(&self, i: u64) -> Option<u8> {
        if i < self.head_len as u64 {
            Some(self.head[i as usize])
        } else if i < self.len && i >= self.len - self.end_len as u64 {
            Some(self.end[(i - (self.len - self.end_len as u64)) as usize])
        } else {
            None
        }
    }

    fn last(&self) -> &[u8] {
        &self.end[..self.end_len]
    }
}

fn data_after() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "data after the end of the gzip stream (trailing bytes or a second gzip member)",
    )
}

impl<R: BufRead> Read for ZlibGzBody<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        loop {
            let input = self.inner.fill_buf()?;
            let in_len = input.len();
            let strm = &mut *self.strm;
            strm.next_in = input.as_ptr();
            strm.avail_in = in_len.min(u32::MAX as usize) as u32;
            strm.next_out = buf.as_mut_ptr();
            strm.avail_out = buf.len().min(u32::MAX as usize) as u32;
            // SAFETY: next_in/next_out point to live buffers of the stated sizes.
            let ret = unsafe { z::inflate(strm, z::Z_BLOCK) };
            let used = in_len - strm.avail_in as usize;
            let produced = buf.len() - strm.avail_out as usize;
            let bits_held = (strm.data_type & 63) as u64;
            let at_boundary = strm.data_type & 128 != 0;
            let in_last_block = strm.data_type & 64 != 0;
            let msg = if strm.msg.is_null() {
                String::new()
            } else {
                // SAFETY: zlib sets msg to a static NUL-terminated string.
                unsafe { std::ffi::CStr::from_ptr(strm.msg) }
                    .to_string_lossy()
                    .into_owned()
            };
            // Keep what header checks can need of the consumed bytes in view.
            let chunk = Window::of(&input[..used]);
            self.inner.consume(used);
            self.crc.update(&buf[..produced]);
            let position = (self.consumed + used as u64) * 8 - bits_held;
            match ret {
                z::Z_OK | z::Z_BUF_ERROR | z::Z_STREAM_END => {}
                _ => return Err(corrupt(format!("inflate: {msg} ({ret})"))),
            }
            if at_boundary && ret != z::Z_STREAM_END && self.last_boundary != Some(position) {
                if in_last_block {
                    // After the final block's end code: what follows is padding.
                    self.final_end = Some(position);
                } else {
                    self.pending.push(position);
                }
                self.last_boundary = Some(position);
            }
            self.check_pending(&chunk)?;
            self.remember(&chunk);
            if ret == z::Z_STREAM_END {
                self.finish()?;
                self.done = true;
                return Ok(produced);
            }
            if produced > 0 {
                self.stalls = 0;
                return Ok(produced);
            }
            if in_len == 0 {
                return Err(corrupt("the stream ends before its final block"));
            }
            if used == 0 {
                self.stalls += 1;
                if self.stalls > 3 {
                    return Err(corrupt("inflate makes no progress"));
                }
            } else {
                self.stalls = 0;
            }
        }
    }
}

impl<R: BufRead> Drop for ZlibGzBody<R> {
    fn drop(&mut self) {
        // SAFETY: initialised in new(); into_inner() forgets self instead of dropping.
        unsafe { z::inflateEnd(&mut *self.strm) };
    }
}
