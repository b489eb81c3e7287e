//! The handler-side progress handle.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The longest note a heartbeat carries, in bytes; longer notes are cut at a char
/// boundary.
pub const MAX_NOTE_BYTES: usize = 256;

/// Lets a handler report how far it got; the next heartbeats carry the latest report.
///
/// The generated server puts a `Progress` in the request extensions before it calls
/// a heartbeat method's handler; the handler takes it with
/// [`Progress::from_request`]. Cloning is cheap (the clones
/// share one report), so the handle can be moved into spawned work.
///
/// ```
/// use steadfast::Progress;
/// use tonic::{Request, Response, Status};
///
/// async fn sleep(request: Request<u64>) -> Result<Response<()>, Status> {
///     let progress = Progress::from_request(&request);
///     let steps = *request.get_ref();
///     for step in 0..steps {
///         // ... one step of work ...
///         progress.report((step + 1) as f32 / steps as f32, format!("step {}", step + 1));
///     }
///     Ok(Response::new(()))
/// }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Progress {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    fraction: Option<f32>,
    note: Option<String>,
}

impl Progress {
    /// The handle that the heartbeat layer put in the request extensions.
    ///
    /// When there is none (the handler was called directly, e.g. in a unit test), a
    /// new detached handle is returned, so reporting still works and goes nowhere.
    pub fn from_request<T>(request: &tonic::Request<T>) -> Progress {
        request
            .extensions()
            .get::<Progress>()
            .cloned()
            .unwrap_or_default()
    }

    /// Sets the fraction done, clamped to `0.0..=1.0`; NaN is ignored.
    pub fn set(&self, fraction: f32) {
        if let Some(fraction) = clamp(fraction) {
            self.lock().fraction = Some(fraction);
        }
    }

    /// Sets a short note, cut to at most [`MAX_NOTE_BYTES`] bytes at a char boundary.
    pub fn note(&self, note: impl Into<String>) {
        let note = truncate(note.into());
        self.lock().note = Some(note);
    }

    /// Sets the fraction done and the note together (see [`set`](Self::set) and
    /// [`note`](Self::note)).
    pub fn report(&self, fraction: f32, note: impl Into<String>) {
        let note = truncate(note.into());
        let fraction = clamp(fraction);
        let mut state = self.lock();
        if let Some(fraction) = fraction {
            state.fraction = Some(fraction);
        }
        state.note = Some(note);
    }

    /// The latest report: `(fraction, note)`.
    pub(crate) fn snapshot(&self) -> (Option<f32>, Option<String>) {
        let state = self.lock();
        (state.fraction, state.note.clone())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is two plain values, valid whatever a panicking holder did.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn clamp(fraction: f32) -> Option<f32> {
    if fraction.is_nan() {
        None
    } else {
        Some(fraction.clamp(0.0, 1.0))
    }
}

fn truncate(mut note: String) -> String {
    if note.len() > MAX_NOTE_BYTES {
        let mut end = MAX_NOTE_BYTES;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
    }
    note
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::frame::testing::TestFrame;
    use crate::frame::{FRAME_BUFFER_BYTES, Frame};
    use crate::proto::v1::Heartbeat;

    #[test]
    fn fraction_is_clamped_and_nan_ignored() {
        let progress = Progress::default();
        assert_eq!(progress.snapshot(), (None, None));
        progress.set(0.25);
        assert_eq!(progress.snapshot().0, Some(0.25));
        progress.set(f32::NAN);
        assert_eq!(progress.snapshot().0, Some(0.25));
        progress.set(1.5);
        assert_eq!(progress.snapshot().0, Some(1.0));
        progress.set(f32::NEG_INFINITY);
        assert_eq!(progress.snapshot().0, Some(0.0));
        progress.report(f32::NAN, "kept note");
        assert_eq!(
            progress.snapshot(),
            (Some(0.0), Some("kept note".to_owned()))
        );
    }

    #[test]
    fn note_is_cut_at_a_char_boundary() {
        let progress = Progress::default();
        // 255 ASCII bytes then a 2-byte char: byte 256 is inside the char.
        let note = format!("{}é", "a".repeat(255));
        progress.note(note);
        let (_, note) = progress.snapshot();
        assert_eq!(note.as_deref(), Some("a".repeat(255).as_str()));

        progress.note("x".repeat(300));
        assert_eq!(progress.snapshot().1.map(|n| n.len()), Some(MAX_NOTE_BYTES));

        progress.note("short");
        assert_eq!(progress.snapshot().1.as_deref(), Some("short"));
    }

    #[test]
    fn clones_share_one_report() {
        let progress = Progress::default();
        progress.clone().report(0.5, "half");
        assert_eq!(progress.snapshot(), (Some(0.5), Some("half".to_owned())));
    }

    #[test]
    fn from_request_finds_the_handle_or_makes_a_detached_one() {
        let progress = Progress::default();
        let mut request = tonic::Request::new(());
        request.extensions_mut().insert(progress.clone());
        Progress::from_request(&request).set(0.75);
        assert_eq!(progress.snapshot().0, Some(0.75));

        let bare = tonic::Request::new(());
        let detached = Progress::from_request(&bare);
        detached.set(0.5);
        assert_eq!(detached.snapshot().0, Some(0.5));
        assert_eq!(Progress::from_request(&bare).snapshot().0, None);
    }

    #[test]
    fn the_largest_heartbeat_frame_fits_the_frame_buffer() {
        let heartbeat = Heartbeat {
            seq: u64::MAX,
            elapsed_ms: u64::MAX,
            progress: Some(1.0),
            note: Some("é".repeat(MAX_NOTE_BYTES / 2)),
        };
        let frame = TestFrame::heartbeat(heartbeat);
        // tonic's 5-byte message header (compression flag, length) comes first.
        let encoded = 5 + frame.encoded_len();
        assert!(
            encoded <= FRAME_BUFFER_BYTES,
            "{encoded} bytes > {FRAME_BUFFER_BYTES}"
        );
        assert!(
            encoded > FRAME_BUFFER_BYTES / 2,
            "the buffer could be smaller"
        );
    }
}
