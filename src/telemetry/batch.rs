//! A log writer that gathers lines and writes them in batches.
//!
//! tracing-appender's non-blocking writer hands each line to its writer thread over a
//! channel, and the thread writes it: under a flood of adds (one "Added job" line each) that
//! is a thread wake-up and a system call per line per destination, measured at a fifth of
//! the CPU a `POST P/jobs` costs. Here a line is appended to a buffer under a lock; the
//! buffer is written when it holds [`BATCH_BYTES`] (by the thread that filled it) or
//! [`BATCH_DELAY`] after its first line (by the flusher thread), whichever comes first. An
//! idle daemon's flusher sleeps until a line comes, and a line waits at most `BATCH_DELAY`.
//! Dropping the [`BatchGuard`] writes what is left.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

use super::text::guard_line;

/// Bytes gathered before the thread that logs writes them itself.
pub const BATCH_BYTES: usize = 64 * 1024;

/// How long the first line of a batch waits for others before the flusher writes it.
pub const BATCH_DELAY: Duration = Duration::from_millis(10);

/// The [`MakeWriter`] given to the fmt layer: each event's line is appended to the batch.
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

/// Stops the flusher thread and writes the last batch when dropped.
pub struct BatchGuard {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
}

struct Shared {
    batch: Mutex<Batch>,
    /// Signalled when a line lands in an empty batch, and at shutdown.
    filled: Condvar,
}

struct Batch {
    bytes: Vec<u8>,
    out: Box<dyn Write + Send>,
    stopping: bool,
}

impl Batch {
    /// Writes the gathered lines. A failed write drops them: logging must not stop the
    /// daemon, and there is nowhere else to report it.
    fn write_out(&mut self) {
        if !self.bytes.is_empty() {
            let _ = self.out.write_all(&self.bytes);
            let _ = self.out.flush();
            self.bytes.clear();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Batch> {
        self.batch.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A batching writer over `out`, and the guard that owns its flusher thread.
///
/// # Errors
/// The flusher thread could not be started.
pub fn batched(out: Box<dyn Write + Send>) -> io::Result<(BatchWriter, BatchGuard)> {
    batched_after(out, BATCH_DELAY)
}

/// [`batched`] with the flusher waiting `delay` after a batch's first line.
fn batched_after(
    out: Box<dyn Write + Send>,
    delay: Duration,
) -> io::Result<(BatchWriter, BatchGuard)> {
    let shared = Arc::new(Shared {
        batch: Mutex::new(Batch {
            bytes: Vec::new(),
            out,
            stopping: false,
        }),
        filled: Condvar::new(),
    });
    let flusher = {
        let shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("tickd-log".into())
            .spawn(move || flush_batches(&shared, delay))?
    };
    Ok((
        BatchWriter {
            shared: Arc::clone(&shared),
        },
        BatchGuard {
            shared,
            flusher: Some(flusher),
        },
    ))
}

/// The flusher: waits for a first line, lets others join it for `delay` (cut short by
/// shutdown), writes.
fn flush_batches(shared: &Shared, delay: Duration) {
    let mut batch = shared.lock();
    loop {
        batch = shared
            .filled
            .wait_while(batch, |batch| batch.bytes.is_empty() && !batch.stopping)
            .unwrap_or_else(PoisonError::into_inner);
        if !batch.stopping {
            batch = shared
                .filled
                .wait_timeout_while(batch, delay, |batch| !batch.stopping)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        batch.write_out();
        if batch.stopping {
            return;
        }
    }
}

impl Drop for BatchGuard {
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.filled.notify_one();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
    }
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = &'a BatchWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

/// One call per event: the fmt layer formats a whole line first, so this is where a line
/// is checked to be one line ([`guard_line`]).
impl Write for &BatchWriter {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let mut batch = self.shared.lock();
        let first = batch.bytes.is_empty();
        guard_line(&mut batch.bytes, line);
        if batch.bytes.len() >= BATCH_BYTES {
            batch.write_out();
        } else if first {
            self.shared.filled.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use super::*;

    /// A destination tests can read while the writer holds it.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn a_lone_line_is_written_by_the_flusher() {
        let sink = Sink::default();
        let (writer, _guard) = batched(Box::new(sink.clone())).unwrap();
        (&writer).write_all(b"one\n").unwrap();
        // Waits on the flusher thread, not on a clock: it has BATCH_DELAY to get there, and
        // a generous bound only stops a broken flusher from hanging the test.
        let deadline = Instant::now() + Duration::from_secs(10);
        while sink.text().is_empty() && Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_eq!(sink.text(), "one\n");
    }

    #[test]
    fn a_full_batch_is_written_at_once_and_in_order() {
        let sink = Sink::default();
        // A flusher that would wait an hour: only a full batch or the guard writes here.
        let (writer, guard) =
            batched_after(Box::new(sink.clone()), Duration::from_secs(3600)).unwrap();
        let line = [b'x'; 1023];
        let lines = BATCH_BYTES / 1024 + 1;
        for _ in 0..lines {
            (&writer).write_all(&line).unwrap();
            (&writer).write_all(b"\n").unwrap();
        }
        assert_eq!(sink.text().len(), BATCH_BYTES);
        drop(guard);
        let text = sink.text();
        assert_eq!(text.len(), lines * 1024);
        assert!(text.split_terminator('\n').all(|l| l.len() == 1023));
    }

    #[test]
    fn dropping_the_guard_writes_what_is_left() {
        let sink = Sink::default();
        let (writer, guard) = batched(Box::new(sink.clone())).unwrap();
        (&writer).write_all(b"last words\n").unwrap();
        drop(guard);
        assert_eq!(sink.text(), "last words\n");
    }
}
