//! What the benches share: reading `--flag value` arguments and stopping on an error.

/// Calls `set(flag, value)` for each argument with the one after it as its value; when `set` does not know the flag
/// (returns `false`) only the flag is skipped — `cargo bench` passes `--bench`, which is ignored that way.
pub fn parse_flags(mut set: impl FnMut(&str, String) -> bool) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        i += if set(&args[i], v) { 2 } else { 1 };
    }
}

/// Prints `error: what: e` and exits with status 1.
pub fn die(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("error: {what}: {e}");
    std::process::exit(1)
}

/// Reads a peer's recommendation lists, one line per member: `member item item …` (spaces, commas or tabs), as
/// `bench/learn/implicit_als.py` writes them; any unreadable line ends the bench with the file named.
#[allow(dead_code)]
pub fn read_lists(path: &std::path::Path) -> std::collections::BTreeMap<u64, Vec<u64>> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).unwrap_or_else(|e| die(&path.display().to_string(), e));
    let mut lists = std::collections::BTreeMap::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.unwrap_or_else(|e| die(&path.display().to_string(), e));
        let mut ids = line
            .split([' ', ',', '\t'])
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<u64>().unwrap_or_else(|e| die(&format!("{}: `{s}`", path.display()), e)));
        if let Some(m) = ids.next() {
            lists.insert(m, ids.collect());
        }
    }
    lists
}
