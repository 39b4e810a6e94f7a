//! The command line's own output. A reader that goes away (`wildbot ... | head`) ends the
//! output quietly instead of panicking as `print!` does; the command finishes its work and
//! its exit code still says how that went.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_GONE: AtomicBool = AtomicBool::new(false);
static STDERR_GONE: AtomicBool = AtomicBool::new(false);

fn write_to(w: &mut dyn Write, gone: &AtomicBool, text: &str) {
    if gone.load(Ordering::Relaxed) {
        return;
    }
    if w.write_all(text.as_bytes())
        .and_then(|()| w.flush())
        .is_err()
    {
        // A closed pipe (ErrorKind::BrokenPipe) is the reader's choice; any other error has
        // nowhere better to be reported than this stream, which just failed.
        gone.store(true, Ordering::Relaxed);
    }
}

/// Writes `text` to standard output (nothing once its reader has gone).
pub fn out(text: &str) {
    write_to(&mut std::io::stdout().lock(), &STDOUT_GONE, text);
}

/// Writes `text` and a newline to standard output.
pub fn outln(text: &str) {
    out(&format!("{text}\n"));
}

/// Writes `text` and a newline to standard error (nothing once its reader has gone).
pub fn errln(text: &str) {
    err(&format!("{text}\n"));
}

/// Writes `text` to standard error.
pub fn err(text: &str) {
    write_to(&mut std::io::stderr().lock(), &STDERR_GONE, text);
}
