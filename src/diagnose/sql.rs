//! SQL faults: schema drift and the read-only queries of `sql` checks.

use super::{Diagnosis, Fault};

/// Root cause and fix of a fault of this family; `None` for another family's.
pub(super) fn word(f: &Fault) -> Option<Diagnosis> {
    let d = |root: String, remedy: String| {
        Some(Diagnosis {
            root_cause: root,
            remedy,
        })
    };
    match f {
        Fault::SchemaDrift { schema, missing_tables, missing_columns, hints } => {
            let mut what = Vec::new();
            if !missing_tables.is_empty() {
                what.push(format!("table(s) {}", missing_tables.join(", ")));
            }
            if !missing_columns.is_empty() {
                what.push(format!("column(s) {}", missing_columns.join(", ")));
            }
            let hint = if hints.is_empty() { String::new() } else { format!(" Found instead: {}.", hints.join("; ")) };
            d(
                format!("Schema drift: the database (schema `{schema}`) lacks {} that the backend's queries name (Prisma P2021/P2022, \"does not exist in the current database\").{hint} The seed's case: the code used `messageType` and `readReceipts` while the schema has `type` and `messageReads`.", what.join(" and ")),
                "Make the code, the Prisma client and the database agree: apply the missing migration (`npx prisma migrate deploy`), or fix the field names in the code; then regenerate the Prisma client and rebuild cleanly (`rm -rf dist node_modules/.prisma && npx prisma generate && npm run build`) and restart the backend.".into(),
            )
        }
        Fault::ReadOnlyViolation { message } => d(
            format!("The SQL check tried to write, and PostgreSQL refused it inside the check's READ ONLY transaction (SQLSTATE 25006: {message}). Nothing was changed."),
            "Checks only read: rewrite the statement as a SELECT (an assertion on the data), and make changes with a migration instead.".into(),
        ),
        Fault::SqlTimeout { limit_ms } => d(
            format!("The SQL check's statement ran longer than its statement_timeout of {limit_ms} ms and was cancelled (SQLSTATE 57014)."),
            "Look for locks or a missing index (EXPLAIN the query; see pg_stat_activity for blockers), or raise the check's statement_timeout if the query is known to be slow.".into(),
        ),
        Fault::SqlError { code, message } => d(
            format!("The SQL check's statement failed: {message} (SQLSTATE {code})."),
            match code.as_str() {
                "42P01" | "42703" => "The table or column does not exist: see the schema checks (tables_exist, columns_exist) and apply the missing migration.".into(),
                "42601" => "Fix the SQL syntax of the check's query.".into(),
                "42501" => "Grant the check's role SELECT on what it reads.".into(),
                _ => "Run the query in psql to see the full error; values go in `params` as $1, $2, …".into(),
            },
        ),
        Fault::SqlAssertion { what, expected, actual } => d(
            format!("The query's {what} is {actual}, expected {expected}."),
            "Check the data the backend depends on (the seed's test user and conversation, for example), or adjust the assertion.".into(),
        ),
        _ => None,
    }
}
