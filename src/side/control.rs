//! The operator's way in: commands from a side thread (Telegram) to the feed thread, and the
//! snapshots it answers with. Both channels are bounded: a command that does not fit is
//! refused to the operator ("busy"), never waited for, and the feed thread drops a report
//! nobody has room for. The feed thread looks at the channel once per loop turn (at most
//! 100 ms apart), so a command acts within a timer tick.

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};

use crate::core::event::Control;
use crate::side::status::StatusSnapshot;

/// Commands waiting at most.
pub const CAPACITY: usize = 8;

/// What the operator asks of the feed thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// A control event for the core (pause, resume, flatten): every rule still applies.
    Core(Control),
    /// End the session as on SIGINT: cancel everything, report, exit.
    Stop,
    /// Send a fresh status snapshot back.
    Report,
}

/// The feed thread's end.
#[derive(Debug, Clone)]
pub struct ControlLink {
    /// Commands in.
    pub commands: Receiver<Command>,
    /// Snapshots out (for [`Command::Report`]).
    pub reports: Sender<StatusSnapshot>,
}

/// The operator's end (the Telegram commands thread).
#[derive(Debug, Clone)]
pub struct ControlHandle {
    commands: Sender<Command>,
    reports: Receiver<StatusSnapshot>,
}

/// Why a command did not go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// Commands are waiting already.
    #[error("the bot is busy with earlier commands; try again")]
    Busy,
    /// The session is over.
    #[error("the trading thread has stopped")]
    Gone,
}

impl ControlHandle {
    /// Sends `c` without waiting.
    ///
    /// # Errors
    /// The channel is full or closed.
    pub fn send(&self, c: Command) -> Result<(), ControlError> {
        self.commands.try_send(c).map_err(|e| match e {
            TrySendError::Full(_) => ControlError::Busy,
            TrySendError::Disconnected(_) => ControlError::Gone,
        })
    }

    /// Asks for a snapshot and waits up to `limit` for it.
    ///
    /// # Errors
    /// As [`ControlHandle::send`], or no answer in time.
    pub fn report(&self, limit: std::time::Duration) -> Result<StatusSnapshot, ControlError> {
        while self.reports.try_recv().is_ok() {} // an answer to an earlier, timed-out ask
        self.send(Command::Report)?;
        self.reports
            .recv_timeout(limit)
            .map_err(|_| ControlError::Gone)
    }
}

/// A connected pair.
#[must_use]
pub fn channel() -> (ControlHandle, ControlLink) {
    let (ctx, crx) = bounded(CAPACITY);
    let (rtx, rrx) = bounded(2);
    (
        ControlHandle {
            commands: ctx,
            reports: rrx,
        },
        ControlLink {
            commands: crx,
            reports: rtx,
        },
    )
}
