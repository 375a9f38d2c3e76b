//! llama.cpp's pre-tokenizer regexes per `tokenizer.ggml.pre`, and the token-type codes.

/// llama.cpp token types (`tokenizer.ggml.token_type`).
pub(super) const TYPE_UNKNOWN: i32 = 2;
pub(super) const TYPE_CONTROL: i32 = 3;
pub(super) const TYPE_USER_DEFINED: i32 = 4;

/// Token texts that end generation whatever the metadata says (llama.cpp's EOG list).
pub(super) const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<|end_of_text|>",
    "<end_of_utterance>",
];

pub(super) const GPT2: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
pub(super) const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
pub(super) const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
pub(super) const CJK: &str = "[一-龥ࠀ-一가-퟿]+";
// Escaped: letters that Unicode normalization would silently rewrite in the source.
pub(super) const DEEPSEEK_LETTERS: &str = r"\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\x{1F7D}ᾀ-ᾴᾶ-ᾼ\x{1FBE}ῂ-ῄῆ-ῌῐ-\x{1FD3}ῖ-\x{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\x{2126}ℨ\x{212A}-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+";
pub(super) const BLOOM: &str = r" ?[^(\s|.,!?…。，、।۔،)]+";

pub(super) const DEFAULT: &[&str] = &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"];
pub(super) const FALCON: &[&str] = &[r"[\p{P}\$\+<=>\^~\|`]+", GPT2, "[0-9][0-9][0-9]"];
pub(super) const DEEPSEEK_LLM: &[&str] = &[
    "[\r\n]",
    DEEPSEEK_LETTERS,
    r"\s?[!-/:-~！-／：-～‘-‟　-。]+",
    r"\s+$",
    CJK,
    r"\p{N}+",
];
pub(super) const DEEPSEEK_CODER: &[&str] = &["[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", CJK, r"\p{N}"];

/// Byte-level pre-tokenizers as in llama.cpp's `llama-vocab.cpp`: (the `tokenizer.ggml.pre`
/// values that select the rule, the first one naming it; regexes applied in turn, each
/// splitting the pieces of the one before; llama3-style `ignore_merges` and BOS by default).
/// Other values fall back to `default`, as in llama.cpp, which spells GPT-2 `gpt-2`: a plain
/// `gpt2` gets `default` there too.
pub const PRE_TOKENIZERS: &[(&str, &[&str], bool)] = &[
    ("default", DEFAULT, false),
    (
        "llama3 llama-v3 llama-bpe falcon3 falcon-h1 pixtral midm-2.0 lfm2",
        &[LLAMA3],
        true,
    ),
    ("smaug-bpe dbrx glm4 chatglm-bpe", &[LLAMA3], false),
    (
        "qwen2 deepseek-r1-qwen kormo stablelm2 megrez hunyuan",
        &[QWEN2],
        false,
    ),
    (
        "smollm starcoder refact command-r codeshell exaone minerva-7b",
        &[r"\p{N}", GPT2],
        false,
    ),
    (
        "gpt-2 phi-2 mpt olmo jais trillion granite-docling exaone4 jina-es jina-de jina-v2-es \
         jina-v2-de jina-v1-en jina-v2-code roberta-bpe gigachat a.x-4.0 mellum",
        &[GPT2],
        false,
    ),
    ("falcon", FALCON, false),
    ("deepseek-llm", DEEPSEEK_LLM, false),
    ("deepseek-coder", DEEPSEEK_CODER, false),
    ("bloom poro-chat gpt3-finnish", &[BLOOM], false),
    ("viking", &[BLOOM, r"\p{N}"], false),
];

/// The byte-level pre-tokenizer rule for a `tokenizer.ggml.pre` value (unknown → `default`).
pub(super) fn pre_rule(pre: Option<&str>) -> (&'static str, &'static [&'static str], bool) {
    let name = pre.unwrap_or("default");
    let rule = PRE_TOKENIZERS
        .iter()
        .find(|(names, ..)| names.split(' ').any(|n| n == name));
    if rule.is_none() {
        tracing::warn!("unknown tokenizer.ggml.pre `{name}`: using llama.cpp's `default` rule");
    }
    let (names, regexes, llama3) = rule.unwrap_or(&PRE_TOKENIZERS[0]);
    (names.split(' ').next().unwrap_or(names), regexes, *llama3)
}
