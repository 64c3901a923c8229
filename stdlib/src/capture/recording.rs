//! Recordings: the JSON lines of `--record FILE` / `--trace-json FILE` and
//! of `netscript record`, read back as TCP conversations (who sent what,
//! when) for `mock::replay` and `mock::replay_client`.
//!
//! A conversation is one recorded connection; its messages are the runs
//! of bytes one side sent before the other answered (how the network cut
//! them into reads is an accident of the recording, so consecutive chunks
//! from one side are joined).

use std::io::{BufRead as _, BufReader};
use std::path::Path;

use base64::Engine as _;

/// One recorded TCP connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    /// The connection's number in the recording.
    pub conn: u64,
    /// The client's address (the end that connected).
    pub client: String,
    /// The server's address.
    pub server: String,
    /// What each side sent, in order.
    pub messages: Vec<Message>,
}

/// Bytes one side sent before the other answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Whether the client sent them.
    pub from_client: bool,
    /// The bytes.
    pub data: Vec<u8>,
    /// Seconds from the conversation's first recorded bytes to these.
    pub at: f64,
}

/// The TCP conversations of the recording at `path`, in the order their
/// connections were numbered; UDP lines are skipped. At most `max_bytes`
/// of payload are read (the caller's blob limit).
///
/// # Errors
/// When the file cannot be read, a line is not a recording line (the error
/// names the line), or the payload exceeds `max_bytes`.
pub fn read(path: &Path, max_bytes: usize) -> std::io::Result<Vec<Conversation>> {
    let bad = |n: usize, what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("line {n}: {what}"));
    let mut conversations: Vec<(Conversation, f64)> = Vec::new();
    let mut total = 0usize;
    for (i, line) in BufReader::new(std::fs::File::open(path)?).lines().enumerate() {
        let (n, line) = (i + 1, line?);
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| bad(n, &format!("not JSON ({e})")))?;
        let field = |k: &str| v.get(k).and_then(serde_json::Value::as_str);
        if field("proto") != Some("tcp") {
            continue;
        }
        let (Some(conn), Some(time)) =
            (v.get("conn").and_then(serde_json::Value::as_u64), v.get("time").and_then(serde_json::Value::as_f64))
        else {
            return Err(bad(n, "no \"conn\" number or \"time\""));
        };
        let sent = match field("dir") {
            Some("send") => true,
            Some("recv") => false,
            _ => return Err(bad(n, "\"dir\" is neither \"send\" nor \"recv\"")),
        };
        let local_is_client = field("role") != Some("server");
        let data = match (field("data"), field("text")) {
            (Some(b64), _) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| bad(n, &format!("\"data\" is not base64 ({e})")))?,
            (None, Some(text)) => text.as_bytes().to_vec(),
            (None, None) => return Err(bad(n, "no \"data\"")),
        };
        total += data.len();
        if total > max_bytes {
            return Err(std::io::Error::other(format!("the recording holds more than {max_bytes} bytes")));
        }
        let (local, peer) = (field("local").unwrap_or("").to_string(), field("peer").unwrap_or("").to_string());
        let index = match conversations.iter().position(|(c, _)| c.conn == conn) {
            Some(i) => i,
            None => {
                let (client, server) = if local_is_client { (local, peer) } else { (peer, local) };
                conversations.push((Conversation { conn, client, server, messages: Vec::new() }, time));
                conversations.len() - 1
            }
        };
        let (c, start) = &mut conversations[index];
        let from_client = sent == local_is_client;
        match c.messages.last_mut() {
            Some(last) if last.from_client == from_client => last.data.extend_from_slice(&data),
            _ => c.messages.push(Message { from_client, data, at: (time - *start).max(0.0) }),
        }
    }
    Ok(conversations.into_iter().map(|(c, _)| c).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_of_one_side_join_and_roles_decide_who_is_the_client() {
        let dir = std::env::temp_dir().join(format!("netscript-recording-{}", std::process::id()));
        let lines = [
            r#"{"time":10.0,"proto":"tcp","conn":1,"role":"server","local":"127.0.0.1:25","peer":"127.0.0.1:5000","dir":"send","len":4,"data":"MjIwIA=="}"#,
            r#"{"time":10.5,"proto":"tcp","conn":1,"role":"server","local":"127.0.0.1:25","peer":"127.0.0.1:5000","dir":"send","len":2,"data":"DQo="}"#,
            r#"{"time":10.75,"proto":"udp","conn":2,"local":"127.0.0.1:53","peer":"127.0.0.1:9","dir":"recv","len":1,"data":"AA=="}"#,
            r#"{"time":11.0,"proto":"tcp","conn":1,"role":"server","local":"127.0.0.1:25","peer":"127.0.0.1:5000","dir":"recv","len":4,"text":"QUIT"}"#,
        ];
        std::fs::write(&dir, lines.join("\n")).unwrap();
        let got = read(&dir, 1000).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].client.as_str(), got[0].server.as_str()), ("127.0.0.1:5000", "127.0.0.1:25"));
        let m = &got[0].messages;
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].from_client, m[0].data.as_slice(), m[0].at), (false, &b"220 \r\n"[..], 0.0));
        assert_eq!((m[1].from_client, m[1].data.as_slice(), m[1].at), (true, &b"QUIT"[..], 1.0));
        assert!(read(&dir, 5).is_err(), "the byte limit holds");
        std::fs::write(&dir, "{\"proto\":\"tcp\"}\n").unwrap();
        assert!(read(&dir, 1000).unwrap_err().to_string().contains("line 1"));
        std::fs::remove_file(&dir).unwrap();
    }
}
