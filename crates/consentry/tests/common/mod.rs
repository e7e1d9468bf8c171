//! What every CLI test needs: run the real binary on a data directory, read its output
//! (`consentry_test_support::cli`, with the helpers that need this crate's binary declared here).
#![allow(dead_code)]

consentry_test_support::consentry_cli!();

/// `consentry serve --addr 127.0.0.1:0` on `data`: the running service and the address it printed first.
pub fn serve(data: &std::path::Path) -> (std::process::Child, std::net::SocketAddr) {
    use std::io::BufRead as _;
    let mut child = command(data)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let addr = first.trim().strip_prefix("http://").unwrap_or_else(|| panic!("first line: {first:?}")).parse().unwrap();
    (child, addr)
}

/// Stops a service with SIGTERM and returns how it exited.
pub fn sigterm(mut child: std::process::Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    child.wait().unwrap()
}
