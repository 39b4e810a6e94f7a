//! The recorder: every received frame with its receive time, written by a side thread.
//!
//! The feed thread copies a frame into a buffer taken from a fixed pool and hands it over on a
//! bounded channel; the recorder thread writes it and returns the buffer. No allocation on the
//! feed thread after start-up, and never a wait: with no free buffer the frame is dropped and
//! counted (the file then says so at the end).
//!
//! File format (one JSON object per line, read by `verify-feed` and replay):
//! `{"rx_ns":<receive time, ns since the Unix epoch>,"frame":<the frame exactly as received>}`.
//! A frame that is not valid JSON is written as a JSON string instead, so every line stays
//! valid JSON. The other inputs the core got are recorded too, so a replay feeds it exactly
//! the same events: `{"rx_ns":…,"event":"timer"}` (the periodic tick) and
//! `{"rx_ns":…,"event":"disconnected"}`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};

use crate::feed::error::FeedError;

/// Frames in flight between the feed thread and the recorder.
pub const POOL: usize = 4096;
/// Initial capacity of each pooled buffer (frames are usually far smaller; a larger one grows
/// its buffer once, on the recorder's side of the hand-over).
const BUF_CAP: usize = 16 * 1024;

struct Item {
    rx_ns: i64,
    bytes: Vec<u8>,
    /// A core event other than a frame (`bytes` is then empty and not from the pool).
    event: Option<&'static str>,
}

/// The feed thread's end of the recorder.
#[derive(Debug)]
pub struct Recorder {
    tx: Sender<Item>,
    free: Receiver<Vec<u8>>,
    dropped: Arc<AtomicU64>,
    thread: Option<JoinHandle<std::io::Result<u64>>>,
    /// The file, for errors.
    path: String,
}

impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Item").field("rx_ns", &self.rx_ns).finish()
    }
}

impl Recorder {
    /// Creates `path` and starts the writer thread.
    ///
    /// # Errors
    /// The file cannot be created.
    pub fn start(path: &str) -> Result<Recorder, FeedError> {
        let file = File::create(path).map_err(|source| FeedError::Record {
            path: path.to_string(),
            source,
        })?;
        let (tx, rx) = bounded::<Item>(POOL);
        let (free_tx, free) = bounded::<Vec<u8>>(POOL);
        for _ in 0..POOL {
            let _ = free_tx.try_send(Vec::with_capacity(BUF_CAP));
        }
        let dropped = Arc::new(AtomicU64::new(0));
        let thread = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || write_loop(BufWriter::new(file), &rx, &free_tx))
            .map_err(|_| FeedError::Thread("recorder"))?;
        Ok(Recorder {
            path: path.to_string(),
            tx,
            free,
            dropped,
            thread: Some(thread),
        })
    }

    /// Hands one frame over; never blocks.
    pub fn record(&self, rx_ns: i64, frame: &[u8]) {
        let Ok(mut bytes) = self.free.try_recv() else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        bytes.clear();
        bytes.extend_from_slice(frame);
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(Item {
            rx_ns,
            bytes,
            event: None,
        }) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records a core event other than a frame (`"timer"`, `"disconnected"`); never blocks.
    pub fn record_event(&self, rx_ns: i64, event: &'static str) {
        let item = Item {
            rx_ns,
            bytes: Vec::new(), // empty: no allocation
            event: Some(event),
        };
        if self.tx.try_send(item).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Frames that could not be recorded.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Flushes and closes the file; returns the frames written.
    ///
    /// # Errors
    /// A write failed.
    pub fn finish(mut self) -> Result<u64, FeedError> {
        let thread = self.thread.take();
        let path = std::mem::take(&mut self.path);
        drop(self);
        match thread.map(JoinHandle::join) {
            Some(Ok(r)) => r.map_err(|source| FeedError::Record { path, source }),
            Some(Err(_)) => Err(FeedError::Thread("recorder")),
            None => Ok(0),
        }
    }
}

fn write_loop(
    mut out: BufWriter<File>,
    rx: &Receiver<Item>,
    free: &Sender<Vec<u8>>,
) -> std::io::Result<u64> {
    let mut written = 0u64;
    let mut line = Vec::with_capacity(BUF_CAP + 64);
    // Polls rather than blocks, so the feed thread's send never wakes a sleeping thread.
    // Ends when the feed side drops its sender.
    loop {
        let item = match rx.try_recv() {
            Ok(item) => item,
            Err(crossbeam_channel::TryRecvError::Empty) => {
                out.flush()?;
                std::thread::sleep(std::time::Duration::from_millis(2));
                continue;
            }
            Err(crossbeam_channel::TryRecvError::Disconnected) => break,
        };
        line.clear();
        line.extend_from_slice(b"{\"rx_ns\":");
        line.extend_from_slice(itoa::Buffer::new().format(item.rx_ns).as_bytes());
        if let Some(event) = item.event {
            line.extend_from_slice(b",\"event\":\"");
            line.extend_from_slice(event.as_bytes());
            line.extend_from_slice(b"\"}\n");
            out.write_all(&line)?;
            continue;
        }
        line.extend_from_slice(b",\"frame\":");
        // One line per frame: a frame that is not JSON, or spans lines, is stored as a string.
        if !item.bytes.contains(&b'\n')
            && serde_json::from_slice::<serde::de::IgnoredAny>(&item.bytes).is_ok()
        {
            line.extend_from_slice(&item.bytes);
        } else {
            let text = String::from_utf8_lossy(&item.bytes);
            serde_json::to_writer(&mut line, &text).map_err(std::io::Error::other)?;
        }
        line.extend_from_slice(b"}\n");
        out.write_all(&line)?;
        written += 1;
        let _ = free.try_send(item.bytes);
    }
    out.flush()?;
    Ok(written)
}
