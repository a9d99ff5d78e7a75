//! A platform's webhook receiver on loopback: records every event sent to it
//! and answers as scripted (some 500s, then 2xx), as the event tests need.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("an event is JSON")
    }
}

/// A scripted "status" that answers nothing.
const HANG: u16 = 0;

#[derive(Default)]
struct State {
    got: Vec<Received>,
    /// Statuses to answer, in order; 204 once they run out.
    script: VecDeque<u16>,
}

/// A receiver listening on `127.0.0.1`, until dropped with the test.
pub struct Receiver {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    /// Answers `failures` times 500, then 204.
    #[must_use]
    pub fn start(failures: usize) -> Self {
        Self::scripted(std::iter::repeat_n(500, failures).collect())
    }

    /// Answers `hangs` times not at all (holds the connection 15 s), then 204.
    #[must_use]
    pub fn hanging(hangs: usize) -> Self {
        Self::scripted(std::iter::repeat_n(HANG, hangs).collect())
    }

    fn scripted(script: VecDeque<u16>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(State {
            got: Vec::new(),
            script,
        }));
        let shared = Arc::clone(&state);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                thread::spawn(move || serve(stream, &state));
            }
        });
        Self { port, state }
    }

    /// `http://127.0.0.1:<port>`: what `events_host` names.
    #[must_use]
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Where events are sent: what `events_url` names.
    #[must_use]
    pub fn url(&self) -> String {
        format!("{}/hooks/credits", self.origin())
    }

    /// Everything received so far.
    #[must_use]
    pub fn got(&self) -> Vec<Received> {
        self.state.lock().expect("state").got.clone()
    }

    /// Waits up to 10 s until at least `n` requests arrived; returns them all.
    ///
    /// # Panics
    /// If they do not arrive in time.
    #[must_use]
    pub fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.got();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} requests arrived",
                got.len()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.trim_end().split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        read_chunked(&mut reader)
    } else {
        let mut body = vec![0; length];
        reader.read_exact(&mut body).map(|()| body).ok()
    };
    let Some(body) = body else { return };
    let status = {
        let mut state = state.lock().expect("state");
        state.got.push(Received {
            path,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        state.script.pop_front().unwrap_or(204)
    };
    let mut stream = reader.into_inner();
    if status == HANG {
        thread::sleep(Duration::from_secs(15));
        return;
    }
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
}

/// A chunked body, whole (a sender without `content-length` uses this).
fn read_chunked(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).ok()?;
        let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).ok()?;
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(&chunk[..size]);
    }
}
