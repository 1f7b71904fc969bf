//! How busy the server's async runtime is: the signal the log thread uses
//! under `appendfsync always` to decide when a group commit should start.
//!
//! A commit carries every connection waiting when it starts; those that
//! register a moment later wait for the whole next commit. The best moment
//! to start is when the runtime has run out of work: then every request
//! that has arrived is executed and waiting, and nothing more will join
//! until new input arrives from the network. The server feeds this gauge
//! from its runtime's park and unpark hooks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

/// What the gauge wakes when the last worker parks: the log writer, which
/// starts a waiting group commit then. A trait, so the gauge does not
/// depend on the writer that depends on it.
pub(crate) trait IdleListener: Send + Sync {
    /// The runtime ran out of work.
    fn runtime_went_idle(&self);
}

/// Counts the runtime's parked worker threads (see the module docs).
#[derive(Debug)]
pub struct RuntimeActivity {
    workers: usize,
    parked: AtomicUsize,
    listener: OnceLock<Weak<dyn IdleListener>>,
}

impl RuntimeActivity {
    /// A gauge for a runtime with `workers` worker threads, all busy.
    pub fn new(workers: usize) -> Arc<RuntimeActivity> {
        Arc::new(RuntimeActivity {
            workers: workers.max(1),
            parked: AtomicUsize::new(0),
            listener: OnceLock::new(),
        })
    }

    /// Call from the runtime's `on_thread_park` hook: a worker ran out of
    /// work.
    pub fn parked(&self) {
        let n = self.parked.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= self.workers {
            if let Some(listener) = self.listener.get().and_then(Weak::upgrade) {
                listener.runtime_went_idle();
            }
        }
    }

    /// Call from the runtime's `on_thread_unpark` hook.
    pub fn unparked(&self) {
        self.parked.fetch_sub(1, Ordering::SeqCst);
    }

    /// True while every worker is parked.
    pub(crate) fn is_idle(&self) -> bool {
        self.parked.load(Ordering::SeqCst) >= self.workers
    }

    /// Makes `listener` the one woken when every worker has parked.
    pub(crate) fn attach(&self, listener: Weak<dyn IdleListener>) {
        let _ = self.listener.set(listener);
    }
}
