//! The server and the client over real sockets, in threads of the test process.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use super::*;
use crate::proto::rpc;

struct Running {
    addr: Addr,
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<Vec<String>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A server on a free loopback port running `hello`, `big`, `empty` and `boom` (no reply).
fn start(cfg: ServerConfig) -> Running {
    let addr = Addr::parse("127.0.0.1:0").unwrap();
    let l = addr.bind(16).unwrap();
    let Listener::Tcp(t) = &l else { unreachable!() };
    let addr = Addr::Tcp(t.local_addr().unwrap().to_string());
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let handle = thread::spawn(move || {
        let mut server = Server::new(vec![l], cfg);
        let mut reports = Vec::new();
        while !stop2.load(Ordering::SeqCst) {
            let turn = server.turn(&[], Duration::from_millis(20)).unwrap();
            for (id, packet) in turn.requests {
                let req = rpc::decode_request(&packet).unwrap();
                let value: Option<Vec<u8>> = match req.name {
                    b"hello" => Some([b"hello:".as_slice(), &req.args.join(&b","[..])].concat()),
                    b"big" => Some(vec![b'B'; 70000]),
                    b"echo" => Some(req.args.concat()),
                    _ => None,
                };
                let reply = value
                    .filter(|v| !v.is_empty())
                    .map(|v| rpc::encode_reply(&v, req.modifier2));
                server.reply(id, reply);
            }
            reports.extend(server.take_report());
        }
        reports
    });
    Running {
        addr,
        stop,
        handle: Some(handle),
    }
}

const T: Duration = Duration::from_secs(5);

#[test]
fn calls_and_replies() {
    let s = start(ServerConfig::default());
    assert_eq!(
        call(&s.addr, b"hello", &[b"a".as_slice(), b"bc"], T).unwrap(),
        Some(b"hello:a,bc".to_vec())
    );
    let none: [&[u8]; 0] = [];
    assert_eq!(
        call(&s.addr, b"hello", &none, T).unwrap(),
        Some(b"hello:".to_vec())
    );
    assert_eq!(call(&s.addr, b"nope", &none, T).unwrap(), None);
    assert_eq!(
        call(&s.addr, b"big", &none, T).unwrap(),
        Some(vec![b'B'; 70000])
    );
    let binary: Vec<u8> = (0..=255u8).chain([0, 0, 0xff]).collect();
    assert_eq!(
        call(&s.addr, b"echo", &[&binary], T).unwrap(),
        Some(binary.clone())
    );
    let largest = vec![0u8; 65535 - 2 - 4 - 2];
    assert_eq!(
        call(&s.addr, b"echo", &[&largest], T).unwrap(),
        Some(largest)
    );
}

#[test]
fn bad_input_closes_and_the_next_call_works() {
    let s = start(ServerConfig::default());
    let Addr::Tcp(hp) = &s.addr else {
        unreachable!()
    };
    let cases: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.0\r\n\r\n".to_vec(),
        vec![0, 10, 0, 0, 1, 2, 3],
        vec![173, 0, 0, 0],
        vec![173, 5, 0, 0, 9, 0, b'a', b'b', b'c'],
        vec![173, 2, 0, 0, 0, 0],
        vec![173],
    ];
    for bytes in cases {
        let mut c = TcpStream::connect(hp).unwrap();
        c.set_read_timeout(Some(T)).unwrap();
        // The server may close (and reset) before all is written.
        let _ = c.write_all(&bytes);
        let _ = c.shutdown(std::net::Shutdown::Write);
        // Closed without a reply: end of stream, or a reset when bytes were left unread.
        let mut got = Vec::new();
        match c.read_to_end(&mut got) {
            Ok(_) => assert!(got.is_empty(), "{bytes:?} got {got:?}"),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
        }
    }
    assert_eq!(
        call(&s.addr, b"hello", &[b"x"], T).unwrap(),
        Some(b"hello:x".to_vec())
    );
}

#[test]
fn a_silent_client_does_not_block_others_and_times_out() {
    let s = start(ServerConfig {
        max_conns: 4,
        read_timeout: Duration::from_millis(300),
    });
    let Addr::Tcp(hp) = &s.addr else {
        unreachable!()
    };
    // Two silent clients, one with half a request.
    let silent = TcpStream::connect(hp).unwrap();
    let mut half = TcpStream::connect(hp).unwrap();
    half.write_all(&[173, 20, 0, 0, 5, 0]).unwrap();
    for _ in 0..5 {
        assert_eq!(
            call(&s.addr, b"hello", &[b"y"], T).unwrap(),
            Some(b"hello:y".to_vec())
        );
    }
    // Both are closed by the server after the read timeout.
    for mut c in [silent, half] {
        c.set_read_timeout(Some(T)).unwrap();
        let mut got = Vec::new();
        assert_eq!(c.read_to_end(&mut got).unwrap(), 0);
    }
}

#[test]
fn connection_limit_leaves_the_rest_in_the_backlog() {
    let s = start(ServerConfig {
        max_conns: 2,
        read_timeout: Duration::from_millis(500),
    });
    let Addr::Tcp(hp) = &s.addr else {
        unreachable!()
    };
    let a = TcpStream::connect(hp).unwrap();
    let b = TcpStream::connect(hp).unwrap();
    // A third call waits until one slot frees (timeout), then is served.
    assert_eq!(
        call(&s.addr, b"hello", &[b"z"], T).unwrap(),
        Some(b"hello:z".to_vec())
    );
    drop((a, b));
}

#[test]
fn fuzz_burst_then_valid_call() {
    let s = start(ServerConfig::default());
    let Addr::Tcp(hp) = &s.addr else {
        unreachable!()
    };
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..300 {
        let mut c = TcpStream::connect(hp).unwrap();
        let n = (next() % 64) as usize;
        let mut bytes: Vec<u8> = (0..n).map(|_| next() as u8).collect();
        if next() % 2 == 0 && !bytes.is_empty() {
            bytes[0] = 173;
        }
        let _ = c.write_all(&bytes);
    }
    assert_eq!(
        call(&s.addr, b"hello", &[b"q"], T).unwrap(),
        Some(b"hello:q".to_vec())
    );
}

#[test]
fn unix_socket_and_stale_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rpc");
    let addr = Addr::Unix(path.clone());
    let first = addr.bind(4).unwrap();
    drop(first); // leaves the socket file, as a killed process would
    let l = addr.bind(4).unwrap();
    let fd = l.fd();
    assert!(fd >= 0);
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let h = thread::spawn(move || {
        let mut server = Server::new(vec![l], ServerConfig::default());
        while !stop2.load(Ordering::SeqCst) {
            for (id, p) in server
                .turn(&[], Duration::from_millis(20))
                .unwrap()
                .requests
            {
                let r = rpc::decode_request(&p).unwrap();
                server.reply(id, Some(rpc::encode_reply(r.name, 0)));
            }
        }
    });
    let none: [&[u8]; 0] = [];
    assert_eq!(call(&addr, b"me", &none, T).unwrap(), Some(b"me".to_vec()));
    stop.store(true, Ordering::SeqCst);
    h.join().unwrap();
    // A regular file is never replaced.
    let file = dir.path().join("plain");
    std::fs::write(&file, b"x").unwrap();
    assert!(Addr::Unix(file).bind(4).is_err());
}

#[test]
fn client_errors() {
    // Nothing listens: an error, not a hang.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let addr = Addr::parse(&format!("127.0.0.1:{port}")).unwrap();
    let none: [&[u8]; 0] = [];
    assert!(call(&addr, b"f", &none, T).is_err());
    // A server that never answers: the deadline ends the call.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = Addr::Tcp(l.local_addr().unwrap().to_string());
    let err = call(&addr, b"f", &none, Duration::from_millis(200)).unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
    let _ = l.as_raw_fd();
    assert!(Addr::parse("host:port").is_err());
    assert_eq!(
        Addr::parse(":3031").unwrap(),
        Addr::Tcp("0.0.0.0:3031".into())
    );
    assert_eq!(Addr::parse("/x/y").unwrap(), Addr::Unix("/x/y".into()));
}
