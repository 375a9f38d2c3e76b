//! Tensor names of the llama family in GGUF files and in HF safetensors checkpoints.

/// A weight of the model, independent of the file format.
#[derive(Clone, Copy, Debug)]
pub enum W {
    Embed,
    OutNorm,
    Output,
    AttnNorm(usize),
    Q(usize),
    K(usize),
    V(usize),
    O(usize),
    QNorm(usize),
    KNorm(usize),
    FfnNorm(usize),
    Gate(usize),
    Up(usize),
    Down(usize),
}

impl W {
    pub fn gguf(self) -> String {
        let b = |i: usize, s: &str| format!("blk.{i}.{s}.weight");
        match self {
            W::Embed => "token_embd.weight".into(),
            W::OutNorm => "output_norm.weight".into(),
            W::Output => "output.weight".into(),
            W::AttnNorm(i) => b(i, "attn_norm"),
            W::Q(i) => b(i, "attn_q"),
            W::K(i) => b(i, "attn_k"),
            W::V(i) => b(i, "attn_v"),
            W::O(i) => b(i, "attn_output"),
            W::QNorm(i) => b(i, "attn_q_norm"),
            W::KNorm(i) => b(i, "attn_k_norm"),
            W::FfnNorm(i) => b(i, "ffn_norm"),
            W::Gate(i) => b(i, "ffn_gate"),
            W::Up(i) => b(i, "ffn_up"),
            W::Down(i) => b(i, "ffn_down"),
        }
    }

    pub fn hf(self) -> String {
        let l = |i: usize, s: &str| format!("model.layers.{i}.{s}.weight");
        match self {
            W::Embed => "model.embed_tokens.weight".into(),
            W::OutNorm => "model.norm.weight".into(),
            W::Output => "lm_head.weight".into(),
            W::AttnNorm(i) => l(i, "input_layernorm"),
            W::Q(i) => l(i, "self_attn.q_proj"),
            W::K(i) => l(i, "self_attn.k_proj"),
            W::V(i) => l(i, "self_attn.v_proj"),
            W::O(i) => l(i, "self_attn.o_proj"),
            W::QNorm(i) => l(i, "self_attn.q_norm"),
            W::KNorm(i) => l(i, "self_attn.k_norm"),
            W::FfnNorm(i) => l(i, "post_attention_layernorm"),
            W::Gate(i) => l(i, "mlp.gate_proj"),
            W::Up(i) => l(i, "mlp.up_proj"),
            W::Down(i) => l(i, "mlp.down_proj"),
        }
    }
}

/// The bias belonging to a weight name.
pub fn bias_of(weight_name: &str) -> String {
    match weight_name.strip_suffix(".weight") {
        Some(stem) => format!("{stem}.bias"),
        None => format!("{weight_name}.bias"),
    }
}
