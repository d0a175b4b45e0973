//! The send in an interactive transaction that locks its conversation's row
//! (`lock_contention`): as a Prisma `$transaction(async (tx) => …)` that
//! reads the conversation `FOR UPDATE`, does its work while holding the lock,
//! inserts the message, touches the conversation and commits. Concurrent
//! sends to the same conversation queue on that row lock: in
//! pg_stat_activity they wait with `wait_event_type = 'Lock'`, blocked by the
//! holder (`pg_blocking_pids`), which sits `idle in transaction`.

use super::db::{Created, Db, Param, PrismaError, rows};
use std::time::Duration;
use tokio_postgres::types::Type;

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
        let b = self.url().pgbouncer;
        self.run("prisma.$transaction()", |c| async move {
            c.batch_execute("BEGIN").await?;
            let work = async {
                rows(&c, b, LOCK_SQL, &[(&cid, Type::TEXT)]).await?;
                // The application's work between the statements, lock held.
                tokio::time::sleep(hold).await;
                let t = Type::TEXT;
                let params: [Param; 6] = [
                    (&id, t.clone()),
                    (&cid, t.clone()),
                    (&uid, t.clone()),
                    (&content, t.clone()),
                    (&kind, t.clone()),
                    (&created_at, t),
                ];
                let row = rows(&c, b, &sql, &params).await?;
                rows(&c, b, TOUCH_SQL, &[(&cid, Type::TEXT)]).await?;
                row.first().map(Db::created).transpose()
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
