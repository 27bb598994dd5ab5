//! An SMTP server on loopback for the mail tests (the `mailin` protocol engine, the one
//! inside mailin-embedded, behind a plain TCP accept loop), and the messages it received.

use std::io::{BufRead, BufReader, Write};
use std::sync::{Arc, Mutex};

use mailin::{response, Action, Handler, Response, SessionBuilder};

/// One received message: recipients and the raw data.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    pub data: String,
}

#[derive(Clone, Default)]
struct Inbox {
    messages: Arc<Mutex<Vec<Received>>>,
    current: Option<Received>,
}

impl Handler for Inbox {
    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Some(Received {
            to: to.to_vec(),
            data: String::new(),
        });
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if let Some(current) = &mut self.current {
            current.data.push_str(&String::from_utf8_lossy(buf));
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if let Some(done) = self.current.take() {
            self.messages.lock().unwrap().push(done);
        }
        response::OK
    }
}

/// Starts an SMTP server on a free loopback port; it lives as long as the test process.
pub fn smtp_server() -> (String, Arc<Mutex<Vec<Received>>>) {
    let inbox = Inbox::default();
    let messages = inbox.messages.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let handler = inbox.clone();
            std::thread::spawn(move || {
                let remote = stream.peer_addr().unwrap().ip();
                let mut session = SessionBuilder::new("mail.test").build(remote, handler);
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                session.greeting().write_to(&mut writer).unwrap();
                let mut line = Vec::new();
                loop {
                    line.clear();
                    if reader.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let reply = session.process(&line);
                    match reply.action {
                        Action::NoReply => {}
                        Action::Close | Action::UpgradeTls => {
                            let _ = reply.write_to(&mut writer);
                            return;
                        }
                        Action::Reply => {
                            if reply.write_to(&mut writer).is_err() {
                                return;
                            }
                        }
                    }
                    let _ = writer.flush();
                }
            });
        }
    });
    (format!("smtp://{address}"), messages)
}

/// Messages to `to`, their bodies decoded from quoted-printable as a mail client would.
pub fn messages_to(messages: &Arc<Mutex<Vec<Received>>>, to: &str) -> Vec<Received> {
    messages
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.to.iter().any(|t| t.contains(to)))
        .map(|m| Received {
            to: m.to.clone(),
            data: quoted_printable(&m.data),
        })
        .collect()
}

fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The link in a message that starts with `prefix` (up to the next whitespace).
pub fn link_after(message: &Received, prefix: &str) -> Option<String> {
    message
        .data
        .split(prefix)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
}
