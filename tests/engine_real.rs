//! The engine on the real default model (SmolLM2-135M-Instruct): seeded sampling, stop
//! strings split across tokens, the KV window, prefix reuse across chat turns,
//! cancellation, stats and request errors.
//!
//! One engine is shared by the whole binary (`real::shared_engine`); each test holds its
//! lock so requests of different tests never interleave (the engine batches concurrent
//! requests and keeps a small pool of idle KV caches; tests/engine_batching.rs covers that).
//! A reused prefix feeds fewer tokens through the model than a cold run; the CPU forward
//! is batch-invariant, so both give bit-identical logits (two tests pin that down).
//! Needs the model: `bash scripts/fetch-models.sh`.

#[path = "common/real.rs"]
mod real;

use lmwb::engine::sampler::SamplingParams;
use lmwb::engine::template::ChatMessage;
use lmwb::engine::{EngineError, Event, FinishReason, GenerateRequest, Prompt};
use real::{chat, greedy, raw, shared_engine, stream};

const STORY: &str = "Once upon a time, there was a little robot who";

/// Temperature 1 with every filter off, seeded.
fn sampled(prompt: &str, seed: u64, max_tokens: usize) -> GenerateRequest {
    let mut r = GenerateRequest::new(raw(prompt));
    r.sampling = SamplingParams {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        seed: Some(seed),
        ..SamplingParams::default()
    };
    r.max_tokens = Some(max_tokens);
    r
}

#[test]
fn same_seed_gives_same_text_and_other_seeds_differ() {
    // Two fresh engines: the same request takes the same path through the model (see
    // `same_seed_gives_same_text_on_a_warm_engine` for the reused-prefix case).
    let (e1, e2) = (real::load_engine(), real::load_engine());
    let a = stream(e1.generate(sampled(STORY, 1234, 40))).unwrap();
    let b = stream(e2.generate(sampled(STORY, 1234, 40))).unwrap();
    assert_eq!(a.stats.seed, 1234, "stats report the seed used");
    assert!(
        a.tokens.len() >= 10,
        "expected a real continuation, got {:?}",
        a.text
    );
    assert_eq!(a.ids(), b.ids(), "same seed, same tokens");
    assert_eq!(a.text, b.text, "same seed, same text");
    let c = stream(e2.generate(sampled(STORY, 4321, 40))).unwrap();
    assert_eq!(c.stats.seed, 4321);
    assert_ne!(
        a.text, c.text,
        "different seeds at temperature 1 gave the same 40 tokens"
    );
}

/// PRODUCT.md: "same seed → same text". On one engine the second run reuses the cached
/// prompt and feeds only its last token, and that path gives different logits.
#[test]
fn same_seed_gives_same_text_on_a_warm_engine() {
    let engine = real::load_engine();
    let a = stream(engine.generate(sampled(STORY, 1234, 40))).unwrap();
    let b = stream(engine.generate(sampled(STORY, 1234, 40))).unwrap();
    assert_eq!(b.stats.cached_tokens, b.stats.prompt_tokens - 1);
    assert_eq!(a.ids(), b.ids(), "same seed, same tokens on a warm engine");
}

/// Find, in a greedy token stream, a stop string made of the last two characters of token
/// `i` and the first two of token `i + 1` whose first occurrence in the text is exactly
/// there. Returns the stop string and the text before it.
fn split_stop(tokens: &[(u32, String)]) -> Option<(String, String)> {
    let full: String = tokens.iter().map(|t| t.1.as_str()).collect();
    let mut offset = 0;
    for i in 0..tokens.len() - 1 {
        let (a, b) = (&tokens[i].1, &tokens[i + 1].1);
        let ok = |s: &str| s.chars().count() >= 2 && s.chars().all(|c| !c.is_control());
        if i >= 2 && ok(a) && ok(b) {
            let tail: String = {
                let cs: Vec<char> = a.chars().collect();
                cs[cs.len() - 2..].iter().collect()
            };
            let head: String = b.chars().take(2).collect();
            let stop = format!("{tail}{head}");
            let at = offset + a.len() - tail.len();
            if full.find(&stop) == Some(at) && !stop.trim().is_empty() {
                return Some((stop, full[..at].to_string()));
            }
        }
        offset += a.len();
    }
    None
}

#[test]
fn stop_string_split_across_two_tokens_is_never_emitted() {
    // Each run on a fresh engine, so both take the same path (no reused prefix).
    let free = stream(real::load_engine().generate(greedy(raw(STORY), 48))).unwrap();
    let (stop, before) = split_stop(&free.tokens)
        .unwrap_or_else(|| panic!("no two-token stop string found in {:?}", free.tokens));
    eprintln!("stop string {stop:?} spans two tokens; text before it: {before:?}");

    let mut req = greedy(raw(STORY), 48);
    req.stop = vec![stop.clone()];
    let stopped = stream(real::load_engine().generate(req)).unwrap();
    assert_eq!(
        stopped.text, before,
        "output must be exactly the text before the stop"
    );
    assert!(!stopped.text.contains(&stop));
    // Nothing streamed, at any point, contains the stop string or went past it.
    let mut so_far = String::new();
    for (_, piece) in &stopped.tokens {
        so_far.push_str(piece);
        assert!(
            before.starts_with(&so_far),
            "streamed past the stop: {so_far:?}"
        );
    }
    assert_eq!(stopped.stats.finish_reason, FinishReason::Stop);
    assert_eq!(stopped.stats.stop_string.as_deref(), Some(stop.as_str()));
}

#[test]
fn kv_window_keeps_generating_past_its_size() {
    let engine = shared_engine();
    let mut req = greedy(raw(STORY), 256);
    req.max_kv_size = Some(64);
    let w = stream(engine.generate(req)).unwrap();
    // An unwindowed run never takes the windowed cache. It may reuse STORY from an idle
    // unwindowed cache of another test (the engine keeps a pool of them): same tokens.
    let plain = stream(engine.generate(greedy(raw(STORY), 40))).unwrap();
    assert!(plain.stats.cached_tokens < plain.stats.prompt_tokens);
    let s = &w.stats;
    eprintln!(
        "window 64: {} tokens, kv_used {}, kv_peak {}, decode {:.1} tok/s",
        s.generated_tokens, s.kv_used, s.kv_peak, s.decode_tok_s
    );
    assert_eq!(s.generated_tokens, 256, "text: {:?}", w.text);
    assert_eq!(w.tokens.len(), 256);
    assert_eq!(s.finish_reason, FinishReason::Length);
    assert_eq!(s.max_kv_size, Some(64));
    assert!(s.kv_peak <= 64 && s.kv_used <= 64, "{s:?}");
    assert_eq!(s.kv_peak, 64, "the window must have filled");
    // Until the window fills, a windowed cache is an ordinary one: same greedy tokens.
    assert_eq!(
        w.ids()[..40],
        plain.ids()[..],
        "windowed run diverged before rotating"
    );
    // After three full rotations the model still writes text, not nothing or one token.
    let late: String = w.tokens[192..].iter().map(|t| t.1.as_str()).collect();
    assert!(
        late.chars().filter(|c| c.is_alphanumeric()).count() >= 20,
        "degenerate text after the window rotated: {late:?}"
    );
    let mut distinct = w.ids()[192..].to_vec();
    distinct.sort();
    distinct.dedup();
    assert!(
        distinct.len() >= 4,
        "one-token loop after rotating: {late:?}"
    );
    assert!(!w.text.contains('\u{FFFD}'));
}

#[test]
fn window_larger_than_context_and_overlong_prompt_are_errors() {
    let engine = shared_engine();
    let mut req = greedy(raw(STORY), 4);
    req.max_kv_size = Some(8193);
    match engine.generate(req).collect() {
        Err(
            e @ EngineError::WindowTooLarge {
                max: 8193,
                context: 8192,
            },
        ) => {
            let msg = e.to_string();
            assert!(
                msg.contains("8193") && msg.contains("8192") && msg.contains("--max-kv-size"),
                "{msg}"
            );
        }
        other => panic!("expected WindowTooLarge, got {other:?}"),
    }
    let long = "hello ".repeat(9000);
    match engine.generate(greedy(raw(&long), 4)).collect() {
        Err(
            e @ EngineError::PromptTooLong {
                prompt,
                context: 8192,
            },
        ) => {
            assert!(prompt > 8192, "{prompt}");
            assert!(e.to_string().contains("--max-kv-size"), "{e}");
        }
        other => panic!("expected PromptTooLong, got {other:?}"),
    }
    // The engine still works after rejecting both.
    let ok = engine.generate(greedy(raw(STORY), 4)).collect().unwrap();
    assert_eq!(ok.stats.generated_tokens, 4);
}

fn turns() -> (&'static str, &'static str) {
    (
        "What is the capital of France?",
        "And what is the capital of Germany?",
    )
}

fn turn2(t1_text: &str) -> GenerateRequest {
    let (a, b) = turns();
    greedy(
        chat(vec![
            ChatMessage::user(a),
            ChatMessage::assistant(t1_text),
            ChatMessage::user(b),
        ]),
        24,
    )
}

#[test]
fn second_chat_turn_reuses_the_prefix() {
    let engine = shared_engine();
    let t1 = stream(engine.generate(greedy(chat(vec![ChatMessage::user(turns().0)]), 24))).unwrap();
    assert!(!t1.text.trim().is_empty());
    let warm = stream(engine.generate(turn2(&t1.text))).unwrap();
    eprintln!(
        "turn 2 reused {} of {} prompt tokens (turn 1: {} prompt + {} generated)",
        warm.stats.cached_tokens,
        warm.stats.prompt_tokens,
        t1.stats.prompt_tokens,
        t1.stats.generated_tokens
    );
    assert_eq!(
        warm.started,
        Some((warm.stats.prompt_tokens, warm.stats.cached_tokens))
    );
    assert!(warm.stats.cached_tokens > 0, "nothing reused");
    assert!(
        warm.stats.cached_tokens >= t1.stats.prompt_tokens,
        "turn 1's whole prompt should be reused: {} < {}",
        warm.stats.cached_tokens,
        t1.stats.prompt_tokens
    );
    assert!(warm.stats.cached_tokens < warm.stats.prompt_tokens);
    assert_eq!(warm.stats.generated_tokens, warm.tokens.len());
}

/// Prefix reuse must not change the output: turn 2 on the engine that ran turn 1 and on a
/// cold engine must give the same greedy tokens.
#[test]
fn second_chat_turn_matches_a_cold_run() {
    let engine = real::load_engine();
    let t1 = stream(engine.generate(greedy(chat(vec![ChatMessage::user(turns().0)]), 24))).unwrap();
    let warm = stream(engine.generate(turn2(&t1.text))).unwrap();
    eprintln!("turn 2 reused {} tokens", warm.stats.cached_tokens);
    assert!(warm.stats.cached_tokens > 0);
    let cold = stream(real::load_engine().generate(turn2(&t1.text))).unwrap();
    assert_eq!(
        cold.stats.cached_tokens, 0,
        "a fresh engine has nothing cached"
    );
    assert_eq!(cold.stats.prompt_tokens, warm.stats.prompt_tokens);
    let same = warm
        .ids()
        .iter()
        .zip(cold.ids())
        .take_while(|(a, b)| **a == *b)
        .count();
    assert_eq!(
        warm.ids(),
        cold.ids(),
        "reused prefix changed the tokens after {same}: warm {:?} cold {:?}",
        warm.text,
        cold.text
    );
    assert_eq!(warm.text, cold.text);
}

#[test]
fn cancel_mid_stream_stops_within_two_tokens() {
    let engine = shared_engine();
    // A first token no other test's prompt starts with: both probe runs are cold.
    let probe = greedy(raw("Rome is the capital of"), 8);
    let before = engine.generate(probe.clone()).collect().unwrap();
    assert_eq!(before.stats.cached_tokens, 0);

    let generation = engine.generate(greedy(raw(STORY), 2000));
    let cancel = generation.cancel.clone();
    let (mut seen, mut after_cancel) = (0usize, 0usize);
    let mut done = None;
    for ev in generation.events.iter() {
        match ev {
            Event::Token { .. } if seen >= 5 => after_cancel += 1,
            Event::Token { .. } => {
                seen += 1;
                if seen == 5 {
                    cancel.cancel();
                }
            }
            Event::Done(stats) => {
                done = Some(stats);
                break;
            }
            Event::Error(e) => panic!("{e}"),
            _ => {}
        }
    }
    let stats = done.expect("a Done event");
    eprintln!("cancelled after 5 tokens; {after_cancel} more arrived");
    assert_eq!(stats.finish_reason, FinishReason::Cancelled);
    assert!(after_cancel <= 2, "{after_cancel} tokens after cancelling");
    assert_eq!(stats.generated_tokens, 5 + after_cancel);

    // The probe's first cache may still be idle in the engine's pool and be reused.
    let after = engine.generate(probe).collect().unwrap();
    assert_eq!(after.stats.finish_reason, FinishReason::Length);
    assert_eq!(after.stats.generated_tokens, 8);
    assert_eq!(
        after.text, before.text,
        "the engine works normally after a cancel"
    );
}

#[test]
fn dropping_the_receiver_stops_the_engine() {
    let engine = shared_engine();
    // Without max_tokens this would run to the 8192-token context (minutes).
    let mut endless = greedy(raw(STORY), 0);
    endless.max_tokens = None;
    let generation = engine.generate(endless);
    let mut tokens = 0;
    while tokens < 3 {
        match generation.events.recv().expect("events") {
            Event::Token { .. } => tokens += 1,
            Event::Error(e) => panic!("{e}"),
            _ => {}
        }
    }
    drop(generation);
    let next = engine.generate(greedy(raw("The capital of France is"), 4));
    // Generous: only a generation that kept running after the drop takes this long.
    let deadline = std::time::Duration::from_secs(120);
    let t = std::time::Instant::now();
    loop {
        let left = deadline.saturating_sub(t.elapsed());
        match next.events.recv_timeout(left) {
            Ok(Event::Done(s)) => {
                assert_eq!(s.finish_reason, FinishReason::Length);
                assert_eq!(s.generated_tokens, 4);
                break;
            }
            Ok(Event::Error(e)) => panic!("{e}"),
            Ok(_) => {}
            Err(e) => {
                panic!("the next request did not finish: {e} (the dropped one kept running?)")
            }
        }
    }
}

#[test]
fn stats_are_consistent_with_the_stream() {
    let engine = shared_engine();
    for (prompt, n) in [
        ("The capital of France is", 12),
        ("Hello", 6),
        ("Write one sentence about the sea.\n", 20),
    ] {
        let s = stream(engine.generate(greedy(raw(prompt), n))).unwrap();
        let st = &s.stats;
        assert_eq!(st.prompt_tokens, real::raw_prompt_len(prompt), "{prompt:?}");
        assert_eq!(s.started.map(|p| p.0), Some(st.prompt_tokens));
        assert_eq!(st.generated_tokens, s.tokens.len(), "{prompt:?}");
        assert!(st.generated_tokens <= n);
        assert!(st.ttft_ms > 0.0, "{st:?}");
        assert!(st.prefill_tok_s > 0.0, "{st:?}");
        assert!(st.decode_tok_s > 0.0, "{st:?}");
        assert!(st.total_ms >= st.ttft_ms, "{st:?}");
        assert!(st.cached_tokens < st.prompt_tokens);
        if st.finish_reason == FinishReason::Length {
            // Every token but the last sampled one went through the model.
            assert_eq!(
                st.kv_used,
                st.prompt_tokens + st.generated_tokens - 1,
                "{st:?}"
            );
        }
    }
    // "The capital of France is" is five tokens for llama.cpp too.
    assert_eq!(real::raw_prompt_len("The capital of France is"), 5);
    // The chat template's prompt: llama.cpp counts 37 tokens for this conversation.
    let c = engine
        .generate(greedy(
            chat(vec![ChatMessage::user("What is the capital of France?")]),
            2,
        ))
        .collect()
        .unwrap();
    assert_eq!(c.stats.prompt_tokens, 37);
}

#[test]
fn empty_prompt_and_bad_sampling_are_rejected() {
    let engine = shared_engine();
    match engine.generate(greedy(raw(""), 4)).collect() {
        Err(EngineError::EmptyPrompt) => {}
        other => panic!("expected EmptyPrompt, got {other:?}"),
    }
    let mut req = greedy(raw(STORY), 4);
    req.sampling.temperature = -1.0;
    match engine.generate(req).collect() {
        Err(e @ EngineError::Sampling(_)) => {
            let EngineError::Sampling(inner) = &e else {
                unreachable!()
            };
            assert_eq!(inner.name, "temperature");
            assert!(e.to_string().contains("temperature"), "{e}");
        }
        other => panic!("expected a sampling error, got {other:?}"),
    }
    let ok = engine.generate(greedy(raw(STORY), 3)).collect().unwrap();
    assert_eq!(ok.stats.generated_tokens, 3);
}

#[test]
fn token_prompts_are_fed_as_given_and_ignore_eos_generates_exactly_max_tokens() {
    let engine = real::shared_engine();
    // EOS (id 2) right after the prompt would end a normal generation at once.
    let ids = vec![19556u32, 2, 1, 19556, 2];
    let mut req = GenerateRequest::new(Prompt::Tokens(ids.clone()));
    req.sampling = real::greedy_params();
    req.max_tokens = Some(24);
    req.ignore_eos = true;
    let out = engine.generate(req).collect().unwrap();
    assert_eq!(
        out.stats.prompt_tokens,
        ids.len(),
        "no BOS added, no template"
    );
    assert_eq!(out.stats.generated_tokens, 24);
    assert_eq!(out.token_ids.len(), 24);

    let bad = GenerateRequest::new(Prompt::Tokens(vec![5, 49152]));
    let e = engine.generate(bad).collect().unwrap_err();
    assert!(e.to_string().contains("token id 49152 is outside"), "{e}");
}
