//! The routes: health, send a message, message history, with the rate
//! limiters, the logged request line and the faults the knobs turn on.

use super::db::PrismaError;
use super::ratelimit::Outcome;
use super::*;
use crate::support::percent;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

pub(super) fn query_get(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (percent::decode_form(k) == key).then(|| percent::decode_form(v))
    })
}

/// A class-validator style check of one required string field.
pub(super) fn required_str(v: &Value, key: &str, errors: &mut Vec<String>) -> Option<String> {
    match v.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::String(_)) => {
            errors.push(format!("{key} should not be empty"));
            None
        }
        None | Some(Value::Null) => {
            errors.push(format!("{key} should not be empty"));
            errors.push(format!("{key} must be a string"));
            None
        }
        Some(_) => {
            errors.push(format!("{key} must be a string"));
            None
        }
    }
}

impl App {
    pub(super) async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Resp {
        let start = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let url = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| path.clone());
        let ip = node_ip(peer.ip());
        self.log.json(&LogLine {
            level: "info",
            kind: "request",
            method: method.as_str(),
            url: &url,
            ip: &ip,
            status_code: None,
            duration_ms: None,
            time: logs::iso(SystemTime::now()),
        });
        self.faults.event_loop_turn(&path).await;
        let (mut resp, headers) = match self
            .limiter
            .as_ref()
            .map(|l| l.check(&method, &path, peer.ip()))
        {
            Some(Outcome::Blocked(h, body)) => (json_response(429, &body), h),
            Some(Outcome::Allowed(h)) => (self.route(req, &method, &path, &url).await, h),
            None => (self.route(req, &method, &path, &url).await, Vec::new()),
        };
        for (k, v) in headers {
            if let Ok(v) = HeaderValue::from_str(&v) {
                resp.headers_mut().insert(k, v);
            }
        }
        self.log.json(&LogLine {
            level: "info",
            kind: "response",
            method: method.as_str(),
            url: &url,
            ip: &ip,
            status_code: Some(resp.status().as_u16()),
            duration_ms: Some(start.elapsed().as_millis() as u64),
            time: logs::iso(SystemTime::now()),
        });
        resp
    }

    pub(super) async fn route(
        &self,
        req: Request<Incoming>,
        method: &Method,
        path: &str,
        url: &str,
    ) -> Resp {
        // Express routing is not strict about one trailing slash.
        let p = match path.strip_suffix('/') {
            Some(s) if !s.is_empty() => s,
            _ => path,
        };
        let is_get = method == Method::GET || method == Method::HEAD;
        if p == "/api/v1/health" && is_get {
            return self.health().await;
        }
        if let Some(cid) = p
            .strip_prefix("/api/v1/chat/conversations/")
            .and_then(|r| r.strip_suffix("/messages"))
            .filter(|c| !c.is_empty() && !c.contains('/'))
        {
            let cid = percent::decode(cid);
            if method == Method::POST || is_get {
                let n = self.faults.chat_request();
                let resp = if method == Method::POST {
                    self.send(req, &cid).await
                } else {
                    self.history(req.uri().query(), &cid).await
                };
                if self.faults.crashes_at(n) {
                    faults::schedule_crash(self.log.clone(), cid);
                }
                return resp;
            }
        }
        nest_error(404, json!(format!("Cannot {} {}", method.as_str(), url)))
    }

    pub(super) async fn health(&self) -> Resp {
        let (overall, ok, total, errors) = match &self.db {
            None => ("mock", true, 0, 0),
            Some(db) => {
                let r = db.ping(Duration::from_secs(3)).await;
                if let Err(e) = &r {
                    self.log.prisma_error(&format!(
                        "Invalid `prisma.$queryRaw()` invocation: {}",
                        e.message
                    ));
                }
                (
                    if r.is_ok() { "healthy" } else { "unhealthy" },
                    r.is_ok(),
                    db.total_operations(),
                    db.error_count(),
                )
            }
        };
        let uptime = (self.started.elapsed().as_secs_f64() * 100.0).round() / 100.0;
        json_response(
            200,
            &Health {
                status: "ok",
                timestamp: logs::iso(SystemTime::now()),
                environment: &self.environment,
                database: DbHealth {
                    overall,
                    database: "connected",
                    operations_successful: ok,
                    total_operations: total,
                    errors,
                },
                uptime,
                memory: memory(faults::retained_bytes()),
                version: NODE_VERSION,
            },
        )
    }

    pub(super) async fn send(&self, req: Request<Incoming>, cid: &str) -> Resp {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("json"));
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
            return nest_error(413, json!("request entity too large"));
        }
        let body = match Limited::new(req.into_body(), BODY_LIMIT).collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                return nest_error(413, json!("request entity too large"));
            }
            Err(_) => return nest_error(400, json!("request aborted")),
        };
        let value = if !is_json || body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            match serde_json::from_slice::<Value>(&body) {
                Ok(v) => v,
                Err(e) => return nest_error(400, json!(json_error_message(&body, &e))),
            }
        };
        let mut errors = Vec::new();
        let user_id = required_str(&value, "userId", &mut errors);
        let content = required_str(&value, "content", &mut errors);
        let kind = match value.get("messageType") {
            None | Some(Value::Null) => Some("TEXT".to_string()),
            Some(Value::String(s)) if MESSAGE_TYPES.contains(&s.as_str()) => Some(s.clone()),
            Some(_) => {
                errors.push(format!(
                    "messageType must be one of the following values: {}",
                    MESSAGE_TYPES.join(", ")
                ));
                None
            }
        };
        let (Some(user_id), Some(content), Some(kind), true) =
            (user_id, content, kind, errors.is_empty())
        else {
            return nest_error(400, json!(errors));
        };
        let Some(db) = &self.db else {
            return forbidden();
        };
        let failed = |e: PrismaError| self.db_failure("Failed to send message", e);
        match db.is_participant(cid, &user_id).await {
            Ok(true) => {}
            Ok(false) => return forbidden(),
            Err(e) => return failed(e),
        }
        let id = logs::cuid();
        let created_at = logs::iso(SystemTime::now());
        let created = if self.faults.lock_ms > 0 {
            let hold = Duration::from_millis(self.faults.lock_ms);
            db.create_message_locked(&id, cid, &user_id, &content, &kind, &created_at, hold)
                .await
        } else {
            db.create_message(&id, cid, &user_id, &content, &kind, &created_at)
                .await
        };
        match created {
            Ok(Some(m)) => json_response(
                201,
                &Sent {
                    success: true,
                    message: SentMessage {
                        id: m.id,
                        content: m.content,
                        kind: m.kind,
                        status: m.status,
                        created_at: &created_at,
                        sender: FullSender {
                            id: m.sender.id,
                            username: m.sender.username,
                            first_name: m.sender.first_name,
                            last_name: m.sender.last_name,
                        },
                        attachments: [],
                    },
                },
            ),
            Ok(None) => nest_error(400, json!("Failed to send message: Sender not found")),
            Err(e) => failed(e),
        }
    }

    /// A database failure of a chat route: by default as the public code
    /// (caught, `400 {"message":"<what>: <cause>"}`); with the generic-500
    /// knob as NestJS's default filter (`500 Internal server error`, the
    /// cause in the log only). Prisma's own `prisma:error` line is already
    /// written either way.
    pub(super) fn db_failure(&self, what: &str, e: PrismaError) -> Resp {
        if !self.faults.generic_500 {
            return nest_error(400, json!(format!("{what}: {}", e.message)));
        }
        let method = if what.contains("send") {
            "sendMessage"
        } else {
            "getMessages"
        };
        let class = if e.code.starts_with("P1") {
            "PrismaClientInitializationError"
        } else {
            "PrismaClientKnownRequestError"
        };
        self.log.exceptions_handler(
            &e.message,
            &format!(
                "{class}: {}\n    at $n.handleRequestError (/app/node_modules/@prisma/client/runtime/library.js:121:7315)\n    at $n.handleAndLogRequestError (/app/node_modules/@prisma/client/runtime/library.js:121:6623)\n    at $n.request (/app/node_modules/@prisma/client/runtime/library.js:121:6307)\n    at async l (/app/node_modules/@prisma/client/runtime/library.js:130:9633)\n    at async ChatService.{method} (/app/dist/chat/chat.service.js:64:25)\n    at async ChatController.{method} (/app/dist/chat/chat.controller.js:31:24)",
                e.message
            ),
        );
        json_response(
            500,
            &InternalError {
                status_code: 500,
                message: "Internal server error",
            },
        )
    }

    pub(super) async fn history(&self, query: Option<&str>, cid: &str) -> Resp {
        let Some(user_id) = query_get(query, "userId").filter(|u| !u.trim().is_empty()) else {
            return nest_error(
                400,
                json!(["userId should not be empty", "userId must be a string"]),
            );
        };
        let limit = query_get(query, "limit")
            .and_then(|l| l.trim().parse::<i64>().ok())
            .filter(|l| *l > 0)
            .unwrap_or(50)
            .min(100);
        let Some(db) = &self.db else {
            return forbidden();
        };
        let failed = |e: PrismaError| self.db_failure("Failed to get messages", e);
        match db.is_participant(cid, &user_id).await {
            Ok(true) => {}
            Ok(false) => return forbidden(),
            Err(e) => return failed(e),
        }
        let mut rows = match db.list_messages(cid, &user_id, limit + 1).await {
            Ok(r) => r,
            Err(e) => return failed(e),
        };
        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let messages = rows
            .into_iter()
            .map(|m| HistoryMessage {
                id: m.id,
                content: m.content,
                kind: m.kind,
                created_at: m.created_at,
                sender: ShortSender {
                    id: m.sender_id,
                    username: m.sender_username,
                },
                message_reads: serde_json::from_str(&m.reads_json).unwrap_or_else(|_| json!([])),
            })
            .collect();
        json_response(
            200,
            &History {
                success: true,
                data: HistoryData {
                    messages,
                    pagination: Pagination { limit, has_more },
                },
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes() {
        assert_eq!(percent::decode_form("a%20b+c%"), "a b c%");
        assert_eq!(percent::decode("%zz%4"), "%zz%4");
        assert_eq!(
            query_get(Some("userId=00%2D1&limit=5"), "userId").as_deref(),
            Some("00-1")
        );
    }
}
