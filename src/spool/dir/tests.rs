//! The directory backend against real directories, inotify and file locks.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

use super::order::name_hash;
use super::*;
use crate::spool::outcome::FailOutcome;
use crate::spool::packet::{self, Var};
use crate::spool::write::spool_write;

fn v(k: &str, val: &str) -> Var {
    (k.as_bytes().to_vec(), val.as_bytes().to_vec())
}

fn next_task(sp: &mut Spooler) -> Option<Task> {
    for _ in 0..50 {
        match sp.next(Duration::from_millis(20)).unwrap() {
            Next::Task(t) => return Some(t),
            Next::Notice(_) => {}
            Next::Idle | Next::Woken => return None,
        }
    }
    None
}

#[test]
fn runs_existing_then_new_tasks_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    spool_write(tmp.path(), &[v("n", "1")], b"", false).unwrap();
    spool_write(tmp.path(), &[v("n", "2")], b"", false).unwrap();
    let mut sp = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
    let t = next_task(&mut sp).unwrap();
    assert_eq!(t.vars, vec![v("n", "1")]);
    t.ok().unwrap();
    // A task written now is seen through inotify, before the next full scan.
    spool_write(tmp.path(), &[v("n", "3")], b"", false).unwrap();
    let t = next_task(&mut sp).unwrap();
    assert_eq!(t.vars, vec![v("n", "2")]);
    t.ok().unwrap();
    let t = next_task(&mut sp).unwrap();
    assert_eq!(t.vars, vec![v("n", "3")]);
    t.ok().unwrap();
    assert!(next_task(&mut sp).is_none());
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn priority_dirs_first_lowest_first() {
    let tmp = tempfile::tempdir().unwrap();
    spool_write(tmp.path(), &[v("n", "top")], b"", false).unwrap();
    spool_write(tmp.path(), &[v("priority", "10")], b"", false).unwrap();
    spool_write(tmp.path(), &[v("priority", "2")], b"", false).unwrap();
    let mut sp = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
    let order: Vec<Vec<Var>> = (0..3)
        .map(|_| {
            let t = next_task(&mut sp).unwrap();
            let vars = t.vars.clone();
            t.ok().unwrap();
            vars
        })
        .collect();
    assert_eq!(
        order,
        vec![
            vec![v("priority", "2")],
            vec![v("priority", "10")],
            vec![v("n", "top")]
        ]
    );
}

#[test]
fn new_priority_dir_is_watched() {
    let tmp = tempfile::tempdir().unwrap();
    let mut sp = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
    assert!(next_task(&mut sp).is_none());
    spool_write(tmp.path(), &[v("priority", "7")], b"", false).unwrap();
    let t = next_task(&mut sp).expect("task in a new priority dir");
    assert_eq!(t.path().parent().unwrap(), sp.root().join("7"));
}

#[test]
fn future_at_waits() {
    let tmp = tempfile::tempdir().unwrap();
    let at = (unix_now() + 3600).to_string();
    spool_write(tmp.path(), &[v("at", &at)], b"", false).unwrap();
    let mut sp = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
    assert!(next_task(&mut sp).is_none());
    assert_eq!(sp.pending(), 1);
}

#[test]
fn spoolers_with_shares_start_on_different_files_and_each_ends_with_all() {
    let tmp = tempfile::tempdir().unwrap();
    // One enqueue second for all (as a burst of writes has), so only the shares order them.
    for i in 0..40 {
        let name = format!("uwsgi_spoolfile_on_h_1_{i}_7_1700000000_{i}");
        let data = packet::encode(&[v("n", &i.to_string())], b"").unwrap();
        fs::write(tmp.path().join(name), data).unwrap();
    }
    let cfg = |index| SpoolerConfig {
        share: (index, 2),
        ..SpoolerConfig::default()
    };
    let mut a = Spooler::open(tmp.path(), cfg(0)).unwrap();
    let mut b = Spooler::open(tmp.path(), cfg(1)).unwrap();
    let (ta, tb) = (next_task(&mut a).unwrap(), next_task(&mut b).unwrap());
    // Each starts in its own share: no lock collision.
    let share = |t: &Task| name_hash(t.name()) % 2;
    assert_eq!((share(&ta), share(&tb)), (0, 1));
    assert_eq!(b.claim_attempts, 1, "b's first claim hit no lock of a's");
    ta.ok().unwrap();
    tb.ok().unwrap();
    // One spooler alone still runs everything, the other share included.
    drop(b);
    let mut n = 2;
    while let Some(t) = next_task(&mut a) {
        t.ok().unwrap();
        n += 1;
    }
    assert_eq!(n, 40);
}

#[test]
fn locked_task_is_not_claimed_twice() {
    let tmp = tempfile::tempdir().unwrap();
    spool_write(tmp.path(), &[v("n", "1")], b"", false).unwrap();
    let mut a = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
    let mut b = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
    let t = next_task(&mut a).unwrap();
    assert!(next_task(&mut b).is_none());
    t.release();
    // Releasing (closing) the file tells every watcher about it again.
    assert!(next_task(&mut b).is_some());
}

#[test]
fn tasks_another_spooler_finished_cost_this_one_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    for i in 0..50 {
        spool_write(tmp.path(), &[v("n", &i.to_string())], b"", false).unwrap();
    }
    let mut a = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
    let mut b = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
    let mut ran = 0;
    while let Some(t) = next_task(&mut a) {
        t.ok().unwrap();
        ran += 1;
    }
    a.flush();
    assert_eq!(ran, 50);
    // `a` closed each file after unlinking it: `b` hears nothing of those closes, so it
    // neither looks at nor tries to open any of the 50 names.
    assert!(next_task(&mut b).is_none());
    assert_eq!(b.claim_attempts, 0);
}

#[test]
fn a_created_empty_file_is_looked_at_not_opened() {
    // An in-place writer between its create and its lock: the spooler must not open (and
    // lock) the empty file, which would make the writer wait for it.
    use inotify::{Inotify, WatchMask};
    let tmp = tempfile::tempdir().unwrap();
    let mut sp = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
    assert!(next_task(&mut sp).is_none());
    let path = tmp.path().join("uwsgi_spoolfile_on_h_1_1_7_1700000000_1");
    let mut writer = File::create(&path).unwrap();
    let mut spy = Inotify::init().unwrap();
    spy.watches()
        .add(&path, WatchMask::OPEN | WatchMask::CLOSE)
        .unwrap();
    assert!(next_task(&mut sp).is_none());
    let mut buf = [0u8; 1024];
    let opened = match spy.read_events(&mut buf) {
        Ok(evs) => evs.count(),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(opened, 0, "the spooler opened the empty file");
    // The writer fills and closes it: now it runs.
    std::io::Write::write_all(&mut writer, &packet::encode(&[v("n", "1")], b"").unwrap()).unwrap();
    drop(writer);
    let t = next_task(&mut sp).expect("the task after the writer's close");
    assert_eq!(t.vars, vec![v("n", "1")]);
    t.ok().unwrap();
}

#[test]
fn rescan_soon_finds_what_no_event_announced() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = SpoolerConfig {
        frequency: Duration::from_secs(3600),
        ..SpoolerConfig::default()
    };
    let mut sp = Spooler::open(tmp.path(), cfg).unwrap();
    assert!(next_task(&mut sp).is_none());
    // Named while another process holds a read lock on it: the claim fails, and the
    // read-only close that drops the lock sends no event the spooler watches.
    let incoming = tmp.path().join("incoming");
    fs::write(&incoming, packet::encode(&[v("n", "1")], b"").unwrap()).unwrap();
    let held = File::open(&incoming).unwrap();
    let fl = libc::flock {
        l_type: libc::F_RDLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    // An OFD lock: a POSIX one would go with the spooler's own close of the file (same
    // process), which another process's lock does not.
    // SAFETY: a valid fd and a live flock struct.
    assert_eq!(
        unsafe { libc::fcntl(held.as_raw_fd(), libc::F_OFD_SETLK, &fl) },
        0
    );
    fs::rename(
        &incoming,
        tmp.path().join("uwsgi_spoolfile_on_h_1_1_7_1700000000_1"),
    )
    .unwrap();
    assert!(next_task(&mut sp).is_none());
    drop(held);
    assert!(next_task(&mut sp).is_none());
    sp.rescan_soon();
    let t = next_task(&mut sp).expect("found by the rescan");
    assert_eq!(t.vars, vec![v("n", "1")]);
    t.ok().unwrap();
}

/// uWSGI's writer: create the final name, (lock,) write, close; stopped after the create.
/// The spoolers find it by an event (created while they run) or by their first scan.
fn stalled_uwsgi_writer(created_before_spoolers: bool) {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let name = "uwsgi_spoolfile_on_h_1_1_7_1700000000_1";
    let create = || File::create(tmp.path().join(name)).unwrap();
    let early = created_before_spoolers.then(create);
    let mut a = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
    let mut b = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
    let mut w = early.unwrap_or_else(create);
    for _ in 0..20 {
        assert!(matches!(
            a.next(Duration::from_millis(5)).unwrap(),
            Next::Idle
        ));
        assert!(matches!(
            b.next(Duration::from_millis(5)).unwrap(),
            Next::Idle
        ));
    }
    // Looks at the incomplete file must not wake us or the other spooler again and again.
    assert!(a.claim_attempts <= 3, "{} attempts", a.claim_attempts);
    assert!(b.claim_attempts <= 3, "{} attempts", b.claim_attempts);
    w.write_all(&packet::encode(&[v("n", "1")], b"").unwrap())
        .unwrap();
    drop(w); // the writer's close announces the complete file
    let t = next_task(&mut a)
        .or_else(|| next_task(&mut b))
        .expect("runs once complete");
    assert_eq!(t.vars, vec![v("n", "1")]);
    t.ok().unwrap();
}

#[test]
fn a_file_being_written_uwsgi_style_is_not_retried_in_a_loop_seen_by_event() {
    stalled_uwsgi_writer(false);
}

#[test]
fn a_file_being_written_uwsgi_style_is_not_retried_in_a_loop_seen_by_scan() {
    stalled_uwsgi_writer(true);
}

#[test]
fn a_file_held_elsewhere_is_not_retried_in_a_loop() {
    let tmp = tempfile::tempdir().unwrap();
    spool_write(tmp.path(), &[v("n", "1")], b"", false).unwrap();
    let mut a = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
    let mut b = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
    let held = next_task(&mut a).unwrap();
    for _ in 0..20 {
        assert!(matches!(
            b.next(Duration::from_millis(10)).unwrap(),
            Next::Idle
        ));
        assert!(matches!(
            a.next(Duration::from_millis(1)).unwrap(),
            Next::Idle
        ));
    }
    assert!(b.claim_attempts <= 3, "{} attempts", b.claim_attempts);
    assert!(a.claim_attempts <= 2, "{} attempts", a.claim_attempts);
    held.ok().unwrap();
}

#[test]
fn failure_delays_and_dead_letters() {
    let tmp = tempfile::tempdir().unwrap();
    spool_write(tmp.path(), &[v("n", "1")], b"", false).unwrap();
    let cfg = SpoolerConfig {
        max_attempts: 2,
        ..SpoolerConfig::default()
    };
    let mut sp = Spooler::open(tmp.path(), cfg.clone()).unwrap();
    let t = next_task(&mut sp).unwrap();
    let path = t.path().to_path_buf();
    match cfg.policy().failed(t, "boom", unix_now()).unwrap() {
        FailOutcome::RetryAt { at, attempts } => {
            assert_eq!(attempts, 1);
            assert!(at > unix_now() - 1);
            assert_eq!(fs::metadata(&path).unwrap().mtime(), at);
        }
        other => panic!("{other:?}"),
    }
    // Make it due again, as the clock would.
    let f = File::open(&path).unwrap();
    sys::set_times(&f, unix_now() - 1).unwrap();
    drop(f);
    let mut sp = Spooler::open(tmp.path(), cfg.clone()).unwrap();
    let t = next_task(&mut sp).unwrap();
    assert_eq!(t.attempts(), 1, "attempts are kept on the file");
    match cfg.policy().failed(t, "boom", unix_now()).unwrap() {
        FailOutcome::Dead { to, attempts } => {
            let to = id_path(&to).to_path_buf();
            assert_eq!(attempts, 2);
            assert!(to.starts_with(tmp.path().canonicalize().unwrap().join(DEAD_DIR)));
            assert!(to.exists());
            let mut reason = to.clone().into_os_string();
            reason.push(".reason");
            let reason = fs::read_to_string(reason).unwrap();
            assert!(reason.contains("failed 2 times"), "{reason}");
            assert!(reason.ends_with("boom\n"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_files_are_quarantined() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("uwsgi_spoolfile_on_h_1_1_1_1_1");
    fs::write(&bad, b"\x11\x04\x00\x00\x00\x00\x00\x00").unwrap();
    let mut sp = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
    match sp.next(Duration::from_millis(50)).unwrap() {
        Next::Notice(Notice::Quarantined { to, reason, .. }) => {
            assert!(reason.contains("zero-length key"), "{reason}");
            assert!(to.exists());
        }
        other => panic!("{other:?}"),
    }
    assert!(!bad.exists());
}

#[test]
fn a_directory_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    for mode in [0o777, 0o1777, 0o703] {
        let tmp = tempfile::tempdir().unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode)).unwrap();
        let Err(err) = Spooler::open(tmp.path(), SpoolerConfig::default()) else {
            panic!("mode {mode:o} accepted");
        };
        let msg = err.to_string();
        assert!(msg.contains("chmod o-w"), "{msg}");
        assert!(msg.contains(&format!("{mode:04o}")), "{msg}");
    }
    // group-writable is allowed (a group shared with the web server); others' files are
    // then quarantined unless trusted
    let tmp = tempfile::tempdir().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o770)).unwrap();
    assert!(Spooler::open(tmp.path(), SpoolerConfig::default()).is_ok());
}

#[test]
fn a_task_file_of_another_user_is_quarantined_unless_trusted() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return; // chown needs root (the project's CI runs as root)
    }
    let tmp = tempfile::tempdir().unwrap();
    let theirs = spool_write(tmp.path(), &[v("n", "theirs")], b"", false).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    let ours = spool_write(tmp.path(), &[v("n", "ours")], b"", false).unwrap();
    let mut sp = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
    let mut quarantined = None;
    let mut ran = Vec::new();
    for _ in 0..20 {
        match sp.next(Duration::from_millis(20)).unwrap() {
            Next::Task(t) => {
                ran.push(t.vars.clone());
                t.ok().unwrap();
            }
            Next::Notice(Notice::Quarantined { to, reason, .. }) => {
                quarantined = Some((to, reason))
            }
            _ => {}
        }
    }
    sp.flush();
    assert_eq!(ran, vec![vec![v("n", "ours")]]);
    assert!(!ours.exists());
    let (to, reason) = quarantined.expect("the other user's file is quarantined");
    assert!(reason.contains("uid 65534"), "{reason}");
    assert!(reason.contains("--spooler-trusted-user 65534"), "{reason}");
    let mut rp = to.into_os_string();
    rp.push(".reason");
    assert!(fs::read_to_string(rp).unwrap().contains("uid 65534"));
    // trusted: it runs
    let again = spool_write(tmp.path(), &[v("n", "trusted")], b"", false).unwrap();
    std::os::unix::fs::chown(&again, Some(65534), Some(65534)).unwrap();
    let cfg = SpoolerConfig {
        trusted_uids: vec![65534],
        ..SpoolerConfig::default()
    };
    let mut sp = Spooler::open(tmp.path(), cfg).unwrap();
    let t = next_task(&mut sp).expect("a trusted user's task runs");
    assert_eq!(t.vars, vec![v("n", "trusted")]);
    t.ok().unwrap();
}

#[test]
fn waker_interrupts_wait() {
    let tmp = tempfile::tempdir().unwrap();
    let mut sp = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
    let w = sp.waker();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        w.notify();
    });
    let start = Instant::now();
    assert!(matches!(
        sp.next(Duration::from_secs(20)).unwrap(),
        Next::Woken
    ));
    assert!(start.elapsed() < Duration::from_secs(10));
    t.join().unwrap();
}

#[test]
fn a_byte_on_the_wakeup_fd_interrupts_the_wait_and_is_consumed() {
    use std::io::Write;
    use std::os::fd::{AsRawFd, FromRawFd};
    let tmp = tempfile::tempdir().unwrap();
    let mut sp = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
    let mut fds = [0; 2];
    // SAFETY: a two-int array for pipe2 to fill.
    assert_eq!(
        unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) },
        0
    );
    // SAFETY: both fds were just created and are owned here alone.
    let (r, mut w) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    sp.watch_wakeup_fd(r.as_raw_fd());
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        w.write_all(&[15, 2]).unwrap(); // what Python's signal handler writes: signal numbers
        w
    });
    let start = Instant::now();
    assert!(matches!(
        sp.next(Duration::from_secs(20)).unwrap(),
        Next::Woken
    ));
    assert!(start.elapsed() < Duration::from_secs(10));
    let _w = t.join().unwrap();
    // Emptied: the next wait sleeps its whole time instead of spinning on a readable pipe.
    assert!(matches!(
        sp.next(Duration::from_millis(30)).unwrap(),
        Next::Idle
    ));
}
