//! `lmwb serve` on the real default model over a real socket: `--port 0` prints the port it
//! got, greedy chat through HTTP equals `lmwb run --chat --temperature 0`, the official
//! `openai` Python SDK (installed by scripts/test.sh) works against it, and SIGTERM stops it.
//! Needs `bash scripts/fetch-models.sh`.

#[path = "common/http.rs"]
mod http;
#[path = "common/real.rs"]
mod real;
#[path = "common/sandbox.rs"]
mod sandbox;
#[path = "common/serve_proc.rs"]
mod serve_proc;

use serve_proc::Server;

use serde_json::{json, Value};
use std::path::PathBuf;

/// The exact registry name (a Q8_0 copy beside it makes `smollm2` ambiguous).
const MODEL: &str = "smollm2-135m-instruct.q4_1";
const PROMPT: &str = "What is the capital of France?";
const MAX_TOKENS: &str = "12";

fn models() -> PathBuf {
    real::default_model_path().parent().unwrap().to_path_buf()
}

/// `lmwb serve -m MODEL` over the default model's folder.
fn start(extra: &[&str]) -> Server {
    Server::start_in(&models(), MODEL, extra)
}

/// Run a Python script (the openai SDK's) and read the JSON it prints.
fn python(script: &str) -> Value {
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .output()
        .expect("python3 runs (scripts/test.sh installs the openai SDK)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "openai SDK script failed:\n{stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn run_text() -> String {
    let home = tempfile::tempdir().unwrap();
    let out = sandbox::lmwb(
        home.path(),
        &models(),
        &[
            "run",
            "-m",
            MODEL,
            "--chat",
            "--temperature",
            "0",
            "-n",
            MAX_TOKENS,
            PROMPT,
        ],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out.stdout
}

#[test]
fn greedy_chat_over_http_equals_lmwb_run_and_the_openai_sdk_works() {
    let expected = run_text();
    assert!(!expected.is_empty());
    let server = start(&["--api-key", "test-key"]);

    let (status, _) = server.http("GET", "/v1/models", None);
    assert_eq!(status, 401, "the key is required");
    let (status, health) = server.http("GET", "/health", None);
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&health).unwrap()["status"],
        "ready"
    );

    let sdk = format!(
        r#"
import json, openai
from openai import OpenAI
c = OpenAI(base_url="http://{addr}/v1", api_key="test-key", max_retries=0,
    _strict_response_validation=True)
msgs = [{{"role": "user", "content": {prompt}}}]
plain = c.chat.completions.create(model="{model}", messages=msgs, temperature=0, max_tokens={max})
chunks = list(c.chat.completions.create(model="{model}", messages=msgs, temperature=0,
    max_tokens={max}, stream=True, stream_options={{"include_usage": True}}))
streamed = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
ids = [m.id for m in c.models.list()]
comp = c.completions.create(model="{model}", prompt="The capital of France is", max_tokens=4, temperature=0)
try:
    c.chat.completions.create(model="no-such-model", messages=msgs)
    missing = None
except openai.NotFoundError as e:
    missing = e.status_code
def status_of(call):
    try:
        call()
    except openai.APIStatusError as e:
        return [type(e).__name__, e.status_code, (e.body or {{}}).get("param")]
refused = status_of(lambda: c.chat.completions.create(model="{model}", messages=msgs,
    functions=[{{"name": "f", "parameters": {{}}}}]))
bad_key = status_of(lambda: OpenAI(base_url="http://{addr}/v1", api_key="wrong",
    max_retries=0).models.list())
print(json.dumps({{"plain": plain.choices[0].message.content, "finish": plain.choices[0].finish_reason,
    "usage": plain.usage.completion_tokens, "streamed": streamed, "ids": ids,
    "stream_usage": chunks[-1].usage.completion_tokens, "one_id": len({{ch.id for ch in chunks}}),
    "completion": comp.choices[0].text, "missing": missing, "refused": refused,
    "bad_key": bad_key}}))
"#,
        addr = server.addr,
        prompt = json!(PROMPT),
        model = MODEL,
        max = MAX_TOKENS,
    );
    let r = python(&sdk);
    assert_eq!(r["plain"], expected, "server greedy text vs lmwb run");
    assert_eq!(r["streamed"], expected);
    assert_eq!(r["usage"], 12);
    assert_eq!(r["stream_usage"], 12);
    assert_eq!(r["one_id"], 1);
    assert_eq!(r["finish"], "length");
    assert_eq!(
        r["ids"][0], MODEL,
        "the model -m names first, then the registry's"
    );
    // The embedding model (scripts/fetch-models.sh fetches it) is served too.
    assert!(r["ids"]
        .as_array()
        .unwrap()
        .contains(&json!("all-minilm-l6-v2")));
    assert!(!r["completion"].as_str().unwrap().is_empty());
    assert_eq!(r["missing"], 404);
    assert_eq!(r["refused"], json!(["BadRequestError", 400, "functions"]));
    assert_eq!(r["bad_key"], json!(["AuthenticationError", 401, null]));

    // Anthropic's Messages API on the same model gives the same greedy text.
    let body = json!({"model": MODEL, "max_tokens": 12, "temperature": 0,
        "messages": [{"role": "user", "content": PROMPT}]});
    let (status, reply) = http::request_with(
        &server.addr,
        "POST",
        "/v1/messages",
        Some(&body),
        &[("x-api-key", "test-key")],
    );
    assert_eq!(status, 200, "{reply}");
    let reply: Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["content"][0]["text"], expected.as_str(), "{reply}");
    assert_eq!(reply["stop_reason"], "max_tokens");

    // And Ollama's /api/chat (a bearer key, as Ollama clients send it).
    let body = json!({"model": MODEL, "stream": false,
        "options": {"temperature": 0, "num_predict": 12},
        "messages": [{"role": "user", "content": PROMPT}]});
    let (status, reply) = http::request_with(
        &server.addr,
        "POST",
        "/api/chat",
        Some(&body),
        &[("authorization", "Bearer test-key")],
    );
    assert_eq!(status, 200, "{reply}");
    let reply: Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["message"]["content"], expected.as_str(), "{reply}");
    assert_eq!(
        (reply["done_reason"].clone(), reply["eval_count"].clone()),
        (json!("length"), json!(12))
    );
    assert!(reply["eval_duration"].as_u64().unwrap() > 0, "{reply}");
    let (status, tags) = http::request_with(
        &server.addr,
        "GET",
        "/api/tags",
        None,
        &[("authorization", "Bearer test-key")],
    );
    assert_eq!(status, 200, "{tags}");
    let tags: Value = serde_json::from_str(&tags).unwrap();
    assert_eq!(tags["models"][0]["name"], MODEL);
    assert_eq!(
        tags["models"][0]["details"]["quantization_level"], "Q4_1",
        "{tags}"
    );

    let log = server.stop();
    assert!(log.contains("server stopped"), "{log}");
}

/// A named `tool_choice` through the official SDK: the answer is a call the SDK parses,
/// its arguments are JSON, and the follow-up with the `tool` message is answered.
#[test]
fn a_forced_tool_call_round_trips_through_the_openai_sdk() {
    let server = start(&[]);
    let sdk = format!(
        r#"
import json
from openai import OpenAI
c = OpenAI(base_url="http://{addr}/v1", api_key="none", max_retries=0,
    _strict_response_validation=True)
tools = [{{"type": "function", "function": {{"name": "get_weather",
    "description": "Get the current weather in a city",
    "parameters": {{"type": "object", "properties": {{"city": {{"type": "string"}}}},
        "required": ["city"]}}}}}}]
msgs = [{{"role": "user", "content": "What is the weather in Paris?"}}]
choice = {{"type": "function", "function": {{"name": "get_weather"}}}}
r = c.chat.completions.create(model="{model}", messages=msgs, tools=tools, tool_choice=choice,
    temperature=0, max_tokens=100)
call = r.choices[0].message.tool_calls[0]
args = json.loads(call.function.arguments)
chunks = list(c.chat.completions.create(model="{model}", messages=msgs, tools=tools,
    tool_choice=choice, temperature=0, max_tokens=100, stream=True))
deltas = [d for ch in chunks if ch.choices for d in (ch.choices[0].delta.tool_calls or [])]
streamed = "".join(d.function.arguments or "" for d in deltas)
msgs += [r.choices[0].message.model_dump(exclude_none=True),
    {{"role": "tool", "tool_call_id": call.id, "content": json.dumps({{"temp_c": 18}})}}]
follow = c.chat.completions.create(model="{model}", messages=msgs, tools=tools,
    temperature=0, max_tokens=16)
print(json.dumps({{"name": call.function.name, "args": args, "finish": r.choices[0].finish_reason,
    "content": r.choices[0].message.content, "stream_name": deltas[0].function.name,
    "stream_args": json.loads(streamed), "stream_finish": chunks[-1].choices[0].finish_reason,
    "follow_finish": follow.choices[0].finish_reason}}))
"#,
        addr = server.addr,
        model = MODEL,
    );
    let r = python(&sdk);
    assert_eq!(r["name"], "get_weather", "{r}");
    assert!(r["args"].is_object(), "{r}");
    assert_eq!(r["finish"], "tool_calls", "{r}");
    assert!(r["content"].is_null(), "{r}");
    assert_eq!(r["stream_name"], "get_weather", "{r}");
    assert_eq!(
        r["stream_args"], r["args"],
        "greedy: the stream makes the same call"
    );
    assert_eq!(r["stream_finish"], "tool_calls", "{r}");
    assert!(r["follow_finish"].is_string(), "{r}");
    server.stop();
}

#[test]
fn a_port_in_use_is_an_error_that_says_what_to_do() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let home = tempfile::tempdir().unwrap();
    let out = sandbox::lmwb(
        home.path(),
        &models(),
        &["serve", "-m", MODEL, "--port", &port],
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("cannot listen on 127.0.0.1:{port}"))
            && out.stderr.contains("--port"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
}

/// Two registry names for the default model's file: `alpha` (named by -m) and `beta`.
fn two_model_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["alpha", "beta"] {
        std::os::unix::fs::symlink(
            real::default_model_path(),
            dir.path().join(format!("{name}.gguf")),
        )
        .unwrap();
    }
    dir
}

#[test]
fn another_model_of_the_registry_loads_on_its_first_request_and_unloads_when_told() {
    let expected = run_text();
    let folder = two_model_folder();
    let server = Server::start_in(folder.path(), "alpha", &["--max-models", "1"]);
    let ps = |server: &Server| -> Vec<String> {
        let (status, body) = server.http("GET", "/api/ps", None);
        assert_eq!(status, 200);
        let v: Value = serde_json::from_str(&body).unwrap();
        v["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, listed) = server.http("GET", "/v1/models", None);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["alpha", "beta"]);
    assert_eq!(ps(&server), ["alpha"]);

    // `beta` loads on first use (alpha, idle, makes room: one model at a time) and answers
    // with the same greedy text as `lmwb run`: it is the same file.
    let body = json!({"model": "beta", "temperature": 0, "max_tokens": 12,
        "messages": [{"role": "user", "content": PROMPT}]});
    let (status, reply) = server.http("POST", "/v1/chat/completions", Some(&body));
    assert_eq!(status, 200, "{reply}");
    let reply: Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["choices"][0]["message"]["content"], expected);
    assert_eq!(reply["model"], "beta");
    assert_eq!(ps(&server), ["beta"]);

    // Ollama: `alpha` comes back with its load time in the stats, and `keep_alive: 0`
    // unloads it as soon as it has answered.
    let body = json!({"model": "alpha", "prompt": "Hi", "stream": false, "keep_alive": 0,
        "options": {"num_predict": 2}});
    let (status, reply) = server.http("POST", "/api/generate", Some(&body));
    assert_eq!(status, 200, "{reply}");
    let reply: Value = serde_json::from_str(&reply).unwrap();
    assert!(reply["load_duration"].as_u64().unwrap() > 0, "{reply}");
    assert!(ps(&server).is_empty());
    let (status, health) = server.http("GET", "/health", None);
    assert_eq!(status, 200, "{health}");
    assert!(health.contains("\"ready\""), "{health}");
    server.stop();
}

#[test]
fn logprobs_and_structured_output_through_the_openai_sdk_and_ollama() {
    let server = start(&[]);
    let sdk = format!(
        r#"
import json
from typing import List
from openai import OpenAI
from pydantic import BaseModel, Field
c = OpenAI(base_url="http://{addr}/v1", api_key="none", max_retries=0,
    _strict_response_validation=True)
msgs = [{{"role": "user", "content": {prompt}}}]
lp = c.chat.completions.create(model="{model}", messages=msgs, temperature=0, max_tokens=8,
    logprobs=True, top_logprobs=3)
content = lp.choices[0].logprobs.content
class City(BaseModel):
    name: str = Field(max_length=30)
    country: str = Field(max_length=30)
    landmarks: List[str] = Field(max_length=2)
parsed = c.chat.completions.parse(model="{model}", temperature=0, max_tokens=120,
    messages=[{{"role": "user", "content": "Describe Paris as JSON with name, country and landmarks."}}],
    response_format=City)
obj = c.chat.completions.create(model="{model}", temperature=0, max_tokens=120,
    messages=[{{"role": "user", "content": "Give a JSON object describing a cat."}}],
    response_format={{"type": "json_object"}})
print(json.dumps({{
    "text": lp.choices[0].message.content,
    "tokens": [t.token for t in content],
    "bytes": [b for t in content for b in t.bytes],
    "chosen_is_top": all(t.top_logprobs[0].token == t.token and t.top_logprobs[0].logprob == t.logprob for t in content),
    "tops": [len(t.top_logprobs) for t in content],
    "parsed": parsed.choices[0].message.parsed.model_dump(),
    "parsed_finish": parsed.choices[0].finish_reason,
    "object": obj.choices[0].message.content,
    "object_finish": obj.choices[0].finish_reason,
}}))
"#,
        addr = server.addr,
        prompt = json!(PROMPT),
        model = MODEL,
    );
    let r = python(&sdk);
    let text = r["text"].as_str().unwrap();
    let bytes: Vec<u8> = r["bytes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap() as u8)
        .collect();
    assert_eq!(String::from_utf8(bytes).unwrap(), text, "{r}");
    assert_eq!(r["tops"], json!(vec![3; 8]), "{r}");
    assert_eq!(r["chosen_is_top"], true, "{r}");
    assert_eq!(r["parsed_finish"], "stop", "{r}");
    assert!(r["parsed"]["name"].is_string(), "{r}");
    // json_object: a finished answer parses; one cut by max_tokens is an honest prefix.
    let obj = r["object"].as_str().unwrap();
    if r["object_finish"] == "stop" {
        let v: Value = serde_json::from_str(obj).unwrap_or_else(|e| panic!("{e}: {r}"));
        assert!(v.is_object(), "{r}");
    } else {
        assert_eq!(r["object_finish"], "length", "{r}");
        assert!(obj.starts_with('{'), "{r}");
    }

    // Ollama's `format` with a schema, on /api/generate.
    let body = json!({"model": MODEL, "stream": false, "prompt": "Name a color.",
        "options": {"temperature": 0, "num_predict": 60},
        "format": {"type": "object", "properties": {"color": {"type": "string", "maxLength": 20}}, "required": ["color"]},
        "logprobs": true});
    let (status, reply) = server.http("POST", "/api/generate", Some(&body));
    assert_eq!(status, 200, "{reply}");
    let reply: Value = serde_json::from_str(&reply).unwrap();
    let v: Value = serde_json::from_str(reply["response"].as_str().unwrap()).unwrap();
    assert!(v["color"].is_string(), "{reply}");
    assert_eq!(reply["done_reason"], "stop");
    assert_eq!(
        reply["logprobs"].as_array().unwrap().len(),
        reply["eval_count"].as_u64().unwrap() as usize
    );
    server.stop();
}
