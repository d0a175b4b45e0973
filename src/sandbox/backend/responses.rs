//! What the backend writes: JSON bodies and log lines as structs (so keys
//! keep the order Express writes them in), NestJS error bodies, Node's
//! wording for addresses, JSON parse errors and memory.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};
use std::net::IpAddr;

pub(super) type Resp = Response<Full<Bytes>>;

// Response bodies and log lines as structs, so that keys keep the order
// Express writes them in (serde_json's map is sorted here).

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct NestError<'a> {
    pub(super) message: Value,
    pub(super) error: &'a str,
    pub(super) status_code: u16,
}

/// NestJS's default answer to an exception that is not an HttpException.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct InternalError<'a> {
    pub(super) status_code: u16,
    pub(super) message: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct LogLine<'a> {
    pub(super) level: &'a str,
    #[serde(rename = "type")]
    pub(super) kind: &'a str,
    pub(super) method: &'a str,
    pub(super) url: &'a str,
    pub(super) ip: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) status_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) duration_ms: Option<u64>,
    pub(super) time: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DbHealth<'a> {
    pub(super) overall: &'a str,
    pub(super) database: &'a str,
    pub(super) operations_successful: bool,
    pub(super) total_operations: u64,
    pub(super) errors: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Memory {
    pub(super) rss: u64,
    pub(super) heap_total: u64,
    pub(super) heap_used: u64,
    pub(super) external: u64,
    pub(super) array_buffers: u64,
}

#[derive(Serialize)]
pub(super) struct Health<'a> {
    pub(super) status: &'a str,
    pub(super) timestamp: String,
    pub(super) environment: &'a str,
    pub(super) database: DbHealth<'a>,
    pub(super) uptime: f64,
    pub(super) memory: Memory,
    pub(super) version: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct FullSender {
    pub(super) id: String,
    pub(super) username: String,
    pub(super) first_name: Option<String>,
    pub(super) last_name: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SentMessage<'a> {
    pub(super) id: String,
    pub(super) content: String,
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) status: String,
    pub(super) created_at: &'a str,
    pub(super) sender: FullSender,
    pub(super) attachments: [u8; 0],
}

#[derive(Serialize)]
pub(super) struct Sent<'a> {
    pub(super) success: bool,
    pub(super) message: SentMessage<'a>,
}

#[derive(Serialize)]
pub(super) struct ShortSender {
    pub(super) id: String,
    pub(super) username: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct HistoryMessage {
    pub(super) id: String,
    pub(super) content: String,
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) created_at: String,
    pub(super) sender: ShortSender,
    pub(super) message_reads: Value,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Pagination {
    pub(super) limit: i64,
    pub(super) has_more: bool,
}

#[derive(Serialize)]
pub(super) struct HistoryData {
    pub(super) messages: Vec<HistoryMessage>,
    pub(super) pagination: Pagination,
}

#[derive(Serialize)]
pub(super) struct History {
    pub(super) success: bool,
    pub(super) data: HistoryData,
}

pub(super) fn json_response<T: Serialize + ?Sized>(status: u16, body: &T) -> Resp {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert("x-powered-by", HeaderValue::from_static("Express"));
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// A NestJS HttpException body.
pub(super) fn nest_error(status: u16, message: Value) -> Resp {
    let error = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Payload Too Large",
        _ => "Internal Server Error",
    };
    json_response(
        status,
        &NestError {
            message,
            error,
            status_code: status,
        },
    )
}

pub(super) fn forbidden() -> Resp {
    nest_error(403, json!("You are not a participant in this conversation"))
}

/// How Node prints a peer address on a dual-stack `::` listener.
pub(super) fn node_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("::ffff:{v4}"),
        IpAddr::V6(v6) => v6.to_string(),
    }
}

/// Byte offset of a serde_json error, for a JSON.parse-like message.
pub(super) fn json_error_message(body: &[u8], e: &serde_json::Error) -> String {
    if e.is_eof() {
        return "Unexpected end of JSON input".to_string();
    }
    let mut line = 1;
    let mut offset = 0;
    for (i, c) in body.iter().enumerate() {
        if line == e.line() {
            offset = i;
            break;
        }
        if *c == b'\n' {
            line += 1;
        }
    }
    let pos = (offset + e.column()).saturating_sub(1);
    format!("Unexpected token in JSON at position {pos}")
}

/// `process.memoryUsage()`: the resident set read from /proc; the heap a
/// V8-like split of the rest plus what the memory knob has `retained`
/// (plausible, not measured). Without retained bytes heapUsed is 71% of
/// heapTotal; retained bytes grow both, heapUsed faster, so a leak crosses
/// the seed's 80% alert after about 20 MB.
pub(super) fn memory(retained: u64) -> Memory {
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096)
        .unwrap_or(64 * 1024 * 1024);
    let base = rss.saturating_sub(retained);
    Memory {
        rss,
        heap_total: base / 100 * 38 + retained + retained / 20,
        heap_used: base / 100 * 27 + retained,
        external: 2_374_810 + base / 1000,
        array_buffers: 174_618,
    }
}
