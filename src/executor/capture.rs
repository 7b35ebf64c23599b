//! Bounded capture of a script's stdout or stderr: keep the last N bytes, drain the rest, and
//! pass each chunk on to the run's live feed (`live.rs`).
//!
//! The tail (not the head) is kept because a failing script says why at the end. Everything
//! beyond the limit is still read and thrown away, so the script never blocks on a full pipe.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;
use tokio::time::Instant;

use super::live::{CHUNK_MAX, LiveOutput, OutputStream};

/// How long a pipe is still read once the script's process group is gone. Anything the group
/// wrote is already in the pipe and is read at once; only a grandchild that escaped the group
/// (its own session) can keep the pipe open, and it must not hold the run open with it.
pub(crate) const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);

/// The last `limit` bytes of a stream, and whether anything before them was dropped.
#[derive(Debug)]
pub(crate) struct Tail {
    bytes: VecDeque<u8>,
    limit: usize,
    truncated: bool,
}

impl Tail {
    pub(crate) fn new(limit: usize) -> Tail {
        Tail {
            // Grows with the output: most scripts print far less than the limit.
            bytes: VecDeque::new(),
            limit,
            truncated: false,
        }
    }

    /// Appends `chunk`, dropping the oldest bytes beyond the limit.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        if chunk.len() >= self.limit {
            self.truncated |= !self.bytes.is_empty() || chunk.len() > self.limit;
            self.bytes.clear();
            self.bytes.extend(&chunk[chunk.len() - self.limit..]);
            return;
        }
        self.bytes.extend(chunk);
        let excess = self.bytes.len().saturating_sub(self.limit);
        if excess > 0 {
            self.bytes.drain(..excess);
            self.truncated = true;
        }
    }

    /// The kept bytes as text (lossy UTF-8) and the truncation mark. When the front was cut,
    /// a character split by the cut is dropped rather than shown as a replacement character.
    pub(crate) fn text(&self) -> (String, bool) {
        let (bytes, truncated) = self.bytes();
        let start = if truncated {
            bytes
                .iter()
                .take(3)
                .take_while(|b| is_continuation(**b))
                .count()
        } else {
            0
        };
        let text = String::from_utf8_lossy(&bytes[start..]).into_owned();
        (text, truncated)
    }

    /// A copy of the kept bytes, and the truncation mark.
    pub(crate) fn bytes(&self) -> (Vec<u8>, bool) {
        let (front, back) = self.bytes.as_slices();
        let mut bytes = Vec::with_capacity(self.bytes.len());
        bytes.extend_from_slice(front);
        bytes.extend_from_slice(back);
        (bytes, self.truncated)
    }
}

fn is_continuation(byte: u8) -> bool {
    byte & 0b1100_0000 == 0b1000_0000
}

/// Reads `pipe` to its end into `stream`'s tail in `feed`, which passes it on to whoever
/// watches the run ([`LiveOutput`]).
///
/// Once `group_gone` turns true (the script exited and what was left of its process group was
/// killed), reading stops at EOF or [`DRAIN_AFTER_EXIT`] later, whichever comes first. A read
/// error ends the capture with what was read so far: the run's outcome does not depend on it.
pub(crate) async fn read_into<R: AsyncRead + Unpin>(
    mut pipe: R,
    feed: &LiveOutput,
    stream: OutputStream,
    mut group_gone: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; CHUNK_MAX];
    let mut deadline: Option<Instant> = None;
    loop {
        // `read` is cancel-safe: a read dropped by `select!` or `timeout_at` loses no bytes.
        let read = match deadline {
            None => tokio::select! {
                read = pipe.read(&mut buf) => read,
                // Ok or Err (sender gone): either way the group will write nothing more.
                _ = group_gone.wait_for(|gone| *gone) => {
                    deadline = Some(Instant::now() + DRAIN_AFTER_EXIT);
                    continue;
                }
            },
            Some(deadline) => match tokio::time::timeout_at(deadline, pipe.read(&mut buf)).await {
                Ok(read) => read,
                Err(_elapsed) => break,
            },
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => feed.push(stream, &buf[..n]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Tail;

    fn tail_of(limit: usize, chunks: &[&[u8]]) -> (String, bool) {
        let mut tail = Tail::new(limit);
        for chunk in chunks {
            tail.push(chunk);
        }
        tail.text()
    }

    #[test]
    fn keeps_everything_under_the_limit() {
        assert_eq!(tail_of(10, &[b"abc", b"def"]), ("abcdef".into(), false));
        assert_eq!(tail_of(6, &[b"abc", b"def"]), ("abcdef".into(), false));
    }

    #[test]
    fn keeps_the_last_bytes_across_chunks() {
        assert_eq!(tail_of(4, &[b"abc", b"def"]), ("cdef".into(), true));
        assert_eq!(tail_of(4, &[b"abcdefgh"]), ("efgh".into(), true));
        assert_eq!(tail_of(4, &[b"ab", b"cdef"]), ("cdef".into(), true));
    }

    #[test]
    fn a_zero_limit_keeps_nothing_but_marks_output() {
        assert_eq!(tail_of(0, &[]), (String::new(), false));
        assert_eq!(tail_of(0, &[b"x"]), (String::new(), true));
    }

    #[test]
    fn drops_a_character_split_by_the_cut() {
        // "é" is two bytes; a 4-byte tail of "xé.é" starts inside the first "é".
        assert_eq!(tail_of(4, &["xé.é".as_bytes()]), (".é".into(), true));
    }
}
