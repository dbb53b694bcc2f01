use super::*;
use std::collections::HashMap;
use std::io::Read;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mq-{tag}-{}-{}", std::process::id(), sys_nanos()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn sys_nanos() -> u64 {
    crate::sys::monotonic_ns()
}

fn farms() -> Vec<(String, Vec<u32>)> {
    vec![
        ("pair".to_owned(), vec![1, 2]),
        ("solo".to_owned(), vec![3]),
    ]
}

#[test]
fn send_take_ack_in_order_per_destination() {
    let d = tmpdir("basic");
    let control = d.join("control");
    let (q, waiting) = MuleQueues::create(&control, 3, &farms(), 1000, 0).unwrap();
    assert_eq!(waiting, 0);
    let me = std::process::id();
    q.try_send(&Dest::Mule(2), b"to two").unwrap().unwrap();
    q.try_send(&Dest::Any, b"any").unwrap().unwrap();
    q.try_send(&q.dest_farm("pair").unwrap(), b"farm")
        .unwrap()
        .unwrap();
    assert_eq!(q.pending(), 3);
    // mule 1: not its own message; its farm first, then the any queue
    let (t, m) = q.try_take(1, me, true, true).unwrap().unwrap();
    assert_eq!(m, b"farm");
    q.ack(t, me).unwrap();
    let (t, m) = q.try_take(1, me, true, true).unwrap().unwrap();
    assert_eq!(m, b"any");
    q.ack(t, me).unwrap();
    assert!(q.try_take(1, me, true, true).unwrap().is_none());
    assert!(q.try_take(3, me, true, true).unwrap().is_none());
    let (t, m) = q.try_take(2, me, true, false).unwrap().unwrap();
    assert_eq!(m, b"to two");
    q.ack(t, me).unwrap();
    assert_eq!(q.pending(), 0);
    // an attached process sees the same file
    let other = MuleQueues::open(&control).unwrap();
    assert_eq!(other.farms(), farms());
    assert_eq!(other.mules(), 3);
    assert!(matches!(
        other.dest_farm("nope"),
        Err(MuleError::NoSuchFarm(_))
    ));
    assert!(matches!(
        other.dest_mule(4),
        Err(MuleError::NoSuchMule(4, 3))
    ));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn oversized_and_full_are_refused_and_the_ring_wraps() {
    let d = tmpdir("full");
    let control = d.join("control");
    let (q, _) = MuleQueues::create(&control, 1, &[], 100, 4096).unwrap();
    let err = q.try_send(&Dest::Any, &[0u8; 101]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "mule message of 101 bytes is larger than the --mule-msg-size limit of 100 bytes"
    );
    let me = std::process::id();
    // 4096-byte ring, 16 + 96 = 112 bytes a message: 36 fit
    let mut sent = 0;
    while q.try_send(&Dest::Any, &[7u8; 90]).unwrap().is_some() {
        sent += 1;
    }
    assert_eq!(sent, 36);
    // drain and refill many times around the ring, one message always left behind (an empty
    // queue would start again at the front): every message comes back whole, in order
    let mut next_in = 0u32;
    let mut next_out = 0u32;
    for _ in 0..sent {
        let (t, _) = q.try_take(1, me, true, true).unwrap().unwrap();
        q.ack(t, me).unwrap();
    }
    let mut wraps = 0;
    let mut last_at = 0;
    assert!(
        q.try_send(&Dest::Mule(1), &next_in.to_le_bytes())
            .unwrap()
            .is_some()
    );
    next_in += 1;
    for round in 0..200 {
        let n = 1 + round % 7;
        for _ in 0..n {
            let body = next_in.to_le_bytes().repeat(1 + (next_in % 20) as usize);
            assert!(q.try_send(&Dest::Mule(1), &body).unwrap().is_some());
            next_in += 1;
        }
        for _ in 0..n {
            let (t, m) = q.try_take(1, me, true, true).unwrap().unwrap();
            assert_eq!(
                m,
                next_out.to_le_bytes().repeat(1 + (next_out % 20) as usize)
            );
            if t.at < last_at {
                wraps += 1;
            }
            last_at = t.at;
            next_out += 1;
            q.ack(t, me).unwrap();
        }
    }
    assert!(wraps >= 10, "the ring went round {wraps} times");
    assert_eq!(q.pending(), 1);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn an_emptied_queue_starts_again_at_the_front_of_its_ring() {
    let d = tmpdir("front");
    let control = d.join("control");
    let (q, _) = MuleQueues::create(&control, 1, &[], 1000, 1 << 20).unwrap();
    let me = std::process::id();
    // one at a time (a mule that keeps up): every message at the front, whatever its size
    for i in 0..2000u32 {
        let body = vec![i as u8; 1 + (i as usize * 37) % 1000];
        assert!(q.try_send(&Dest::Mule(1), &body).unwrap().is_some());
        let (t, m) = q.try_take(1, me, true, true).unwrap().unwrap();
        assert_eq!(m, body);
        assert_eq!(t.at, 0, "message {i}");
        q.ack(t, me).unwrap();
    }
    // a backlog walks on from the front, and the next emptied queue starts there again
    for i in 0..3u32 {
        assert!(
            q.try_send(&Dest::Mule(1), &[i as u8; 100])
                .unwrap()
                .is_some()
        );
    }
    let ats: Vec<u64> = (0..3)
        .map(|_| {
            let (t, _) = q.try_take(1, me, true, true).unwrap().unwrap();
            q.ack(t, me).unwrap();
            t.at
        })
        .collect();
    assert_eq!(ats, [0, 128, 256]);
    assert!(q.try_send(&Dest::Mule(1), &[9; 100]).unwrap().is_some());
    let (t, _) = q.try_take(1, me, true, true).unwrap().unwrap();
    assert_eq!(t.at, 0);
    q.ack(t, me).unwrap();
    assert_eq!(q.pending(), 0);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_dead_mules_claim_is_requeued_and_acks_out_of_order_free_space() {
    let d = tmpdir("reclaim");
    let control = d.join("control");
    let (q, _) = MuleQueues::create(&control, 2, &[], 64, 0).unwrap();
    for i in 0..3u8 {
        q.try_send(&Dest::Any, &[i]).unwrap().unwrap();
    }
    let (ta, a) = q.try_take(1, 111, true, true).unwrap().unwrap();
    let (tb, b) = q.try_take(2, 222, true, true).unwrap().unwrap();
    assert_eq!((a, b), (vec![0], vec![1]));
    q.ack(tb, 222).unwrap();
    // a wrong pid's ack changes nothing
    q.ack(ta, 222).unwrap();
    assert_eq!(q.pending(), 2);
    assert_eq!(q.reclaim(1, 111).unwrap(), (1, 0));
    // the late ack of the dead process is ignored
    q.ack(ta, 111).unwrap();
    let (t, m) = q.try_take(2, 222, true, true).unwrap().unwrap();
    assert_eq!(m, vec![0]);
    q.ack(t, 222).unwrap();
    let (t, m) = q.try_take(2, 222, true, true).unwrap().unwrap();
    assert_eq!(m, vec![2]);
    q.ack(t, 222).unwrap();
    assert_eq!(q.pending(), 0);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn messages_survive_a_new_master_and_a_new_layout() {
    let d = tmpdir("survive");
    let control = d.join("control");
    {
        let (q, _) = MuleQueues::create(&control, 2, &farms()[..1], 64, 0).unwrap();
        q.try_send(&Dest::Mule(2), b"m2").unwrap().unwrap();
        q.try_send(&Dest::Any, b"any").unwrap().unwrap();
        q.try_send(&Dest::Farm(0), b"pair").unwrap().unwrap();
        // claimed by a process that is gone: ready again for the next master
        q.try_take(2, 999_999_999, true, false).unwrap().unwrap();
        assert_eq!(q.retire_if_empty().unwrap(), 3);
    }
    assert!(queue_path(&control).exists());
    let attached = MuleQueues::open(&control).unwrap();
    {
        // same layout: taken over as is
        let (q, waiting) = MuleQueues::create(&control, 2, &farms()[..1], 64, 0).unwrap();
        assert_eq!(waiting, 3);
        assert_eq!(q.ready_counts(), vec![1, 0, 1, 1]);
        assert!(!attached.retired());
    }
    // another layout (one mule, farm 'pair' gone): migrated, the old mapping is retired
    let (q, waiting) = MuleQueues::create(&control, 1, &[], 64, 0).unwrap();
    assert_eq!(waiting, 3);
    assert!(attached.retired());
    let me = std::process::id();
    let mut got = Vec::new();
    while let Some((t, m)) = q.try_take(1, me, true, true).unwrap() {
        got.push(m);
        q.ack(t, me).unwrap();
    }
    got.sort();
    assert_eq!(got, vec![b"any".to_vec(), b"m2".to_vec(), b"pair".to_vec()]);
    assert_eq!(q.retire_if_empty().unwrap(), 0);
    assert!(!queue_path(&control).exists());
    assert!(q.retired());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_sleeping_mule_is_woken_once_and_a_busy_one_not_at_all() {
    let d = tmpdir("wake");
    let control = d.join("control");
    let (q, _) = MuleQueues::create(&control, 1, &[], 64, 0).unwrap();
    let sock = bind_wake(&control, 1).unwrap();
    let mut buf = [0u8; 16];
    q.try_send(&Dest::Any, b"x").unwrap().unwrap();
    assert!(sock.recv(&mut buf).is_err(), "busy: no wake-up");
    q.set_sleeping(1, true);
    q.try_send(&Dest::Any, b"y").unwrap().unwrap();
    q.try_send(&Dest::Mule(1), b"z").unwrap().unwrap();
    assert_eq!(sock.recv(&mut buf).unwrap(), 1);
    assert!(sock.recv(&mut buf).is_err(), "one wake-up per sleep");
    // the mule is replaced (its successor binds the path again): the sender follows it
    drop(sock);
    let sock = bind_wake(&control, 1).unwrap();
    q.set_sleeping(1, true);
    q.try_send(&Dest::Mule(1), b"again").unwrap().unwrap();
    assert_eq!(sock.recv(&mut buf).unwrap(), 1);
    std::fs::remove_dir_all(&d).unwrap();
}

/// A message for any mule wakes every sleeping mule, not only the first: mule 1 may be asleep
/// in a wait that does not read the any-mule queue (a farm loop), and the wake-up it took would
/// leave mule 2 asleep on the message until its next slice (up to a minute). Before, only mule 1
/// got a wake-up (a seed example timed out once in a loaded full run).
#[test]
fn a_message_for_any_mule_wakes_every_sleeping_mule() {
    let d = tmpdir("wakeall");
    let control = d.join("control");
    let (q, _) = MuleQueues::create(&control, 2, &[], 64, 0).unwrap();
    let one = bind_wake(&control, 1).unwrap();
    let two = bind_wake(&control, 2).unwrap();
    let mut buf = [0u8; 16];
    q.set_sleeping(1, true);
    q.set_sleeping(2, true);
    q.try_send(&Dest::Any, b"x").unwrap().unwrap();
    assert_eq!(one.recv(&mut buf).unwrap(), 1);
    assert_eq!(two.recv(&mut buf).unwrap(), 1, "mule 2 must be woken too");
    std::fs::remove_dir_all(&d).unwrap();
}

/// Real processes: 3 forked senders, a farm of 2 forked mules, one mule SIGKILLed mid-burst
/// and replaced; every message runs, at most one twice (the one the killed mule was running).
#[test]
fn forked_senders_and_mules_with_a_kill() {
    let d = tmpdir("fork");
    let control = d.join("control");
    let farms = vec![("f".to_owned(), vec![1, 2])];
    let (q, _) = MuleQueues::create(&control, 2, &farms, 64, 64 * 1024).unwrap();
    const PER: u32 = 3000;
    let mut fds = [0; 2];
    // SAFETY: a plain pipe for the mules' reports.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (rd, wr) = (fds[0], fds[1]);

    let mule = |id: u32| {
        // SAFETY: the child only uses the mapping, a pipe and _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let q = MuleQueues::open(&control).unwrap();
            let me = std::process::id();
            loop {
                match q.try_take(id, me, true, true).unwrap() {
                    Some((t, m)) => {
                        // SAFETY: writes 4 bytes (atomic on a pipe) then acks.
                        unsafe { libc::write(wr, m.as_ptr().cast(), 4) };
                        std::thread::sleep(std::time::Duration::from_micros(20));
                        q.ack(t, me).unwrap();
                    }
                    None => std::thread::sleep(std::time::Duration::from_micros(200)),
                }
            }
        }
        pid
    };
    let m1 = mule(1);
    let m2 = mule(2);
    let mut senders = Vec::new();
    for s in 0..3u32 {
        // SAFETY: as above.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let q = MuleQueues::open(&control).unwrap();
            for i in 0..PER {
                let v = s * PER + i;
                while q
                    .try_send(&Dest::Farm(0), &v.to_le_bytes())
                    .unwrap()
                    .is_none()
                {
                    std::thread::sleep(std::time::Duration::from_micros(100));
                }
            }
            // SAFETY: leaves the child without running the parent's destructors.
            unsafe { libc::_exit(0) };
        }
        senders.push(pid);
    }
    std::thread::sleep(std::time::Duration::from_millis(30));
    // SAFETY: our own child.
    unsafe { libc::kill(m1, libc::SIGKILL) };
    let mut status = 0;
    // SAFETY: reaps our own child.
    unsafe { libc::waitpid(m1, &mut status, 0) };
    let (requeued, dropped) = q.reclaim(1, m1 as u32).unwrap();
    assert!(requeued <= 1 && dropped == 0);
    let m1b = mule(1);
    for pid in senders {
        // SAFETY: reaps our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(status, 0);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while q.pending() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(q.pending(), 0);
    for pid in [m2, m1b] {
        // SAFETY: our own children.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, &mut status, 0);
        }
    }
    // SAFETY: closes our write end so the read ends at EOF.
    unsafe { libc::close(wr) };
    // SAFETY: takes ownership of the read end.
    let mut f = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(rd) };
    let mut all = Vec::new();
    f.read_to_end(&mut all).unwrap();
    let mut seen: HashMap<u32, u32> = HashMap::new();
    for c in all.chunks_exact(4) {
        *seen
            .entry(u32::from_le_bytes(c.try_into().unwrap()))
            .or_default() += 1;
    }
    assert_eq!(seen.len() as u32, 3 * PER, "every message ran");
    let dups: u32 = seen.values().map(|&n| n - 1).sum();
    assert!(dups <= 1, "{dups} duplicates");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_poison_message_is_dropped_after_killing_three_mules_and_harakiri_drops_at_once() {
    let d = tmpdir("poison");
    let control = d.join("control");
    let (q, _) = MuleQueues::create(&control, 1, &[], 64, 0).unwrap();
    q.try_send(&Dest::Any, b"poison").unwrap().unwrap();
    q.try_send(&Dest::Any, b"next").unwrap().unwrap();
    for pid in 1..=3u32 {
        let (_, m) = q.try_take(1, pid, true, true).unwrap().unwrap();
        assert_eq!(m, b"poison");
        let expect = if pid < MAX_DEATHS { (1, 0) } else { (0, 1) };
        assert_eq!(q.reclaim(1, pid).unwrap(), expect);
    }
    let (_, m) = q.try_take(1, 7, true, true).unwrap().unwrap();
    assert_eq!(m, b"next");
    assert_eq!(q.drop_claims(7).unwrap(), 1);
    assert_eq!(q.pending(), 0);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn try_take_from_reads_the_queues_given_in_order_and_copies_with_the_callback() {
    let d = tmpdir("from");
    let control = d.join("control");
    let (q, _) = MuleQueues::create(&control, 3, &farms(), 1000, 0).unwrap();
    let me = crate::sys::this_pid();
    assert!(matches!(
        q.reading(4, true, true),
        Err(MuleError::NoSuchMule(4, 3))
    ));
    let qs = q.reading(1, true, true).unwrap();
    assert!(!q.any_ready(&qs));
    assert!(q.try_take_from(&qs, me, <[u8]>::len).unwrap().is_none());
    q.try_send(&Dest::Any, b"any").unwrap().unwrap();
    q.try_send(&q.dest_farm("pair").unwrap(), b"farm")
        .unwrap()
        .unwrap();
    q.try_send(&Dest::Mule(3), b"three").unwrap().unwrap();
    assert!(q.any_ready(&qs));
    let (t, n) = q.try_take_from(&qs, me, <[u8]>::len).unwrap().unwrap();
    assert_eq!(n, 4, "the farm's queue before the any-mule queue");
    q.ack(t, me).unwrap();
    let (t, m) = q
        .try_take_from(&qs, me, |b| String::from_utf8(b.to_vec()).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(m, "any");
    q.ack(t, me).unwrap();
    assert!(!q.any_ready(&qs), "mule 3's message is not mule 1's");
    assert!(q.try_take_from(&qs, me, <[u8]>::to_vec).unwrap().is_none());
    // queue numbers beyond this layout are skipped, not read
    assert!(!q.any_ready(&[99]));
    assert!(
        q.try_take_from(&[99], me, <[u8]>::to_vec)
            .unwrap()
            .is_none()
    );
    let (t, m) = q.try_take(3, me, true, false).unwrap().unwrap();
    assert_eq!(m, b"three");
    q.ack(t, me).unwrap();
    assert_eq!(q.pending(), 0);
    std::fs::remove_dir_all(&d).unwrap();
}
