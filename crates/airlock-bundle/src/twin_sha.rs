//! SHA-256, and two SHA-256 states fed the same bytes at once: a file's hash and the
//! hash of the chunk being read (format 2's `chunks`), made in one pass.
//!
//! The two states share each 64-byte block's message schedule, and where the CPU has
//! the SHA extensions their rounds are interleaved, so neither waits on the other's
//! latency: two hashes of the same bytes cost little more than one (a bundle's chunks
//! after the first were hashed twice, on two threads).
//!
//! Invariant: [`Sha256State::finalize`] is SHA-256 (FIPS 180-4) of exactly the bytes
//! the state was given, whichever path hashed them; the tests hold every path to the
//! `sha2` crate's answer.

use sha2::digest::generic_array::GenericArray;

const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// A SHA-256 under way.
#[derive(Clone)]
pub struct Sha256State {
    h: [u32; 8],
    /// The bytes of a block not yet full.
    buf: [u8; 64],
    fill: usize,
    /// Bytes given so far.
    len: u64,
}

impl Default for Sha256State {
    fn default() -> Self {
        Sha256State {
            h: IV,
            buf: [0; 64],
            fill: 0,
            len: 0,
        }
    }
}

impl Sha256State {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes given so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.fill > 0 {
            let take = (64 - self.fill).min(data.len());
            self.buf[self.fill..self.fill + take].copy_from_slice(&data[..take]);
            self.fill += take;
            data = &data[take..];
            if self.fill < 64 {
                return;
            }
            let block = self.buf;
            compress(&mut self.h, as_blocks(&block));
            self.fill = 0;
        }
        let whole = data.len() / 64 * 64;
        compress(&mut self.h, as_blocks(&data[..whole]));
        self.keep_tail(&data[whole..]);
    }

    fn keep_tail(&mut self, tail: &[u8]) {
        self.buf[..tail.len()].copy_from_slice(tail);
        self.fill = tail.len();
    }

    /// The digest of everything given.
    pub fn finalize(mut self) -> [u8; 32] {
        let bits = self.len.wrapping_mul(8);
        let mut last = [0u8; 128];
        last[..self.fill].copy_from_slice(&self.buf[..self.fill]);
        last[self.fill] = 0x80;
        let blocks = if self.fill < 56 { 1 } else { 2 };
        last[blocks * 64 - 8..blocks * 64].copy_from_slice(&bits.to_be_bytes());
        compress(&mut self.h, as_blocks(&last[..blocks * 64]));
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(self.h) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
    }

    /// Lowercase hex of [`finalize`](Self::finalize).
    pub fn hex(self) -> String {
        hex::encode(self.finalize())
    }
}

/// Give `data` to both states: as `a.update(data); b.update(data)`, in one pass where
/// their blocks line up (as many bytes since a block boundary in each), else one after
/// the other.
pub fn update_both(a: &mut Sha256State, b: &mut Sha256State, mut data: &[u8]) {
    if a.fill != b.fill {
        a.update(data);
        b.update(data);
        return;
    }
    if a.fill > 0 {
        // The block each has begun, completed on its own (its first bytes may differ).
        let take = (64 - a.fill).min(data.len());
        a.update(&data[..take]);
        b.update(&data[..take]);
        data = &data[take..];
        if data.is_empty() {
            return;
        }
    }
    let whole = data.len() / 64 * 64;
    compress_both(&mut a.h, &mut b.h, as_blocks(&data[..whole]));
    a.len += data.len() as u64;
    b.len += data.len() as u64;
    a.keep_tail(&data[whole..]);
    b.keep_tail(&data[whole..]);
}

/// `data`, a whole number of blocks long, as its blocks.
fn as_blocks(data: &[u8]) -> &[[u8; 64]] {
    debug_assert_eq!(data.len() % 64, 0);
    // SAFETY: `[u8; 64]` has alignment 1, and the `len / 64` blocks lie within `data`.
    unsafe { std::slice::from_raw_parts(data.as_ptr().cast(), data.len() / 64) }
}

fn compress(state: &mut [u32; 8], blocks: &[[u8; 64]]) {
    if blocks.is_empty() {
        return;
    }
    // SAFETY: `[u8; 64]` and `GenericArray<u8, U64>` have the same layout (the latter
    // is `repr(transparent)` over the former), so the slice is reinterpreted as is.
    let blocks: &[GenericArray<u8, sha2::digest::consts::U64>] =
        unsafe { std::slice::from_raw_parts(blocks.as_ptr().cast(), blocks.len()) };
    sha2::compress256(state, blocks);
}

fn compress_both(a: &mut [u32; 8], b: &mut [u32; 8], blocks: &[[u8; 64]]) {
    if blocks.is_empty() {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if shani::available() {
        // SAFETY: the CPU has the instructions the function is compiled for.
        unsafe { shani::compress_both(a, b, blocks) };
        return;
    }
    compress(a, blocks);
    compress(b, blocks);
}

#[cfg(test)]
thread_local! {
    /// Tests take the portable path for both states on a CPU with the SHA extensions.
    static PORTABLE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(target_arch = "x86_64")]
mod shani {
    use std::arch::x86_64::*;

    pub(super) fn available() -> bool {
        #[cfg(test)]
        if super::PORTABLE.with(|p| p.get()) {
            return false;
        }
        is_x86_feature_detected!("sha")
            && is_x86_feature_detected!("sse4.1")
            && is_x86_feature_detected!("ssse3")
    }

    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];

    /// The state `[a..h]` as the two registers the SHA instructions work on.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn load(state: &[u32; 8]) -> (__m128i, __m128i) {
        let p = state.as_ptr() as *const __m128i;
        let dcba = _mm_loadu_si128(p);
        let efgh = _mm_loadu_si128(p.add(1));
        let cdab = _mm_shuffle_epi32(dcba, 0xB1);
        let efgh = _mm_shuffle_epi32(efgh, 0x1B);
        (
            _mm_alignr_epi8(cdab, efgh, 8),
            _mm_blend_epi16(efgh, cdab, 0xF0),
        )
    }

    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn store(state: &mut [u32; 8], abef: __m128i, cdgh: __m128i) {
        let feba = _mm_shuffle_epi32(abef, 0x1B);
        let dchg = _mm_shuffle_epi32(cdgh, 0xB1);
        let p = state.as_mut_ptr() as *mut __m128i;
        _mm_storeu_si128(p, _mm_blend_epi16(feba, dchg, 0xF0));
        _mm_storeu_si128(p.add(1), _mm_alignr_epi8(dchg, feba, 8));
    }

    /// Each block into both states: its message schedule made once, the two states'
    /// rounds interleaved.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) unsafe fn compress_both(a: &mut [u32; 8], b: &mut [u32; 8], blocks: &[[u8; 64]]) {
        let mask = _mm_set_epi64x(
            0x0C0D_0E0F_0809_0A0Bu64 as i64,
            0x0405_0607_0001_0203u64 as i64,
        );
        let (mut a_abef, mut a_cdgh) = load(a);
        let (mut b_abef, mut b_cdgh) = load(b);
        for block in blocks {
            let saved = (a_abef, a_cdgh, b_abef, b_cdgh);
            let p = block.as_ptr() as *const __m128i;
            let mut w = [
                _mm_shuffle_epi8(_mm_loadu_si128(p), mask),
                _mm_shuffle_epi8(_mm_loadu_si128(p.add(1)), mask),
                _mm_shuffle_epi8(_mm_loadu_si128(p.add(2)), mask),
                _mm_shuffle_epi8(_mm_loadu_si128(p.add(3)), mask),
            ];
            for i in 0..16 {
                if i >= 4 {
                    // W[4i..4i+4] from the four words before, in place of the oldest.
                    let t1 = _mm_sha256msg1_epu32(w[i % 4], w[(i + 1) % 4]);
                    let t2 = _mm_alignr_epi8(w[(i + 3) % 4], w[(i + 2) % 4], 4);
                    w[i % 4] = _mm_sha256msg2_epu32(_mm_add_epi32(t1, t2), w[(i + 3) % 4]);
                }
                let k = _mm_loadu_si128(K.as_ptr().add(4 * i) as *const __m128i);
                let t = _mm_add_epi32(w[i % 4], k);
                let t_hi = _mm_shuffle_epi32(t, 0x0E);
                a_cdgh = _mm_sha256rnds2_epu32(a_cdgh, a_abef, t);
                b_cdgh = _mm_sha256rnds2_epu32(b_cdgh, b_abef, t);
                a_abef = _mm_sha256rnds2_epu32(a_abef, a_cdgh, t_hi);
                b_abef = _mm_sha256rnds2_epu32(b_abef, b_cdgh, t_hi);
            }
            a_abef = _mm_add_epi32(a_abef, saved.0);
            a_cdgh = _mm_add_epi32(a_cdgh, saved.1);
            b_abef = _mm_add_epi32(b_abef, saved.2);
            b_cdgh = _mm_add_epi32(b_cdgh, saved.3);
        }
        store(a, a_abef, a_cdgh);
        store(b, b_abef, b_cdgh);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    fn reference(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    fn bytes(len: usize, seed: u64) -> Vec<u8> {
        (0..len as u64)
            .map(|i| ((i.wrapping_mul(0x9E37_79B9) ^ seed) >> 3) as u8)
            .collect()
    }

    /// Every length around the padding's edges, given whole and a byte at a time.
    #[test]
    fn one_state_is_sha256() {
        for len in (0..300).chain([4095, 4096, 4097, 65_536 + 55]) {
            let data = bytes(len, len as u64);
            let mut whole = Sha256State::new();
            whole.update(&data);
            assert_eq!(whole.finalize(), reference(&data), "{len}");
            let mut bytewise = Sha256State::new();
            data.iter().for_each(|b| bytewise.update(&[*b]));
            assert_eq!(bytewise.len(), len as u64);
            assert_eq!(bytewise.finalize(), reference(&data), "{len} bytewise");
        }
    }

    fn both_paths(check: impl Fn()) {
        check();
        PORTABLE.with(|p| p.set(true));
        check();
        PORTABLE.with(|p| p.set(false));
    }

    proptest! {
        /// Two states given the same pieces end as each would alone: `a` from the
        /// start, `b` (a chunk's) begun `b_from` bytes in, whether their blocks line up
        /// or not, on the SHA-extension path and the portable one.
        #[test]
        fn two_states_are_each_their_own_sha256(
            len in 0usize..5000,
            b_from in 0usize..5000,
            cuts in proptest::collection::vec(0usize..5000, 0..8),
            seed in any::<u64>(),
        ) {
            let data = bytes(len, seed);
            let b_from = b_from.min(len);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(len)).collect();
            cuts.extend([b_from, len]);
            cuts.sort_unstable();
            both_paths(|| {
                let mut a = Sha256State::new();
                let mut b = Sha256State::new();
                let mut at = 0;
                for &cut in &cuts {
                    let piece = &data[at..cut];
                    if at >= b_from {
                        update_both(&mut a, &mut b, piece);
                    } else {
                        a.update(piece);
                    }
                    at = cut;
                }
                assert_eq!(a.finalize(), reference(&data));
                assert_eq!(b.finalize(), reference(&data[b_from..]));
            });
        }
    }

    /// The path the bundle reader takes: a long run of whole blocks into both.
    #[test]
    fn long_runs_into_both_states() {
        let data = bytes(3 << 20, 7);
        both_paths(|| {
            let mut a = Sha256State::new();
            a.update(&data[..1 << 20]);
            let mut b = Sha256State::new();
            update_both(&mut a, &mut b, &data[1 << 20..]);
            assert_eq!(a.finalize(), reference(&data));
            assert_eq!(b.finalize(), reference(&data[1 << 20..]));
        });
    }
}
