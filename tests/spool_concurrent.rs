//! Several spoolers (one per thread, each with its own open file descriptions, so their OFD
//! locks conflict exactly as between processes) drain one directory while writers keep adding:
//! every task runs exactly once and nothing is left behind.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uwsgi_core::spool::{Next, Spooler, SpoolerConfig, spool_write};

#[test]
fn three_spoolers_two_writers_each_task_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    const PER_WRITER: usize = 1500;
    // Half the tasks exist before the spoolers start, half arrive while they run.
    for i in 0..PER_WRITER {
        let id = format!("a{i}");
        spool_write(&dir, &[(b"id".to_vec(), id.into_bytes())], b"", false).unwrap();
    }
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let spoolers: Vec<_> = (0..3)
        .map(|_| {
            let dir = dir.clone();
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut sp = Spooler::open(&dir, SpoolerConfig::default()).unwrap();
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut idle = 0;
                while Instant::now() < deadline && idle < 20 {
                    match sp.next(Duration::from_millis(25)).unwrap() {
                        Next::Task(t) => {
                            idle = 0;
                            let id = String::from_utf8(t.vars[0].1.clone()).unwrap();
                            seen.lock().unwrap().push(id);
                            t.ok().unwrap();
                        }
                        Next::Idle | Next::Woken => idle += 1,
                        Next::Notice(n) => panic!("unexpected notice {n:?}"),
                    }
                }
            })
        })
        .collect();
    let writers: Vec<_> = ["b", "c"]
        .into_iter()
        .map(|tag| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                for i in 0..PER_WRITER / 2 {
                    let id = format!("{tag}{i}");
                    spool_write(&dir, &[(b"id".to_vec(), id.into_bytes())], b"", false).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    for s in spoolers {
        s.join().unwrap();
    }
    let seen = seen.lock().unwrap();
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a task ran twice");
    assert_eq!(seen.len(), PER_WRITER * 2, "a task was lost");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}
