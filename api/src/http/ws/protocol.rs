//! The messages of `graphql-transport-ws`: what a client may send, read
//! within the size limit, and the server's frames.

use poem::web::websocket::{CloseCode, Message};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<Value>,
    },
    // Their payloads, if any, are not read.
    Ping {},
    Pong {},
    Subscribe {
        id: String,
        payload: SubscribePayload,
    },
    Complete {
        id: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribePayload {
    pub query: Option<String>,
    pub operation_name: Option<String>,
    #[serde(default)]
    pub variables: Option<Value>,
    #[serde(default)]
    pub extensions: Option<Value>,
}

pub fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some((CloseCode::from(code), reason.to_owned())))
}

pub fn text(v: &Value) -> Message {
    Message::Text(v.to_string())
}

pub enum Read {
    Message(ClientMessage),
    /// A frame the protocol has no use for (WebSocket ping and pong).
    Skip,
    Close,
    Bad(u16, String),
}

pub fn read(message: &Message, max_bytes: usize) -> Read {
    let bytes = match message {
        Message::Text(t) => t.as_bytes(),
        Message::Binary(b) => b.as_slice(),
        Message::Close(_) => return Read::Close,
        _ => return Read::Skip,
    };
    if bytes.len() > max_bytes {
        return Read::Bad(1009, format!("Message too big: at most {max_bytes} bytes (setting subscriptions.max_message_bytes)"));
    }
    match serde_json::from_slice::<ClientMessage>(bytes) {
        Ok(m) => Read::Message(m),
        Err(e) => Read::Bad(4400, format!("Invalid message received: {e}")),
    }
}
