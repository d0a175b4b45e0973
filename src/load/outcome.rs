//! How a request came out: an answer's status (and body, for Prisma's
//! P2024) or a failure to get one, classified the way k6 counts it, and the
//! answer itself when captures need it. Both the wire client and the
//! templates' captures read these; neither is imported here.

use bytes::Bytes;

/// Why a request did not succeed. A 429 or a 5xx is an error, as k6 counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrClass {
    /// The connection was refused: nothing listens (a crashed backend).
    Refused,
    /// No answer within the request timeout.
    Timeout,
    /// 429 Too Many Requests.
    RateLimited,
    /// Another 4xx.
    Client4xx,
    /// 5xx.
    Server5xx,
    /// Reset, closed mid-response, protocol errors.
    Transport,
}

impl ErrClass {
    pub const ALL: [ErrClass; 6] = [
        ErrClass::Refused,
        ErrClass::Timeout,
        ErrClass::RateLimited,
        ErrClass::Client4xx,
        ErrClass::Server5xx,
        ErrClass::Transport,
    ];
    pub fn name(self) -> &'static str {
        match self {
            ErrClass::Refused => "refused",
            ErrClass::Timeout => "timeout",
            ErrClass::RateLimited => "rate_limited",
            ErrClass::Client4xx => "client_4xx",
            ErrClass::Server5xx => "server_5xx",
            ErrClass::Transport => "transport",
        }
    }
}

/// What one request came back with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A 1xx–3xx answer.
    Ok(u16),
    /// An error; `pool_timeout` when the body carries Prisma's P2024 (timed
    /// out fetching a connection from the pool).
    Err {
        class: ErrClass,
        status: Option<u16>,
        pool_timeout: bool,
    },
}

impl Outcome {
    pub(super) fn err(class: ErrClass) -> Outcome {
        Outcome::Err {
            class,
            status: None,
            pool_timeout: false,
        }
    }
    /// Whether the request got as far as an HTTP answer or a timeout (its
    /// latency is meaningful).
    pub fn has_latency(&self) -> bool {
        !matches!(
            self,
            Outcome::Err {
                class: ErrClass::Refused | ErrClass::Transport,
                ..
            }
        )
    }
}

/// Classifies an answer's status (and body, for P2024).
pub fn classify(status: u16, body: &[u8]) -> Outcome {
    if status < 400 {
        return Outcome::Ok(status);
    }
    let class = match status {
        429 => ErrClass::RateLimited,
        400..=499 => ErrClass::Client4xx,
        _ => ErrClass::Server5xx,
    };
    Outcome::Err {
        class,
        status: Some(status),
        pool_timeout: is_pool_timeout(body),
    }
}

fn is_pool_timeout(body: &[u8]) -> bool {
    const NEEDLES: [&[u8]; 2] = [
        b"P2024",
        b"fetching a new connection from the connection pool",
    ];
    NEEDLES
        .iter()
        .any(|n| body.windows(n.len()).any(|w| w == *n))
}

/// An answer's headers and body, kept for captures.
pub struct Answer {
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_like_k6() {
        assert_eq!(classify(201, b""), Outcome::Ok(201));
        assert_eq!(classify(302, b""), Outcome::Ok(302));
        let is = |o: Outcome, c: ErrClass, p: bool| {
            assert!(
                matches!(o, Outcome::Err { class, pool_timeout, .. } if class == c && pool_timeout == p),
                "{o:?}"
            )
        };
        is(classify(429, b"{}"), ErrClass::RateLimited, false);
        is(classify(404, b""), ErrClass::Client4xx, false);
        is(classify(503, b""), ErrClass::Server5xx, false);
        is(
            classify(400, b"{\"message\":\"Failed to send message: Timed out fetching a new connection from the connection pool.\"}"),
            ErrClass::Client4xx,
            true,
        );
    }
}
