//! SQL faults: schema drift and the read-only queries of `sql` checks.

use super::{Diagnosis, Fault};

/// Root cause and fix of a fault of this family; `None` for another family's.
pub(super) fn word(f: &Fault) -> Option<Diagnosis> {
    let d = super::worded;
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

#[cfg(test)]
mod tests {
    use crate::diagnose::Fault;
    use crate::diagnose::samples::words;

    #[test]
    fn schema_drift_lists_what_is_missing_and_what_exists_instead() {
        let d = words(
            &Fault::SchemaDrift {
                schema: "public".into(),
                missing_tables: vec!["readReceipts".into()],
                missing_columns: vec!["messages.messageType".into(), "users.avatar".into()],
                hints: vec!["messages has type, not messageType".into()],
            },
            &[
                "schema `public`",
                "table(s) readReceipts and column(s) messages.messageType, users.avatar",
                "Found instead: messages has type, not messageType.",
            ],
            &["npx prisma migrate deploy", "npx prisma generate"],
        );
        let d2 = words(
            &Fault::SchemaDrift {
                schema: "public".into(),
                missing_tables: vec![],
                missing_columns: vec!["users.avatar".into()],
                hints: vec![],
            },
            &["lacks column(s) users.avatar that"],
            &[],
        );
        assert!(d.root_cause.contains("Found instead") && !d2.root_cause.contains("Found instead"));
    }

    #[test]
    fn statement_faults_name_the_sqlstate_and_the_fix_for_it() {
        words(
            &Fault::ReadOnlyViolation {
                message: "cannot execute DELETE in a read-only transaction".into(),
            },
            &["25006", "cannot execute DELETE", "Nothing was changed"],
            &["SELECT", "migration"],
        );
        words(
            &Fault::SqlTimeout { limit_ms: 2000 },
            &["2000 ms", "57014"],
            &["EXPLAIN"],
        );
        let e = |code: &str| Fault::SqlError {
            code: code.into(),
            message: "the message".into(),
        };
        words(
            &e("42P01"),
            &["the message (SQLSTATE 42P01)"],
            &["tables_exist"],
        );
        words(&e("42703"), &[], &["columns_exist"]);
        words(&e("42601"), &[], &["SQL syntax"]);
        words(&e("42501"), &[], &["Grant the check's role SELECT"]);
        words(&e("22P02"), &[], &["psql", "$1"]);
        words(
            &Fault::SqlAssertion {
                what: "row count".into(),
                expected: "1".into(),
                actual: "0".into(),
            },
            &["row count is 0, expected 1"],
            &["adjust the assertion"],
        );
    }
}
