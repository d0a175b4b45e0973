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

/// Damerau-free Levenshtein distance, small inputs only.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The closest candidate, if it is close enough to be a plausible typo.
pub fn nearest<'a, I: IntoIterator<Item = &'a str>>(word: &str, candidates: I) -> Option<String> {
    let lw = word.to_ascii_lowercase().replace('-', "_");
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = distance(&lw, &c.to_ascii_lowercase());
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let (d, c) = best?;
    let limit = (word.chars().count() / 3).max(2);
    (d <= limit && d > 0 || (d == 0 && c != word)).then(|| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_finds_typos() {
        let kinds = ["pg_ready", "pg_connect", "port", "http", "env"];
        assert_eq!(nearest("pg_raedy", kinds), Some("pg_ready".into()));
        assert_eq!(nearest("htp", kinds), Some("http".into()));
        assert_eq!(nearest("pg-ready", kinds), Some("pg_ready".into()));
        assert_eq!(nearest("completely_different", kinds), None);
    }

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
