//! Inflated bundle bytes handed from thread to thread without a copy.
//!
//! The inflating thread fills buffers of [`super::gz`]'s piece size; the reader takes a
//! file's bytes as ranges of them ([`Piece`]), hashes each range, and hands a chunk's
//! ranges on to the judging thread once the chunk's hash matched. A buffer may hold
//! the end of one chunk and the start of the next (or of a tar header), so ranges
//! share it; when the last range of a buffer is dropped, the buffer goes back to the
//! inflating thread to be filled again (its [`Home`]).
//!
//! Invariant: a piece's bytes never change while it exists (the buffer is shared, and
//! nothing writes to a shared buffer); a buffer is filled again only once no piece of
//! it is left.

use std::cell::{Cell, RefCell};
use std::io::{self, Read};
use std::ops::Range;
use std::sync::{Arc, Mutex};

/// Buffers to be filled again, the last one given back taken first: it is the one
/// most likely still in the cache (a queue would hand out the coldest).
#[derive(Clone)]
pub struct Pool {
    spare: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Buffers kept at most; more are dropped (a buffer more in flight than that is
    /// only one more allocation).
    keep: usize,
}

impl Pool {
    pub(super) fn new(keep: usize) -> Pool {
        Pool {
            spare: Arc::new(Mutex::new(Vec::with_capacity(keep))),
            keep,
        }
    }

    /// The buffer given back last, if any.
    pub(super) fn take(&self) -> Option<Vec<u8>> {
        self.spare.lock().ok()?.pop()
    }

    pub(super) fn give(&self, buf: Vec<u8>) {
        if let Ok(mut spare) = self.spare.lock() {
            if spare.len() < self.keep {
                spare.push(buf);
            }
        }
    }
}

/// Where a buffer goes once no piece holds it: back to the thread that fills them.
#[derive(Clone)]
pub struct Home(pub(super) Pool);

/// A range of a buffer, shared with the other pieces of it.
pub struct Piece {
    buf: Option<Arc<Vec<u8>>>,
    range: Range<usize>,
    home: Option<Home>,
}

impl Piece {
    /// All of `bytes`, a buffer of no other piece, which goes nowhere when dropped
    /// (its holder may keep it: [`into_spare`](Self::into_spare)).
    pub fn owned(bytes: Vec<u8>) -> Piece {
        let range = 0..bytes.len();
        Piece {
            buf: Some(Arc::new(bytes)),
            range,
            home: None,
        }
    }

    /// `range` of a shared buffer, which goes `home` when its last piece is dropped.
    pub(super) fn shared(buf: &Arc<Vec<u8>>, range: Range<usize>, home: Home) -> Piece {
        debug_assert!(range.end <= buf.len());
        Piece {
            buf: Some(Arc::clone(buf)),
            range,
            home: Some(home),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf.as_ref().expect("held until dropped")[self.range.clone()]
    }

    pub fn len(&self) -> usize {
        self.range.len()
    }

    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }

    /// The buffer, to be filled again by the holder, when this was an
    /// [`owned`](Self::owned) piece (a shared one goes home when dropped).
    pub fn into_spare(mut self) -> Option<Vec<u8>> {
        if self.home.is_some() {
            return None;
        }
        Arc::into_inner(self.buf.take()?)
    }
}

impl Drop for Piece {
    fn drop(&mut self) {
        if let (Some(buf), Some(Home(home))) = (self.buf.take(), &self.home) {
            if let Some(buf) = Arc::into_inner(buf) {
                home.give(buf);
            }
        }
    }
}

/// The reader's way past the tar reader to the inflated stream: while
/// [`steal`](Tap::steal) reads an entry's data, the read the tar reader passes on takes
/// its bytes as a [`Piece`] instead of copying them into the buffer, which the tar
/// reader never looks at in an entry's data (it only counts what was read, as it does
/// for any read).
#[derive(Default)]
pub(super) struct Tap {
    stealing: Cell<bool>,
    taken: RefCell<Option<Piece>>,
    /// What the tar reader is handed while stealing: never written (allocated
    /// zeroed, its pages are never touched).
    unused: RefCell<Vec<u8>>,
}

/// The most one steal takes (the inflating thread's pieces are this size).
const STEAL: usize = 256 * 1024;

impl Tap {
    /// A read is a steal: take its bytes with [`taken`](Self::taken).
    pub(super) fn stealing(&self) -> bool {
        self.stealing.get()
    }

    /// What a read took while stealing.
    pub(super) fn taken(&self, piece: Piece) {
        *self.taken.borrow_mut() = Some(piece);
    }

    /// The next bytes (at most `max`) `entry` reads, as a [`Piece`] of the inflated
    /// stream: `None` at the entry's end.
    pub(super) fn steal(&self, entry: &mut dyn Read, max: usize) -> io::Result<Option<Piece>> {
        let mut unused = self.unused.borrow_mut();
        if unused.is_empty() {
            *unused = vec![0; STEAL];
        }
        let want = max.min(STEAL);
        self.stealing.set(true);
        let read = entry.read(&mut unused[..want]);
        self.stealing.set(false);
        let n = read?;
        match self.taken.borrow_mut().take() {
            None if n == 0 => Ok(None),
            Some(piece) if piece.len() == n && n > 0 => Ok(Some(piece)),
            _ => Err(io::Error::other(
                "internal: a read while stealing did not take what it counted",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_goes_home_when_its_last_piece_is_dropped() {
        let pool = Pool::new(4);
        let buf = Arc::new(vec![1, 2, 3, 4, 5]);
        let a = Piece::shared(&buf, 0..2, Home(pool.clone()));
        let b = Piece::shared(&buf, 2..5, Home(pool.clone()));
        drop(buf);
        assert_eq!((a.bytes(), b.bytes()), (&[1, 2][..], &[3, 4, 5][..]));
        drop(a);
        assert!(pool.take().is_none(), "b still holds it");
        let spare = b.into_spare();
        assert_eq!(spare, None, "a shared piece goes home, not to its holder");
        assert_eq!(pool.take().unwrap(), vec![1, 2, 3, 4, 5]);
        let owned = Piece::owned(vec![9; 3]);
        assert_eq!(owned.into_spare(), Some(vec![9; 3]));
    }

    #[test]
    fn the_buffer_given_back_last_is_taken_first_and_a_full_pool_keeps_no_more() {
        let pool = Pool::new(2);
        for i in 0..3 {
            pool.give(vec![i]);
        }
        assert_eq!(pool.take(), Some(vec![1]));
        assert_eq!(pool.take(), Some(vec![0]));
        assert_eq!(pool.take(), None);
    }
}
