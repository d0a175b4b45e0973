//! A read-only `EXPLAIN` (never ANALYZE) of one statement, and the
//! sequential scans its plan shows. pg_stat_statements replaces constants
//! by `$1…`, and Prisma sends parameters anyway, so a statement text usually
//! has parameters: PostgreSQL 16+ explains it with `GENERIC_PLAN`; 12 to 15
//! through `PREPARE` with `plan_cache_mode = force_generic_plan` (the
//! parameters are never bound at planning); older servers are skipped, and
//! the reason says so. Everything runs in a `READ ONLY` transaction under a
//! statement timeout, and only `SELECT`/`WITH` statements are explained.

use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Client;

/// A sequential scan in a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeqScan {
    pub relation: String,
    /// The plan's filter (`("conversationId" = $1)`).
    pub filter: Option<String>,
    /// The column the filter compares: the index it lacks.
    pub column: Option<String>,
    /// The planner's estimate of the rows the scan reads.
    pub plan_rows: Option<f64>,
}

/// What an EXPLAIN showed, or why it was not run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explained {
    /// `EXPLAIN`, `EXPLAIN (GENERIC_PLAN)` or `PREPARE + force_generic_plan`.
    pub method: Option<String>,
    pub seq_scans: Vec<SeqScan>,
    /// Why there is no plan (when there is none).
    pub skipped: Option<String>,
}

/// The highest `$N` in a statement text (0: no parameters).
pub fn parameters(sql: &str) -> usize {
    let b = sql.as_bytes();
    let mut max = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let mut j = i + 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j > i + 1
                && let Ok(n) = sql[i + 1..j].parse::<usize>()
            {
                max = max.max(n);
            }
            i = j;
        } else {
            i += 1;
        }
    }
    max
}

/// The column a filter compares first: `("conversationId" = $1)` gives
/// `conversationId`, `(messages.user_id = 'x'::text)` gives `user_id`.
pub fn filter_column(filter: &str) -> Option<String> {
    let ops = [
        " = ", " <> ", " >= ", " <= ", " > ", " < ", " ~~ ", " IS ", " = ANY",
    ];
    let cut = ops.iter().filter_map(|o| filter.find(o)).min()?;
    let left = filter[..cut].trim().trim_start_matches('(').trim();
    let left = left.rsplit_once('.').map(|(_, c)| c).unwrap_or(left);
    let col = left.trim_matches('"').trim_end_matches(')');
    let ok = !col.is_empty()
        && col
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '$');
    ok.then(|| col.to_string())
}

/// The sequential scans in an `EXPLAIN (FORMAT JSON)` answer.
pub fn explain_plan(json: &Value) -> Vec<SeqScan> {
    fn walk(n: &Value, out: &mut Vec<SeqScan>) {
        if n["Node Type"].as_str() == Some("Seq Scan")
            && let Some(rel) = n["Relation Name"].as_str()
        {
            let filter = n["Filter"].as_str().map(str::to_string);
            out.push(SeqScan {
                relation: rel.to_string(),
                column: filter.as_deref().and_then(filter_column),
                filter,
                plan_rows: n["Plan Rows"].as_f64(),
            });
        }
        if let Some(kids) = n["Plans"].as_array() {
            for k in kids {
                walk(k, out);
            }
        }
    }
    let mut out = Vec::new();
    let root = json.get(0).map(|r| &r["Plan"]).unwrap_or(&json["Plan"]);
    walk(root, &mut out);
    out
}

fn skipped(why: impl Into<String>) -> Explained {
    Explained {
        method: None,
        seq_scans: Vec::new(),
        skipped: Some(why.into()),
    }
}

/// Explains `sql` on `client` (server version `version`), read only.
pub async fn explain(client: &Client, sql: &str, version: i32) -> Explained {
    let text = sql.trim().trim_end_matches(';').trim();
    let head = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    if !matches!(head.as_str(), "SELECT" | "WITH") {
        return skipped(format!("only SELECT statements are explained, not {head}"));
    }
    if text.contains(';') {
        return skipped("the text holds more than one statement");
    }
    if text.ends_with('…') || text.len() >= 500 {
        return skipped(
            "the statement text was cut (pg_stat_statements keeps 500 characters here)",
        );
    }
    let n = parameters(text);
    let (method, sql) = if n == 0 {
        ("EXPLAIN", format!("EXPLAIN (FORMAT JSON) {text}"))
    } else if version >= 160000 {
        (
            "EXPLAIN (GENERIC_PLAN)",
            format!("EXPLAIN (GENERIC_PLAN, FORMAT JSON) {text}"),
        )
    } else if version >= 120000 {
        let nulls = vec!["NULL"; n].join(", ");
        (
            "PREPARE + force_generic_plan",
            format!("EXPLAIN (FORMAT JSON) EXECUTE chatops_explain({nulls})"),
        )
    } else {
        return skipped(format!(
            "the statement has {n} parameter(s) and PostgreSQL {} has neither GENERIC_PLAN (16+) nor plan_cache_mode (12+)",
            version / 10000
        ));
    };
    let prepared = method.starts_with("PREPARE");
    let setup = if prepared {
        "BEGIN READ ONLY; SET LOCAL statement_timeout = '2s'; SET LOCAL plan_cache_mode = force_generic_plan"
    } else {
        "BEGIN READ ONLY; SET LOCAL statement_timeout = '2s'"
    };
    if let Err(e) = client.batch_execute(setup).await {
        return skipped(format!(
            "cannot open a read-only transaction: {}",
            super::super::error_chain(&e)
        ));
    }
    let mut result: Result<Value, String> = Ok(Value::Null);
    if prepared {
        result = prepare(client, text, n).await;
    }
    if result.is_ok() {
        result = plan_json(client, &sql).await;
    }
    if prepared {
        let _ = client.batch_execute("DEALLOCATE chatops_explain").await;
    }
    let _ = client.batch_execute("ROLLBACK").await;
    match result {
        Ok(v) => Explained {
            method: Some(method.into()),
            seq_scans: explain_plan(&v),
            skipped: None,
        },
        Err(e) => skipped(format!("EXPLAIN failed: {e}")),
    }
}

/// `PREPARE chatops_explain` with every parameter's type inferred from its
/// context; a parameter whose type cannot be inferred (an argument of
/// `json_build_object` or `to_char`'s format) is declared `text` and the
/// statement prepared again, inside a savepoint.
async fn prepare(client: &Client, text: &str, n: usize) -> Result<Value, String> {
    let mut types = vec!["unknown"; n];
    loop {
        let decl = types.join(", ");
        let _ = client.batch_execute("SAVEPOINT chatops_prepare").await;
        let Err(e) = client
            .batch_execute(&format!("PREPARE chatops_explain ({decl}) AS {text}"))
            .await
        else {
            return Ok(Value::Null);
        };
        let msg = super::super::error_chain(&e);
        let _ = client
            .batch_execute("ROLLBACK TO SAVEPOINT chatops_prepare")
            .await;
        match untyped_parameter(&msg) {
            Some(k) if (1..=n).contains(&k) && types[k - 1] == "unknown" => types[k - 1] = "text",
            _ => return Err(msg),
        }
    }
}

/// The parameter PostgreSQL could not type: `… data type of parameter $5`.
fn untyped_parameter(msg: &str) -> Option<usize> {
    const NEEDLE: &str = "could not determine data type of parameter $";
    let at = msg.find(NEEDLE)? + NEEDLE.len();
    let digits: String = msg[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The JSON text of an EXPLAIN, read through the simple protocol (text).
async fn plan_json(client: &Client, sql: &str) -> Result<Value, String> {
    let msgs = client
        .simple_query(sql)
        .await
        .map_err(|e| super::super::error_chain(&e))?;
    let text = msgs
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .ok_or_else(|| "EXPLAIN returned no plan".to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_and_filter_columns() {
        assert_eq!(parameters("SELECT 1"), 0);
        assert_eq!(
            parameters("SELECT * FROM m WHERE a = $1 LIMIT $12 OFFSET $3"),
            12
        );
        assert_eq!(parameters("SELECT '$' || x"), 0);
        assert_eq!(
            filter_column("(\"conversationId\" = $1)").as_deref(),
            Some("conversationId")
        );
        assert_eq!(
            filter_column("(messages.user_id = 'x'::text)").as_deref(),
            Some("user_id")
        );
        assert_eq!(
            filter_column("((body)::text ~~ '%x%'::text)").as_deref(),
            None,
            "an expression is no column"
        );
        assert_eq!(filter_column("(a IS NULL)").as_deref(), Some("a"));
        assert_eq!(filter_column("true"), None);
    }

    #[test]
    fn the_parameter_postgres_could_not_type() {
        assert_eq!(
            untyped_parameter("db error: ERROR: could not determine data type of parameter $5"),
            Some(5)
        );
        assert_eq!(untyped_parameter("db error: ERROR: syntax error"), None);
    }

    #[test]
    fn a_plan_names_its_seq_scans() {
        let v: Value = serde_json::from_str(
            r#"[{"Plan": {"Node Type": "Limit", "Plans": [
                 {"Node Type": "Sort", "Plans": [
                   {"Node Type": "Seq Scan", "Relation Name": "messages", "Alias": "messages",
                    "Plan Rows": 120.0, "Filter": "(\"conversationId\" = $1)"}]}]}}]"#,
        )
        .expect("json");
        let s = explain_plan(&v);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].relation, "messages");
        assert_eq!(s[0].column.as_deref(), Some("conversationId"));
        assert_eq!(s[0].plan_rows, Some(120.0));
        let idx: Value = serde_json::from_str(
            r#"[{"Plan": {"Node Type": "Index Scan", "Relation Name": "messages"}}]"#,
        )
        .expect("json");
        assert!(explain_plan(&idx).is_empty());
    }
}
