//! What chatops knows about the target chat backend (the seed's NestJS +
//! Prisma + PostgreSQL service): read by the checks, the diagnosis, the load
//! monitor and the sandbox, so that they agree.

/// The seed's database name.
pub const DB_NAME: &str = "chat_backend_db";

/// The 12 tables of the chat backend's schema.
pub const TABLES: [&str; 12] = [
    "users",
    "posts",
    "interactions",
    "connections",
    "coolness_ratings",
    "pushes",
    "post_views",
    "conversations",
    "conversation_users",
    "messages",
    "message_reads",
    "attachments",
];

/// Prisma's pool settings in DATABASE_URL's query string.
pub const PRISMA_POOL_PARAMS: [&str; 3] = ["connection_limit", "pool_timeout", "connect_timeout"];

/// The `application_name` chatops' own PostgreSQL sessions carry, so that
/// its counts leave itself out.
pub const APP_NAME: &str = "chatops";

/// The seed's pg_stat_activity thresholds for active sessions (Phase 2's
/// `watch`: warn above 40, critical above 48 for a pool of 50).
pub const WARN_ACTIVE: u32 = 40;
pub const CRITICAL_ACTIVE: u32 = 48;
