//! What the seed's backend is known to say when it fails (a response body, a
//! log line): its Prisma codes and messages, with their causes and fixes.

/// A root cause and remedy for error text the seed's backend is known to
/// produce (a response body, a log line), by its Prisma code or message.
pub fn known_error(text: &str) -> Option<(String, String)> {
    let lower = text.to_ascii_lowercase();
    let has = |xs: &[&str]| xs.iter().any(|x| lower.contains(x));
    if has(&["does not exist in the current database", "p2022", "p2021"]) {
        Some((format!("The backend's queries name a column or table the database does not have (schema drift; Prisma P2021/P2022): {}", excerpt(text, 200)), "Regenerate the Prisma client and rebuild cleanly: `rm -rf dist && npx prisma generate && npm run build`, then restart; or apply the missing migration.".to_string()))
    } else if has(&["timed out fetching a new connection", "p2024"]) {
        Some(("The backend's connection pool is exhausted (Prisma P2024: timed out fetching a connection from the pool).".to_string(), "Raise connection_limit in DATABASE_URL to what `chatops pool-calc` gives for the load, within max_connections headroom.".to_string()))
    } else if has(&["not a participant"]) {
        Some(("The backend does not see the seeded conversation: it is most likely running in mock mode (an empty in-memory store).".to_string(), "Run the backend with PRISMA_CLIENT_MODE=database and a DATABASE_URL, then restart it.".to_string()))
    } else if has(&["can't reach database", "p1001"])
        || (has(&["econnrefused"]) && has(&["5432", "database", "prisma", "postgres"]))
    {
        Some(("The backend cannot reach PostgreSQL (Prisma P1001).".to_string(), "Start PostgreSQL or fix the host and port in the backend's DATABASE_URL, then restart the backend.".to_string()))
    } else if has(&["eaddrinuse", "address already in use"]) {
        Some(("The backend could not bind its port: another process holds it (EADDRINUSE), often an older instance of the backend.".to_string(), "Stop the process holding the port (`lsof -ti:PORT | xargs kill`), then start the backend again.".to_string()))
    } else if has(&[
        "too many clients",
        "53300",
        "remaining connection slots are reserved",
    ]) {
        Some(("PostgreSQL refuses new connections: max_connections is exhausted (53300 too many clients).".to_string(), "Lower the pools (connection_limit × replicas) to fit max_connections with headroom (`chatops pool-calc`), or put PgBouncer in front.".to_string()))
    } else {
        None
    }
}

/// First `n` characters of a body, on one line.
pub fn excerpt(s: &str, n: usize) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > n {
        let cut: String = one.chars().take(n).collect();
        format!("{cut}…")
    } else {
        one
    }
}

#[cfg(test)]
mod tests {
    use super::{excerpt, known_error};
    use crate::diagnose::samples::says;

    #[test]
    fn the_backends_known_errors_are_recognised() {
        let cases: [(&str, &str, &str); 6] = [
            (
                "Invalid `prisma.message.create()`: P2022 The column `messageType` does not exist in the current database.",
                "P2021/P2022",
                "npx prisma generate",
            ),
            (
                "Timed out fetching a new connection from the connection pool (P2024)",
                "P2024",
                "chatops pool-calc",
            ),
            (
                "User is not a participant of this conversation",
                "mock mode",
                "PRISMA_CLIENT_MODE=database",
            ),
            (
                "Error: connect ECONNREFUSED 127.0.0.1:5432",
                "P1001",
                "Start PostgreSQL",
            ),
            (
                "Error: listen EADDRINUSE: address already in use :::3001",
                "EADDRINUSE",
                "lsof -ti:PORT",
            ),
            (
                "FATAL: remaining connection slots are reserved",
                "53300",
                "PgBouncer",
            ),
        ];
        for (text, root, fix) in cases {
            let Some((r, f)) = known_error(text) else {
                panic!("not recognised: {text}");
            };
            says(&r, &[root]);
            says(&f, &[fix]);
        }
        // ECONNREFUSED to something else than the database is not P1001.
        assert!(known_error("connect ECONNREFUSED 10.0.0.5:6379 (redis)").is_none());
        assert!(known_error("all good").is_none());
    }

    #[test]
    fn excerpts_are_one_line_and_cut() {
        assert_eq!(excerpt("a\n  b\tc", 10), "a b c");
        assert_eq!(excerpt("abcdef", 3), "abc…");
        assert_eq!(excerpt("ééé", 3), "ééé");
    }
}
