//! `lmwb models rm` against the fake hub (tests/common/fake_hub.rs): it removes exactly what
//! `lmwb models pull` downloaded, keeps a blob another snapshot links to, refuses without
//! `--yes` when there is no terminal, and refuses models lmwb did not download, deleting
//! nothing.

mod common;
#[path = "common/fake_hub.rs"]
mod fake_hub;
#[path = "common/pull_world.rs"]
mod pull_world;
#[path = "common/sandbox.rs"]
mod sandbox;

use pull_world::*;

#[test]
fn rm_removes_exactly_what_pull_downloaded() {
    let w = World::new(vec![gguf_repo()]);
    let spec = format!("{GGUF_REPO}:{GGUF}");
    let (name, path) = name_and_path(&ok(w.lmwb(&["models", "pull", &spec])));
    let blob = std::fs::canonicalize(&path).unwrap();
    // No terminal and no --yes: refuse, remove nothing, never wait on stdin.
    failed(w.lmwb(&["models", "rm", &name]), 2, &["pass --yes"]);
    assert!(path.exists() && blob.exists());
    // Another tool's file in the same cache stays.
    let dir = w.repo_dir(GGUF_REPO);
    let theirs = dir.join("blobs").join("0123456789abcdef");
    std::fs::write(&theirs, b"another tool").unwrap();
    let r = ok(w.lmwb(&["models", "rm", "--yes", &name]));
    assert!(r.stdout.contains("removed"), "{}", r.stdout);
    assert!(path.symlink_metadata().is_err() && !blob.exists());
    assert_eq!(
        files_under(&dir),
        ["blobs/0123456789abcdef"],
        "refs and empty folders go, the other file stays"
    );
    assert!(w.manifest_files().is_empty());
    std::fs::remove_file(&theirs).unwrap();
    // Pulled once more and removed by REPO: the whole repo folder goes.
    ok(w.lmwb(&["models", "pull", &spec]));
    ok(w.lmwb(&["models", "rm", "-y", GGUF_REPO]));
    assert!(!dir.exists(), "{:?}", files_under(&dir));
}

#[test]
fn rm_keeps_a_blob_another_snapshot_links_to() {
    let w = World::new(vec![gguf_repo()]);
    let spec = format!("{GGUF_REPO}:{GGUF}");
    let (_, path) = name_and_path(&ok(w.lmwb(&["models", "pull", &spec])));
    let blob = std::fs::canonicalize(&path).unwrap();
    // Another revision, linked by another tool, shares the blob.
    let other = w.repo_dir(GGUF_REPO).join("snapshots/othercommit");
    std::fs::create_dir_all(&other).unwrap();
    std::os::unix::fs::symlink(std::fs::read_link(&path).unwrap(), other.join(GGUF)).unwrap();
    let r = ok(w.lmwb(&["models", "rm", "--yes", &spec]));
    assert!(
        r.stderr.contains("another snapshot still links to it"),
        "{}",
        r.stderr
    );
    assert!(path.symlink_metadata().is_err(), "lmwb's link goes");
    assert!(
        blob.exists() && other.join(GGUF).exists(),
        "the shared blob stays"
    );
}

#[test]
fn rm_refuses_models_lmwb_did_not_download() {
    let w = World::new(vec![gguf_repo()]);
    // Put there by another tool, in the HF cache layout.
    let dir = w.repo_dir("someone/else");
    std::fs::create_dir_all(dir.join("snapshots/abc")).unwrap();
    std::fs::create_dir_all(dir.join("refs")).unwrap();
    std::fs::write(dir.join("refs/main"), "abc").unwrap();
    std::fs::write(dir.join("snapshots/abc/m.gguf"), tiny_gguf()).unwrap();
    let before = files_under(&dir);
    failed(
        w.lmwb(&["models", "rm", "--yes", "someone/else:m.gguf"]),
        1,
        &[
            "lmwb did not download someone/else:m.gguf (it is in",
            "remove it with the tool that put it there",
        ],
    );
    // A model in lmwb's models folder.
    std::fs::write(w.dir.path().join("models/local.gguf"), tiny_gguf()).unwrap();
    failed(
        w.lmwb(&["models", "rm", "--yes", "local"]),
        1,
        &["lmwb did not download local", "models/local.gguf"],
    );
    failed(
        w.lmwb(&["models", "rm", "--yes", "nothing/here"]),
        1,
        &[
            "lmwb did not download a model named nothing/here",
            "downloaded nothing yet",
        ],
    );
    assert_eq!(files_under(&dir), before);
    assert!(w.dir.path().join("models/local.gguf").exists());
    // Pulling what another tool already put there records nothing, so rm still refuses.
    let spec = format!("{GGUF_REPO}:{GGUF}");
    let (_, path) = name_and_path(&ok(w.lmwb(&["models", "pull", &spec])));
    ok(w.lmwb(&["models", "rm", "-y", &spec]));
    let gguf = tiny_gguf();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &gguf).unwrap();
    let r = ok(w.lmwb(&["models", "pull", &spec]));
    assert!(
        r.stderr.contains("put there by another tool"),
        "{}",
        r.stderr
    );
    failed(
        w.lmwb(&["models", "rm", "-y", &spec]),
        1,
        &["lmwb did not download"],
    );
    assert!(path.exists());
}
