//! The load generator of the login figure: password logins over HTTP/1.1 keep-alive, one blocking
//! thread and one connection per client, each request written out once beforehand.
//!
//! It shares the cores it measures with the server, so what it takes counts against the ratio:
//! a general HTTP client on an async runtime took about 0.17 ms of CPU per login, a third of
//! what the ratio's target leaves beside the hash. Here a login is one `write` and, mostly, one
//! `read`, and the thread sleeps in the kernel while the server works. It speaks only what the
//! login endpoint answers (a status line, headers, a body of `Content-Length` bytes) and refuses
//! anything else, so an answer it cannot read fails the bench instead of being miscounted.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One client's login request, ready to be written.
pub struct LoginRequest(Vec<u8>);

impl LoginRequest {
    /// `POST /api/login` with the form's fields, as the browser's login form sends it.
    pub fn new(host: &str, fields: &[(&str, &str)]) -> LoginRequest {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        LoginRequest(
            format!(
                "POST /api/login HTTP/1.1\r\nHost: {host}\r\nAccept: */*\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    }
}

/// Logins answered by every client together: `all` from the start, `in_window` those answered
/// between `warm_up` and `warm_up + window`.
pub struct Counted {
    pub all: u64,
    pub in_window: u64,
}

/// Each request in `requests` sent in a loop on a connection of its own until `warm_up + window`
/// has passed. Every answer must be `200`; the first that is not stops the run with its status.
pub fn logins(
    addr: SocketAddr,
    requests: &[LoginRequest],
    warm_up: Duration,
    window: Duration,
) -> anyhow::Result<Counted> {
    let all = AtomicU64::new(0);
    let in_window = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        let clients: Vec<_> = requests
            .iter()
            .map(|request| {
                let (all, in_window) = (&all, &in_window);
                scope.spawn(move || -> anyhow::Result<()> {
                    let mut conn = Connection::open(addr)?;
                    while started.elapsed() < warm_up + window {
                        let status = conn.exchange(&request.0)?;
                        anyhow::ensure!(status == 200, "login answered {status}");
                        all.fetch_add(1, Ordering::Relaxed);
                        let at = started.elapsed();
                        if at >= warm_up && at <= warm_up + window {
                            in_window.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for client in clients {
            client
                .join()
                .map_err(|_| anyhow::anyhow!("a load thread panicked"))??;
        }
        Ok(Counted {
            all: all.load(Ordering::Relaxed),
            in_window: in_window.load(Ordering::Relaxed),
        })
    })
}

struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Connection {
    fn open(addr: SocketAddr) -> anyhow::Result<Connection> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Connection {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Writes `request` and reads its whole answer; returns its status.
    fn exchange(&mut self, request: &[u8]) -> anyhow::Result<u16> {
        self.stream.write_all(request)?;
        self.buf.clear();
        let (head_len, status, body_len) = loop {
            if let Some(head) = parse_head(&self.buf)? {
                break head;
            }
            self.fill()?;
        };
        while self.buf.len() < head_len + body_len {
            self.fill()?;
        }
        anyhow::ensure!(
            self.buf.len() == head_len + body_len,
            "the server answered more than it was asked"
        );
        Ok(status)
    }

    fn fill(&mut self) -> anyhow::Result<()> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk)?;
        anyhow::ensure!(n > 0, "the server closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

/// The head of an answer once it is complete: its length, the status and the body's length.
fn parse_head(buf: &[u8]) -> anyhow::Result<Option<(usize, u16, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut answer = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head_len) = answer.parse(buf)? else {
        return Ok(None);
    };
    let status = answer
        .code
        .ok_or_else(|| anyhow::anyhow!("an answer without a status"))?;
    let mut body_len = None;
    for header in answer.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            body_len = Some(std::str::from_utf8(header.value)?.trim().parse::<usize>()?);
        }
        anyhow::ensure!(
            !header.name.eq_ignore_ascii_case("transfer-encoding"),
            "the login answered with a transfer encoding, which this client does not read"
        );
    }
    let body_len =
        body_len.ok_or_else(|| anyhow::anyhow!("the login's answer has no Content-Length"))?;
    Ok(Some((head_len, status, body_len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_is_encoded_as_browsers_encode_it() {
        let request = LoginRequest::new(
            "127.0.0.1:1",
            &[("company_id", "BENCH"), ("x", "a long & odd/pass=word!")],
        );
        let text = String::from_utf8(request.0).unwrap();
        assert!(text.starts_with("POST /api/login HTTP/1.1\r\nHost: 127.0.0.1:1\r\n"));
        assert!(text.ends_with(
            "Content-Length: 50\r\n\r\ncompany_id=BENCH&x=a+long+%26+odd%2Fpass%3Dword%21"
        ));
    }

    #[test]
    fn an_answer_is_read_to_the_end_of_its_body_and_nothing_else_is_taken_for_one() {
        let answer = b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(parse_head(&answer[..20]).unwrap(), None);
        assert_eq!(parse_head(answer).unwrap(), Some((48, 401, 5)));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse_head(b"SSH-2.0\r\n\r\n").is_err());
    }
}
