//! Any interactions table as a recommender: a member column, an item column and an optional weight and time column
//! of a table the source declaration names and the gate let through, read into the same [`RecInput`] the job and
//! content recommenders train on, so sharding, implicit ALS, evaluation, serving and unlearning are theirs.
//!
//! What is checked, before anything is read (every refusal says what to do):
//! - the table is one the dataset holds (else the dataset's tables are listed);
//! - the member column is one of the table's declared member-id columns (its first, when not named);
//! - the item, weight and time columns are data columns the gate wrote — their category is one the purpose declares —
//!   and never a member-id column: items are not members, or a removed member would stay an item in every other shard;
//! - types: integer or string item ids (strings become keyed 63-bit hashes, [`string_item_id`]), a numeric weight
//!   (finite, not negative; a zero weight is no interaction), a timestamp or date for time;
//! - with the source declaration at hand ([`check_declaration`]): no column holding a member's free text.
//!
//! Without a time column, a member's held-out interactions are a keyed-hash sample of their items (fixed per member
//! and item), not their latest: the split never depends on file order.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType, UInt64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Schema, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use crate::LearnError;
use crate::data::Dataset;
use crate::recs::{Event, RecHyper, RecInput};

/// Which table and columns an items model trains on; recorded in `model.json` (as part of the training options) so
/// unlearning and serving replay exactly the same reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemsSpec {
    /// The table, as the source declaration names it.
    pub table: String,
    /// The member-id column the rows are about; `None` asks for the table's first declared member column (training
    /// records the one it used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_column: Option<String>,
    /// The item id column.
    pub item_column: String,
    /// A numeric interaction weight (default: 1 per row; repeated rows add up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_column: Option<String>,
    /// When the interaction happened: the held-out split takes each member's latest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_column: Option<String>,
    /// Whether the item column holds strings (hashed to ids); set by [`resolve`], so serving can name items.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub string_ids: bool,
}

impl ItemsSpec {
    /// A spec for `table` and `item_column`, every other column left to defaults.
    pub fn new(table: &str, item_column: &str) -> ItemsSpec {
        ItemsSpec {
            table: table.into(),
            member_column: None,
            item_column: item_column.into(),
            weight_column: None,
            time_column: None,
            string_ids: false,
        }
    }

    /// The data columns it reads besides the member column, with the role each plays (for messages).
    fn data_columns(&self) -> Vec<(&'static str, &str)> {
        let mut v = vec![("item", self.item_column.as_str())];
        if let Some(w) = &self.weight_column {
            v.push(("weight", w));
        }
        if let Some(t) = &self.time_column {
            v.push(("time", t));
        }
        v
    }
}

/// What the types a column may have are, per role, for messages.
const ITEM_TYPES: &str = "integer or string ids (Int8…Int64, UInt8…UInt64, Utf8)";
const WEIGHT_TYPES: &str = "a number (integer or floating point)";
const TIME_TYPES: &str = "a timestamp or a date (Timestamp of any unit, Date32, Date64)";
const MEMBER_TYPES: &str = "integer member ids";

fn bad(ds: &Dataset, message: String) -> LearnError {
    LearnError::Dataset { dir: ds.dir.clone(), message }
}

/// The tables of the dataset that hold rows, for messages.
fn tables(ds: &Dataset) -> String {
    let names: Vec<&str> = ds
        .manifest
        .tables
        .iter()
        .filter(|(name, t)| t.included && ds.has_table(name))
        .map(|(name, _)| name.as_str())
        .collect();
    if names.is_empty() { "none".into() } else { names.join(", ") }
}

/// Checks `spec` against the dataset's manifest and the table's file schema and returns it resolved: the member
/// column named, `string_ids` set. Nothing is trained from a spec that did not pass here.
pub fn resolve(ds: &Dataset, spec: &ItemsSpec) -> Result<ItemsSpec, LearnError> {
    let purpose = &ds.manifest.purpose;
    let Some(t) = ds.manifest.tables.get(&spec.table).filter(|t| t.included && ds.has_table(&spec.table)) else {
        return Err(bad(
            ds,
            format!(
                "it has no table `{}` (it was gated for {purpose}); its tables: {} — pass one with --table",
                spec.table,
                tables(ds)
            ),
        ));
    };
    let table = &spec.table;
    let member = match &spec.member_column {
        Some(m) if t.member_columns.contains(m) => m.clone(),
        Some(m) => {
            return Err(bad(
                ds,
                format!(
                    "`{m}` is not a member-id column of table `{table}` (the source declaration names {}); pass one of \
                     those with --member-column",
                    t.member_columns.join(", ")
                ),
            ));
        }
        None => t.member_columns.first().cloned().ok_or_else(|| {
            bad(
                ds,
                format!(
                    "table `{table}` has no member-id column (it holds no member data), so it cannot train a model \
                     of members' interactions"
                ),
            )
        })?,
    };
    let mut seen = BTreeSet::new();
    for (role, c) in spec.data_columns() {
        if !seen.insert(c) {
            return Err(bad(ds, format!("column `{c}` is given twice; the item, weight and time columns must differ")));
        }
        if t.member_columns.iter().any(|m| m == c) {
            return Err(bad(
                ds,
                format!(
                    "`{c}` is a member-id column of table `{table}`, not {} column: an items model's items must \
                     not be members (a member who withdraws would stay an item in every other shard); choose a data \
                     column: {}",
                    article(role),
                    data_columns(t)
                ),
            ));
        }
        if t.columns.iter().any(|x| x == c) {
            continue;
        }
        let why = if t.minimised.iter().any(|x| x == c) {
            format!("the purpose {purpose} does not declare its category, so the gate left it out")
        } else if t.undeclared.iter().any(|x| x == c) {
            "the source declaration does not name it, so it never passes the gate".to_string()
        } else {
            format!("table `{table}` has no such column")
        };
        return Err(bad(
            ds,
            format!("{role} column `{c}`: {why}; the columns this dataset holds for `{table}`: {}", data_columns(t)),
        ));
    }
    let schema = table_schema(ds, table)?;
    let field = |c: &str| {
        schema.field_with_name(c).map(|f| f.data_type().clone()).map_err(|_| LearnError::Column {
            column: c.into(),
            message: format!("is missing from the files of table `{table}`; the dataset may be damaged — gate again"),
        })
    };
    let wrong = |c: &str, role: &str, found: &DataType, expected: &str| LearnError::Column {
        column: c.into(),
        message: format!("is {found}, but {} column must hold {expected}", article(role)),
    };
    let mt = field(&member)?;
    if !mt.is_integer() {
        return Err(wrong(&member, "member", &mt, MEMBER_TYPES));
    }
    let it = field(&spec.item_column)?;
    let string_ids = match &it {
        t if t.is_integer() => false,
        t if is_string(t) => true,
        t => return Err(wrong(&spec.item_column, "item", t, ITEM_TYPES)),
    };
    if let Some(w) = &spec.weight_column {
        let wt = field(w)?;
        if !(wt.is_integer() || wt.is_floating()) {
            return Err(wrong(w, "weight", &wt, WEIGHT_TYPES));
        }
    }
    if let Some(x) = &spec.time_column {
        let xt = field(x)?;
        if !matches!(xt, DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64) {
            return Err(wrong(x, "time", &xt, TIME_TYPES));
        }
    }
    Ok(ItemsSpec { member_column: Some(member), string_ids, ..spec.clone() })
}

/// Refuses columns the source declaration marks as a member's free text (`redact = [...]`): free text is not an id,
/// a weight or a time, and must never become an item (the model would store it, unredacted, as an item id's source).
pub fn check_declaration(spec: &ItemsSpec, decl: &consentry_gate::sources::TableDecl) -> Result<(), LearnError> {
    for (role, c) in spec.data_columns() {
        if decl.redact.contains(c) {
            return Err(LearnError::Column {
                column: c.into(),
                message: format!(
                    "of table `{}` holds members' free text (the source declaration redacts it), which cannot be {} \
                     {role} column; choose a column of ids: {}",
                    spec.table,
                    if role == "item" { "an" } else { "a" },
                    decl.columns.keys().filter(|k| !decl.redact.contains(*k)).cloned().collect::<Vec<_>>().join(", ")
                ),
            });
        }
    }
    Ok(())
}

fn data_columns(t: &consentry_gate::manifest::TableStats) -> String {
    let v: Vec<&str> =
        t.columns.iter().filter(|c| !t.member_columns.contains(c)).map(String::as_str).collect::<Vec<_>>();
    if v.is_empty() { "none".into() } else { v.join(", ") }
}

/// "an item", "a weight", "a time", "a member".
fn article(role: &str) -> String {
    if role == "item" { format!("an {role}") } else { format!("a {role}") }
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
        || matches!(t, DataType::Dictionary(_, v) if is_string(v))
}

/// The arrow schema of the table's first file (the gate writes one schema per table).
fn table_schema(ds: &Dataset, table: &str) -> Result<Arc<Schema>, LearnError> {
    let prefix = format!("{table}/");
    let rel = ds
        .manifest
        .files
        .iter()
        .find(|f| f.path.starts_with(&prefix))
        .map(|f| f.path.clone())
        .ok_or_else(|| bad(ds, format!("it has no files for table `{table}`")))?;
    let path = ds.dir.join(&rel);
    let file = File::open(&path).map_err(|e| LearnError::io(&path, e))?;
    let b = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| LearnError::DatasetFile {
        dir: ds.dir.clone(),
        file: rel,
        source: e.into(),
    })?;
    Ok(b.schema().clone())
}

/// The id a string item gets: a keyed BLAKE3 of its UTF-8 bytes, first 8 bytes little-endian, top bit cleared (so
/// ids stay below 2⁶³ like every id the ledger knows).
pub fn string_item_id(s: &str) -> u64 {
    let h = blake3::derive_key("consentry items string id v1", s.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    u64::from_le_bytes(b) & (i64::MAX as u64)
}

/// A stand-in time for tables without one: a keyed hash of (member, item), so held-out items are a fixed sample.
fn pseudo_time(member: u64, item: u64) -> i64 {
    let mut x = [0u8; 16];
    x[..8].copy_from_slice(&member.to_le_bytes());
    x[8..].copy_from_slice(&item.to_le_bytes());
    let h = blake3::derive_key("consentry items split v1", &x);
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    (u64::from_le_bytes(b) & (i64::MAX as u64)) as i64
}

fn cast(a: &ArrayRef, to: &DataType, column: &str) -> Result<ArrayRef, LearnError> {
    arrow_cast::cast(a, to).map_err(|e| LearnError::Column { column: column.into(), message: format!("{e}") })
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, LearnError> {
    b.column_by_name(name).ok_or_else(|| LearnError::Column { column: name.into(), message: "missing".into() })
}

fn nulls(name: &str, a: &dyn Array, role: &str) -> Result<(), LearnError> {
    if a.null_count() > 0 {
        return Err(LearnError::Column {
            column: name.into(),
            message: format!("has {} empty (null) values; every row needs its {role}", a.null_count()),
        });
    }
    Ok(())
}

/// Non-negative integer ids of any integer type.
fn int_ids(b: &RecordBatch, name: &str, role: &str) -> Result<Vec<u64>, LearnError> {
    let a = column(b, name)?;
    nulls(name, a, role)?;
    if a.data_type() == &DataType::UInt64 {
        return Ok(a.as_primitive::<UInt64Type>().values().to_vec());
    }
    let c = cast(a, &DataType::Int64, name)?;
    let v = c.as_primitive::<Int64Type>();
    if let Some(neg) = v.values().iter().find(|x| **x < 0) {
        return Err(LearnError::Column {
            column: name.into(),
            message: format!("holds the negative id {neg}; {role} ids must be 0 or more"),
        });
    }
    Ok(v.values().iter().map(|&x| x as u64).collect())
}

fn item_ids(b: &RecordBatch, spec: &ItemsSpec) -> Result<Vec<u64>, LearnError> {
    let name = spec.item_column.as_str();
    if !spec.string_ids {
        return int_ids(b, name, "item");
    }
    let a = column(b, name)?;
    nulls(name, a, "item")?;
    let s = cast(a, &DataType::Utf8, name)?;
    Ok(s.as_string::<i32>().iter().map(|v| string_item_id(v.unwrap_or(""))).collect())
}

fn weights(b: &RecordBatch, name: &str) -> Result<Vec<f32>, LearnError> {
    let a = column(b, name)?;
    nulls(name, a, "weight")?;
    let c = cast(a, &DataType::Float64, name)?;
    let v = c.as_primitive::<Float64Type>();
    if let Some(w) = v.values().iter().find(|w| !w.is_finite() || **w < 0.0 || **w > f64::from(f32::MAX)) {
        return Err(LearnError::Column {
            column: name.into(),
            message: format!("holds the weight {w}; weights must be finite and 0 or more"),
        });
    }
    Ok(v.values().iter().map(|&w| w as f32).collect())
}

fn times(b: &RecordBatch, name: &str) -> Result<Vec<i64>, LearnError> {
    let a = column(b, name)?;
    nulls(name, a, "time")?;
    let c = cast(a, &DataType::Timestamp(TimeUnit::Millisecond, None), name)?;
    nulls(name, &c, "time (in milliseconds)")?;
    Ok(c.as_primitive::<TimestampMillisecondType>().values().to_vec())
}

/// Reads the interactions `spec` names (a spec [`resolve`] returned) as a [`RecInput`]: no profiles, no item
/// features; every interaction a target of evaluation.
pub fn load_input(ds: &Dataset, spec: &ItemsSpec, _h: &RecHyper) -> Result<RecInput, LearnError> {
    let member = spec.member_column.as_deref().ok_or_else(|| {
        LearnError::Internal("an items spec reached training without its member column resolved".into())
    })?;
    let mut cols = vec![member, spec.item_column.as_str()];
    cols.extend(spec.weight_column.as_deref());
    cols.extend(spec.time_column.as_deref());
    let mut events = Vec::new();
    for b in ds.read(&spec.table, &cols)? {
        let m = int_ids(&b, member, "member")?;
        let it = item_ids(&b, spec)?;
        let w = match &spec.weight_column {
            Some(c) => weights(&b, c)?,
            None => vec![1.0; b.num_rows()],
        };
        let at = match &spec.time_column {
            Some(c) => times(&b, c)?,
            None => m.iter().zip(&it).map(|(&m, &i)| pseudo_time(m, i)).collect(),
        };
        for i in 0..b.num_rows() {
            if w[i] > 0.0 {
                events.push(Event { member: m[i], item: it[i], weight: w[i], at: at[i], target: true });
            }
        }
    }
    if events.is_empty() {
        return Err(LearnError::Empty(format!(
            "table `{}` of the dataset holds no interactions (no consented member has a row with a positive weight); \
             gate again once members have consented, or choose another table ({})",
            spec.table,
            tables(ds)
        )));
    }
    Ok(RecInput { events, profiles: BTreeMap::new(), items: BTreeMap::new() })
}

/// Item names of a string-id model: every distinct string of the item column, by its id (serving shows the strings).
pub fn item_names(ds: &Dataset, spec: &ItemsSpec) -> Result<BTreeMap<u64, String>, LearnError> {
    let mut out = BTreeMap::new();
    if !spec.string_ids {
        return Ok(out);
    }
    for b in ds.read(&spec.table, &[spec.item_column.as_str()])? {
        let a = column(&b, &spec.item_column)?;
        let s = cast(a, &DataType::Utf8, &spec.item_column)?;
        for v in s.as_string::<i32>().iter().flatten() {
            out.entry(string_item_id(v)).or_insert_with(|| v.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_ids_are_stable_below_2_63_and_distinct() {
        let a = string_item_id("tt0111161");
        assert_eq!(a, string_item_id("tt0111161"));
        assert_ne!(a, string_item_id("tt0068646"));
        assert!(a <= i64::MAX as u64);
    }

    #[test]
    fn pseudo_times_depend_only_on_member_and_item() {
        assert_eq!(pseudo_time(1, 2), pseudo_time(1, 2));
        assert_ne!(pseudo_time(1, 2), pseudo_time(2, 1));
        assert!(pseudo_time(7, 9) >= 0);
    }

    #[test]
    fn the_spec_round_trips_and_omits_defaults() {
        let s = ItemsSpec::new("t", "c");
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(j, r#"{"table":"t","item_column":"c"}"#);
        assert_eq!(serde_json::from_str::<ItemsSpec>(&j).unwrap(), s);
    }
}
