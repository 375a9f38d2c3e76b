//! schemathesis (installed by scripts/test.sh from PyPI) against the OpenAI description in
//! `tests/fixtures/specs/lmwb-openai-subset.json` (copied from ../shared/specs), on a real
//! socket: a bounded number of generated requests per operation with a fixed seed, every
//! check schemathesis has but one, zero failures. The model behind the server is a
//! scripted fake, so the run is about the HTTP surface, not generation.
//!
//! Left out: `positive_data_acceptance` (schema-valid requests must get 2xx). lmwb refuses
//! schema-valid requests on purpose, with a 400 naming the field, for what it does not do
//! (`suffix`, `logit_bias`, audio, `n` above 4, a `model` it does not have …) rather than
//! ignoring them; a 501 for them would count as a server error instead.

use lmwb::client::fake::{FakeClient, Script};
use lmwb::server::{self, ServedModel, ServerConfig};
use std::process::Command;
use std::sync::Arc;

const KEY: &str = "schemathesis-key";

/// schemathesis through the python3 that pip installed it for (its script may not be on
/// PATH).
fn schemathesis() -> Command {
    const RUN: &str = "import sys; from schemathesis.cli import schemathesis as st; \
                       sys.argv[0] = 'schemathesis'; sys.exit(st())";
    let probe = Command::new("python3")
        .args(["-c", RUN, "--version"])
        .output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "schemathesis is missing: run `bash scripts/test.sh` (it installs it with pip)"
    );
    let mut c = Command::new("python3");
    c.args(["-c", RUN]);
    c
}

#[test]
fn schemathesis_finds_no_failure_on_the_openai_routes() {
    let fake = FakeClient::new("gpt-4o-mini", vec![Script::text("Hello there, friend.")]);
    let config = ServerConfig {
        port: 0,
        api_key: Some(KEY.into()),
        ..ServerConfig::default()
    };
    let model = ServedModel {
        id: "gpt-4o-mini".into(),
        client: Arc::new(fake),
        created: 0,
        info: None,
    };
    let handle = server::start(config, vec![model]).expect("the server starts");
    let spec = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/specs/lmwb-openai-subset.json"
    );
    let report = tempfile::tempdir().unwrap();
    let out = schemathesis()
        .current_dir(report.path())
        .args(["run", spec])
        .arg(format!("--url=http://{}/v1", handle.addr()))
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
        ])
        .args(["--max-examples", "25", "--seed", "20261201"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--workers", "1", "--request-timeout", "30"])
        .args(["--generation-database", "none", "--no-color"])
        .args(["--header", &format!("Authorization: Bearer {KEY}")])
        .output()
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{stdout}\n{stderr}"
    );
    handle.shutdown().unwrap();
}
