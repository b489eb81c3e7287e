//! Shared heartbeat ticks: the waiting calls of one runtime with the same interval
//! beat together.
//!
//! A [`Tick`] is a grid of instants `period` apart (`period` is the [`slack`] of
//! the interval) and one task that sleeps until the earliest grid instant a call waits
//! for, then wakes every call due by then. A call due one interval after its last
//! frame waits for the first grid instant at or after that, so it beats at most
//! `period` late; calls that wait together wake together, so a connection's frames
//! are written together instead of one wakeup and one write each.
//!
//! When no call is waiting, the next call to wait puts the grid on its own due
//! instant: a call alone (or the first of a group) is never late.
//!
//! Ticks live in a process-wide registry keyed by runtime and interval; a tick is
//! created by the first call that waits and dropped with the last call registered
//! (its task then ends).

use std::fmt;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use slab::Slab;
use tokio::runtime::{self, Handle};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::MIN_INTERVAL;
use crate::deadline::after;

/// Grid instants per interval: the slack is an eighth of the interval.
const TICKS_PER_INTERVAL: u32 = 8;

/// How late a heartbeat may be, beyond its interval, for sharing a tick: an eighth
/// of the interval, at least [`MIN_INTERVAL`].
pub(crate) fn slack(interval: Duration) -> Duration {
    (interval / TICKS_PER_INTERVAL).max(MIN_INTERVAL)
}

/// The live ticks, by runtime and interval. Bounded by the pairs in use: at most
/// one live tick per pair, and an entry is removed when its tick is dropped.
static TICKS: Mutex<Vec<TickKey>> = Mutex::new(Vec::new());

struct TickKey {
    runtime: runtime::Id,
    interval: Duration,
    tick: Weak<Tick>,
}

/// The shared tick of one interval on one runtime.
pub(crate) struct Tick {
    interval: Duration,
    /// The grid spacing.
    period: Duration,
    /// Wakes the tick's task: a call now waits for an earlier instant than the task
    /// sleeps until, or the tick was dropped.
    notify: Arc<Notify>,
    /// When the task last woke the due calls, as nanoseconds after `base`, plus one
    /// (0: never). Calls read it without the lock.
    fired: AtomicU64,
    base: Instant,
    state: Mutex<State>,
}

struct State {
    /// An instant of the grid, which is `origin + k × period` for every integer `k`.
    origin: Instant,
    /// One entry per registered call: bounded by the calls in flight that have
    /// waited at least once (an entry is removed when its call ends).
    calls: Slab<Entry>,
    /// How many entries have a `due`.
    waiting: usize,
    /// What the task sleeps until (`None`: until notified).
    armed: Option<Instant>,
}

/// A registered call.
struct Entry {
    /// The grid instant the call waits for; `None` once woken (or before it waits).
    due: Option<Instant>,
    waker: Option<Waker>,
}

impl fmt::Debug for Tick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tick")
            .field("interval", &self.interval)
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

impl Tick {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Under the lock run only plain assignments, counts, and waker clones (a
        // reference count for tokio's wakers): a poisoned state is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the task has woken the calls due at `due` (or later).
    fn fired_through(&self, due: Instant) -> bool {
        match self.fired.load(Ordering::Acquire) {
            0 => false,
            nanos => after(self.base, Duration::from_nanos(nanos - 1)) >= due,
        }
    }

    /// Wakes the calls due by `now`; returns the earliest instant a call still waits
    /// for (which the task then sleeps until).
    fn fire(&self, now: Instant) -> Option<Instant> {
        let mut state = self.lock();
        // At most one per call that waits.
        let mut wakers = Vec::with_capacity(state.waiting);
        let mut next: Option<Instant> = None;
        let mut woken = 0;
        for (_, entry) in state.calls.iter_mut() {
            match entry.due {
                Some(due) if due <= now => {
                    entry.due = None;
                    woken += 1;
                    // Not read again before the call registers its next wait.
                    wakers.extend(entry.waker.take());
                }
                Some(due) => next = Some(next.map_or(due, |next| next.min(due))),
                None => {}
            }
        }
        state.waiting = state.waiting.saturating_sub(woken);
        state.armed = next;
        let nanos = now.saturating_duration_since(self.base).as_nanos();
        self.fired.store(
            u64::try_from(nanos).unwrap_or(u64::MAX - 1) + 1,
            Ordering::Release,
        );
        drop(state);
        // Woken outside the lock: a waker may run arbitrary code.
        for waker in wakers {
            waker.wake();
        }
        next
    }
}

/// The first instant at or after `instant` of the grid through `origin` with
/// spacing `period`.
fn at_or_after(origin: Instant, period: Duration, instant: Instant) -> Instant {
    let period = period.as_nanos();
    let nanos = |n: u128| Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX));
    if instant <= origin {
        origin - nanos((origin - instant).as_nanos() / period * period)
    } else {
        after(
            origin,
            nanos((instant - origin).as_nanos().div_ceil(period) * period),
        )
    }
}

impl Drop for Tick {
    fn drop(&mut self) {
        // Ends the task (it finds the tick gone) and forgets the tick.
        self.notify.notify_one();
        let mut ticks = TICKS.lock().unwrap_or_else(PoisonError::into_inner);
        ticks.retain(|key| !std::ptr::eq(key.tick.as_ptr(), self));
    }
}

/// The tick's task: sleeps until the earliest instant a call waits for (or a
/// notification), wakes the calls due, and ends once the tick is gone.
async fn run(tick: Weak<Tick>, notify: Arc<Notify>) {
    let mut timer = pin!(tokio::time::sleep_until(Instant::now()));
    loop {
        // The tick is not kept alive across the wait.
        let next = match tick.upgrade() {
            Some(tick) => tick.fire(Instant::now()),
            None => return,
        };
        let mut notified = pin!(notify.notified());
        match next {
            Some(at) => {
                timer.as_mut().reset(at);
                std::future::poll_fn(|cx| {
                    if notified.as_mut().poll(cx).is_ready() || timer.as_mut().poll(cx).is_ready() {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    }
                })
                .await;
            }
            None => notified.await,
        }
    }
}

/// A call's place on the tick of its interval (on the current runtime); dropping it
/// deregisters the call.
pub(crate) struct Beat {
    tick: Arc<Tick>,
    key: usize,
    /// The instant the call waits for, as registered.
    due: Option<Instant>,
    /// The waker registered with it.
    waker: Option<Waker>,
}

impl fmt::Debug for Beat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Beat")
            .field("tick", &self.tick)
            .field("due", &self.due)
            .finish_non_exhaustive()
    }
}

impl Beat {
    /// Registers a call with the tick of `interval` on the current runtime (made,
    /// with its task, if there is none).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as `tokio::time::sleep` does.
    pub(crate) fn register(interval: Duration) -> Beat {
        let tick = tick_for(interval);
        let key = tick.lock().calls.insert(Entry {
            due: None,
            waker: None,
        });
        Beat {
            tick,
            key,
            due: None,
            waker: None,
        }
    }

    /// Ready with the first grid instant at or after `beat_at` once the tick has
    /// passed it (the call's heartbeat is due); otherwise registers `cx` to be woken.
    ///
    /// `beat_at` may move later between polls (a frame was sent): the call is then
    /// woken at the instant it waited for and waits again.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>, beat_at: Instant) -> Poll<Instant> {
        if let Some(due) = self.due {
            if self.tick.fired_through(due) {
                // The task took the entry off the waiting list.
                self.due = None;
                if beat_at <= due {
                    return Poll::Ready(due);
                }
            } else if self
                .waker
                .as_ref()
                .is_some_and(|waker| waker.will_wake(cx.waker()))
            {
                return Poll::Pending;
            }
        }

        let tick = &*self.tick;
        let mut state = tick.lock();
        let State {
            calls,
            waiting,
            origin,
            armed,
        } = &mut *state;
        let entry = &mut calls[self.key];
        if entry.due.is_some() {
            // Still waiting: only the waker changed.
            entry.waker = Some(cx.waker().clone());
            self.waker = entry.waker.clone();
            return Poll::Pending;
        }
        let due = if *waiting == 0 {
            // Nobody to share with: the grid goes through this call's instant.
            *origin = beat_at;
            beat_at
        } else {
            at_or_after(*origin, tick.period, beat_at)
        };
        if tick.fired_through(due) {
            return Poll::Ready(due);
        }
        entry.due = Some(due);
        entry.waker = Some(cx.waker().clone());
        *waiting += 1;
        let earlier = armed.is_none_or(|armed| due < armed);
        if earlier {
            *armed = Some(due);
        }
        self.due = Some(due);
        self.waker = entry.waker.clone();
        drop(state);
        if earlier {
            self.tick.notify.notify_one();
        }
        Poll::Pending
    }
}

impl Drop for Beat {
    fn drop(&mut self) {
        let mut state = self.tick.lock();
        let entry = state.calls.try_remove(self.key);
        if entry.as_ref().is_some_and(|entry| entry.due.is_some()) {
            state.waiting = state.waiting.saturating_sub(1);
        }
        // The entry's waker is dropped after the lock is released.
        drop(state);
        drop(entry);
    }
}

/// The tick of `interval` on the current runtime, made (and its task spawned) if
/// there is none.
fn tick_for(interval: Duration) -> Arc<Tick> {
    let handle = Handle::current();
    let runtime = handle.id();
    let mut ticks = TICKS.lock().unwrap_or_else(PoisonError::into_inner);
    let live = ticks
        .iter()
        .filter(|key| key.runtime == runtime && key.interval == interval)
        .find_map(|key| key.tick.upgrade());
    if let Some(tick) = live {
        return tick;
    }
    let now = Instant::now();
    let tick = Arc::new(Tick {
        interval,
        period: slack(interval),
        notify: Arc::new(Notify::new()),
        fired: AtomicU64::new(0),
        base: now,
        state: Mutex::new(State {
            origin: now,
            calls: Slab::new(),
            waiting: 0,
            armed: None,
        }),
    });
    ticks.push(TickKey {
        runtime,
        interval,
        tick: Arc::downgrade(&tick),
    });
    drop(ticks);
    handle.spawn(run(Arc::downgrade(&tick), Arc::clone(&tick.notify)));
    tick
}

/// How many calls are registered with the tick of `interval` on the current
/// runtime (0 when there is no tick).
#[cfg(test)]
pub(crate) fn registered(interval: Duration) -> usize {
    let runtime = Handle::current().id();
    let ticks = TICKS.lock().unwrap_or_else(PoisonError::into_inner);
    let tick = ticks
        .iter()
        .filter(|key| key.runtime == runtime && key.interval == interval)
        .find_map(|key| key.tick.upgrade());
    // Not dropped under the registry's lock (it may be the last reference).
    drop(ticks);
    tick.map_or(0, |tick| tick.lock().calls.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_instants_round_up_on_both_sides_of_the_origin() {
        let origin = Instant::now() + Duration::from_secs(10);
        let period = Duration::from_micros(62_500);
        let at = |millis: i64| {
            let offset = Duration::from_millis(millis.unsigned_abs());
            if millis < 0 {
                origin - offset
            } else {
                origin + offset
            }
        };
        let grid = |millis: i64| at_or_after(origin, period, at(millis));
        assert_eq!(grid(0), origin);
        assert_eq!(grid(1), origin + period);
        assert_eq!(grid(62), origin + period);
        assert_eq!(grid(63), origin + 2 * period);
        assert_eq!(grid(500), origin + 8 * period);
        assert_eq!(grid(-1), origin);
        assert_eq!(grid(-62), origin);
        assert_eq!(grid(-63), origin - period);
        assert_eq!(grid(-500), origin - 8 * period);
    }

    #[test]
    fn the_slack_is_an_eighth_of_the_interval_and_at_least_a_millisecond() {
        assert_eq!(
            slack(Duration::from_millis(500)),
            Duration::from_micros(62_500)
        );
        assert_eq!(slack(Duration::from_secs(8)), Duration::from_secs(1));
        assert_eq!(slack(Duration::from_millis(4)), MIN_INTERVAL);
    }
}
