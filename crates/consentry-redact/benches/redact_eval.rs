//! Quality and throughput of `consentry-redact`, side by side with Presidio.
//!
//! `cargo bench -p consentry-redact --bench redact_eval -- <command> [DIR]`:
//!
//! * `export DIR` generates a synthetic network (consentry-synth, 3,000 members,
//!   seed 7) and writes `DIR/synth.jsonl` (texts with ground-truth spans),
//!   `DIR/members.txt` (the member directory) and `DIR/throughput_1kb.txt`,
//!   `DIR/throughput_1mb.txt` (message-like text for the speed runs);
//! * `report DIR` evaluates the detector on `DIR/synth.jsonl` and on the
//!   third-party sets `DIR/external_s{SEED}.jsonl` (written by
//!   `bench/redact/make_external.py`), pooled into one table for the seeds in
//!   `SEEDS_TUNE` and one for the seeds in `SEEDS_UNSEEN` (environment,
//!   space-separated), reads Presidio's predictions `DIR/*_presidio.jsonl` and
//!   throughput `DIR/presidio_throughput.json` if present, measures our
//!   throughput on 1 KB / 1 MB / 100 MB on one core, and prints the tables;
//! * `misses DIR SET KIND` prints misses and false positives of one type on
//!   `DIR/SET.jsonl`, for tuning; it refuses the unseen seeds' sets.
//!
//! `bench/redact/run.sh` runs the whole thing.

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{UInt32Type, UInt64Type};
use consentry_redact::{Detector, Kind, Span};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

#[derive(Serialize, Deserialize, Clone)]
struct GoldSpan {
    start: usize,
    end: usize,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Serialize, Deserialize)]
struct Sample {
    id: String,
    text: String,
    spans: Vec<GoldSpan>,
}

#[derive(Deserialize)]
struct Prediction {
    id: String,
    spans: Vec<GoldSpan>,
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let cmd = args.first().map(String::as_str).unwrap_or("report");
    // Cargo's per-target temporary directory: a bench writes nowhere else by default.
    let default = concat!(env!("CARGO_TARGET_TMPDIR"), "/redact-eval");
    let dir = PathBuf::from(args.get(1).map(String::as_str).unwrap_or(default));
    std::fs::create_dir_all(&dir)?;
    match cmd {
        "export" => export(&dir),
        "report" => report(&dir),
        "profile" => profile(&dir),
        "misses" => misses(
            &dir,
            args.get(2).map(String::as_str).unwrap_or("external"),
            args.get(3).map(String::as_str).unwrap_or("PERSON"),
        ),
        "probe" => {
            // `probe DIR TEXT…`: every candidate and the final detections of each text (for tuning).
            let det = Detector::new()?;
            for t in args.iter().skip(2) {
                println!("{t:?}");
                for c in det.candidates(t) {
                    println!("  cand {:>12} {:.2} {:?}", c.kind.as_str(), c.score, &t[c.start..c.end]);
                }
                for c in det.detect(t) {
                    println!("  KEEP {:>12} {:.2} {:?}", c.kind.as_str(), c.score, &t[c.start..c.end]);
                }
            }
            Ok(())
        }
        "speed" => {
            let det = Detector::new()?;
            let text = std::fs::read_to_string(dir.join("throughput_1mb.txt"))?;
            let reps = std::env::var("REPS").ok().and_then(|r| r.parse().ok()).unwrap_or(20);
            println!("{:.1} MB/s", throughput(&det, &text, reps));
            Ok(())
        }
        other => Err(format!("unknown command {other}; use export DIR or report DIR").into()),
    }
}

fn read_batches(path: &Path, mut f: impl FnMut(&arrow_array::RecordBatch) -> Res<()>) -> Res<()> {
    let file = std::fs::File::open(path)?;
    for batch in ParquetRecordBatchReaderBuilder::try_new(file)?.build()? {
        f(&batch?)?;
    }
    Ok(())
}

fn col<'a>(b: &'a arrow_array::RecordBatch, name: &str) -> Res<&'a arrow_array::ArrayRef> {
    b.column_by_name(name).ok_or_else(|| format!("missing column {name}").into())
}

fn strings(b: &arrow_array::RecordBatch, name: &str) -> Res<Vec<String>> {
    let c = col(b, name)?.as_string_opt::<i32>().ok_or("not a string column")?;
    Ok((0..c.len()).map(|i| c.value(i).to_string()).collect())
}

fn u64s(b: &arrow_array::RecordBatch, name: &str) -> Res<Vec<u64>> {
    let c = col(b, name)?.as_primitive_opt::<UInt64Type>().ok_or("not a u64 column")?;
    Ok(c.values().to_vec())
}

fn u32s(b: &arrow_array::RecordBatch, name: &str) -> Res<Vec<u32>> {
    let c = col(b, name)?.as_primitive_opt::<UInt32Type>().ok_or("not a u32 column")?;
    Ok(c.values().to_vec())
}

/// Texts of `table` (first `limit` rows) with their ground truth.
fn table_samples(dir: &Path, table: &str, id_col: &str, limit: usize) -> Res<Vec<Sample>> {
    let mut samples: Vec<Sample> = Vec::new();
    let mut index: HashMap<u64, usize> = HashMap::new();
    read_batches(&dir.join(format!("{table}.parquet")), |b| {
        for (id, text) in u64s(b, id_col)?.into_iter().zip(strings(b, "text")?) {
            if samples.len() < limit {
                index.insert(id, samples.len());
                samples.push(Sample { id: format!("{table}:{id}"), text, spans: Vec::new() });
            }
        }
        Ok(())
    })?;
    read_batches(&dir.join(format!("{table}_pii.parquet")), |b| {
        let rows = u64s(b, "row_id")?;
        let (starts, ends, kinds) = (u32s(b, "start")?, u32s(b, "end")?, strings(b, "kind")?);
        for i in 0..rows.len() {
            if let Some(&k) = index.get(&rows[i]) {
                samples[k].spans.push(GoldSpan {
                    start: starts[i] as usize,
                    end: ends[i] as usize,
                    kind: kinds[i].clone(),
                });
            }
        }
        Ok(())
    })?;
    Ok(samples)
}

fn write_jsonl<T: Serialize>(path: &Path, rows: &[T]) -> Res<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    for r in rows {
        serde_json::to_writer(&mut w, r)?;
        w.write_all(b"\n")?;
    }
    Ok(w.flush()?)
}

fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Res<Vec<T>> {
    let f = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut out = Vec::new();
    for line in f.lines() {
        let line = line?;
        if !line.trim().is_empty() {
            out.push(serde_json::from_str(&line)?);
        }
    }
    Ok(out)
}

/// Message-like text of about `bytes` bytes from the synthetic text generator.
fn message_text(bytes: usize, seed: u64) -> String {
    use consentry_synth::text::{MessageContext, Person, first_message, reply};
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let names = consentry_synth::names::GIVEN_NAMES;
    let surnames = consentry_synth::names::SURNAMES;
    let countries = consentry_synth::pii::PHONE_COUNTRIES;
    let mut out = String::with_capacity(bytes + 4096);
    let mut i = 0usize;
    while out.len() < bytes {
        let p = |k: usize| Person { given: names[k % names.len()], surname: surnames[(k * 7 + 3) % surnames.len()] };
        let ctx = MessageContext {
            sender: p(i),
            recipient: p(i + 11),
            mentioned: p(i + 29),
            sender_country: countries[i % countries.len()],
            sender_title: "Engineering Manager",
            sender_industry: "Software",
            company: "Acme Corp",
        };
        let t = if i.is_multiple_of(3) { first_message(&mut rng, &ctx) } else { reply(&mut rng, &ctx).1 };
        out.push_str(&t.text);
        out.push('\n');
        i += 1;
    }
    let cut = (0..=bytes.min(out.len())).rev().find(|&c| out.is_char_boundary(c)).unwrap_or(0);
    out.truncate(cut);
    out
}

fn export(dir: &Path) -> Res<()> {
    let net = dir.join("network");
    let cfg =
        consentry_synth::SynthConfig { members: 3000, seed: 7, as_of: consentry_synth::SynthConfig::default_as_of() };
    let policy = consentry_policy::Policy::default_policy();
    consentry_synth::generate(&cfg, &policy, &net, &consentry_synth::NoProgress)?;
    let mut members = Vec::new();
    read_batches(&net.join("members.parquet"), |b| {
        for (g, s) in strings(b, "given_name")?.into_iter().zip(strings(b, "surname")?) {
            members.push(format!("{g} {s}"));
        }
        Ok(())
    })?;
    std::fs::write(dir.join("members.txt"), members.join("\n") + "\n")?;
    let mut samples = table_samples(&net, "messages", "message_id", 3000)?;
    samples.extend(table_samples(&net, "posts", "post_id", 1000)?);
    write_jsonl(&dir.join("synth.jsonl"), &samples)?;
    std::fs::write(dir.join("throughput_1kb.txt"), message_text(1 << 10, 1))?;
    std::fs::write(dir.join("throughput_1mb.txt"), message_text(1 << 20, 2))?;
    let spans: usize = samples.iter().map(|s| s.spans.len()).sum();
    println!(
        "exported {} texts with {spans} planted spans and {} member names to {}",
        samples.len(),
        members.len(),
        dir.display()
    );
    Ok(())
}

/// Maps a label of any of the three label sets to ours; `None` means "not a type we detect" (ignored).
fn our_kind(label: &str) -> Option<Kind> {
    Some(match label {
        "EMAIL" | "EMAIL_ADDRESS" => Kind::Email,
        "PHONE" | "PHONE_NUMBER" => Kind::Phone,
        "URL" | "DOMAIN_NAME" => Kind::Url,
        "IP" | "IP_ADDRESS" => Kind::Ip,
        "CREDIT_CARD" => Kind::CreditCard,
        "IBAN" | "IBAN_CODE" => Kind::Iban,
        "SSN" | "US_SSN" => Kind::Ssn,
        "ADDRESS" | "STREET_ADDRESS" | "LOCATION" => Kind::Address,
        "PERSON" => Kind::Person,
        _ => return None,
    })
}

#[derive(Default, Clone, Copy)]
struct Counts {
    gold: usize,
    found: usize,
    pred: usize,
    correct: usize,
    leaked: usize,
}

/// Entity-level scores with overlap matching: a gold span is found if a prediction of its type overlaps it; a
/// prediction is correct if it overlaps a gold span of its type; predictions that only overlap gold spans of types
/// outside the nine (organisations, cities, dates) are not counted.
fn score(samples: &[Sample], preds: &HashMap<String, Vec<Span>>) -> BTreeMap<Kind, Counts> {
    let mut c: BTreeMap<Kind, Counts> = Kind::ALL.iter().map(|k| (*k, Counts::default())).collect();
    for s in samples {
        let p = preds.get(&s.id).map(Vec::as_slice).unwrap_or(&[]);
        let over = |a: (usize, usize), b: (usize, usize)| a.0 < b.1 && b.0 < a.1;
        for g in &s.spans {
            let Some(k) = our_kind(&g.kind) else { continue };
            let e = c.entry(k).or_default();
            e.gold += 1;
            if p.iter().any(|x| x.kind == k && over((x.start, x.end), (g.start, g.end))) {
                e.found += 1;
            }
            if !p.iter().any(|x| over((x.start, x.end), (g.start, g.end))) {
                e.leaked += 1;
            }
        }
        for x in p {
            let hits_same =
                s.spans.iter().any(|g| our_kind(&g.kind) == Some(x.kind) && over((x.start, x.end), (g.start, g.end)));
            let hits_ignored =
                s.spans.iter().any(|g| our_kind(&g.kind).is_none() && over((x.start, x.end), (g.start, g.end)));
            if !hits_same && hits_ignored {
                continue;
            }
            let e = c.entry(x.kind).or_default();
            e.pred += 1;
            e.correct += usize::from(hits_same);
        }
    }
    c
}

fn prf(c: &Counts) -> (f64, f64, f64) {
    let p = if c.pred == 0 { f64::NAN } else { c.correct as f64 / c.pred as f64 };
    let r = if c.gold == 0 { f64::NAN } else { c.found as f64 / c.gold as f64 };
    let f = if p.is_nan() || r.is_nan() || p + r == 0.0 { f64::NAN } else { 2.0 * p * r / (p + r) };
    (p, r, f)
}

fn fmt3(x: f64) -> String {
    if x.is_nan() { "   –".into() } else { format!("{x:.3}") }
}

fn print_quality(title: &str, ours: &BTreeMap<Kind, Counts>, theirs: Option<&BTreeMap<Kind, Counts>>) {
    println!("\n### {title}\n");
    println!("| type | gold | Consentry P | R | F1 | Presidio P | R | F1 |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut tot_o = Counts::default();
    let mut tot_t = Counts::default();
    for k in Kind::ALL {
        let o = ours.get(&k).copied().unwrap_or_default();
        if o.gold == 0 && o.pred == 0 {
            continue;
        }
        let t = theirs.and_then(|t| t.get(&k).copied());
        let (p, r, f) = prf(&o);
        let (tp, tr, tf) = t.as_ref().map(prf).unwrap_or((f64::NAN, f64::NAN, f64::NAN));
        println!(
            "| {k} | {} | {} | {} | {} | {} | {} | {} |",
            o.gold,
            fmt3(p),
            fmt3(r),
            fmt3(f),
            fmt3(tp),
            fmt3(tr),
            fmt3(tf)
        );
        for (tot, x) in [(&mut tot_o, Some(o)), (&mut tot_t, t)] {
            if let Some(x) = x {
                tot.gold += x.gold;
                tot.found += x.found;
                tot.pred += x.pred;
                tot.correct += x.correct;
                tot.leaked += x.leaked;
            }
        }
    }
    let (p, r, f) = prf(&tot_o);
    let (tp, tr, tf) = if theirs.is_some() { prf(&tot_t) } else { (f64::NAN, f64::NAN, f64::NAN) };
    println!(
        "| **all (micro)** | {} | {} | {} | {} | {} | {} | {} |",
        tot_o.gold,
        fmt3(p),
        fmt3(r),
        fmt3(f),
        fmt3(tp),
        fmt3(tr),
        fmt3(tf)
    );
    let leak = |c: &Counts| if c.gold == 0 { f64::NAN } else { c.leaked as f64 / c.gold as f64 };
    println!(
        "\nLeak rate (gold spans overlapped by no detection of any type): Consentry {}, Presidio {}",
        fmt3(leak(&tot_o)),
        if theirs.is_some() { fmt3(leak(&tot_t)) } else { "–".into() }
    );
}

fn to_spans(p: &[GoldSpan]) -> Vec<Span> {
    let spans: Vec<Span> = p
        .iter()
        .filter_map(|g| our_kind(&g.kind).map(|k| Span { start: g.start, end: g.end, kind: k, score: 0.5 }))
        .collect();
    consentry_redact::resolve(spans)
}

fn load_presidio(path: &Path) -> Option<HashMap<String, Vec<Span>>> {
    let preds: Vec<Prediction> = read_jsonl(path).ok()?;
    Some(preds.into_iter().map(|p| (p.id, to_spans(&p.spans))).collect())
}

/// Seeds listed (space- or comma-separated) in the environment variable `var`.
fn seeds_from_env(var: &str) -> Vec<String> {
    std::env::var(var).unwrap_or_default().split([' ', ',']).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// The pooled samples of `DIR/external_s{seed}{suffix}.jsonl` for every seed (ids prefixed by the seed, so they stay
/// unique), and Presidio's pooled predictions when every seed has them.
type Predictions = HashMap<String, Vec<Span>>;
fn external_group(dir: &Path, seeds: &[String], suffix: &str) -> Res<(Vec<Sample>, Option<Predictions>)> {
    let mut samples = Vec::new();
    let mut presidio = Some(HashMap::new());
    for seed in seeds {
        let path = dir.join(format!("external_s{seed}{suffix}.jsonl"));
        let rows: Vec<Sample> =
            read_jsonl(&path).map_err(|e| format!("{}: {e} (run bench/redact/run.sh)", path.display()))?;
        samples.extend(rows.into_iter().map(|s| Sample { id: format!("s{seed}:{}", s.id), ..s }));
        let preds = load_presidio(&dir.join(format!("external_s{seed}{suffix}_presidio.jsonl")));
        presidio = match (presidio, preds) {
            (Some(mut all), Some(p)) => {
                all.extend(p.into_iter().map(|(id, spans)| (format!("s{seed}:{id}"), spans)));
                Some(all)
            }
            _ => None,
        };
    }
    Ok((samples, presidio))
}

fn evaluate(title: &str, det: &Detector, samples: &[Sample], presidio: Option<&Predictions>) {
    let t = Instant::now();
    let ours: HashMap<String, Vec<Span>> = samples.iter().map(|s| (s.id.clone(), det.detect(&s.text))).collect();
    let secs = t.elapsed().as_secs_f64();
    let theirs = presidio.map(|p| score(samples, p));
    print_quality(title, &score(samples, &ours), theirs.as_ref());
    let bytes: usize = samples.iter().map(|s| s.text.len()).sum();
    println!("({} texts, {:.1} KB, detected in {:.3} s)", samples.len(), bytes as f64 / 1024.0, secs);
}

fn throughput(det: &Detector, text: &str, reps: usize) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        let mut s = consentry_redact::StreamRedactor::new(det, std::io::sink());
        let _ = s.write_str(text);
        let _ = s.finish();
        best = best.min(t.elapsed().as_secs_f64());
    }
    text.len() as f64 / 1e6 / best
}

fn report(dir: &Path) -> Res<()> {
    let members: Vec<String> = std::fs::read_to_string(dir.join("members.txt"))?.lines().map(str::to_string).collect();
    let t = Instant::now();
    let synth_det = Detector::builder().member_names(&members).build()?;
    println!(
        "detector with {} member names built in {:.2} s ({} names in the automaton)",
        members.len(),
        t.elapsed().as_secs_f64(),
        synth_det.name_count()
    );
    let synth: Vec<Sample> = read_jsonl(&dir.join("synth.jsonl"))?;
    let sp = dir.join("synth_presidio.jsonl");
    let synth_presidio = sp.exists().then(|| load_presidio(&sp)).flatten();
    evaluate(
        "Synthetic ground truth (consentry-synth messages and posts)",
        &synth_det,
        &synth,
        synth_presidio.as_ref(),
    );
    let det = Detector::new()?;
    for (group, var, suffix) in [
        ("tuning", "SEEDS_TUNE", ""),
        ("unseen", "SEEDS_UNSEEN", ""),
        ("tuning", "SEEDS_TUNE", "_lower"),
        ("unseen", "SEEDS_UNSEEN", "_lower"),
    ] {
        let seeds = seeds_from_env(var);
        if seeds.is_empty()
            || (!suffix.is_empty() && !dir.join(format!("external_s{}{suffix}.jsonl", seeds[0])).exists())
        {
            continue;
        }
        let (samples, presidio) = external_group(dir, &seeds, suffix)?;
        let how = if suffix.is_empty() { "" } else { ", lower-cased" };
        evaluate(
            &format!(
                "Third-party set, {group} seeds {}{how} (presidio-evaluator PresidioSentenceFaker templates + Faker)",
                seeds.join(", ")
            ),
            &det,
            &samples,
            presidio.as_ref(),
        );
    }
    let ext = dir.join("external.jsonl");
    if ext.exists() {
        let samples: Vec<Sample> = read_jsonl(&ext)?;
        let ep = dir.join("external_presidio.jsonl");
        let presidio = ep.exists().then(|| load_presidio(&ep)).flatten();
        evaluate(
            "Third-party set (presidio-evaluator PresidioSentenceFaker templates + Faker)",
            &det,
            &samples,
            presidio.as_ref(),
        );
    }

    // Throughput, one core: the stream redactor (detect + redact) on message-like text.
    let one_kb = std::fs::read_to_string(dir.join("throughput_1kb.txt"))?;
    let one_mb = std::fs::read_to_string(dir.join("throughput_1mb.txt"))?;
    let det = &synth_det;
    let mut hundred = String::with_capacity(100 << 20);
    while hundred.len() + one_mb.len() <= 100 << 20 {
        hundred.push_str(&one_mb);
    }
    let presidio: HashMap<String, f64> = std::fs::read_to_string(dir.join("presidio_throughput.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    println!("\n### Throughput (single core, detect + redact, message-like text)\n");
    println!("| input | Consentry MB/s | Presidio MB/s | ratio |");
    println!("|---|---:|---:|---:|");
    for (name, text, reps) in [("1 KB", &one_kb, 2000), ("1 MB", &one_mb, 5), ("100 MB", &hundred, 1)] {
        let ours = if name == "1 KB" {
            // Many repetitions of a tiny input: time them together.
            let t = Instant::now();
            for _ in 0..reps {
                std::hint::black_box(det.redact(text));
            }
            text.len() as f64 * reps as f64 / 1e6 / t.elapsed().as_secs_f64()
        } else {
            throughput(det, text, reps)
        };
        let key = name.replace(' ', "").to_lowercase();
        match presidio.get(&key) {
            Some(p) => println!("| {name} | {ours:.1} | {p:.4} | {:.0}× |", ours / p),
            None => println!("| {name} | {ours:.1} | – | – |"),
        }
    }
    Ok(())
}

/// Time per detector kind on the 1 MB text (for tuning).
fn profile(dir: &Path) -> Res<()> {
    let text = std::fs::read_to_string(dir.join("throughput_1mb.txt"))?;
    for k in Kind::ALL {
        let det = Detector::builder().kinds(&[k]).build()?;
        let t = Instant::now();
        let n = det.candidates(&text).len();
        println!("{k:12} {:7.1} MB/s  ({n} candidates)", text.len() as f64 / 1e6 / t.elapsed().as_secs_f64());
    }
    let det = Detector::builder().kinds(&[Kind::Person]).gazetteer(false).build()?;
    let t = Instant::now();
    let n = det.candidates(&text).len();
    println!("person, no gazetteer {:7.1} MB/s  ({n} candidates)", text.len() as f64 / 1e6 / t.elapsed().as_secs_f64());
    let det = Detector::new()?;
    let t = Instant::now();
    let n = det.candidates(&text).len();
    println!("all          {:7.1} MB/s  ({n} candidates)", text.len() as f64 / 1e6 / t.elapsed().as_secs_f64());
    Ok(())
}

/// Prints missed gold spans and false positives of one type (for tuning).
fn misses(dir: &Path, set: &str, kind: &str) -> Res<()> {
    // The unseen seeds are for the final figures only: their misses are never printed.
    let unseen = std::env::var("SEEDS_UNSEEN").unwrap_or_else(|_| "7001 9001".into());
    if unseen.split([' ', ',']).any(|s| !s.is_empty() && set.starts_with(&format!("external_s{s}"))) {
        return Err(format!("{set} is an unseen set (SEEDS_UNSEEN): its misses are not for reading").into());
    }
    let samples: Vec<Sample> = read_jsonl(&dir.join(format!("{set}.jsonl")))?;
    let det = if set == "synth" {
        let members: Vec<String> =
            std::fs::read_to_string(dir.join("members.txt"))?.lines().map(str::to_string).collect();
        Detector::builder().member_names(&members).build()?
    } else {
        Detector::new()?
    };
    let k: Kind = kind.parse()?;
    let (mut fn_, mut fp) = (0, 0);
    for s in &samples {
        let p = det.detect(&s.text);
        for g in s.spans.iter().filter(|g| our_kind(&g.kind) == Some(k)) {
            if !p.iter().any(|x| x.kind == k && x.start < g.end && g.start < x.end) && fn_ < 400 {
                fn_ += 1;
                println!("MISS {:?}  in  {:?}", &s.text[g.start..g.end], s.text);
            }
        }
        for x in p.iter().filter(|x| x.kind == k) {
            let wrong = !s.spans.iter().any(|g| our_kind(&g.kind) == Some(k) && x.start < g.end && g.start < x.end)
                && !s.spans.iter().any(|g| our_kind(&g.kind).is_none() && x.start < g.end && g.start < x.end);
            if wrong && fp < 400 {
                fp += 1;
                println!("FP {:?} ({:.2})  in  {:?}", &s.text[x.start..x.end], x.score, s.text);
            }
        }
    }
    Ok(())
}
