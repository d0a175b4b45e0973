//! The dependency graph of a playbook's checks: `needs` that name no check,
//! a check that needs itself, and cycles.

use super::error::{LoadError, nearest};
use super::{CheckSpec, Playbook};
use std::collections::HashMap;

/// Every `needs` names an existing check other than itself, and the needs
/// form no cycle.
pub(super) fn check_graph(pb: &Playbook) -> Result<(), LoadError> {
    let ids: Vec<&str> = pb.checks().map(|c| c.id.as_str()).collect();
    for c in pb.checks() {
        for n in &c.needs {
            if !ids.contains(&n.as_str()) {
                return Err(LoadError::new(
                    &c.file,
                    Some(c.loc),
                    &format!("{}.needs", c.id),
                    format!("check `{}` needs `{n}`, which no check has as its id", c.id),
                )
                .suggest(nearest(n, ids.iter().copied())));
            }
            if *n == c.id {
                return Err(LoadError::new(
                    &c.file,
                    Some(c.loc),
                    &format!("{}.needs", c.id),
                    format!("check `{}` needs itself", c.id),
                ));
            }
        }
    }
    // Cycle detection by depth-first search.
    let by_id: HashMap<&str, &CheckSpec> = pb.checks().map(|c| (c.id.as_str(), c)).collect();
    let mut state: HashMap<&str, u8> = HashMap::new();
    fn visit<'a>(
        id: &'a str,
        by_id: &HashMap<&'a str, &'a CheckSpec>,
        state: &mut HashMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match state.get(id) {
            Some(2) => return None,
            Some(1) => {
                let start = stack.iter().position(|s| *s == id).unwrap_or(0);
                let mut cyc: Vec<String> = stack[start..].iter().map(|s| s.to_string()).collect();
                cyc.push(id.to_string());
                return Some(cyc);
            }
            _ => {}
        }
        state.insert(id, 1);
        stack.push(id);
        if let Some(c) = by_id.get(id) {
            for n in &c.needs {
                if let Some(cyc) = visit(n.as_str(), by_id, state, stack) {
                    return Some(cyc);
                }
            }
        }
        stack.pop();
        state.insert(id, 2);
        None
    }
    for c in pb.checks() {
        let mut stack = Vec::new();
        if let Some(cyc) = visit(c.id.as_str(), &by_id, &mut state, &mut stack) {
            return Err(LoadError::new(
                &c.file,
                Some(c.loc),
                &format!("{}.needs", c.id),
                format!("dependency cycle: {}", cyc.join(" → ")),
            ));
        }
    }
    Ok(())
}
