//! The data directory's format stamp, edited or replaced by a link: refused, never followed.

use crate::common::{consentry, text};
use crate::fresh;
use consentry_app::DataDir;

#[test]
fn a_stamp_no_release_wrote_is_refused_naming_the_file() {
    let (_dir, data) = fresh();
    let stamp = DataDir::new(&data).format_file();
    std::fs::write(&stamp, "format = 0\nwritten_by = \"me\"\n").unwrap();
    let name = stamp.file_name().unwrap().to_string_lossy().into_owned();
    for args in [&["ledger", "verify"][..], &["ledger", "checkpoint"][..]] {
        let o = consentry(&data, args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("no consentry release wrote") && err.contains(&name), "{args:?}: {err}");
    }
    std::fs::write(&stamp, "format = \"one\"").unwrap();
    let o = consentry(&data, &["ledger", "verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("not a Consentry format stamp"), "{}", text(&o.stderr));
}

#[test]
fn a_stamp_replaced_by_a_link_is_never_written_through() {
    let (dir, data) = fresh();
    let stamp = DataDir::new(&data).format_file();
    let outside = dir.path().join("outside.toml");
    std::fs::remove_file(&stamp).unwrap();
    std::os::unix::fs::symlink(&outside, &stamp).unwrap();
    // A writing command would stamp the directory: through the planted (dangling) link it must not.
    let o = consentry(&data, &["ledger", "checkpoint"]);
    assert!(!outside.exists(), "consentry wrote through a link planted in the data directory");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("link"), "{}", text(&o.stderr));
}
