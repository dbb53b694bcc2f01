//! A small pool of threads that finishes jobs handed over by one producer (the spooler deleting
//! finished tasks), with a bounded backlog.
//!
//! Waking a thread costs a system call on each side, so the producer wakes one only for a batch:
//! when `BATCH` jobs wait per awake worker. Quick jobs are then done a batch per wake-up by one
//! thread; jobs that wait on the device (the last close of a deleted file on a `discard` mount)
//! pile up and more threads join to overlap the waits. Jobs short of a batch are picked up by a
//! lingering worker: the first push after a quiet spell wakes one, and after its work it waits at
//! most `LINGER` for more before it takes what is there, for as long as pushes keep coming. A job
//! therefore never waits long, even behind a producer that is busy for minutes.
//!
//! Threads start on demand, when a wake-up is due and every started thread is busy, up to the
//! pool's size: an idle spooler that never finished a task has none (each costs its stack and
//! bookkeeping in every spooler process), and a drain starts them as its backlog grows.
//!
//! Workers run in the `SCHED_BATCH` class: a worker woken on the producer's CPU then waits for
//! its turn (or another CPU) instead of preempting the producer, which keeps the producer's
//! pipeline full. Alternating drains of 60,000 tasks: 8-10% more tasks per second on 2 vCPUs.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

/// Jobs waiting per awake worker at which the producer wakes another.
const BATCH: usize = 8;
/// How long the last awake worker waits for a batch before it takes what is there.
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

struct Queue<T> {
    jobs: VecDeque<T>,
    /// Queued plus running.
    unfinished: usize,
    /// Workers not waiting for work.
    awake: usize,
    /// Workers started so far.
    started: usize,
    /// A push happened since the lingering worker last looked.
    pushed: bool,
    /// A worker is in its timed wait.
    lingering: bool,
    /// Threads waiting on `progress` (notifying costs a system call even with nobody waiting).
    watchers: usize,
    closed: bool,
}

struct Shared<T> {
    queue: Mutex<Queue<T>>,
    /// Workers wait here for jobs.
    work: Condvar,
    /// The producer waits here for room in the backlog, and `flush` for the end of the work.
    progress: Condvar,
    backlog: usize,
    /// Most workers to start.
    max_threads: usize,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, Queue<T>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wait for a job to start or finish.
    fn watch<'a>(&self, mut q: MutexGuard<'a, Queue<T>>) -> MutexGuard<'a, Queue<T>> {
        q.watchers += 1;
        let mut q = self
            .progress
            .wait(q)
            .unwrap_or_else(PoisonError::into_inner);
        q.watchers -= 1;
        q
    }
}

/// The job every worker runs.
type Job<T> = Arc<dyn Fn(T) + Send + Sync>;

/// The pool. Dropping it finishes every queued job, then joins the threads.
pub struct Reaper<T: Send + 'static> {
    shared: Arc<Shared<T>>,
    job: Job<T>,
    name: String,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl<T: Send + 'static> std::fmt::Debug for Reaper<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reaper")
            .field("threads", &self.shared.lock().started)
            .field("unfinished", &self.unfinished())
            .finish()
    }
}

impl<T: Send + 'static> Reaper<T> {
    /// A pool of up to `threads` workers running `job` on each item, started as work comes;
    /// `push` blocks while `backlog` items wait.
    pub fn start<F>(name: &str, threads: usize, backlog: usize, job: F) -> std::io::Result<Self>
    where
        F: Fn(T) + Send + Sync + 'static,
    {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                unfinished: 0,
                awake: 0,
                started: 0,
                pushed: false,
                lingering: false,
                watchers: 0,
                closed: false,
            }),
            work: Condvar::new(),
            progress: Condvar::new(),
            backlog: backlog.max(1),
            max_threads: threads.max(1),
        });
        Ok(Reaper {
            shared,
            job: Arc::new(job),
            name: name.to_owned(),
            threads: Mutex::new(Vec::new()),
        })
    }

    /// Wake a sleeping worker, or start one when there is none or the backlog is a batch more
    /// than the started ones take (and the pool is not full). Called with the queue locked; a
    /// worker to start is counted awake at once.
    fn wake<'a>(&'a self, mut q: MutexGuard<'a, Queue<T>>) {
        let more = q.started == 0 || q.jobs.len() >= (q.started + 1) * BATCH;
        if !more || q.started >= self.shared.max_threads {
            self.shared.work.notify_one();
            return;
        }
        q.awake += 1;
        q.started += 1;
        let i = q.started;
        drop(q);
        let (mine, job) = (self.shared.clone(), self.job.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("{}-{i}", self.name))
            .spawn(move || worker(&mine, &*job));
        match spawned {
            Ok(h) => self
                .threads
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(h),
            Err(_) => {
                let mut q = self.shared.lock();
                q.awake -= 1;
                q.started -= 1;
                if q.started == 0 {
                    // No thread at all (out of threads): the producer does the work itself.
                    while let Some(item) = q.jobs.pop_front() {
                        drop(q);
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            (self.job)(item)
                        }));
                        q = self.shared.lock();
                        q.unfinished -= 1;
                    }
                    if q.watchers > 0 {
                        self.shared.progress.notify_all();
                    }
                } else {
                    self.shared.work.notify_one();
                }
            }
        }
    }

    /// Hand over a job; blocks while the backlog is full.
    pub fn push(&self, item: T) {
        let mut q = self.shared.lock();
        while q.jobs.len() >= self.shared.backlog {
            if q.started == 0 {
                self.wake(q);
                q = self.shared.lock();
                continue;
            }
            self.shared.work.notify_one();
            q = self.shared.watch(q);
        }
        q.jobs.push_back(item);
        q.unfinished += 1;
        q.pushed = true;
        if q.jobs.len() >= (q.awake + 1) * BATCH || (q.awake == 0 && !q.lingering) {
            self.wake(q);
        }
    }

    /// Threads started so far.
    pub fn threads(&self) -> usize {
        self.shared.lock().started
    }

    /// Make sure the waiting jobs get done even if no further push comes.
    pub fn kick(&self) {
        let q = self.shared.lock();
        if !q.jobs.is_empty() && q.awake == 0 {
            self.wake(q);
        }
    }

    /// Jobs queued or running.
    pub fn unfinished(&self) -> usize {
        self.shared.lock().unfinished
    }

    /// Wait until every job handed over so far is finished.
    pub fn flush(&self) {
        let mut q = self.shared.lock();
        while q.unfinished > 0 {
            if q.awake == 0 && !q.jobs.is_empty() {
                self.wake(q);
                q = self.shared.lock();
                if q.unfinished == 0 {
                    break; // done by the producer itself (no thread could start)
                }
            }
            q = self.shared.watch(q);
        }
    }
}

fn worker<T>(shared: &Shared<T>, job: &(dyn Fn(T) + Send + Sync)) {
    crate::sys::make_thread_batch();
    let mut q = shared.lock();
    loop {
        if let Some(item) = q.jobs.pop_front() {
            let watched = q.watchers > 0;
            drop(q);
            if watched {
                shared.progress.notify_all();
            }
            // A panicking job must not strand `flush`; our jobs do not panic, this is a backstop.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(item)));
            q = shared.lock();
            q.unfinished -= 1;
            if q.unfinished == 0 && q.watchers > 0 {
                shared.progress.notify_all();
            }
            continue;
        }
        if q.closed {
            return;
        }
        q.awake -= 1;
        if q.awake == 0 && !q.lingering && q.pushed {
            // The producer is busy: come back for a partial batch rather than strand it.
            q.pushed = false;
            q.lingering = true;
            q = shared
                .work
                .wait_timeout(q, LINGER)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            q.lingering = false;
        } else {
            q = shared.work.wait(q).unwrap_or_else(PoisonError::into_inner);
        }
        q.awake += 1;
    }
}

impl<T: Send + 'static> Drop for Reaper<T> {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.work.notify_all();
        let threads = std::mem::take(
            self.threads
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for t in threads {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn every_job_runs_once_and_flush_waits_for_them() {
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        let r = Reaper::start("t", 3, 4, move |n: usize| {
            if n % 7 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            d.fetch_add(n, Ordering::SeqCst);
        })
        .unwrap();
        for n in 1..=500 {
            r.push(n);
        }
        r.flush();
        assert_eq!(r.unfinished(), 0);
        assert_eq!(done.load(Ordering::SeqCst), 500 * 501 / 2);
    }

    #[test]
    fn workers_run_as_batch_threads() {
        let policy = Arc::new(AtomicUsize::new(usize::MAX));
        let p = policy.clone();
        let r = Reaper::start("t", 1, 4, move |_: ()| {
            // SAFETY: pid 0 asks about the calling thread.
            let got = unsafe { libc::sched_getscheduler(0) };
            p.store(got as usize, Ordering::SeqCst);
        })
        .unwrap();
        r.push(());
        r.flush();
        assert_eq!(policy.load(Ordering::SeqCst), libc::SCHED_BATCH as usize);
    }

    #[test]
    fn a_partial_batch_is_done_without_further_pushes() {
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        let r = Reaper::start("t", 2, 64, move |_: ()| {
            d.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(20)); // let both workers fall asleep
        r.push(());
        r.push(());
        // No kick, no flush: a lingering worker must pick them up on its own.
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while done.load(Ordering::SeqCst) < 2 && std::time::Instant::now() < end {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(done.load(Ordering::SeqCst), 2);
        assert_eq!(r.unfinished(), 0);
    }

    #[test]
    fn threads_start_only_as_work_needs_them() {
        let r = Reaper::start("t", 4, 64, move |_: ()| {
            std::thread::sleep(Duration::from_millis(2));
        })
        .unwrap();
        assert_eq!(r.threads(), 0, "an idle pool has no thread");
        r.push(());
        r.flush();
        assert_eq!(r.threads(), 1, "one job, one thread");
        for _ in 0..60 {
            r.push(());
        }
        r.flush();
        let n = r.threads();
        assert!(
            (2..=4).contains(&n),
            "a backlog starts more, up to the size: {n}"
        );
    }

    #[test]
    fn drop_finishes_the_backlog() {
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        let r = Reaper::start("t", 2, 1000, move |_: ()| {
            std::thread::sleep(Duration::from_micros(200));
            d.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        for _ in 0..100 {
            r.push(());
        }
        drop(r);
        assert_eq!(done.load(Ordering::SeqCst), 100);
    }

    #[test]
    fn push_blocks_while_the_backlog_is_full() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let g = gate.clone();
        let r = Arc::new(
            Reaper::start("t", 1, 2, move |_: ()| {
                let (m, c) = &*g;
                let mut open = m.lock().unwrap();
                while !*open {
                    open = c.wait(open).unwrap();
                }
            })
            .unwrap(),
        );
        // One running (blocked on the gate) plus two queued fill it.
        for _ in 0..3 {
            r.push(());
        }
        let pushed = Arc::new(AtomicUsize::new(0));
        let (r2, p2) = (r.clone(), pushed.clone());
        let t = std::thread::spawn(move || {
            r2.push(());
            p2.store(1, Ordering::SeqCst);
        });
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(pushed.load(Ordering::SeqCst), 0, "push must wait for room");
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        t.join().unwrap();
        r.flush();
        assert_eq!(r.unfinished(), 0);
    }
}
