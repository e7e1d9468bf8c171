//! An auditor's round trip with the real binaries: `consentry serve` on a copy of the fixture, an auditor key from
//! `consentry keys create --role auditor`, the evidence bundle downloaded over HTTP and unpacked with the system's
//! `tar`, then `consentry audit --offline` on the unpacked directory passes, as it does on `audit export`'s.

mod common;

use common::*;
use consentry_test_support::http::request;
use std::path::Path;

#[test]
fn the_downloaded_bundle_passes_consentry_audit_offline() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datadir-v1"), &data);
    let key = ok(&consentry(&data, &["keys", "create", "--role", "auditor", "--name", "external auditor"]));
    let key = key.trim().to_string();

    let (child, addr) = serve(&data);
    let auth = format!("Bearer {key}");
    let r = request(addr, "GET", "/v1/evidence/bundle", &[("Authorization", &auth)], b"");
    let head = request(addr, "GET", "/v1/log/checkpoint", &[("Authorization", &auth)], b"");
    assert_eq!(sigterm(child).code(), Some(0));
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert_eq!(head.status, 200, "{}", text(&head.body));

    let archive = dir.path().join("evidence.tar");
    std::fs::write(&archive, &r.body).unwrap();
    let heads = dir.path().join("heads.json");
    std::fs::write(&heads, &head.body).unwrap();
    let out = dir.path().join("unpacked");
    std::fs::create_dir(&out).unwrap();
    let untar = std::process::Command::new("tar").arg("-xf").arg(&archive).arg("-C").arg(&out).output().unwrap();
    assert!(untar.status.success(), "{}", text(&untar.stderr));
    let tops: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(tops.len(), 1, "{tops:?}");
    let bundle = tops[0].to_str().unwrap();
    let heads = heads.to_str().unwrap();
    let public_key = consentry_app::DataDir::new(&data).public_key_file();
    let public_key = public_key.to_str().unwrap();
    let report = ok(&consentry(&data, &["audit", "--offline", bundle, "--heads", heads, "--public-key", public_key]));
    assert!(report.contains("audit passed: no violation"), "{report}");
}
