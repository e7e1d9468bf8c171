//! `consentry ledger import MEMBERS CHOICES`: arbitrary bytes as either Parquet table, then everything the import
//! does before its first write (rows to member records and events, content keys, validation against the fixture's
//! ledger). Mode byte 0: the rest is the file. Mode 1/2: the rest builds rows of the members / consent-choices
//! schema, written with the Parquet writer and read back by the importer's reader: parse → write → parse.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use arbitrary::{Arbitrary, Unstructured};
use arrow_array::{
    ArrayRef, Date32Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::NaiveDate;
use consentry_app::ledger::import_records;
use consentry_app::{DataDir, Session};
use consentry_synth::{ChoiceRow, MemberRow, read_consent_choices_file, read_members_file};
use libfuzzer_sys::fuzz_target;
use parquet::arrow::ArrowWriter;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

/// "Now" for validation: fixed, so a crash reproduces.
const NOW: i64 = 1_800_000_000;

struct Env {
    _dir: tempfile::TempDir,
    file: PathBuf,
    session: Session,
}

static ENV: LazyLock<Env> = LazyLock::new(|| {
    let dir = common::scratch();
    let data = dir.path().join("data");
    common::copy_dir(&common::fixture(), &data);
    let session = Session::open_read_only(DataDir::new(&data), None).expect("the fixture opens");
    Env { file: dir.path().join("input.parquet"), session, _dir: dir }
});

#[derive(Arbitrary, Debug)]
struct Member {
    id: u64,
    jurisdiction: String,
    birth_days: i32,
}

#[derive(Arbitrary, Debug)]
struct Choice {
    id: u64,
    purpose: String,
    action: String,
    notice_version: u32,
    source: String,
    actor: String,
    event_time_ms: i64,
}

fn write(batch: &RecordBatch) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, batch.schema(), None).expect("a writer");
    w.write(batch).expect("write");
    w.close().expect("close");
    out
}

fn members_file(rows: &[Member]) -> Vec<u8> {
    let schema = Schema::new(vec![
        Field::new("member_id", DataType::UInt64, false),
        Field::new("jurisdiction", DataType::Utf8, false),
        Field::new("birth_date", DataType::Date32, false),
    ]);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|m| m.id))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|m| m.jurisdiction.as_str()))),
        Arc::new(Date32Array::from_iter_values(rows.iter().map(|m| m.birth_days))),
    ];
    write(&RecordBatch::try_new(Arc::new(schema), cols).expect("a batch"))
}

fn choices_file(rows: &[Choice]) -> Vec<u8> {
    let schema = Schema::new(vec![
        Field::new("member_id", DataType::UInt64, false),
        Field::new("purpose", DataType::Utf8, false),
        Field::new("action", DataType::Utf8, false),
        Field::new("notice_version", DataType::UInt32, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("actor", DataType::Utf8, false),
        Field::new("event_time", DataType::Timestamp(TimeUnit::Millisecond, None), false),
    ]);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|c| c.id))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|c| c.purpose.as_str()))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|c| c.action.as_str()))),
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|c| c.notice_version))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|c| c.source.as_str()))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|c| c.actor.as_str()))),
        Arc::new(TimestampMillisecondArray::from_iter_values(rows.iter().map(|c| c.event_time_ms))),
    ];
    write(&RecordBatch::try_new(Arc::new(schema), cols).expect("a batch"))
}

/// What `Session::import` does with the rows before it writes anything.
fn validate(members: &[MemberRow], choices: &[ChoiceRow]) {
    let ledger = ENV.session.ledger().expect("the fixture's ledger");
    let Ok((records, events)) = import_records(members, choices.to_vec()) else { return };
    if ledger.validate_members(&records, "import").is_ok() {
        let _ = ledger.validate_with(&events, NOW, &records);
    }
}

fn read_both(bytes: &[u8]) -> (Option<Vec<MemberRow>>, Option<Vec<ChoiceRow>>) {
    std::fs::write(&ENV.file, bytes).expect("write the input file");
    let members = read_members_file(&ENV.file).map_err(|e| e.to_string()).ok();
    let choices = read_consent_choices_file(&ENV.file).map_err(|e| e.to_string()).ok();
    (members, choices)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 3 {
        0 => {
            let (members, choices) = read_both(rest);
            validate(members.as_deref().unwrap_or_default(), choices.as_deref().unwrap_or_default());
        }
        1 => {
            let Ok(rows) = Vec::<Member>::arbitrary(&mut Unstructured::new(rest)) else { return };
            let (members, _) = read_both(&members_file(&rows));
            // Every row the writer wrote is read back as written (or the file is refused with an error).
            if let Some(members) = &members {
                assert_eq!(members.len(), rows.len());
                let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("the epoch");
                for (m, r) in members.iter().zip(&rows) {
                    assert_eq!((m.member_id, m.jurisdiction.as_str()), (r.id, r.jurisdiction.as_str()));
                    assert_eq!((m.birth_date - epoch).num_days(), i64::from(r.birth_days));
                }
                validate(members, &[]);
            }
        }
        _ => {
            let Ok(rows) = Vec::<Choice>::arbitrary(&mut Unstructured::new(rest)) else { return };
            let (_, choices) = read_both(&choices_file(&rows));
            if let Some(choices) = &choices {
                assert_eq!(choices.len(), rows.len());
                for (c, r) in choices.iter().zip(&rows) {
                    assert_eq!((c.member_id, c.purpose.as_str()), (r.id, r.purpose.as_str()));
                    assert_eq!((c.action.as_str(), c.source.as_str()), (r.action.as_str(), r.source.as_str()));
                    assert_eq!((c.notice_version, c.actor.as_str()), (r.notice_version, r.actor.as_str()));
                    assert_eq!(c.event_time, r.event_time_ms.div_euclid(1000));
                }
                validate(&[], choices);
            }
        }
    }
});
