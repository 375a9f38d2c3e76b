//! Log probabilities and constrained (JSON / JSON Schema) decoding on the real default
//! model (SmolLM2-135M-Instruct). Needs the model: `bash scripts/fetch-models.sh`.

#[path = "common/real.rs"]
mod real;

use lmwb::engine::constrain::{compile, Constraint};
use lmwb::engine::logprobs::TokenLogprobs;
use lmwb::engine::template::ChatMessage;
use lmwb::engine::{Event, FinishReason, GenerateRequest, Stats};
use real::{chat, greedy, raw, shared_engine};
use serde_json::{json, Value};
use std::sync::Arc;

/// Text, per-token logprobs and stats of one generation.
fn run(req: GenerateRequest) -> (String, Vec<TokenLogprobs>, Stats) {
    let engine = shared_engine();
    let mut text = String::new();
    let mut lps = Vec::new();
    for ev in engine.generate(req).events.iter() {
        match ev {
            Event::Token {
                text: t, logprobs, ..
            } => {
                text.push_str(&t);
                lps.extend(logprobs.map(|b| *b));
            }
            Event::Text(t) => text.push_str(&t),
            Event::Done(s) => return (text, lps, s),
            Event::Error(e) => panic!("{e}"),
            Event::Started { .. } => {}
        }
    }
    panic!("no Done");
}

#[test]
fn greedy_logprobs_pick_the_top_token_and_leave_the_text_unchanged() {
    let prompt = "The capital of France is";
    let (plain, none, _) = run(greedy(raw(prompt), 24));
    assert!(none.is_empty());
    let mut req = greedy(raw(prompt), 24);
    req.logprobs = Some(20);
    let (text, lps, stats) = run(req);
    assert_eq!(text, plain, "logprobs on must not change the output");
    assert_eq!(lps.len(), stats.generated_tokens);
    let mut bytes = Vec::new();
    for lp in &lps {
        assert_eq!(lp.top.len(), 20);
        assert_eq!(
            lp.top[0].bytes, lp.bytes,
            "greedy: the chosen token is the most likely"
        );
        assert_eq!(lp.top[0].logprob, lp.logprob);
        assert!(lp.top.windows(2).all(|w| w[0].logprob >= w[1].logprob));
        let mass: f64 = lp.top.iter().map(|t| f64::from(t.logprob).exp()).sum();
        assert!(mass <= 1.0 + 1e-4 && lp.logprob <= 0.0, "{mass}");
        bytes.extend_from_slice(&lp.bytes);
    }
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        text,
        "the tokens' bytes are the text"
    );
}

fn ask(question: &str) -> lmwb::engine::Prompt {
    chat(vec![ChatMessage::user(question)])
}

fn constrained(question: &str, c: Constraint, max_tokens: usize) -> (String, Stats) {
    let mut req = greedy(ask(question), max_tokens);
    req.constraint = Some(c);
    let (text, _, stats) = run(req);
    (text, stats)
}

#[test]
fn json_object_output_parses() {
    let (text, stats) = constrained(
        "Describe a cat as a JSON object with its name and age.",
        Constraint::Json,
        200,
    );
    assert_eq!(stats.finish_reason, FinishReason::Stop, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(v.is_object(), "{text}");
}

/// A small validator for the schemas these tests use.
fn valid(v: &Value, s: &Value) -> bool {
    if let Some(e) = s.get("enum") {
        return e.as_array().unwrap().contains(v);
    }
    match s["type"].as_str() {
        Some("object") => {
            let props = s["properties"].as_object().unwrap();
            let o = v.as_object().unwrap();
            let req = s["required"].as_array().cloned().unwrap_or_default();
            req.iter().all(|r| o.contains_key(r.as_str().unwrap()))
                && o.iter()
                    .all(|(k, x)| props.get(k).is_some_and(|p| valid(x, p)))
        }
        Some("array") => {
            let a = v.as_array().unwrap();
            let min = s["minItems"].as_u64().unwrap_or(0) as usize;
            let max = s["maxItems"].as_u64().unwrap_or(u64::MAX) as usize;
            (min..=max).contains(&a.len()) && a.iter().all(|x| valid(x, &s["items"]))
        }
        Some("string") => v.as_str().is_some_and(|t| {
            let n = t.chars().count() as u64;
            n >= s["minLength"].as_u64().unwrap_or(0)
                && n <= s["maxLength"].as_u64().unwrap_or(u64::MAX)
        }),
        Some("integer") => v.is_i64() || v.is_u64(),
        Some("number") => v.is_number(),
        Some("boolean") => v.is_boolean(),
        _ => true,
    }
}

#[test]
fn json_schema_outputs_parse_and_validate() {
    let cases = [
        (
            "Give me a person: name and age.",
            json!({"type": "object", "properties": {"name": {"type": "string", "maxLength": 40}, "age": {"type": "integer"}}, "required": ["name", "age"], "additionalProperties": false}),
        ),
        (
            "List three fruits.",
            json!({"type": "object", "properties": {"fruits": {"type": "array", "items": {"type": "string", "maxLength": 20}, "minItems": 3, "maxItems": 3}}, "required": ["fruits"]}),
        ),
        (
            "Is the sky blue? Answer with a mood too.",
            json!({"type": "object", "properties": {"answer": {"type": "boolean"}, "mood": {"enum": ["happy", "sad", "neutral"]}}, "required": ["answer", "mood"]}),
        ),
        (
            "What is 2.5 times 4?",
            json!({"type": "object", "properties": {"result": {"type": "number"}, "unit": {"type": ["string", "null"], "maxLength": 10}}, "required": ["result"]}),
        ),
    ];
    for (q, schema) in cases {
        let g = compile(&schema, "schema").unwrap();
        let (text, stats) = constrained(q, Constraint::Schema(Arc::new(g)), 200);
        assert_eq!(stats.finish_reason, FinishReason::Stop, "{q}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{q}: {e}: {text}"));
        assert!(valid(&v, &schema), "{q}: {text} does not match {schema}");
    }
}

#[test]
fn a_constraint_cut_by_max_tokens_ends_with_length() {
    let (text, stats) = constrained("Describe a dog in JSON.", Constraint::Json, 5);
    assert_eq!(stats.finish_reason, FinishReason::Length, "{text}");
    assert!(text.starts_with('{'));
}
