//! Located playbook errors: file, line, column, key path, what was expected,
//! and the nearest valid word when something is misspelled.

use super::yaml::Loc;
use std::fmt;

/// A playbook error (boxed: errors are rare, results are everywhere).
#[derive(Debug, Clone)]
pub struct LoadError(Box<Details>);

#[derive(Debug, Clone)]
pub struct Details {
    pub file: String,
    pub loc: Option<Loc>,
    /// Key path such as `phases[1].checks[2].kind` (empty for the whole file).
    pub path: String,
    pub message: String,
    pub suggestion: Option<String>,
    /// The offending source line, for a snippet.
    pub snippet: Option<String>,
}

impl LoadError {
    pub fn new(file: &str, loc: Option<Loc>, path: &str, message: impl Into<String>) -> Self {
        LoadError(Box::new(Details {
            file: file.to_string(),
            loc,
            path: path.to_string(),
            message: message.into(),
            suggestion: None,
            snippet: None,
        }))
    }

    pub fn suggest(mut self, s: Option<String>) -> Self {
        self.0.suggestion = s;
        self
    }

    /// Attaches the source line the error points at.
    pub fn with_source(mut self, text: &str) -> Self {
        if let Some(loc) = self.loc
            && loc.line > 0
            && let Some(line) = text.lines().nth((loc.line - 1) as usize)
        {
            let mut l: String = line.chars().take(160).collect();
            l = l.replace('\t', "    ");
            self.0.snippet = Some(l);
        }
        self
    }
}

impl std::ops::Deref for LoadError {
    type Target = Details;
    fn deref(&self) -> &Details {
        &self.0
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(loc) = self.loc
            && loc.line > 0
        {
            write!(f, ":{}:{}", loc.line, loc.column)?;
        }
        write!(f, ": ")?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "{}", self.message)?;
        if let Some(s) = &self.suggestion {
            write!(f, " (did you mean `{s}`?)")?;
        }
        if let (Some(snip), Some(loc)) = (&self.snippet, self.loc) {
            let col = loc.column.max(1) as usize;
            write!(
                f,
                "\n  {:>4} | {}\n       | {}^",
                loc.line,
                snip,
                " ".repeat(col - 1)
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

pub use crate::support::suggest::nearest;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_location_path_and_snippet() {
        let e = LoadError::new(
            "p.yaml",
            Some(Loc {
                line: 2,
                column: 9,
                file: 0,
            }),
            "phases[0].checks[1].kind",
            "unknown check kind `htp`",
        )
        .suggest(Some("http".into()))
        .with_source("a: 1\n    kind: htp\n");
        let s = e.to_string();
        assert!(s.starts_with("p.yaml:2:9: phases[0].checks[1].kind: unknown check kind `htp` (did you mean `http`?)"), "{s}");
        assert!(s.contains("kind: htp"));
    }
}
