//! Continuous batching on the real default model (SmolLM2-135M-Instruct): several greedy
//! requests decoded together — joining and leaving at different steps, one cancelled, one
//! dropped, bad ones among them, more than `max_batch` queued — each give exactly the
//! tokens they give alone; a chat's next turn still reuses its prefix while other
//! sequences come and go. No timing assertions.
//! Needs the model: `bash scripts/fetch-models.sh`.

#[path = "common/real.rs"]
mod real;

use lmwb::engine::template::ChatMessage;
use lmwb::engine::{
    EngineError, EngineHandle, EngineOptions, Event, FinishReason, GenerateRequest, Generation,
    Prompt, Stats,
};
use real::{chat, greedy, raw, shared_engine};

/// What one generation streamed, as far as these tests care.
#[derive(Debug, Default)]
struct Got {
    ids: Vec<u32>,
    cached: Option<usize>,
    stats: Option<Stats>,
    error: Option<EngineError>,
}

impl Got {
    fn finish(&self) -> FinishReason {
        self.stats.as_ref().expect("a Done event").finish_reason
    }
}

/// Take events until `n` tokens arrived (or the end), adding them to `got`.
fn take_tokens(g: &Generation, got: &mut Got, n: usize) {
    while got.ids.len() < n && got.stats.is_none() && got.error.is_none() {
        let Ok(ev) = g.events.recv() else { break };
        absorb(got, ev);
    }
}

fn absorb(got: &mut Got, ev: Event) {
    match ev {
        Event::Started { cached_tokens, .. } => {
            assert!(
                got.cached.is_none() && got.ids.is_empty(),
                "Started comes first, once"
            );
            got.cached = Some(cached_tokens);
        }
        Event::Token { id, .. } => {
            assert!(got.cached.is_some(), "a token before Started");
            got.ids.push(id);
        }
        Event::Text(_) => {}
        Event::Done(s) => got.stats = Some(s),
        Event::Error(e) => got.error = Some(e),
    }
}

/// Run `g` to its end, after what `got` already holds.
fn finish(g: Generation, mut got: Got) -> Got {
    for ev in g.events.iter() {
        absorb(&mut got, ev);
        if got.stats.is_some() || got.error.is_some() {
            break;
        }
    }
    got
}

fn run(g: Generation) -> Got {
    finish(g, Got::default())
}

/// Each request on the shared engine, one after another.
fn alone(reqs: &[GenerateRequest]) -> Vec<Vec<u32>> {
    let e = shared_engine();
    reqs.iter()
        .map(|r| {
            let got = run(e.generate(r.clone()));
            assert!(got.error.is_none(), "{:?}", got.error);
            got.ids
        })
        .collect()
}

fn batched_engine(max_batch: usize) -> EngineHandle {
    let opts = EngineOptions {
        max_batch,
        ..EngineOptions::default()
    };
    EngineHandle::load(&real::default_model_path(), opts).expect("load the default model")
}

/// A greedy request for exactly `n` tokens (EOS ignored, so lengths are known).
fn exact(prompt: &str, n: usize) -> GenerateRequest {
    let mut r = greedy(raw(prompt), n);
    r.ignore_eos = true;
    r
}

/// Distinct first words, so no request reuses another's cached prefix.
const PROMPTS: [&str; 5] = [
    "Once upon a time, there was a little robot who",
    "The capital of France is",
    "Water boils at a temperature of",
    "My favourite programming language is",
    "In 1969, astronauts",
];

#[test]
fn concurrent_greedy_streams_give_the_tokens_they_give_alone() {
    // Different lengths, so sequences leave the batch at different steps; the fifth
    // joins once the others are decoding.
    let lens = [12, 5, 9, 16, 7];
    let reqs: Vec<GenerateRequest> = PROMPTS.iter().zip(lens).map(|(p, n)| exact(p, n)).collect();
    let want = alone(&reqs);
    let e = batched_engine(8);
    let gens: Vec<Generation> = reqs[..4].iter().map(|r| e.generate(r.clone())).collect();
    let mut first = Got::default();
    take_tokens(&gens[0], &mut first, 2);
    let late = e.generate(reqs[4].clone());
    let mut got: Vec<Got> = Vec::new();
    for (i, g) in gens.into_iter().enumerate() {
        got.push(finish(
            g,
            if i == 0 {
                std::mem::take(&mut first)
            } else {
                Got::default()
            },
        ));
    }
    got.push(run(late));
    for (i, g) in got.iter().enumerate() {
        assert!(g.error.is_none(), "request {i}: {:?}", g.error);
        assert_eq!(
            g.ids, want[i],
            "request {i} ({:?}) differs from its run alone",
            PROMPTS[i]
        );
        assert_eq!(g.finish(), FinishReason::Length);
        let s = g.stats.as_ref().unwrap();
        assert_eq!(s.generated_tokens, lens[i]);
        assert!(
            s.ttft_ms > 0.0 && s.decode_ms > 0.0 && s.decode_tok_s > 0.0,
            "{s:?}"
        );
        assert_eq!(
            g.cached,
            Some(0),
            "request {i} shares no prefix with another"
        );
    }
}

#[test]
fn a_cancelled_or_dropped_stream_leaves_the_others_untouched() {
    let reqs: Vec<GenerateRequest> = [20, 40, 14, 40]
        .iter()
        .zip(PROMPTS)
        .map(|(&n, p)| exact(p, n))
        .collect();
    let want = alone(&[reqs[0].clone(), reqs[2].clone()]);
    let e = batched_engine(8);
    let mut gens: Vec<Option<Generation>> =
        reqs.iter().map(|r| Some(e.generate(r.clone()))).collect();
    // Stream 1 is cancelled after 3 tokens; stream 3's receiver is dropped after 2.
    let mut cancelled = Got::default();
    take_tokens(gens[1].as_ref().unwrap(), &mut cancelled, 3);
    gens[1].as_ref().unwrap().cancel.cancel();
    let mut dropped = Got::default();
    take_tokens(gens[3].as_ref().unwrap(), &mut dropped, 2);
    drop(gens[3].take());
    let cancelled = finish(gens[1].take().unwrap(), cancelled);
    assert!(cancelled.error.is_none(), "{:?}", cancelled.error);
    assert_eq!(cancelled.finish(), FinishReason::Cancelled);
    assert!(
        cancelled.ids.len() >= 3 && cancelled.ids.len() < 40,
        "{}",
        cancelled.ids.len()
    );
    for (i, w) in [(0, &want[0]), (2, &want[1])] {
        let g = run(gens[i].take().unwrap());
        assert!(g.error.is_none(), "request {i}: {:?}", g.error);
        assert_eq!(&g.ids, w, "request {i} differs from its run alone");
        assert_eq!(g.finish(), FinishReason::Length);
    }
    // The engine goes on serving.
    let after = run(e.generate(exact(PROMPTS[4], 3)));
    assert_eq!(after.ids.len(), 3);
}

#[test]
fn bad_requests_fail_alone_and_extra_requests_wait_their_turn() {
    let good: Vec<GenerateRequest> = PROMPTS[..4].iter().map(|p| exact(p, 6)).collect();
    let want = alone(&good);
    // Two run at once; the rest wait in arrival order.
    let e = batched_engine(2);
    let ctx = e.info().context_length;
    let too_long = GenerateRequest::new(Prompt::Tokens(vec![1; ctx + 5]));
    let bad_template = greedy(
        Prompt::Chat {
            messages: vec![ChatMessage::user("hi")],
            template: Some("no-such-template".into()),
            options: Default::default(),
        },
        4,
    );
    let gens = vec![
        e.generate(good[0].clone()),
        e.generate(too_long),
        e.generate(good[1].clone()),
        e.generate(bad_template),
        e.generate(good[2].clone()),
        e.generate(good[3].clone()),
    ];
    let got: Vec<Got> = gens.into_iter().map(run).collect();
    assert!(
        matches!(got[1].error, Some(EngineError::PromptTooLong { .. })),
        "{:?}",
        got[1].error
    );
    assert!(got[1].cached.is_none(), "no Started for a rejected request");
    assert!(got[3].error.is_some(), "an unknown template is an error");
    for (k, i) in [0, 2, 4, 5].into_iter().enumerate() {
        assert!(got[i].error.is_none(), "request {i}: {:?}", got[i].error);
        assert_eq!(
            got[i].ids, want[k],
            "request {i} differs from its run alone"
        );
    }
}

#[test]
fn a_chats_next_turn_reuses_its_prefix_while_others_run() {
    let e = batched_engine(4);
    let mut turn = vec![ChatMessage::user("Name a colour.")];
    let t1 = e.generate(greedy(chat(turn.clone()), 8));
    let other = e.generate(exact(PROMPTS[1], 10));
    let t1 = real::stream(t1).unwrap();
    assert!(run(other).error.is_none());
    turn.push(ChatMessage::assistant(&t1.text));
    turn.push(ChatMessage::user("And another one?"));
    let other = e.generate(exact(PROMPTS[2], 10));
    let t2 = run(e.generate(greedy(chat(turn), 8)));
    assert!(t2.error.is_none(), "{:?}", t2.error);
    let cached = t2.cached.unwrap();
    assert!(
        cached > 0 && cached >= t1.started.unwrap().0,
        "the second turn reuses at least the first turn's prompt: {cached} cached"
    );
    assert_eq!(t2.stats.unwrap().cached_tokens, cached);
    assert_eq!(run(other).cached, Some(0));
}
