//! A single-threaded executor that polls its tasks in an order drawn from the seed.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use super::invocation::{Crashed, Invocation};
use super::schedule::Prng;

/// How a task of an [`Executor`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended<T> {
    /// It returned.
    Returned(T),
    /// A wrapper crashed it ([`Crashed`]).
    Crashed,
    /// It ran out of polls (its deadline: a Lambda timeout, a tick past its budget) and was
    /// dropped where it stood.
    Killed,
}

/// One task: an invocation and the polls it may still take.
struct Task<'a, T> {
    invocation: Invocation<'a, T>,
    polls_left: Option<u32>,
}

/// Runs invocations concurrently on one thread: each turn polls one task drawn from the
/// seed, so the interleaving of their calls (which yield between every store call:
/// [`yield_now`](super::yield_now)) is a function of the seed. Tasks never wait for anything
/// outside (their futures complete when polled, as an in-process store's do), so every task is
/// always ready and a no-op waker does.
pub struct Executor<'a, T> {
    rng: Prng,
    tasks: Vec<Task<'a, T>>,
    /// Turns taken (polls), over the executor's life.
    pub polls: u64,
}

impl<T> std::fmt::Debug for Executor<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("tasks", &self.tasks.len())
            .field("polls", &self.polls)
            .finish()
    }
}

impl<'a, T> Executor<'a, T> {
    /// An executor drawing its order from `rng`.
    pub fn new(rng: Prng) -> Self {
        Executor {
            rng,
            tasks: Vec::new(),
            polls: 0,
        }
    }

    /// Adds `invocation`, to be dropped ([`Ended::Killed`]) if it has not ended after
    /// `polls` polls (`None`: no deadline).
    pub fn spawn(&mut self, invocation: Invocation<'a, T>, polls: Option<u32>) {
        self.tasks.push(Task {
            invocation,
            polls_left: polls,
        });
    }

    /// Tasks not ended yet.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether every task ended.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Runs every task to its end, interleaved; returns each task's id and end, in the order
    /// they ended.
    pub fn run(&mut self) -> Vec<(u64, Ended<T>)> {
        let mut ended = Vec::new();
        let mut cx = Context::from_waker(Waker::noop());
        while !self.tasks.is_empty() {
            let i = self.rng.below(self.tasks.len() as u64) as usize;
            self.polls += 1;
            let task = &mut self.tasks[i];
            if task.polls_left == Some(0) {
                let task = self.tasks.swap_remove(i);
                ended.push((task.invocation.id(), Ended::Killed));
                continue;
            }
            if let Some(left) = &mut task.polls_left {
                *left -= 1;
            }
            let polled = std::pin::Pin::new(&mut task.invocation).poll(&mut cx);
            let end = match polled {
                Poll::Pending => continue,
                Poll::Ready(Ok(out)) => Ended::Returned(out),
                Poll::Ready(Err(Crashed)) => Ended::Crashed,
            };
            // `swap_remove` moves the last task here: the draw order stays a function of the
            // seed.
            let task = self.tasks.swap_remove(i);
            ended.push((task.invocation.id(), end));
        }
        ended
    }
}

/// Polls `future` to its end on this thread, for futures that never wait on anything outside
/// (an in-process store's calls, the wrappers' yields): the oracle's reads, a quiescing sweep.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}
