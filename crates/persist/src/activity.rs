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

use crate::writer::Core;

/// Counts the runtime's parked worker threads (see the module docs).
#[derive(Debug)]
pub struct RuntimeActivity {
    workers: usize,
    parked: AtomicUsize,
    core: OnceLock<Weak<Core>>,
}

impl RuntimeActivity {
    /// A gauge for a runtime with `workers` worker threads, all busy.
    pub fn new(workers: usize) -> Arc<RuntimeActivity> {
        Arc::new(RuntimeActivity {
            workers: workers.max(1),
            parked: AtomicUsize::new(0),
            core: OnceLock::new(),
        })
    }

    /// Call from the runtime's `on_thread_park` hook: a worker ran out of
    /// work.
    pub fn parked(&self) {
        let n = self.parked.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= self.workers {
            if let Some(core) = self.core.get().and_then(Weak::upgrade) {
                core.runtime_went_idle();
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

    pub(crate) fn attach(&self, core: &Arc<Core>) {
        let _ = self.core.set(Arc::downgrade(core));
    }
}
