//! The invalid-policy corpus (`tests/invalid/`, described in its README.md): one policy per diagnostic
//! code, each yielding that diagnostic at the line and column its header names, and no code without one.

use consentry_policy::{Code, Diagnostic, Policy};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a corpus file's first line promises.
#[derive(Debug, PartialEq)]
struct Expect {
    code: String,
    line: usize,
    column: usize,
}

/// Reads `# expect: CODE line L column C`.
fn expectation(path: &Path, text: &str) -> Expect {
    let bad = |_| -> Expect {
        panic!("{}: the first line must be `# expect: policy::<code> line L column C`", path.display())
    };
    let first = text.lines().next().unwrap_or_default();
    let words: Vec<&str> = first.split_whitespace().collect();
    match words.as_slice() {
        ["#", "expect:", code, "line", line, "column", column] => match (line.parse(), column.parse()) {
            (Ok(line), Ok(column)) => Expect { code: code.to_string(), line, column },
            _ => bad(()),
        },
        _ => bad(()),
    }
}

/// `n` in bijective base 26: 1 → A, 26 → Z, 27 → AA.
fn letters(mut n: usize) -> String {
    let mut out = Vec::new();
    while n > 0 {
        n -= 1;
        out.push(b'A' + (n % 26) as u8);
        n /= 26;
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

/// Expands every `# repeat N: TEMPLATE` line into N numbered lines.
fn expand(path: &Path, text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let Some(rest) = line.strip_prefix("# repeat ") else {
            out.push_str(line);
            continue;
        };
        let (count, template) =
            rest.split_once(": ").unwrap_or_else(|| panic!("{}: `# repeat N: TEMPLATE` expected", path.display()));
        let count: usize = count.parse().unwrap_or_else(|_| panic!("{}: bad repeat count {count:?}", path.display()));
        let template = template.trim_end_matches('\n');
        for n in 1..=count {
            out.push_str(&template.replace("{n}", &n.to_string()).replace("{A}", &letters(n)));
            out.push('\n');
        }
    }
    out
}

/// Every diagnostic of a policy text, errors and warnings.
fn diagnostics(name: &str, text: &str) -> Vec<Diagnostic> {
    match Policy::check(name, text) {
        Ok((_, warnings)) => warnings,
        Err(e) => e.diagnostics,
    }
}

fn corpus() -> BTreeMap<String, PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid");
    let mut files = BTreeMap::new();
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "toml") {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            files.insert(stem, path);
        }
    }
    files
}

#[test]
fn every_corpus_policy_yields_its_diagnostic_there_and_no_other() {
    let mut failures = Vec::new();
    for (stem, path) in corpus() {
        let raw = std::fs::read_to_string(&path).unwrap();
        let expect = expectation(&path, &raw);
        let name = format!("{stem}.toml");
        if expect.code != format!("policy::{stem}") {
            failures.push(format!("{name}: expects {}, but the file is named for policy::{stem}", expect.code));
        }
        let found = diagnostics(&name, &expand(&path, &raw));
        let summary: Vec<String> =
            found.iter().map(|d| format!("{} line {} column {}", d.code, d.line, d.column)).collect();
        let hit = found.iter().any(|d| d.code == expect.code && d.line == expect.line && d.column == expect.column);
        if !hit {
            failures.push(format!(
                "{name}: expected {} line {} column {}, found {summary:?}",
                expect.code, expect.line, expect.column
            ));
        }
        if found.iter().any(|d| d.code != expect.code) {
            failures.push(format!("{name}: only {} expected, found {summary:?}", expect.code));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_diagnostic_code_has_a_corpus_policy() {
    let files = corpus();
    let codes: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
    let missing: Vec<&&str> =
        codes.iter().filter(|c| !c.strip_prefix("policy::").is_some_and(|s| files.contains_key(s))).collect();
    assert!(missing.is_empty(), "codes without a tests/invalid/<code>.toml case: {missing:?}");
    let stray: Vec<&String> = files.keys().filter(|s| !codes.contains(&format!("policy::{s}").as_str())).collect();
    assert!(stray.is_empty(), "corpus files named for no code in Code::ALL: {stray:?}");
}

#[test]
fn code_strings_are_unique_and_stable() {
    let mut seen = std::collections::HashSet::new();
    for c in Code::ALL {
        assert!(c.as_str().starts_with("policy::"), "{c:?}");
        assert!(seen.insert(c.as_str()), "{} twice", c.as_str());
    }
    assert_eq!(Code::UnknownCategory.as_str(), "policy::unknown-category");
    assert_eq!(letters(1), "A");
    assert_eq!(letters(26), "Z");
    assert_eq!(letters(27), "AA");
}
