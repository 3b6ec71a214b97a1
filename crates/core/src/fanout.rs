//! Bounded fan-out of blocking Nova calls over scoped threads: a counting semaphore
//! ([`Permits`]), [`parallel`] (a work queue served by a few threads, each call under a permit)
//! and [`join`]. The engine and the policy use them to issue independent calls at once.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, PoisonError};
use std::thread::ScopedJoinHandle;
use std::time::Duration;

/// A counting semaphore.
#[derive(Debug)]
pub(crate) struct Permits {
    free: Mutex<usize>,
    cv: Condvar,
    size: usize,
}

impl Permits {
    pub(crate) fn new(size: usize) -> Self {
        let size = size.max(1);
        Permits { free: Mutex::new(size), cv: Condvar::new(), size }
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Runs `f` under a permit, waiting for one if none is free.
    pub(crate) fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        {
            let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
            while *free == 0 {
                free = self.cv.wait(free).unwrap_or_else(PoisonError::into_inner);
            }
            *free -= 1;
        }
        // Released on unwind too, so a panicking call cannot leak a permit.
        struct Release<'a>(&'a Permits);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                *self.0.free.lock().unwrap_or_else(PoisonError::into_inner) += 1;
                self.0.cv.notify_one();
            }
        }
        let _r = Release(self);
        f()
    }
}

/// Runs `f` over `items` with at most `workers` threads (each call under a permit of `permits`
/// when given); results in input order.
pub(crate) fn parallel<T: Send, R: Send>(
    items: Vec<T>,
    workers: usize,
    permits: Option<&Permits>,
    f: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    let n = items.len();
    if n == 0 {
        return Vec::new();
    }
    let call = |item: T| match permits {
        Some(p) => p.run(|| f(item)),
        None => f(item),
    };
    if n == 1 {
        return items.into_iter().map(call).collect();
    }
    let queue: Mutex<VecDeque<(usize, T)>> = Mutex::new(items.into_iter().enumerate().collect());
    let out: Mutex<Vec<Option<R>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|sc| {
        for _ in 0..workers.clamp(1, n) {
            sc.spawn(|| {
                loop {
                    let next = queue.lock().unwrap_or_else(PoisonError::into_inner).pop_front();
                    let Some((i, item)) = next else { break };
                    let r = call(item);
                    out.lock().unwrap_or_else(PoisonError::into_inner)[i] = Some(r);
                }
            });
        }
    });
    out.into_inner().unwrap_or_else(PoisonError::into_inner).into_iter().flatten().collect()
}

/// The result of a scoped thread; its panic, if any, continues in the caller.
pub(crate) fn join<T>(h: ScopedJoinHandle<'_, T>) -> T {
    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// A one-way "stop" flag that a sleeping thread notices at once.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    set: Mutex<bool>,
    cv: Condvar,
}

impl Signal {
    pub(crate) fn set(&self) {
        *self.set.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.cv.notify_all();
    }

    /// Sleeps up to `d`; true when the signal is (or becomes) set.
    pub(crate) fn wait(&self, d: Duration) -> bool {
        let guard = self.set.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = self.cv.wait_timeout_while(guard, d, |set| !*set).unwrap_or_else(PoisonError::into_inner);
        *guard
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn parallel_keeps_input_order_and_the_bound() {
        let permits = Permits::new(3);
        let now = AtomicUsize::new(0);
        let max = AtomicUsize::new(0);
        let out = parallel((0..40).collect(), 8, Some(&permits), |i: usize| {
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            max.fetch_max(n, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(1));
            now.fetch_sub(1, Ordering::SeqCst);
            i * 2
        });
        assert_eq!(out, (0..40).map(|i| i * 2).collect::<Vec<_>>());
        assert!(max.load(Ordering::SeqCst) <= 3);
        assert_eq!(parallel(Vec::<u8>::new(), 4, None, |i| i), Vec::<u8>::new());
        assert_eq!(parallel(vec![7], 4, None, |i| i + 1), vec![8]);
    }

    #[test]
    fn a_signal_ends_the_wait_at_once() {
        let s = Signal::default();
        assert!(!s.wait(Duration::from_millis(1)));
        std::thread::scope(|sc| {
            sc.spawn(|| {
                std::thread::sleep(Duration::from_millis(5));
                s.set();
            });
            assert!(s.wait(Duration::from_secs(60)));
        });
        assert!(s.wait(Duration::ZERO));
    }
}
