//! Work that a request starts but does not wait for (e.g. what a "Forgot your password?" request
//! does once it has been answered, so that the answer takes as long for every account). The tasks
//! are counted, so that shutdown and tests can wait until they are done.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;

#[derive(Clone, Default)]
pub struct Background {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    running: AtomicUsize,
    idle: Notify,
}

/// Counts a task as running until it is dropped (also when the task panics).
struct Running(Arc<Inner>);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Background {
    /// Runs `work` on the runtime, counted until it ends.
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.inner.running.fetch_add(1, Ordering::SeqCst);
        let running = Running(Arc::clone(&self.inner));
        tokio::spawn(async move {
            let _running = running;
            work.await;
        });
    }

    /// Waits until no task runs.
    pub async fn idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.inner.running.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Background;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn idle_waits_for_every_task() {
        let background = Background::default();
        let done = Arc::new(AtomicBool::new(false));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let flag = Arc::clone(&done);
        background.spawn(async move {
            let _ = rx.await;
            flag.store(true, Ordering::SeqCst);
        });
        let waiting = tokio::spawn({
            let background = background.clone();
            async move { background.idle().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a task still runs");
        tx.send(()).expect("the task waits");
        waiting.await.expect("idle returns");
        assert!(done.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_panicking_task_still_ends() {
        let background = Background::default();
        background.spawn(async { panic!("boom") });
        background.idle().await;
    }
}
