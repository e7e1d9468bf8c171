//! Source declarations: which Parquet files make up each table, which columns
//! identify members, and the data category of every other column.
//!
//! ```toml
//! [redaction]                       # optional: member names for the PERSON detector
//! names_table = "members"
//! name_columns = ["given_name", "surname"]
//!
//! [tables.messages]
//! path = "messages.parquet"         # a file, or a directory of *.parquet files
//! members = ["sender_id", "recipient_id"]
//! droppable = []                    # member columns nulled (not the row dropped) when that party refuses
//! redact = ["text"]                 # free-text columns
//! [tables.messages.columns]         # every other column, with its category
//! text = "user.content.private"
//! [tables.connections.owned]        # optional: columns nulled together with a dropped party
//! member_b = []
//! ```
//!
//! A column a file holds but the declaration does not name never passes.
//! Relative paths resolve against the declaration's base directory.

use crate::GateError;
use arrow_schema::{DataType, Schema};
use consentry_policy::{MEMBER_ID, Policy};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The declaration for the synthetic network that `consentry synth` writes.
pub const SYNTHETIC: &str = include_str!("../sources/synthetic.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSources {
    #[serde(default)]
    redaction: Option<RawRedaction>,
    #[serde(default)]
    tables: BTreeMap<String, RawTable>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedaction {
    names_table: String,
    name_columns: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    path: String,
    #[serde(default)]
    members: Vec<String>,
    #[serde(default)]
    droppable: Vec<String>,
    #[serde(default)]
    redact: Vec<String>,
    #[serde(default)]
    columns: BTreeMap<String, String>,
    #[serde(default)]
    owned: BTreeMap<String, Vec<String>>,
}

/// A column that identifies a member (a party of the row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberColumn {
    /// Column name.
    pub column: String,
    /// When this party refuses, null its columns instead of dropping the row.
    pub droppable: bool,
    /// Further columns that belong to this party and are nulled with it.
    pub owned: Vec<String>,
}

/// One declared source table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDecl {
    /// Table name (also the output sub-directory).
    pub name: String,
    /// A Parquet file or a directory of them, resolved.
    pub path: PathBuf,
    /// The member-id columns, in declaration order; the first is the row's own subject.
    pub members: Vec<MemberColumn>,
    /// Category of every other passable column.
    pub columns: BTreeMap<String, String>,
    /// Free-text columns to redact.
    pub redact: BTreeSet<String>,
}

/// Where member names for the PERSON detector come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameSource {
    /// A declared table.
    pub table: String,
    /// Columns joined by a space to form a full name.
    pub columns: Vec<String>,
}

/// A validated source declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    /// Where the declaration came from, for messages.
    pub file: String,
    /// Tables by name.
    pub tables: Vec<TableDecl>,
    /// Member names for redaction, if declared.
    pub names: Option<NameSource>,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn valid_category(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

impl Sources {
    /// Parses and validates a declaration; relative paths resolve against `base`.
    pub fn parse(file: &str, text: &str, base: &Path) -> Result<Sources, GateError> {
        let err = |message: String| GateError::Declaration { file: file.to_string(), message };
        let raw: RawSources = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        if raw.tables.is_empty() {
            return Err(err("no [tables.…] declared".into()));
        }
        let mut tables = Vec::new();
        for (name, t) in raw.tables {
            if !valid_name(&name) {
                return Err(err(format!("table name `{name}` must be lower-case letters, digits and `_`")));
            }
            let mut seen = BTreeSet::new();
            for c in t.members.iter().chain(t.columns.keys()) {
                if !seen.insert(c.as_str()) {
                    return Err(err(format!(
                        "table `{name}`: column `{c}` is declared twice (as a member id and a category column)"
                    )));
                }
            }
            for (c, cat) in &t.columns {
                if !valid_category(cat) {
                    return Err(err(format!("table `{name}`: column `{c}` has category `{cat}`, not a dotted key")));
                }
                if cat == MEMBER_ID || cat.starts_with(&format!("{MEMBER_ID}.")) {
                    return Err(err(format!(
                        "table `{name}`: column `{c}` is declared as data of category `{cat}`, but a member id is \
                         not data: declare it in `members = [\"{c}\"]` so the gate checks that member's consent"
                    )));
                }
            }
            for d in &t.droppable {
                if !t.members.contains(d) {
                    return Err(err(format!("table `{name}`: droppable column `{d}` is not one of its members")));
                }
            }
            for r in &t.redact {
                if !t.columns.contains_key(r) {
                    return Err(err(format!(
                        "table `{name}`: redact column `{r}` has no category in [tables.{name}.columns]"
                    )));
                }
            }
            for (m, cols) in &t.owned {
                if !t.droppable.contains(m) {
                    return Err(err(format!("table `{name}`: owned columns of `{m}`, which is not droppable")));
                }
                for c in cols {
                    if !t.columns.contains_key(c) {
                        return Err(err(format!("table `{name}`: owned column `{c}` has no category")));
                    }
                }
            }
            let path = if Path::new(&t.path).is_absolute() { PathBuf::from(&t.path) } else { base.join(&t.path) };
            let members = t
                .members
                .iter()
                .map(|c| MemberColumn {
                    column: c.clone(),
                    droppable: t.droppable.contains(c),
                    owned: t.owned.get(c).cloned().unwrap_or_default(),
                })
                .collect();
            tables.push(TableDecl { name, path, members, columns: t.columns, redact: t.redact.into_iter().collect() });
        }
        // A column that identifies members in one table is a member id wherever it appears.
        let member_columns: BTreeSet<&str> =
            tables.iter().flat_map(|t: &TableDecl| t.members.iter().map(|m| m.column.as_str())).collect();
        for t in &tables {
            if let Some(c) = t.columns.keys().find(|c| member_columns.contains(c.as_str())) {
                return Err(err(format!(
                    "table `{}`: column `{c}` is a member-id column elsewhere in the declaration, but here it is \
                     declared as data of category `{}`: declare it in `members = [\"{c}\"]` so the gate checks \
                     that member's consent",
                    t.name, t.columns[c]
                )));
            }
        }
        let names = match raw.redaction {
            None => None,
            Some(r) => {
                let Some(t) = tables.iter().find(|t| t.name == r.names_table) else {
                    return Err(err(format!("[redaction] names_table `{}` is not a declared table", r.names_table)));
                };
                for c in &r.name_columns {
                    if !t.columns.contains_key(c) {
                        return Err(err(format!(
                            "[redaction] name column `{c}` is not declared in table `{}`",
                            t.name
                        )));
                    }
                }
                Some(NameSource { table: r.names_table, columns: r.name_columns })
            }
        };
        Ok(Sources { file: file.to_string(), tables, names })
    }

    /// Reads a declaration file; relative paths resolve against `base`, or the file's directory.
    pub fn load(path: &Path, base: Option<&Path>) -> Result<Sources, GateError> {
        let text = std::fs::read_to_string(path).map_err(|e| GateError::io(path, e))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Sources::parse(&path.display().to_string(), &text, base.unwrap_or(&dir))
    }

    /// Every category must be declared by the policy, so a typo cannot silently exclude (or pass) a column; and a
    /// table holding a personal category (every category unless the policy says `personal = false`) must name a
    /// member-id column, or its rows would pass without anyone's consent being checked.
    pub fn check_policy(&self, policy: &Policy) -> Result<(), GateError> {
        let err = |message: String| GateError::Declaration { file: self.file.clone(), message };
        for t in &self.tables {
            for (c, cat) in &t.columns {
                let Some(category) = policy.category(cat) else {
                    return Err(err(format!(
                        "table `{}`: column `{c}` has category `{cat}`, which the policy does not declare",
                        t.name
                    )));
                };
                if t.members.is_empty() && category.personal {
                    return Err(err(format!(
                        "table `{}` names no member-id column, but its column `{c}` holds personal data (category \
                         `{cat}`): without the column that says whose rows they are, no one's consent would be \
                         checked; declare it with `members = [\"…\"]`, or mark the category `personal = false` in \
                         the policy if it is not about members",
                        t.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// A table by name.
    pub fn table(&self, name: &str) -> Option<&TableDecl> {
        self.tables.iter().find(|t| t.name == name)
    }
}

impl TableDecl {
    /// The table's Parquet files, sorted by name; an error if there are none.
    pub fn files(&self) -> Result<Vec<PathBuf>, GateError> {
        let meta = std::fs::metadata(&self.path).map_err(|e| GateError::io(&self.path, e))?;
        if meta.is_file() {
            return Ok(vec![self.path.clone()]);
        }
        let mut v = Vec::new();
        for e in std::fs::read_dir(&self.path).map_err(|e| GateError::io(&self.path, e))? {
            let p = e.map_err(|e| GateError::io(&self.path, e))?.path();
            if p.extension().is_some_and(|x| x == "parquet") && p.is_file() {
                v.push(p);
            }
        }
        if v.is_empty() {
            return Err(GateError::Invalid(format!(
                "table `{}`: {} holds no .parquet files",
                self.name,
                self.path.display()
            )));
        }
        v.sort();
        Ok(v)
    }

    /// True when `column` is a member-id column.
    pub fn is_member(&self, column: &str) -> bool {
        self.members.iter().any(|m| m.column == column)
    }

    /// Checks a file's schema against the declaration: every declared column present with a supported type.
    pub fn check_schema(&self, path: &Path, schema: &Schema) -> Result<(), GateError> {
        let field = |column: &str| {
            schema.field_with_name(column).map_err(|_| GateError::MissingColumn {
                path: path.to_path_buf(),
                table: self.name.clone(),
                column: column.to_string(),
            })
        };
        let type_err = |column: &str, found: &DataType, expected: &str| GateError::ColumnType {
            path: path.to_path_buf(),
            table: self.name.clone(),
            column: column.to_string(),
            found: found.to_string(),
            expected: expected.to_string(),
        };
        for m in &self.members {
            let f = field(&m.column)?;
            if !matches!(f.data_type(), DataType::UInt64 | DataType::Int64 | DataType::UInt32 | DataType::Int32) {
                return Err(type_err(&m.column, f.data_type(), "an integer member id (UInt64, Int64, UInt32, Int32)"));
            }
        }
        for c in self.columns.keys() {
            let f = field(c)?;
            if self.redact.contains(c) {
                if !matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8) {
                    return Err(type_err(c, f.data_type(), "text (Utf8) for a redacted column"));
                }
            } else if !crate::commit::supported(f.data_type()) {
                return Err(type_err(
                    c,
                    f.data_type(),
                    "a supported type (integers, floats, booleans, text, dates, timestamps, lists of text)",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_declaration_parses_and_matches_the_default_policy() {
        let s = Sources::parse("synthetic.toml", SYNTHETIC, Path::new("/net")).unwrap();
        s.check_policy(&Policy::default_policy()).unwrap();
        assert!(s.table("messages").unwrap().members.len() == 2);
        assert!(s.table("connections").unwrap().members.iter().all(|m| m.droppable));
    }

    #[test]
    fn a_personal_table_needs_a_member_column() {
        let policy = Policy::default_policy();
        // Job activity without the column saying whose it is: every row would pass.
        let text =
            "[tables.t]\npath='a'\n[tables.t.columns]\njob_id='system.catalog'\naction='user.behavior.job_activity'\n";
        let e = Sources::parse("x", text, Path::new(".")).unwrap().check_policy(&policy).unwrap_err();
        assert!(e.is_bad_input(), "{e}");
        assert!(e.to_string().contains("`t` names no member-id column") && e.to_string().contains("`action`"), "{e}");
        // With one it is fine, and a catalogue of non-personal columns needs none.
        let text = "[tables.t]\npath='a'\nmembers=['m']\n[tables.t.columns]\naction='user.behavior.job_activity'\n";
        Sources::parse("x", text, Path::new(".")).unwrap().check_policy(&policy).unwrap();
        let text = "[tables.jobs]\npath='a'\n[tables.jobs.columns]\njob_id='system.catalog'\n";
        Sources::parse("x", text, Path::new(".")).unwrap().check_policy(&policy).unwrap();
    }

    #[test]
    fn a_member_id_is_never_a_data_column() {
        let text = "[tables.t]\npath='a'\n[tables.t.columns]\nmember_id='user.unique_id'\n";
        let e = Sources::parse("x", text, Path::new(".")).unwrap_err();
        assert!(e.to_string().contains("`member_id`") && e.to_string().contains("members = "), "{e}");
        // Laundered through a non-personal category: the name is a member id in another table.
        let text = "[tables.a]\npath='a'\nmembers=['member_id']\n[tables.a.columns]\nx='user.name'\n\
                    [tables.b]\npath='b'\n[tables.b.columns]\nmember_id='system.catalog'\n";
        let e = Sources::parse("x", text, Path::new(".")).unwrap_err();
        assert!(e.to_string().contains("table `b`: column `member_id` is a member-id column elsewhere"), "{e}");
    }

    #[test]
    fn errors_name_table_and_column() {
        let e =
            Sources::parse("x", "[tables.t]\npath='a'\nmembers=['m']\nredact=['text']\n", Path::new(".")).unwrap_err();
        assert!(e.to_string().contains("`t`") && e.to_string().contains("`text`"), "{e}");
        let e =
            Sources::parse("x", "[tables.t]\npath='a'\nmembers=['m']\ndroppable=['n']\n", Path::new(".")).unwrap_err();
        assert!(e.to_string().contains("`n`"), "{e}");
        let e = Sources::parse("x", "[tables.t]\npath='a'\n[tables.t.columns]\nc='user.nope'\n", Path::new("."))
            .unwrap()
            .check_policy(&Policy::default_policy())
            .unwrap_err();
        assert!(e.to_string().contains("user.nope"), "{e}");
    }
}
