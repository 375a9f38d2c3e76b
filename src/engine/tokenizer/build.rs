//! Building a `tokenizers::Tokenizer` from GGUF vocabularies: byte-level BPE and SentencePiece.

use super::*;

pub(super) fn build_err(e: impl std::fmt::Display) -> TokenizerError {
    TokenizerError::Build(e.to_string())
}

/// Byte-level BPE (`gpt2`): regex splits, then bytes mapped to printable chars, no prefix space.
pub(super) fn build_byte_level(
    v: &GgufVocab,
    regexes: &[&str],
    ignore_merges: bool,
) -> Result<tokenizers::Tokenizer> {
    let vocab = v
        .tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect::<Vocab>();
    let merges = v
        .merges
        .iter()
        .map(|m| {
            // Like llama.cpp: split at the first space after the first character.
            let first = m.chars().next().map_or(0, char::len_utf8);
            m[first..]
                .find(' ')
                .map(|p| (m[..first + p].to_string(), m[first + p + 1..].to_string()))
                .ok_or_else(|| TokenizerError::Build(format!("merge `{m}` has no space")))
        })
        .collect::<Result<Vec<_>>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(ignore_merges)
        .build()
        .map_err(build_err)?;
    let split = |re: &&str| {
        Split::new(
            SplitPattern::Regex(re.to_string()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
    };
    let mut steps = regexes
        .iter()
        .map(|re| split(re).map(Into::into))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(build_err)?;
    steps.push(ByteLevel::new(false, false, false).into());
    let mut tk = tokenizers::Tokenizer::new(bpe);
    tk.with_pre_tokenizer(Some(PreTokenizerSeq::new(steps)));
    tk.with_decoder(Some(ByteLevel::new(false, false, false)));
    Ok(tk)
}

/// SentencePiece BPE (`llama`): merges derived from the scores, as llama.cpp merges the adjacent
/// pair whose concatenation is the highest-scoring vocabulary entry.
pub(super) fn build_spm(v: &GgufVocab) -> Result<tokenizers::Tokenizer> {
    let vocab: Vocab = v
        .tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let score = |id: usize| v.scores.get(id).copied().unwrap_or(0.0);
    let mut merges = Vec::new();
    for (id, tok) in v.tokens.iter().enumerate() {
        for (cut, _) in tok.char_indices().skip(1) {
            let (l, r) = tok.split_at(cut);
            if let (Some(&li), Some(&ri)) = (vocab.get(l), vocab.get(r)) {
                merges.push((score(id), li, ri, l.to_string(), r.to_string()));
            }
        }
    }
    merges.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    let merges = merges.into_iter().map(|(_, _, _, l, r)| (l, r)).collect();
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .byte_fallback(true)
        .fuse_unk(true);
    if let Some(unk) = v.unk_id.and_then(|i| v.tokens.get(i as usize)) {
        builder = builder.unk_token(unk.clone());
    }
    let mut tk = tokenizers::Tokenizer::new(builder.build().map_err(build_err)?);
    let space = Replace::new(" ", "▁").map_err(build_err)?;
    let mut decoders = vec![
        Replace::new("▁", " ").map_err(build_err)?.into(),
        ByteFallback::new().into(),
        Fuse::new().into(),
    ];
    if v.add_space_prefix.unwrap_or(true) {
        tk.with_normalizer(Some(NormalizerSeq::new(vec![
            Prepend::new("▁".into()).into(),
            space.into(),
        ])))
        .map_err(build_err)?;
        decoders.push(Strip::new(' ', 1, 0).into());
    } else {
        tk.with_normalizer(Some(space)).map_err(build_err)?;
    }
    tk.with_decoder(Some(DecoderSeq::new(decoders)));
    Ok(tk)
}

/// Ids that end generation: the given ones, then every token whose text is in [`EOG_TEXTS`].
pub(super) fn eog_ids(
    given: impl IntoIterator<Item = Option<u32>>,
    token_to_id: impl Fn(&str) -> Option<u32>,
) -> Vec<u32> {
    let mut ids: Vec<u32> = given.into_iter().flatten().collect();
    ids.extend(EOG_TEXTS.iter().filter_map(|t| token_to_id(t)));
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(*id));
    ids
}
