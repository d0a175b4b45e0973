//! The send in an interactive transaction that locks its conversation's row
//! (`lock_contention`): as a Prisma `$transaction(async (tx) => …)` that
//! reads the conversation `FOR UPDATE`, does its work while holding the lock,
//! inserts the message, touches the conversation and commits. Concurrent
//! sends to the same conversation queue on that row lock: in
//! pg_stat_activity they wait with `wait_event_type = 'Lock'`, blocked by the
//! holder (`pg_blocking_pids`), which sits `idle in transaction`.

use super::db::{Created, Db, PrismaError};
use std::time::Duration;

const LOCK_SQL: &str = r#"SELECT id FROM conversations WHERE id = $1 FOR UPDATE"#;
const TOUCH_SQL: &str = r#"UPDATE conversations SET "updatedAt" = now() WHERE id = $1"#;

impl Db {
    /// [`create_message`](Db::create_message) inside a transaction that holds
    /// the conversation's row lock `hold` longer than it needs to.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn create_message_locked(
        &self,
        id: &str,
        cid: &str,
        uid: &str,
        content: &str,
        kind: &str,
        created_at: &str,
        hold: Duration,
    ) -> Result<Option<Created>, PrismaError> {
        let sql = self.insert_sql();
        self.run("prisma.$transaction()", |c| async move {
            c.batch_execute("BEGIN").await?;
            let work = async {
                let lock = c.prepare_cached(LOCK_SQL).await?;
                c.query_opt(&lock, &[&cid]).await?;
                // The application's work between the statements, lock held.
                tokio::time::sleep(hold).await;
                let st = c.prepare_cached(&sql).await?;
                let row = c
                    .query_opt(&st, &[&id, &cid, &uid, &content, &kind, &created_at])
                    .await?;
                let touch = c.prepare_cached(TOUCH_SQL).await?;
                c.execute(&touch, &[&cid]).await?;
                row.as_ref().map(Db::created).transpose()
            };
            match work.await {
                Ok(created) => {
                    c.batch_execute("COMMIT").await?;
                    Ok(created)
                }
                Err(e) => {
                    let _ = c.batch_execute("ROLLBACK").await;
                    Err(e)
                }
            }
        })
        .await
    }
}
