//! One invocation (an ingest of an event, a scheduler shard's tick) as the wrappers see it:
//! its id, and its abandonment when a wrapper "crashes" it.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

thread_local! {
    /// The invocation being polled on this thread.
    static CURRENT: Cell<Option<u64>> = const { Cell::new(None) };
    /// Set by a wrapper that crashed the invocation being polled.
    static CRASHED: Cell<bool> = const { Cell::new(false) };
}

/// The invocation being polled on this thread, if any: what the wrappers log a call under.
pub fn current_invocation() -> Option<u64> {
    CURRENT.with(Cell::get)
}

/// Abandons the invocation being polled: it ends with [`Crashed`] as soon as the poll
/// returns, its future dropped where it stood. The future returned never completes.
pub(super) fn crash() -> std::future::Pending<()> {
    CRASHED.with(|c| c.set(true));
    std::future::pending()
}

/// The invocation was abandoned by a wrapper's crash (a killed process, a Lambda timeout): it
/// never returned, and whatever it had not written is not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crashed;

/// An invocation's future, run under the id `id`: while it is polled the wrappers log their
/// calls under `id`, and a wrapper's crash ends it with [`Crashed`] (the inner future is
/// dropped, as a killed sandbox drops its work). The id is kept in a thread-local for the
/// poll, so it reaches the calls the future makes itself, not those of tasks it spawns (a
/// spawned task's calls are logged without an invocation and never crash).
pub struct Invocation<'a, T> {
    id: u64,
    inner: Option<Pin<Box<dyn Future<Output = T> + 'a>>>,
}

impl<'a, T> Invocation<'a, T> {
    /// Runs `future` as the invocation `id`.
    pub fn new(id: u64, future: impl Future<Output = T> + 'a) -> Self {
        Invocation {
            id,
            inner: Some(Box::pin(future)),
        }
    }

    /// Its id.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl<T> std::fmt::Debug for Invocation<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invocation")
            .field("id", &self.id)
            .field("done", &self.inner.is_none())
            .finish()
    }
}

impl<T> Future for Invocation<'_, T> {
    type Output = Result<T, Crashed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let id = self.id;
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(Err(Crashed));
        };
        let before = CURRENT.with(|c| c.replace(Some(id)));
        let crashed_before = CRASHED.with(|c| c.replace(false));
        let polled = inner.as_mut().poll(cx);
        let crashed = CRASHED.with(|c| c.replace(crashed_before));
        CURRENT.with(|c| c.set(before));
        if crashed {
            self.inner = None;
            return Poll::Ready(Err(Crashed));
        }
        match polled {
            Poll::Ready(out) => {
                self.inner = None;
                Poll::Ready(Ok(out))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Gives the executor a turn: pending once (waking itself), then ready. The wrappers await it
/// around every call, so that concurrent invocations interleave between calls.
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
#[derive(Debug)]
#[must_use = "a future does nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
