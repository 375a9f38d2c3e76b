use super::*;
use crate::engine::sampler::SamplingParams;

fn greedy(prompt: Prompt) -> GenerateRequest {
    let mut r = GenerateRequest::new(prompt);
    r.sampling = SamplingParams::greedy();
    r.max_tokens = Some(16);
    r
}

#[test]
fn chat_goes_to_chat_completions_with_usage_asked() {
    let r = greedy(Prompt::chat(vec![
        ChatMessage::system("be brief"),
        ChatMessage::user("hi"),
    ]));
    let w = request(&r, "m", BackendKind::Openai, true).unwrap();
    assert_eq!(w.path, "/chat/completions");
    assert_eq!(w.body["model"], "m");
    assert_eq!(w.body["stream_options"]["include_usage"], true);
    assert_eq!(w.body["messages"][0]["role"], "system");
    assert_eq!(w.body["messages"][1]["content"], "hi");
    assert_eq!(w.body["max_tokens"], 16);
    assert_eq!(w.body["temperature"], 0.0);
    // Greedy: no extension samplers.
    assert!(w.body.get("top_k").is_none(), "{}", w.body);
}

#[test]
fn extensions_go_only_when_sampling_and_allowed() {
    let mut r = greedy(Prompt::Raw("x".into()));
    r.sampling.temperature = 0.7;
    r.sampling.top_k = 40;
    r.sampling.min_p = 0.05;
    let w = request(&r, "m", BackendKind::Openai, true).unwrap();
    assert_eq!(w.path, "/completions");
    assert_eq!(w.body["prompt"], "x");
    assert_eq!(w.body["top_k"], 40);
    let w = request(&r, "m", BackendKind::Openai, false).unwrap();
    assert!(w.body.get("top_k").is_none() && w.body.get("min_p").is_none());
}

#[test]
fn token_prompts_and_ignore_eos_for_benchmarks() {
    let mut r = greedy(Prompt::Tokens(vec![5, 6, 7]));
    r.ignore_eos = true;
    let w = request(&r, "m", BackendKind::Openai, true).unwrap();
    assert_eq!(w.body["prompt"], json!([5, 6, 7]));
    assert_eq!(w.body["ignore_eos"], true);
    let e = request(&r, "m", BackendKind::Ollama, true).unwrap_err();
    assert!(e.contains("OpenAI-compatible"), "{e}");
}

#[test]
fn what_a_remote_cannot_do_is_refused_by_name() {
    let mut r = greedy(Prompt::Chat {
        messages: vec![ChatMessage::user("hi")],
        template: Some("chatml".into()),
        options: Default::default(),
    });
    let e = request(&r, "m", BackendKind::Openai, true).unwrap_err();
    assert!(e.contains("--template chatml"), "{e}");
    r.prompt = Prompt::chat(vec![ChatMessage::user("hi")]);
    r.max_kv_size = Some(256);
    let e = request(&r, "m", BackendKind::Openai, true).unwrap_err();
    assert!(e.contains("--max-kv-size"), "{e}");
    // Ollama takes a context size per request.
    let w = request(&r, "m", BackendKind::Ollama, true).unwrap();
    assert_eq!(w.body["options"]["num_ctx"], 256);
}

#[test]
fn ollama_bodies() {
    let r = greedy(Prompt::chat(vec![ChatMessage::user("hi")]));
    let w = request(&r, "llama3.2:1b", BackendKind::Ollama, true).unwrap();
    assert_eq!(w.path, "/api/chat");
    assert_eq!(w.body["options"]["num_predict"], 16);
    assert_eq!(w.body["messages"][0]["content"], "hi");
    let mut r = greedy(Prompt::Raw("once".into()));
    r.max_tokens = None;
    let w = request(&r, "m", BackendKind::Ollama, true).unwrap();
    assert_eq!(w.path, "/api/generate");
    assert_eq!(w.body["raw"], true);
    assert_eq!(w.body["options"]["num_predict"], -1);
}

#[test]
fn openai_chunks() {
    let p =
        openai_event(r#"{"choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#)
            .unwrap();
    assert_eq!(p, vec![Piece::Text("Hel".into())]);
    let p = openai_event(
        r#"{"choices":[{"index":0,"delta":{"reasoning_content":"hmm"},"finish_reason":null}]}"#,
    )
    .unwrap();
    assert_eq!(p, vec![Piece::Reasoning("hmm".into())]);
    let p =
        openai_event(r#"{"choices":[{"index":0,"text":"lo","finish_reason":"length"}]}"#).unwrap();
    assert_eq!(
        p,
        vec![
            Piece::Text("lo".into()),
            Piece::Finish(FinishReason::Length)
        ]
    );
    let p = openai_event(r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}"#)
        .unwrap();
    assert_eq!(
        p,
        vec![Piece::Usage {
            prompt: 7,
            completion: 3
        }]
    );
    assert_eq!(openai_event(" [DONE]").unwrap(), vec![Piece::End]);
    let p = openai_event(r#"{"error":{"message":"boom","type":"x"}}"#).unwrap();
    assert_eq!(p, vec![Piece::Error("boom".into())]);
    let e = openai_event("<html>").unwrap_err();
    assert!(e.contains("not JSON") && e.contains("<html>"), "{e}");
    let e = openai_event(r#"{"hello": 1}"#).unwrap_err();
    assert!(e.contains("choices"), "{e}");
}

#[test]
fn ollama_lines() {
    let p = ollama_line(r#"{"message":{"role":"assistant","content":"Hi"},"done":false}"#).unwrap();
    assert_eq!(p, vec![Piece::Text("Hi".into())]);
    let p = ollama_line(r#"{"response":"","done":true,"done_reason":"length","prompt_eval_count":5,"eval_count":9}"#)
        .unwrap();
    assert_eq!(
        p,
        vec![
            Piece::Usage {
                prompt: 5,
                completion: 9
            },
            Piece::Finish(FinishReason::Length),
            Piece::End
        ]
    );
    assert_eq!(
        ollama_line(r#"{"error":"model 'x' not found"}"#).unwrap(),
        vec![Piece::Error("model 'x' not found".into())]
    );
    assert!(ollama_line("{\"x\":1}").unwrap_err().contains("done"));
    assert!(ollama_line("   ").unwrap().is_empty());
}

#[test]
fn error_bodies_in_every_shape() {
    assert_eq!(
        error_body(r#"{"error":{"message":"bad model"}}"#),
        "bad model"
    );
    assert_eq!(error_body(r#"{"error":"nope"}"#), "nope");
    assert_eq!(error_body(r#"{"detail":"Not Found"}"#), "Not Found");
    assert_eq!(error_body("  Bad Gateway \n"), "Bad Gateway");
}
