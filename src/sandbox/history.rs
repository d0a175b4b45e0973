//! The slow-history fault on the throwaway cluster: a large `messages` table
//! without the index the history query needs, so that every
//! `GET …/messages` scans it (`slow_queries`).

use super::SandboxError;
use super::pg::PgCluster;

/// The index of the chat schema that the history query
/// (`WHERE "conversationId" = $1 ORDER BY "createdAt" DESC`) uses.
pub const HISTORY_INDEX: &str = "messages_conversation_created_idx";

/// The conversation the filler rows belong to (not the seeded one, so the
/// history of the seeded conversation stays small while its query scans the
/// whole table).
pub const ARCHIVE_CONVERSATION: &str = "sandbox-archive-conversation";

/// Drops [`HISTORY_INDEX`] and adds `rows` messages to an archive
/// conversation of their own, then ANALYZEs (one `INSERT … SELECT
/// generate_series`: about a second for 200k rows).
pub(super) async fn without_index(pg: &PgCluster, db: &str, rows: u64) -> Result<(), SandboxError> {
    let sql = format!(
        r#"DROP INDEX IF EXISTS {HISTORY_INDEX};
INSERT INTO conversations (id, type, name) VALUES ('{ARCHIVE_CONVERSATION}', 'GROUP', 'Archive')
  ON CONFLICT (id) DO NOTHING;
INSERT INTO messages (id, "conversationId", "senderId", content, type, status, "createdAt", "updatedAt")
SELECT 'archive-' || g, '{ARCHIVE_CONVERSATION}', u.id, 'archived message ' || g, 'TEXT', 'READ',
       now() - make_interval(secs => g), now() - make_interval(secs => g)
FROM generate_series(1, {rows}) AS g,
     (SELECT id FROM users ORDER BY id LIMIT 1) AS u;
ANALYZE messages;"#
    );
    pg.execute(db, &sql).await.map_err(|e| SandboxError::Setup {
        message: format!("filling `messages` with {rows} rows: {}", e.message),
        hint: e.hint,
    })
}
