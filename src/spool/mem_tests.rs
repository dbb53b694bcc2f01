//! The seam is real: a second, in-memory implementation of [`SpoolQueue`] and [`Claimed`]
//! (test-only, not a backend for users), driven by the spooler's claim/outcome logic
//! ([`run_once`], [`Policy`]) exactly as the directory backend is. Its clock is a number the
//! test moves, so back-off and dead letters are checked without sleeping.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::outcome::{FailOutcome, Policy, Ran, Settled, Verdict, run_once};
use super::packet::{self, Var};
use super::queue::{Claimed, Enqueue, Job, Next, SpoolQueue, TaskId};
use crate::sys::EventFd;

#[derive(Debug)]
struct Entry {
    priority: u64,
    at: i64,
    attempts: u32,
    vars: Vec<Var>,
    body: Vec<u8>,
}

#[derive(Debug, Default)]
struct Store {
    seq: u64,
    tasks: BTreeMap<u64, Entry>,
    held: HashSet<u64>,
    /// (id, attempts, reason)
    dead: Vec<(u64, u32, String)>,
}

/// A queue in memory: priority (lower first, none last), then enqueue order; a task whose
/// time is ahead of the clock waits.
struct MemQueue {
    store: Rc<RefCell<Store>>,
    clock: Rc<Cell<i64>>,
    waker: Arc<EventFd>,
}

impl MemQueue {
    fn new(clock: &Rc<Cell<i64>>) -> Self {
        MemQueue {
            store: Rc::default(),
            clock: clock.clone(),
            waker: Arc::new(EventFd::new().unwrap()),
        }
    }
}

fn mem_id(n: u64) -> TaskId {
    TaskId::from_bytes(format!("mem:{n}").into_bytes())
}

impl Enqueue for MemQueue {
    type Error = io::Error;

    fn enqueue(&self, job: &Job<'_>) -> io::Result<TaskId> {
        let p = packet::decode(job.packet)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let num = |v: Option<&[u8]>| {
            v.and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        let mut st = self.store.borrow_mut();
        st.seq += 1;
        let n = st.seq;
        let entry = Entry {
            priority: num(job.priority).map_or(u64::MAX, |p| p as u64),
            at: num(job.at).unwrap_or(i64::MIN),
            attempts: 0,
            vars: p.vars,
            body: p.body,
        };
        st.tasks.insert(n, entry);
        Ok(mem_id(n))
    }
}

impl SpoolQueue for MemQueue {
    type Task = MemTask;

    fn next(&mut self, _max_wait: Duration) -> io::Result<Next<MemTask>> {
        if self.waker.drain() {
            return Ok(Next::Woken);
        }
        let now = self.clock.get();
        let mut st = self.store.borrow_mut();
        let pick = st
            .tasks
            .iter()
            .filter(|(n, e)| !st.held.contains(n) && e.at <= now)
            .min_by_key(|(n, e)| (e.priority, **n))
            .map(|(n, e)| (*n, e.vars.clone(), e.body.clone(), e.attempts));
        let Some((n, vars, body, attempts)) = pick else {
            // A real backend would wait here; the test's clock only moves when it says so.
            return Ok(Next::Idle);
        };
        st.held.insert(n);
        Ok(Next::Task(MemTask {
            n,
            name: format!("task-{n}").into_bytes(),
            vars,
            body,
            attempts,
            store: self.store.clone(),
        }))
    }

    fn waker(&self) -> Arc<EventFd> {
        self.waker.clone()
    }

    fn flush(&self) {}

    fn pending(&self) -> usize {
        let st = self.store.borrow();
        st.tasks.len() - st.held.len()
    }
}

/// A claimed in-memory task; dropping it (or [`Claimed::release`]) lets it go unchanged.
struct MemTask {
    n: u64,
    name: Vec<u8>,
    vars: Vec<Var>,
    body: Vec<u8>,
    attempts: u32,
    store: Rc<RefCell<Store>>,
}

impl Drop for MemTask {
    fn drop(&mut self) {
        self.store.borrow_mut().held.remove(&self.n);
    }
}

impl Claimed for MemTask {
    fn id(&self) -> TaskId {
        mem_id(self.n)
    }

    fn name(&self) -> &[u8] {
        &self.name
    }

    fn vars(&self) -> &[Var] {
        &self.vars
    }

    fn body(&self) -> &[u8] {
        &self.body
    }

    fn attempts(&self) -> u32 {
        self.attempts
    }

    fn workdir(&self) -> Option<PathBuf> {
        None
    }

    fn ok(self) -> io::Result<()> {
        self.store.borrow_mut().tasks.remove(&self.n);
        Ok(())
    }

    fn delay(self, at: i64, attempts: Option<u32>) -> io::Result<()> {
        let mut st = self.store.borrow_mut();
        let e = st.tasks.get_mut(&self.n).expect("a held task exists");
        e.at = at;
        if let Some(a) = attempts {
            e.attempts = a;
        }
        Ok(())
    }

    fn bury(self, attempts: u32, reason: &str) -> io::Result<TaskId> {
        let mut st = self.store.borrow_mut();
        st.tasks.remove(&self.n);
        st.dead.push((self.n, attempts, reason.to_owned()));
        Ok(TaskId::from_bytes(format!("dead:{}", self.n).into_bytes()))
    }
}

fn job(q: &MemQueue, vars: &[(&str, &str)]) -> TaskId {
    let vars: Vec<Var> = vars
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    let pkt = packet::encode(&vars, b"").unwrap();
    q.enqueue(&Job {
        packet: &pkt,
        priority: packet::lookup(&vars, b"priority"),
        at: packet::lookup(&vars, b"at"),
    })
    .unwrap()
}

fn turn(q: &mut MemQueue, p: &Policy, clock: &Rc<Cell<i64>>, v: Verdict<'static>) -> Ran {
    let c = clock.clone();
    run_once(q, p, Duration::ZERO, move || c.get(), |_| v).unwrap()
}

#[test]
fn the_spooler_logic_runs_on_a_second_backend() {
    let clock = Rc::new(Cell::new(1_000));
    let mut q = MemQueue::new(&clock);
    let policy = Policy {
        frequency: Duration::from_secs(30),
        retry_delay: Duration::from_secs(2),
        retry_max_delay: Duration::from_secs(3),
        max_attempts: 3,
    };
    let plain = job(&q, &[("n", "plain")]);
    let urgent = job(&q, &[("n", "urgent"), ("priority", "1")]);
    let later = job(&q, &[("n", "later"), ("at", "1100")]);
    assert_eq!(q.pending(), 3);

    // Priority first; OK removes it.
    match turn(&mut q, &policy, &clock, Verdict::Ok) {
        Ran::Task(id, Settled::Done) => assert_eq!(id, urgent),
        other => panic!("{other:?}"),
    }
    // Release gives it back unchanged: it is the next one claimed, with no attempt counted.
    match turn(&mut q, &policy, &clock, Verdict::Release) {
        Ran::Task(id, Settled::Released) => assert_eq!(id, plain),
        other => panic!("{other:?}"),
    }
    // A failure backs off retry_delay (attempt 1) ...
    match turn(&mut q, &policy, &clock, Verdict::Failed("boom 1")) {
        Ran::Task(id, Settled::Failed(FailOutcome::RetryAt { at, attempts })) => {
            assert_eq!((id, at, attempts), (plain.clone(), 1_002, 1));
        }
        other => panic!("{other:?}"),
    }
    // ... and is not claimed before its time; `later` is not due either.
    assert!(matches!(
        turn(&mut q, &policy, &clock, Verdict::Ok),
        Ran::Idle
    ));
    clock.set(1_002);
    match run_once(
        &mut q,
        &policy,
        Duration::ZERO,
        || 1_002,
        |t| {
            assert_eq!(t.attempts(), 1, "the count travels with the task");
            Verdict::Failed("boom 2")
        },
    )
    .unwrap()
    {
        // doubled, then capped at retry_max_delay
        Ran::Task(_, Settled::Failed(FailOutcome::RetryAt { at, attempts })) => {
            assert_eq!((at, attempts), (1_005, 2));
        }
        other => panic!("{other:?}"),
    }
    clock.set(1_005);
    // The third failure reaches max_attempts: dead letter, with the last failure's text.
    match turn(&mut q, &policy, &clock, Verdict::Failed("boom 3")) {
        Ran::Task(id, Settled::Failed(FailOutcome::Dead { attempts, to })) => {
            assert_eq!((id, attempts), (plain, 3));
            assert_eq!(to.as_bytes(), b"dead:1");
        }
        other => panic!("{other:?}"),
    }
    {
        let st = q.store.borrow();
        let (_, attempts, reason) = &st.dead[0];
        assert_eq!(*attempts, 3);
        assert!(
            reason.starts_with("failed 3 times (--spooler-max-attempts 3)"),
            "{reason}"
        );
        assert!(reason.ends_with("boom 3"), "{reason}");
    }
    // `at` waits; a non-OK result runs again after the frequency.
    assert!(matches!(
        turn(&mut q, &policy, &clock, Verdict::Ok),
        Ran::Idle
    ));
    clock.set(1_100);
    match turn(&mut q, &policy, &clock, Verdict::Retry) {
        Ran::Task(id, Settled::RetryAt(at)) => assert_eq!((id, at), (later.clone(), 1_130)),
        other => panic!("{other:?}"),
    }
    clock.set(1_130);
    match turn(&mut q, &policy, &clock, Verdict::Ok) {
        Ran::Task(id, Settled::Done) => assert_eq!(id, later),
        other => panic!("{other:?}"),
    }
    assert_eq!(q.pending(), 0);
    assert!(matches!(
        turn(&mut q, &policy, &clock, Verdict::Ok),
        Ran::Idle
    ));
}

#[test]
fn a_held_task_is_not_handed_out_twice_and_dropping_it_releases_it() {
    let clock = Rc::new(Cell::new(0));
    let mut q = MemQueue::new(&clock);
    let only = job(&q, &[("n", "1")]);
    let Next::Task(held) = q.next(Duration::ZERO).unwrap() else {
        panic!("claimable")
    };
    assert!(matches!(q.next(Duration::ZERO).unwrap(), Next::Idle));
    drop(held);
    let Next::Task(again) = q.next(Duration::ZERO).unwrap() else {
        panic!("released by the drop")
    };
    assert_eq!(again.id(), only);
    // The waker interrupts a wait on this backend too.
    q.waker().notify();
    assert!(matches!(q.next(Duration::ZERO).unwrap(), Next::Woken));
}

#[test]
fn the_directory_backend_takes_the_same_turns() {
    // The same generic turn over the directory backend (no clock games: it reads real time).
    use super::dir::{Spooler, SpoolerConfig};
    let tmp = tempfile::tempdir().unwrap();
    let mut sp = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
    let id = {
        let v: Vec<Var> = vec![(b"n".to_vec(), b"1".to_vec())];
        let pkt = packet::encode(&v, b"").unwrap();
        sp.enqueue(&Job {
            packet: &pkt,
            priority: None,
            at: None,
        })
        .unwrap()
    };
    assert!(super::dir::id_path(&id).starts_with(sp.root()));
    let policy = sp.config().policy();
    let mut ran = None;
    for _ in 0..50 {
        match run_once(
            &mut sp,
            &policy,
            Duration::from_millis(20),
            || 0,
            |t| {
                assert_eq!(t.vars(), &[(b"n".to_vec(), b"1".to_vec())]);
                Verdict::Ok
            },
        )
        .unwrap()
        {
            Ran::Task(got, settled) => {
                ran = Some((got, settled));
                break;
            }
            Ran::Notice(_) | Ran::Idle | Ran::Woken => {}
        }
    }
    assert_eq!(ran, Some((id.clone(), Settled::Done)));
    SpoolQueue::flush(&sp);
    assert!(!super::dir::id_path(&id).exists());
}
