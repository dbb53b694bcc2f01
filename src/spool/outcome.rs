//! The spooler's outcome policy, the same for every backend: what a handler's verdict does to
//! its task (delete, run again after the frequency, back off after a failure, dead-letter after
//! `max_attempts` failures, give back).
//!
//! The backend only stores what is decided here ([`Claimed::ok`], [`Claimed::delay`],
//! [`Claimed::bury`]). Time is an argument (`now`, unix seconds), so the policy is tested
//! without a clock.

use std::io;
use std::time::Duration;

use super::queue::{Claimed, TaskId};

/// Delays and limits of one spooler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Delay before a task that asked for a retry (returned a value other than OK) runs again.
    pub frequency: Duration,
    /// Delay after a task's first failure; doubled at each further failure.
    pub retry_delay: Duration,
    /// Upper bound of the growing delay.
    pub retry_max_delay: Duration,
    /// Failures after which a task goes to the dead letters; 0 keeps retrying for ever.
    pub max_attempts: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            frequency: Duration::from_secs(30),
            retry_delay: Duration::from_secs(1),
            retry_max_delay: Duration::from_secs(3600),
            max_attempts: 0,
        }
    }
}

/// What the handler made of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// Done: remove it.
    Ok,
    /// Run it again after the frequency (uWSGI: any result but SPOOL_OK).
    Retry,
    /// It raised: count a failure; the text (a traceback) goes with a dead letter.
    Failed(&'a str),
    /// Not run (the spooler is stopping): give it back unchanged.
    Release,
}

/// Where a task went after a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailOutcome {
    /// Kept; runs again once `at` (unix seconds) is reached.
    RetryAt { at: i64, attempts: u32 },
    /// Moved to the dead letters (for the directory backend, `dead/`); `to` is its new id.
    Dead { to: TaskId, attempts: u32 },
}

/// What [`Policy::settle`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    Done,
    RetryAt(i64),
    Failed(FailOutcome),
    Released,
}

/// What a failure leads to, before anything is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterFailure {
    RetryAt(i64),
    /// Give up; the text explains why, for the dead letter.
    Dead(String),
}

/// `now + d`, at least one second later (stores keep whole seconds: a task never runs again
/// within the second it asked to wait in).
fn later(now: i64, d: Duration) -> i64 {
    now.saturating_add(i64::try_from(d.as_secs().max(1)).unwrap_or(i64::MAX))
}

impl Policy {
    /// The back-off after the `attempts`-th failure: `retry_delay * 2^(attempts-1)`, capped.
    pub fn failure_delay(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        self.retry_delay
            .saturating_mul(1u32 << exp)
            .min(self.retry_max_delay)
    }

    /// Decide what the `attempts`-th failure (counted from 1) does; `reason` is the last
    /// failure's text.
    pub fn after_failure(&self, attempts: u32, reason: &str, now: i64) -> AfterFailure {
        if self.max_attempts > 0 && attempts >= self.max_attempts {
            return AfterFailure::Dead(format!(
                "failed {attempts} time{} (--spooler-max-attempts {}); the last failure:\n{reason}",
                if attempts == 1 { "" } else { "s" },
                self.max_attempts
            ));
        }
        AfterFailure::RetryAt(later(now, self.failure_delay(attempts)))
    }

    /// The handler asked to run the task again: keep it until `now + frequency`.
    pub fn retry<T: Claimed>(&self, task: T, now: i64) -> io::Result<i64> {
        let at = later(now, self.frequency);
        task.delay(at, None)?;
        Ok(at)
    }

    /// The handler raised: count the failure on the task, then delay it or bury it.
    pub fn failed<T: Claimed>(&self, task: T, reason: &str, now: i64) -> io::Result<FailOutcome> {
        let attempts = task.attempts().saturating_add(1);
        match self.after_failure(attempts, reason, now) {
            AfterFailure::RetryAt(at) => {
                task.delay(at, Some(attempts))?;
                Ok(FailOutcome::RetryAt { at, attempts })
            }
            AfterFailure::Dead(why) => {
                let to = task.bury(attempts, &why)?;
                Ok(FailOutcome::Dead { to, attempts })
            }
        }
    }

    /// Record `verdict` on `task`.
    pub fn settle<T: Claimed>(
        &self,
        task: T,
        verdict: Verdict<'_>,
        now: i64,
    ) -> io::Result<Settled> {
        Ok(match verdict {
            Verdict::Ok => {
                task.ok()?;
                Settled::Done
            }
            Verdict::Retry => Settled::RetryAt(self.retry(task, now)?),
            Verdict::Failed(reason) => Settled::Failed(self.failed(task, reason, now)?),
            Verdict::Release => {
                task.release();
                Settled::Released
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_the_cap_and_dead_letters_at_the_limit() {
        let p = Policy {
            retry_delay: Duration::from_secs(2),
            retry_max_delay: Duration::from_secs(10),
            max_attempts: 5,
            ..Policy::default()
        };
        let at = |n| match p.after_failure(n, "x", 1000) {
            AfterFailure::RetryAt(at) => at - 1000,
            AfterFailure::Dead(_) => -1,
        };
        assert_eq!([at(1), at(2), at(3), at(4), at(5)], [2, 4, 8, 10, -1]);
        // sub-second delays still wait a whole second
        let quick = Policy {
            retry_delay: Duration::ZERO,
            ..Policy::default()
        };
        assert_eq!(quick.after_failure(1, "x", 7), AfterFailure::RetryAt(8));
        match p.after_failure(5, "boom", 0) {
            AfterFailure::Dead(why) => {
                assert!(
                    why.starts_with("failed 5 times (--spooler-max-attempts 5)"),
                    "{why}"
                );
                assert!(why.ends_with("\nboom"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }
}

/// What [`run_once`] did.
#[derive(Debug)]
pub enum Ran {
    /// A task ran; its id, and where it went.
    Task(TaskId, Settled),
    Notice(super::queue::Notice),
    Idle,
    Woken,
}

/// One turn of a spooler over any backend: claim the next task (waiting up to `max_wait`),
/// hand it to `handle`, and record the verdict under `policy` at time `now()`. The Python
/// spooler does the same in three calls (`next_task`, the handler, an outcome method), which
/// reach the same [`Policy`] and [`Claimed`] methods.
pub fn run_once<Q, F>(
    queue: &mut Q,
    policy: &Policy,
    max_wait: std::time::Duration,
    now: impl Fn() -> i64,
    handle: F,
) -> io::Result<Ran>
where
    Q: super::queue::SpoolQueue,
    F: for<'t> FnOnce(&'t Q::Task) -> Verdict<'t>,
{
    use super::queue::Next;
    Ok(match queue.next(max_wait)? {
        Next::Task(task) => {
            let id = task.id();
            let verdict = match handle(&task) {
                Verdict::Failed(reason) => {
                    let reason = reason.to_owned();
                    return Ok(Ran::Task(
                        id,
                        Settled::Failed(policy.failed(task, &reason, now())?),
                    ));
                }
                Verdict::Ok => Verdict::Ok,
                Verdict::Retry => Verdict::Retry,
                Verdict::Release => Verdict::Release,
            };
            Ran::Task(id, policy.settle(task, verdict, now())?)
        }
        Next::Notice(n) => Ran::Notice(n),
        Next::Idle => Ran::Idle,
        Next::Woken => Ran::Woken,
    })
}
