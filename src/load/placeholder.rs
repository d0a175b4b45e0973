//! The placeholder language of the mix's strings: `${pick.LIST}`,
//! `${capture.NAME}`, `${random}`, `${vu}` and `${seq}`, parsed once into
//! pieces and rendered per request with each value escaped for its place
//! (path and query, JSON, header), from a virtual user's own state (its
//! random numbers, number, sequence and captured values).

use std::collections::BTreeMap;

/// What placeholders can name: the plan's lists and the mix's captures.
#[derive(Debug, Clone, Default)]
pub struct Names {
    pub lists: Vec<(String, Vec<String>)>,
    /// Every capture name of the mix; `${capture.NAME}` indexes this.
    pub captures: Vec<String>,
}

impl Names {
    /// `captures`: the capture names of the mix, in any order, repeats allowed.
    pub fn new<'a>(
        vars: &BTreeMap<String, Vec<String>>,
        captures: impl IntoIterator<Item = &'a String>,
    ) -> Names {
        let mut captures: Vec<String> = captures.into_iter().cloned().collect();
        captures.sort();
        captures.dedup();
        Names {
            lists: vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            captures,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) enum Piece {
    Lit(String),
    Pick(usize),
    /// A value this virtual user captured from an earlier answer.
    Capture(usize),
    Random,
    Vu,
    Seq,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Escape {
    None,
    Json,
    Url,
}

/// A string with `${pick.NAME}`, `${random}`, `${vu}` and `${seq}`.
#[derive(Debug, Clone)]
pub(super) struct Tmpl {
    pub(super) pieces: Vec<(Piece, Escape)>,
}

impl Tmpl {
    pub(super) fn parse(
        s: &str,
        esc: Escape,
        names: &Names,
        out: &mut Vec<(Piece, Escape)>,
    ) -> Result<(), String> {
        let lists = &names.lists;
        let mut rest = s;
        while let Some(i) = rest.find("${") {
            if i > 0 {
                out.push((Piece::Lit(rest[..i].to_string()), Escape::None));
            }
            let after = &rest[i + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in `{s}`"))?;
            let name = after[..end].trim();
            let piece = match name {
                "random" => Piece::Random,
                "vu" => Piece::Vu,
                "seq" => Piece::Seq,
                _ if name.starts_with("capture.") => {
                    let c = &name["capture.".len()..];
                    match names.captures.iter().position(|n| n == c) {
                        Some(i) => Piece::Capture(i),
                        None => {
                            return Err(format!(
                                "`${{capture.{c}}}` names no capture of the mix (captures: {})",
                                if names.captures.is_empty() {
                                    "none".to_string()
                                } else {
                                    names.captures.join(", ")
                                }
                            ));
                        }
                    }
                }
                _ => match name.strip_prefix("pick.") {
                    Some(list) => match lists.iter().position(|(n, _)| n == list) {
                        Some(idx) if !lists[idx].1.is_empty() => Piece::Pick(idx),
                        Some(_) => return Err(format!("vars.{list} is empty")),
                        None => {
                            let names: Vec<&str> = lists.iter().map(|(n, _)| n.as_str()).collect();
                            return Err(format!(
                                "`${{pick.{list}}}` names no list in vars (lists: {})",
                                if names.is_empty() {
                                    "none".to_string()
                                } else {
                                    names.join(", ")
                                }
                            ));
                        }
                    },
                    None => {
                        return Err(format!(
                            "unknown placeholder `${{{name}}}`: use ${{pick.LIST}}, ${{capture.NAME}}, ${{random}}, ${{vu}} or ${{seq}} (${{base_url}} only at the start of the url)"
                        ));
                    }
                },
            };
            out.push((piece, esc));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            out.push((Piece::Lit(rest.to_string()), Escape::None));
        }
        Ok(())
    }

    pub(super) fn constant(&self) -> Option<String> {
        let mut s = String::new();
        for (p, _) in &self.pieces {
            match p {
                Piece::Lit(l) => s.push_str(l),
                _ => return None,
            }
        }
        Some(s)
    }

    pub(super) fn render(
        &self,
        cx: &mut RenderCx,
        lists: &[(String, Vec<String>)],
        out: &mut String,
    ) {
        let _ = self.render_checked(cx, lists, out);
    }

    /// Renders; false when a captured value is not there yet.
    pub(super) fn render_checked(
        &self,
        cx: &mut RenderCx,
        lists: &[(String, Vec<String>)],
        out: &mut String,
    ) -> bool {
        let mut complete = true;
        for (p, esc) in &self.pieces {
            let value: std::borrow::Cow<str> = match p {
                Piece::Lit(l) => {
                    out.push_str(l);
                    continue;
                }
                Piece::Pick(i) => {
                    let l = &lists[*i].1;
                    let k = (cx.rng.next_u64() % l.len() as u64) as usize;
                    l[k].as_str().into()
                }
                Piece::Capture(i) => match cx.captures.get(*i).and_then(|c| c.as_deref()) {
                    Some(v) => v.to_string().into(),
                    None => {
                        complete = false;
                        continue;
                    }
                },
                Piece::Random => format!("{:016x}", cx.rng.next_u64()).into(),
                Piece::Vu => cx.vu.to_string().into(),
                Piece::Seq => cx.seq.to_string().into(),
            };
            match esc {
                Escape::None => out.push_str(&value),
                Escape::Json => {
                    let q = serde_json::to_string(value.as_ref()).unwrap_or_default();
                    out.push_str(q.trim_matches('"'));
                }
                Escape::Url => pct_encode(&value, out),
            }
        }
        complete
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn pct_encode(s: &str, out: &mut String) {
    out.push_str(&crate::support::percent::encode(s));
}

pub(super) fn pct(s: &str) -> String {
    let mut o = String::new();
    pct_encode(s, &mut o);
    o
}

/// xorshift64*: per-task, allocation-free randomness for the mix.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

pub struct RenderCx {
    pub rng: Rng,
    pub vu: u32,
    pub seq: u64,
    /// This virtual user's captured values, by [`Names::captures`] index.
    pub captures: Vec<Option<String>>,
}

impl RenderCx {
    pub fn new(vu: u32, captures: usize) -> RenderCx {
        RenderCx {
            rng: Rng::new(u64::from(vu) + 1),
            vu,
            seq: 0,
            captures: vec![None; captures],
        }
    }
}
