//! `lmwb serve` with the real embedding model over a real socket: the official `openai`
//! Python SDK (installed by scripts/test.sh) gets float and base64 embeddings with the
//! published similarity; Ollama's /api/embed agrees; `--embedding-model` picks, `none`
//! skips, a missing default is a notice and a missing named one an error.
//! Needs `bash scripts/fetch-models.sh`.

#[path = "common/http.rs"]
mod http;
#[path = "common/real.rs"]
mod real;
#[path = "common/real_embed.rs"]
mod real_embed;
#[path = "common/sandbox.rs"]
mod sandbox;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const CHAT: &str = "smollm2-135m-instruct.q4_1";
const EMBED: &str = "all-minilm-l6-v2";

/// `lmwb serve --port 0` on `models`; its address and its stderr up to the serving line.
fn serve(home: &Path, models: &Path, extra: &[&str]) -> (Child, String, Vec<String>) {
    let mut child = sandbox::command(home, models)
        .args(["serve", "--port", "0", "-m", CHAT])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lmwb serve starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        seen.push(line.clone());
        if let Some(rest) = line.split(" at http://").nth(1) {
            let addr = rest.split_whitespace().next().unwrap().to_string();
            // Keep reading, so the server never writes to a closed pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return (child, addr, seen);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("lmwb serve did not start serving: {seen:?}");
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_openai_sdk_gets_float_and_base64_embeddings() {
    let models = real_embed::embedding_model_path()
        .parent()
        .unwrap()
        .to_path_buf();
    let home = tempfile::tempdir().unwrap();
    let (child, addr, log) = serve(home.path(), &models, &[]);
    assert!(
        log.iter()
            .any(|l| l.contains("embeddings with all-minilm-l6-v2")),
        "{log:?}"
    );
    let sdk = format!(
        r#"
import base64, json, math, struct, openai
from openai import OpenAI
# Strict validation checks floats; it runs before the SDK decodes base64, so the base64
# calls use a plain client (as most users do).
strict = OpenAI(base_url="http://{addr}/v1", api_key="none", max_retries=0,
    _strict_response_validation=True)
c = OpenAI(base_url="http://{addr}/v1", api_key="none", max_retries=0)
pair = ["A man is eating food.", "A man is eating a piece of bread."]
def cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
f = strict.embeddings.create(model="{model}", input=pair, encoding_format="float")
# No encoding_format: the SDK asks for base64 and decodes it itself.
b = c.embeddings.create(model="{model}", input=pair)
raw = c.embeddings.create(model="{model}", input=pair[0], encoding_format="base64")
unpacked = list(struct.unpack("<384f", base64.b64decode(raw.data[0].embedding)))
def status_of(call):
    try:
        call()
    except openai.APIStatusError as e:
        return [type(e).__name__, e.status_code, (e.body or {{}}).get("param")]
print(json.dumps({{
    "dims": [len(d.embedding) for d in f.data], "index": [d.index for d in f.data],
    "cos_float": cos(f.data[0].embedding, f.data[1].embedding),
    "cos_base64": cos(b.data[0].embedding, b.data[1].embedding),
    "same": max(abs(x - y) for x, y in zip(f.data[0].embedding, b.data[0].embedding)),
    # The float text, read back as f32, is bit for bit the base64 payload.
    "unpacked": [struct.unpack("<f", struct.pack("<f", x))[0] for x in f.data[0].embedding] == unpacked,
    "usage": [f.usage.prompt_tokens, f.usage.total_tokens], "model": f.model,
    "ids": [m.id for m in strict.models.list()],
    "dims_refused": status_of(lambda: c.embeddings.create(model="{model}", input="x", dimensions=100)),
    "dims_ok": len(c.embeddings.create(model="{model}", input="x", dimensions=384).data[0].embedding),
    "empty": status_of(lambda: c.embeddings.create(model="{model}", input="")),
    "missing": status_of(lambda: c.embeddings.create(model="no-such-model", input="x")),
    "long": status_of(lambda: c.embeddings.create(model="{model}", input="word " * 300)),
}}))
"#,
        addr = addr,
        model = EMBED,
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &sdk])
        .output()
        .expect("python3 runs (scripts/test.sh installs the openai SDK)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "openai SDK script failed:\n{stderr}");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    for k in ["cos_float", "cos_base64"] {
        let c = r[k].as_f64().unwrap();
        assert!((c - 0.7553).abs() <= 0.0005, "{k} = {c}");
    }
    assert_eq!(r["dims"], json!([384, 384]));
    assert_eq!(r["index"], json!([0, 1]));
    assert!(r["same"].as_f64().unwrap() < 1e-6, "{r}");
    assert_eq!(r["unpacked"], true, "{r}");
    assert_eq!(r["usage"], json!([19, 19]));
    assert_eq!(r["model"], EMBED);
    // The chat model first, any other chat model of the folder, the embedding model last.
    let ids = r["ids"].as_array().unwrap();
    assert_eq!(ids[0], CHAT);
    assert_eq!(ids.last().unwrap(), EMBED);
    assert_eq!(
        r["dims_refused"],
        json!(["BadRequestError", 400, "dimensions"])
    );
    assert_eq!(r["dims_ok"], 384);
    assert_eq!(r["empty"], json!(["BadRequestError", 400, "input"]));
    assert_eq!(r["missing"], json!(["NotFoundError", 404, "model"]));
    assert_eq!(r["long"], json!(["BadRequestError", 400, "input"]));

    // Ollama's route on the same model: the same vector, truncation by default.
    let body = json!({"model": EMBED, "input": ["A man is eating food.", "word ".repeat(300)]});
    let (status, reply) = http::request(&addr, "POST", "/api/embed", Some(&body));
    assert_eq!(status, 200, "{reply}");
    let v: Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(v["embeddings"].as_array().unwrap().len(), 2);
    assert_eq!(v["prompt_eval_count"], 8 + 256);
    let e = real_embed::embedder();
    let want = e
        .embed(
            &[lmwb::engine::embed::EmbedInput::Text(
                "A man is eating food.".into(),
            )],
            false,
        )
        .unwrap();
    for (x, y) in v["embeddings"][0]
        .as_array()
        .unwrap()
        .iter()
        .zip(&want.vectors[0])
    {
        assert!((x.as_f64().unwrap() as f32 - y).abs() < 1e-6);
    }
    stop(child);
}

#[test]
fn embedding_model_flag_none_missing_default_and_missing_named() {
    let home = tempfile::tempdir().unwrap();
    // A models folder with the chat model only.
    let only_chat = home.path().join("only-chat");
    std::fs::create_dir_all(&only_chat).unwrap();
    let chat = real::default_model_path();
    std::os::unix::fs::symlink(&chat, only_chat.join(chat.file_name().unwrap())).unwrap();

    let (child, addr, log) = serve(home.path(), &only_chat, &[]);
    let notice: Vec<&String> = log.iter().filter(|l| l.contains("notice")).collect();
    assert_eq!(notice.len(), 1, "{log:?}");
    assert!(
        notice[0].contains(EMBED) && notice[0].contains("fetch-models.sh"),
        "{log:?}"
    );
    let (status, reply) = http::request(
        &addr,
        "POST",
        "/v1/embeddings",
        Some(&json!({"model": EMBED, "input": "x"})),
    );
    assert_eq!(status, 404, "{reply}");
    stop(child);

    let (child, addr, log) = serve(home.path(), &only_chat, &["--embedding-model", "none"]);
    assert!(!log.iter().any(|l| l.contains("notice")), "{log:?}");
    let (_, models) = http::request(&addr, "GET", "/v1/models", None);
    assert_eq!(
        serde_json::from_str::<Value>(&models).unwrap()["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    stop(child);

    let out = sandbox::lmwb(
        home.path(),
        &only_chat,
        &[
            "serve",
            "--port",
            "0",
            "-m",
            CHAT,
            "--embedding-model",
            "nosuch",
        ],
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("embedding model") && out.stderr.contains("nosuch"),
        "{}",
        out.stderr
    );

    // Named by path, from outside the models folders.
    let path = real_embed::embedding_model_path();
    let (child, addr, _) = serve(
        home.path(),
        &only_chat,
        &["--embedding-model", path.to_str().unwrap()],
    );
    let (status, reply) = http::request(
        &addr,
        "POST",
        "/v1/embeddings",
        Some(&json!({"model": EMBED, "input": "x"})),
    );
    assert_eq!(status, 200, "{reply}");
    stop(child);
}
