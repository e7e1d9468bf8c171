//! What every CLI test needs: run the real binary on a data directory, read its output
//! (`consentry_test_support::cli`, with the helpers that need this crate's binary declared here).
#![allow(dead_code)]

consentry_test_support::consentry_cli!();

/// `consentry serve --addr 127.0.0.1:0` on `data`: the running service and the address it printed first.
pub fn serve(data: &std::path::Path) -> (std::process::Child, std::net::SocketAddr) {
    spawn_serve(command(data).args(["serve", "--addr", "127.0.0.1:0"]))
}

/// Stops a service with SIGTERM and returns how it exited.
pub fn sigterm(mut child: std::process::Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    child.wait().unwrap()
}

/// `consentry --quiet gate --purpose PURPOSE --out OUT`.
pub fn gate_args<'a>(purpose: &'a str, out: &'a std::path::Path) -> [&'a str; 6] {
    ["--quiet", "gate", "--purpose", purpose, "--out", out.to_str().unwrap()]
}

/// `consentry --quiet train --model job-recs --dataset DATASET --out OUT`: the job recommender on a gated dataset.
pub fn train_args<'a>(dataset: &'a std::path::Path, out: &'a std::path::Path) -> [&'a str; 8] {
    ["--quiet", "train", "--model", "job-recs", "--dataset", dataset.to_str().unwrap(), "--out", out.to_str().unwrap()]
}

/// Gates `purpose` into `dataset`, then trains the job recommender on it into `model`; `run` runs `consentry ARGS`
/// on the data directory (with whatever global options the test needs), and both must succeed.
pub fn gate_and_train(
    run: impl Fn(&[&str]) -> std::process::Output,
    purpose: &str,
    dataset: &std::path::Path,
    model: &std::path::Path,
) {
    ok(&run(&gate_args(purpose, dataset)));
    ok(&run(&train_args(dataset, model)));
}
