//! The generic-500 knob: a database error (here schema drift) answers
//! NestJS's default `500 Internal server error`; the cause (P2022's text) is
//! only in the log, on the ExceptionsHandler line and Prisma's own line.

use super::*;

const P2022: &str = "The column `messages.messageType` does not exist in the current database.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_answers_a_generic_500_and_logs_the_cause() {
    let mut sb = sandbox(PgOptions::default()).await;
    let http = reqwest::Client::new();

    // The default stays the public code's: 400 with the cause in the body.
    let (base, _, _) = start(
        &mut sb,
        Knobs {
            drift: true,
            ..Knobs::default()
        },
    )
    .await;
    let (status, body) = send(&http, &base, "drift").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains(&format!("Failed to send message: {P2022}")),
        "{body}"
    );

    let (base, _, log) = start(
        &mut sb,
        Knobs {
            drift: true,
            generic_500: true,
            ..Knobs::default()
        },
    )
    .await;
    let (status, body) = send(&http, &base, "drift").await;
    assert_eq!(status, 500, "{body}");
    // NestJS's default filter, keys in its order.
    assert_eq!(
        body,
        r#"{"statusCode":500,"message":"Internal server error"}"#
    );
    assert!(
        !body.contains("messageType"),
        "the cause is not in the body"
    );
    let text = wait_for_log(&log, "[ExceptionsHandler]").await;
    let handler = text
        .lines()
        .find(|l| l.contains("[ExceptionsHandler]"))
        .unwrap_or_default();
    assert!(handler.contains(P2022), "{handler}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("prisma:error") && l.contains(P2022)),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("    at ")),
        "the handler logs the stack:\n{text}"
    );
}
