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
