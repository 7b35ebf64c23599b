//! A running script's output as it is read, for whoever follows it (`GET P/runs/<id>/output
//! ?follow=true`): a [`LiveOutput`] per run, fed by the capture, watched through [`Watch`]es.
//!
//! # Hand-over without a gap or a repeat
//!
//! The bounded tails the run record keeps ([`Tail`]) live here, in the feed, under one mutex
//! with the byte count read so far; the capture appends a chunk to its tail and sends it on
//! the broadcast channel in one critical section. A watcher subscribes to the channel and
//! copies the tails in one critical section too. So every chunk is either in the copy (read
//! before) or on the watcher's receiver (read after), never both and never neither: no
//! sequence numbers are needed to join. Each chunk still carries its offset in the run's
//! output (`start`), which is how a watcher that lagged knows how many bytes it lost.
//!
//! # The end always comes
//!
//! The scheduler calls [`LiveOutput::finish`] once the run's record is written: the end is
//! kept in the feed and sent as the channel's last message. A watcher that joins after it
//! gets the tails and the end at once; one that lagged still gets it (a lagging receiver
//! loses the oldest messages, and the end is the newest). If the feed is dropped without an
//! end (the run's task died), the channel closes and the watcher says so ([`Watch::next`]
//! answers `None`), so its follower falls back to the stored record.
//!
//! # Bounded
//!
//! Nothing is copied for the channel while nobody watches (`receiver_count`). The channel holds
//! at most [`FEED_CAPACITY`] chunks of at most [`CHUNK_MAX`] bytes, once for all of a run's
//! watchers; a watcher that falls further behind loses the oldest and is told how many
//! ([`LiveEvent::Dropped`]): a slow reader never grows the daemon. A run takes at most
//! [`MAX_WATCHERS`] watchers.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::broadcast;

use super::capture::Tail;
use crate::job::RunStatus;

/// The largest chunk sent to watchers (the capture reads at most this much at once).
pub const CHUNK_MAX: usize = 8 * 1024;
/// Chunks the channel keeps for its slowest watcher: 2 MiB at most per run.
pub const FEED_CAPACITY: usize = 256;
/// Watchers one run may have at once.
pub const MAX_WATCHERS: usize = 64;

/// Which of a script's outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

impl OutputStream {
    /// `stdout` or `stderr`: the SSE event's name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputStream::Stdout => "stdout",
            OutputStream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        match self {
            OutputStream::Stdout => 0,
            OutputStream::Stderr => 1,
        }
    }

    const BOTH: [OutputStream; 2] = [OutputStream::Stdout, OutputStream::Stderr];
}

/// How a run ended, as its followers are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveEnd {
    pub status: RunStatus,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
}

/// What a watcher hears, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEvent {
    /// Output, as text: split characters are joined across chunks, `\r\n` becomes `\n`.
    Output { stream: OutputStream, text: String },
    /// What comes next of this stream is a tail: its beginning was not kept.
    Truncated { stream: OutputStream },
    /// The watcher fell behind: this many chunks, of this many bytes, were not sent to it.
    Dropped { chunks: u64, bytes: u64 },
    /// The run ended; nothing follows.
    End(LiveEnd),
}

#[derive(Debug, Clone)]
enum Message {
    Chunk {
        stream: OutputStream,
        /// Bytes of both streams read before this chunk.
        start: u64,
        bytes: Bytes,
    },
    End {
        end: LiveEnd,
        /// Bytes of both streams read in all.
        total: u64,
    },
}

/// Too many watchers on one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("run output already has {MAX_WATCHERS} followers; try again when one has left")]
pub struct TooManyWatchers;

/// One run's output as it is read: its tails and the channel to its watchers.
#[derive(Debug)]
pub struct LiveOutput {
    state: Mutex<State>,
    sender: broadcast::Sender<Message>,
}

#[derive(Debug)]
struct State {
    tails: [Tail; 2],
    /// Bytes of both streams read so far.
    position: u64,
    end: Option<LiveEnd>,
}

impl LiveOutput {
    /// A feed keeping the last `limit` bytes of each stream.
    pub(crate) fn new(limit: usize) -> LiveOutput {
        let (sender, _) = broadcast::channel(FEED_CAPACITY);
        LiveOutput {
            state: Mutex::new(State {
                tails: [Tail::new(limit), Tail::new(limit)],
                position: 0,
                end: None,
            }),
            sender,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `bytes` in `stream`'s tail and sends them to the watchers, if any.
    pub(crate) fn push(&self, stream: OutputStream, bytes: &[u8]) {
        let mut state = self.state();
        state.tails[stream.index()].push(bytes);
        let start = state.position;
        state.position += bytes.len() as u64;
        if self.sender.receiver_count() == 0 {
            return;
        }
        let mut offset = start;
        for piece in bytes.chunks(CHUNK_MAX) {
            // Err: every receiver left meanwhile, which is fine.
            let _ = self.sender.send(Message::Chunk {
                stream,
                start: offset,
                bytes: Bytes::copy_from_slice(piece),
            });
            offset += piece.len() as u64;
        }
    }

    /// Each stream's tail as text, and whether its beginning was cut.
    pub fn texts(&self) -> [(String, bool); 2] {
        let state = self.state();
        [state.tails[0].text(), state.tails[1].text()]
    }

    /// The run has ended (its record is written): watchers are told, and later ones too.
    /// Only the first call counts.
    pub fn finish(&self, end: LiveEnd) {
        let mut state = self.state();
        if state.end.is_some() {
            return;
        }
        state.end = Some(end.clone());
        let _ = self.sender.send(Message::End {
            end,
            total: state.position,
        });
    }

    /// A new watcher: the tails so far, then every chunk read after them, then the end.
    ///
    /// # Errors
    /// [`TooManyWatchers`] when the run has [`MAX_WATCHERS`] already.
    pub fn watch(&self) -> Result<Watch, TooManyWatchers> {
        let state = self.state();
        if self.sender.receiver_count() >= MAX_WATCHERS {
            return Err(TooManyWatchers);
        }
        let mut watch = Watch {
            receiver: self.sender.subscribe(),
            pending: VecDeque::new(),
            position: state.position,
            decoders: Default::default(),
            lagged: 0,
            done: false,
        };
        for stream in OutputStream::BOTH {
            let (bytes, truncated) = state.tails[stream.index()].bytes();
            if truncated {
                watch.pending.push_back(LiveEvent::Truncated { stream });
                watch.decoders[stream.index()].skip_continuation = true;
            }
            watch.output(stream, &bytes);
        }
        if let Some(end) = &state.end {
            watch.finish(end.clone());
        }
        Ok(watch)
    }
}

/// One watcher of a run's output, with its own place in it.
#[derive(Debug)]
pub struct Watch {
    receiver: broadcast::Receiver<Message>,
    pending: VecDeque<LiveEvent>,
    /// Bytes of both streams this watcher has been given or told it lost.
    position: u64,
    decoders: [Decoder; 2],
    /// Chunks lost and not told yet.
    lagged: u64,
    done: bool,
}

impl Watch {
    /// The next event; `None` after the end, or when the feed went away without one.
    pub async fn next(&mut self) -> Option<LiveEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.done {
                return None;
            }
            match self.receiver.recv().await {
                Ok(Message::Chunk {
                    stream,
                    start,
                    bytes,
                }) => {
                    self.tell_dropped(start);
                    self.position = start + bytes.len() as u64;
                    self.output(stream, &bytes);
                }
                Ok(Message::End { end, total }) => {
                    self.tell_dropped(total);
                    self.finish(end);
                }
                Err(broadcast::error::RecvError::Lagged(chunks)) => {
                    self.lagged += chunks;
                    // The next chunk of either stream may begin inside a character.
                    for decoder in &mut self.decoders {
                        decoder.carry.clear();
                        decoder.skip_continuation = true;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => {
                    self.done = true;
                }
            }
        }
    }

    fn tell_dropped(&mut self, next_start: u64) {
        if self.lagged > 0 {
            self.pending.push_back(LiveEvent::Dropped {
                chunks: self.lagged,
                bytes: next_start.saturating_sub(self.position),
            });
            self.lagged = 0;
            self.position = next_start;
        }
    }

    fn output(&mut self, stream: OutputStream, bytes: &[u8]) {
        let text = self.decoders[stream.index()].decode(bytes);
        if !text.is_empty() {
            self.pending.push_back(LiveEvent::Output { stream, text });
        }
    }

    fn finish(&mut self, end: LiveEnd) {
        for stream in OutputStream::BOTH {
            let text = self.decoders[stream.index()].flush();
            if !text.is_empty() {
                self.pending.push_back(LiveEvent::Output { stream, text });
            }
        }
        self.pending.push_back(LiveEvent::End(end));
        self.done = true;
    }
}

/// Bytes to text across chunks: a character split between two chunks, or a `\r\n`, is held
/// back until the next one. SSE data cannot carry a `\r`: `\r\n` becomes `\n`, and a lone
/// `\r` (a progress bar's) is a line break.
#[derive(Debug, Default)]
struct Decoder {
    carry: Vec<u8>,
    /// Drop the continuation bytes the next chunk begins with (after a cut or a loss).
    skip_continuation: bool,
}

impl Decoder {
    fn decode(&mut self, bytes: &[u8]) -> String {
        let mut input = std::mem::take(&mut self.carry);
        input.extend_from_slice(bytes);
        let mut start = 0;
        if self.skip_continuation && !input.is_empty() {
            start = input
                .iter()
                .take(3)
                .take_while(|b| is_continuation(**b))
                .count();
            self.skip_continuation = false;
        }
        let input = &input[start..];
        let mut keep = incomplete_suffix(input);
        if keep == 0 && input.last() == Some(&b'\r') {
            keep = 1;
        }
        let (ready, rest) = input.split_at(input.len() - keep);
        self.carry = rest.to_vec();
        normalise(String::from_utf8_lossy(ready).into_owned())
    }

    fn flush(&mut self) -> String {
        let rest = std::mem::take(&mut self.carry);
        normalise(String::from_utf8_lossy(&rest).into_owned())
    }
}

fn normalise(text: String) -> String {
    if text.contains("\r\n") {
        text.replace("\r\n", "\n")
    } else {
        text
    }
}

fn is_continuation(byte: u8) -> bool {
    byte & 0b1100_0000 == 0b1000_0000
}

/// How many bytes at the end of `bytes` begin a UTF-8 character that is not complete yet.
fn incomplete_suffix(bytes: &[u8]) -> usize {
    let n = bytes.len();
    for back in 1..=n.min(4) {
        let byte = bytes[n - back];
        if is_continuation(byte) {
            continue;
        }
        let needs = match byte {
            0xF0.. => 4,
            0xE0.. => 3,
            0xC0.. => 2,
            _ => 1,
        };
        return if needs > back { back } else { 0 };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end() -> LiveEnd {
        LiveEnd {
            status: RunStatus::Succeeded,
            exit_code: Some(0),
            reason: None,
        }
    }

    fn out(stream: OutputStream, text: &str) -> LiveEvent {
        LiveEvent::Output {
            stream,
            text: text.into(),
        }
    }

    async fn drain(watch: &mut Watch) -> Vec<LiveEvent> {
        let mut events = Vec::new();
        while let Some(event) = watch.next().await {
            events.push(event);
        }
        events
    }

    #[tokio::test]
    async fn a_watcher_gets_the_tail_then_what_follows_then_the_end() {
        let feed = LiveOutput::new(1024);
        feed.push(OutputStream::Stdout, b"one\n");
        let mut watch = feed.watch().unwrap();
        feed.push(OutputStream::Stderr, b"oops\n");
        feed.push(OutputStream::Stdout, b"two\n");
        feed.finish(end());
        assert_eq!(
            drain(&mut watch).await,
            vec![
                out(OutputStream::Stdout, "one\n"),
                out(OutputStream::Stderr, "oops\n"),
                out(OutputStream::Stdout, "two\n"),
                LiveEvent::End(end()),
            ]
        );
    }

    #[tokio::test]
    async fn a_watcher_joining_after_the_end_gets_the_tails_and_the_end() {
        let feed = LiveOutput::new(4);
        feed.push(OutputStream::Stdout, b"abcdef");
        feed.push(OutputStream::Stderr, b"e\n");
        feed.finish(end());
        let mut watch = feed.watch().unwrap();
        assert_eq!(
            drain(&mut watch).await,
            vec![
                LiveEvent::Truncated {
                    stream: OutputStream::Stdout
                },
                out(OutputStream::Stdout, "cdef"),
                out(OutputStream::Stderr, "e\n"),
                LiveEvent::End(end()),
            ]
        );
    }

    #[tokio::test]
    async fn a_lagging_watcher_is_told_what_it_lost_and_still_gets_the_end() {
        let feed = LiveOutput::new(64);
        let mut watch = feed.watch().unwrap();
        for _ in 0..FEED_CAPACITY + 10 {
            feed.push(OutputStream::Stdout, b"0123456789");
        }
        feed.finish(end());
        let events = drain(&mut watch).await;
        assert_eq!(
            events[0],
            LiveEvent::Dropped {
                chunks: 11,
                bytes: 110
            }
        );
        assert_eq!(events.len(), 1 + FEED_CAPACITY - 1 + 1, "{events:?}");
        assert_eq!(events.last(), Some(&LiveEvent::End(end())));
    }

    #[tokio::test]
    async fn characters_and_line_ends_split_across_chunks_are_joined() {
        let feed = LiveOutput::new(64);
        let mut watch = feed.watch().unwrap();
        let text = "é\r\nx".as_bytes();
        feed.push(OutputStream::Stdout, &text[..1]);
        feed.push(OutputStream::Stdout, &text[1..3]);
        feed.push(OutputStream::Stdout, &text[3..]);
        feed.finish(end());
        let events = drain(&mut watch).await;
        let joined: String = events
            .iter()
            .filter_map(|e| match e {
                LiveEvent::Output { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(joined, "é\nx");
    }

    #[test]
    fn a_run_takes_a_bounded_number_of_watchers() {
        let feed = LiveOutput::new(64);
        let watchers: Vec<Watch> = (0..MAX_WATCHERS).map(|_| feed.watch().unwrap()).collect();
        assert_eq!(feed.watch().err(), Some(TooManyWatchers));
        drop(watchers);
        assert!(feed.watch().is_ok());
    }

    #[tokio::test]
    async fn a_feed_gone_without_an_end_closes_its_watchers() {
        let feed = LiveOutput::new(64);
        let mut watch = feed.watch().unwrap();
        drop(feed);
        assert_eq!(watch.next().await, None);
    }
}
