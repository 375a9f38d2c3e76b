//! The embedder on the real all-MiniLM-L6-v2 (TESTING.md): the published similarity, batches
//! equal to single inputs, token-id inputs, the length limit and truncation.

#[path = "common/real.rs"]
mod real;
#[path = "common/real_embed.rs"]
mod real_embed;

use lmwb::engine::embed::{EmbedError, EmbedInput, EmbeddingClient};
use real_embed::{cosine, embedder};

fn text(s: &str) -> EmbedInput {
    EmbedInput::Text(s.into())
}

#[test]
fn published_similarity_of_the_food_pair() {
    let e = embedder();
    assert_eq!(e.model_name(), "all-minilm-l6-v2");
    assert_eq!((e.dims(), e.max_tokens()), (384, 256));
    let out = e
        .embed(
            &[
                text("A man is eating food."),
                text("A man is eating a piece of bread."),
            ],
            false,
        )
        .unwrap();
    assert_eq!(out.vectors.len(), 2);
    for v in &out.vectors {
        assert_eq!(v.len(), 384);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "not L2-normalized: {norm}");
    }
    let c = cosine(&out.vectors[0], &out.vectors[1]);
    eprintln!("cosine = {c:.5}");
    assert!((c - 0.7553).abs() <= 0.0005, "cosine {c}, expected 0.7553");
    // [CLS] a man is eating food . [SEP] and [CLS] a man is eating a piece of bread . [SEP]
    assert_eq!(out.prompt_tokens, 8 + 11);
}

#[test]
fn a_batch_gives_the_vectors_of_one_input_at_a_time() {
    let e = embedder();
    let sentences: Vec<String> = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The new movie is awesome.",
        "Hi",
        "A man is playing a guitar while a woman sings a song about the long summer nights by the sea.",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // More than one internal batch of 32, of mixed lengths.
    let inputs: Vec<EmbedInput> = (0..40)
        .map(|i| text(&sentences[i % sentences.len()]))
        .collect();
    let batch = e.embed(&inputs, false).unwrap();
    for (i, input) in inputs.iter().enumerate().take(sentences.len()) {
        let one = e.embed(std::slice::from_ref(input), false).unwrap();
        for (a, b) in batch.vectors[i].iter().zip(&one.vectors[0]) {
            assert!((a - b).abs() < 1e-5, "input {i}: {a} vs {b}");
        }
        assert_eq!(batch.vectors[i], batch.vectors[i + sentences.len()]);
    }
}

#[test]
fn token_ids_embed_like_their_text() {
    let e = embedder();
    let ids = e
        .tokenize(&[text("A man is eating food.")], false)
        .unwrap()
        .remove(0);
    assert_eq!(ids.first(), Some(&101));
    assert_eq!(ids.last(), Some(&102));
    let a = e.embed(&[text("A man is eating food.")], false).unwrap();
    let b = e.embed(&[EmbedInput::Tokens(ids.clone())], false).unwrap();
    assert_eq!(b.prompt_tokens, ids.len());
    for (x, y) in a.vectors[0].iter().zip(&b.vectors[0]) {
        assert!((x - y).abs() < 1e-6);
    }
    let err = e
        .embed(&[EmbedInput::Tokens(vec![101, 99_999])], false)
        .unwrap_err();
    assert_eq!(
        err,
        EmbedError::TokenOutOfRange {
            index: 0,
            id: 99_999,
            vocab: 30522
        }
    );
}

#[test]
fn too_long_is_refused_unless_truncated() {
    let e = embedder();
    let long = "word ".repeat(400);
    let err = e.embed(&[text("ok"), text(&long)], false).unwrap_err();
    assert_eq!(
        err,
        EmbedError::TooLong {
            index: 1,
            tokens: 402,
            limit: 256
        }
    );
    assert!(err.to_string().contains("256"), "{err}");
    let out = e.embed(&[text(&long)], true).unwrap();
    assert_eq!(out.prompt_tokens, 256);
    // Truncation keeps [SEP] at the end: the same as the first 254 words.
    let ids = e.tokenize(&[text(&long)], true).unwrap().remove(0);
    assert_eq!((ids.len(), ids[0], ids[255]), (256, 101, 102));
    let cut = e.embed(&[text(&"word ".repeat(254))], false).unwrap();
    for (x, y) in out.vectors[0].iter().zip(&cut.vectors[0]) {
        assert!((x - y).abs() < 1e-5);
    }
    assert_eq!(
        e.embed(&[text("")], true).unwrap_err(),
        EmbedError::Empty { index: 0 }
    );
    assert_eq!(e.embed(&[], true).unwrap_err(), EmbedError::NoInput);
}
