//! `prisma/migrations/*` on disk: each folder's name and the checksum
//! Prisma records for it (SHA-256 of its `migration.sql`).

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub struct OnDisk {
    /// The folder's name: `20240101000000_init` (the table's `migration_name`).
    pub name: String,
    pub sql: PathBuf,
    /// Hex SHA-256 of `migration.sql`; None when it cannot be read.
    pub checksum: Option<String>,
}

/// The migration folders under `dir` (those holding a `migration.sql`),
/// sorted by name as Prisma applies them. `migration_lock.toml` and other
/// files are left out.
pub fn on_disk(dir: &Path) -> Vec<OnDisk> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<OnDisk> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let sql = e.path().join("migration.sql");
            if !sql.exists() {
                return None;
            }
            Some(OnDisk {
                name: e.file_name().to_string_lossy().into_owned(),
                checksum: std::fs::read(&sql)
                    .ok()
                    .map(|b| super::files::sha256_hex(&b)),
                sql,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_with_sql_sorted_and_hashed() {
        let d = std::env::temp_dir().join(format!("chatops-migr-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        for n in ["20240201000000_b", "20240101000000_a", "not_a_migration"] {
            std::fs::create_dir_all(d.join(n)).expect("mkdir");
        }
        std::fs::write(d.join("20240101000000_a/migration.sql"), "abc").expect("w");
        std::fs::write(d.join("20240201000000_b/migration.sql"), "x").expect("w");
        std::fs::write(d.join("migration_lock.toml"), "provider = \"postgresql\"").expect("w");
        let m = on_disk(&d);
        let names: Vec<&str> = m.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["20240101000000_a", "20240201000000_b"]);
        assert_eq!(
            m[0].checksum.as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert!(on_disk(&d.join("missing")).is_empty());
        let _ = std::fs::remove_dir_all(&d);
    }
}
