//! A start line for the race: every buyer task waits at it until the last one
//! has arrived, then all of them are released at once.
//!
//! This is what `tokio::sync::Barrier` does; the example builds tokio without
//! its `sync` feature, so it carries these few lines instead.

use std::future::poll_fn;
use std::sync::{Mutex, PoisonError};
use std::task::{Poll, Waker};

/// Releases every waiting task once `expected` of them have arrived.
#[derive(Debug)]
pub struct StartLine {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    expected: usize,
    arrived: usize,
    waiting: Vec<Waker>,
}

impl StartLine {
    /// A start line for `expected` runners.
    pub fn new(expected: usize) -> Self {
        Self {
            state: Mutex::new(State {
                expected,
                arrived: 0,
                waiting: Vec::with_capacity(expected),
            }),
        }
    }

    /// Arrives at the line and waits until everyone has.
    pub async fn wait(&self) {
        let mut counted = false;
        poll_fn(|cx| {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if !counted {
                counted = true;
                state.arrived += 1;
            }
            if state.arrived >= state.expected {
                for waker in state.waiting.drain(..) {
                    waker.wake();
                }
                Poll::Ready(())
            } else {
                state.waiting.push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }
}
