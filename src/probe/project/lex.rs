//! The lexing of Prisma's schema language that [`super::schema`] needs:
//! comments, logical lines (a parenthesis may span lines), string
//! literals, top-level commas, `@attribute(args)`.

/// Strips a `//` comment (not inside a string).
pub(super) fn strip_comment(line: &str) -> &str {
    let mut in_str = false;
    let mut prev = '\0';
    for (i, c) in line.char_indices() {
        match c {
            '"' if prev != '\\' => in_str = !in_str,
            '/' if !in_str && prev == '/' => return &line[..i - 1],
            _ => {}
        }
        prev = c;
    }
    line
}

/// Paren and bracket depth change of a line (outside strings).
pub(super) fn depth(line: &str) -> i32 {
    let mut d = 0;
    let mut in_str = false;
    let mut prev = '\0';
    for c in line.chars() {
        match c {
            '"' if prev != '\\' => in_str = !in_str,
            '(' | '[' if !in_str => d += 1,
            ')' | ']' if !in_str => d -= 1,
            _ => {}
        }
        prev = c;
    }
    d
}

/// Logical lines: comments stripped, lines joined while parentheses are
/// open; each with its first line number.
pub(super) fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut acc = String::new();
    let mut start = 0;
    let mut open = 0;
    for (i, raw) in text.lines().enumerate() {
        let l = strip_comment(raw).trim();
        if l.is_empty() && open == 0 {
            continue;
        }
        if open == 0 {
            start = i + 1;
            acc.clear();
        } else {
            acc.push(' ');
        }
        acc.push_str(l);
        open += depth(l);
        if open <= 0 {
            open = 0;
            out.push((start, acc.trim().to_string()));
        }
    }
    if !acc.is_empty() && open > 0 {
        out.push((start, acc));
    }
    out
}

/// The first string literal of `s` (`"…"`), unescaped.
pub(super) fn first_string(s: &str) -> Option<String> {
    let i = s.find('"')?;
    serde_json::Deserializer::from_str(&s[i..])
        .into_iter::<String>()
        .next()?
        .ok()
}

/// Splits `s` at top-level commas.
pub(super) fn split_top(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut d = 0;
    let mut in_str = false;
    let mut prev = '\0';
    for c in s.chars() {
        match c {
            '"' if prev != '\\' => in_str = !in_str,
            '(' | '[' if !in_str => d += 1,
            ')' | ']' if !in_str => d -= 1,
            ',' if !in_str && d == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                prev = c;
                continue;
            }
            _ => {}
        }
        cur.push(c);
        prev = c;
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// Attributes of a line: `(name, args)` for each `@name(args)` / `@@name(args)`.
pub(super) fn attributes(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    let mut in_str = false;
    while i < b.len() {
        let c = b[i] as char;
        if c == '"' && (i == 0 || b[i - 1] != b'\\') {
            in_str = !in_str;
        }
        if c == '@' && !in_str {
            let mut j = i + 1;
            if j < b.len() && b[j] == b'@' {
                j += 1;
            }
            let name_start = j;
            while j < b.len() && ((b[j] as char).is_alphanumeric() || b[j] == b'_' || b[j] == b'.')
            {
                j += 1;
            }
            let name = s[name_start..j].to_string();
            let mut args = String::new();
            if j < b.len() && b[j] == b'(' {
                let mut d = 0;
                let mut k = j;
                let mut q = false;
                while k < b.len() {
                    let ck = b[k] as char;
                    if ck == '"' && b[k - 1] != b'\\' {
                        q = !q;
                    }
                    if !q {
                        if ck == '(' {
                            d += 1;
                        } else if ck == ')' {
                            d -= 1;
                            if d == 0 {
                                break;
                            }
                        }
                    }
                    k += 1;
                }
                args = s[j + 1..k.min(b.len())].to_string();
                j = k + 1;
            }
            out.push((name, args));
            i = j;
            continue;
        }
        i += 1;
    }
    out
}

/// The named argument `key:` of an attribute's arguments.
pub(super) fn named_arg<'a>(args: &'a [String], key: &str) -> Option<&'a str> {
    args.iter().find_map(|a| {
        let (k, v) = a.split_once(':')?;
        (k.trim() == key).then_some(v.trim())
    })
}

/// `[a, b(sort: Desc), c(length: 10)]` → `[a, b, c]`.
pub(super) fn field_list(s: &str) -> Vec<String> {
    let inner = s.trim().trim_start_matches('[').trim_end_matches(']');
    split_top(inner)
        .into_iter()
        .map(|f| f.split('(').next().unwrap_or("").trim().to_string())
        .filter(|f| !f.is_empty())
        .collect()
}
