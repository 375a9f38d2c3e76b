//! An incremental, byte-level JSON recognizer guided by a [`Grammar`].
//!
//! The state is a set of parse stacks (more than one only while `anyOf` branches are still
//! told apart), each a small `Vec` of frames: cloning it to try a token is cheap. Feeding a
//! byte advances every stack and drops those it kills; none left means the byte is invalid.

use super::grammar::*;
use super::scan::*;
use std::sync::Arc;

/// At most this many spaces or tabs in one whitespace run (after at most one newline).
pub const MAX_WS_RUN: u8 = 16;
/// Nesting deeper than this is refused (a model cannot open brackets forever).
pub const MAX_DEPTH: usize = 64;
/// At most this many `anyOf` alternatives are followed at once.
const MAX_STACKS: usize = 64;
/// `anyOf` of `anyOf`…: expansion stops (the branch dies) past this depth.
const MAX_EXPANSION: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Obj {
    /// After `{`.
    Open,
    /// A key is being read (the frame above).
    Key,
    /// After a key: `:` next.
    Colon,
    /// The value is being read (the frame above).
    Val,
    /// After a value: `,` or `}`.
    After,
    /// After `,`: a key next.
    Comma,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arr {
    Open,
    Val,
    After,
    Comma,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Frame {
    /// A value of this node comes next (whitespace first, except at the top).
    Value(NodeId),
    Obj {
        node: NodeId,
        next: u16,
        st: Obj,
    },
    /// A key of object `node`: one of its properties `lo..=hi`; `rep` is one still matching.
    Key {
        node: NodeId,
        lo: u16,
        hi: u16,
        rep: u16,
        pos: u16,
    },
    Arr {
        items: NodeId,
        min: u32,
        max: u32,
        count: u32,
        st: Arr,
    },
    /// Inside a string (after its opening quote); `len` characters so far.
    Str {
        min: u32,
        max: u32,
        len: u32,
        st: Str,
    },
    Num {
        int: bool,
        st: Num,
    },
    /// One of the literals of `node`; `rep` is one matching the `pos` bytes so far.
    Lit {
        node: NodeId,
        rep: u16,
        pos: u16,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Stack {
    frames: Vec<Frame>,
    /// Bytes in the current whitespace run.
    ws: u8,
}

enum Step {
    Ok,
    Dead,
    /// The top is a `Value` of an `anyOf`: try each alternative.
    Fork(Vec<NodeId>),
}

/// Where a constrained output stands.
#[derive(Clone, Debug)]
pub struct Recognizer {
    g: Arc<Grammar>,
    stacks: Vec<Stack>,
}

/// The first property index at or after `next` that is required, else the last one.
fn key_range(props: &[Prop], next: usize) -> Option<(usize, usize)> {
    if next >= props.len() {
        return None;
    }
    let hi = (next..props.len())
        .find(|&j| props[j].required)
        .unwrap_or(props.len() - 1);
    Some((next, hi))
}

fn can_close(g: &Grammar, node: NodeId, next: usize) -> bool {
    node == ANY_OBJECT
        || g.props(node)[next.min(g.props(node).len())..]
            .iter()
            .all(|p| !p.required)
}

/// A child value ended: the frame below takes note.
fn child_done(s: &mut Stack) {
    match s.frames.last_mut() {
        Some(Frame::Obj { st, .. }) if *st == Obj::Key => *st = Obj::Colon,
        Some(Frame::Obj { st, .. }) => *st = Obj::After,
        Some(Frame::Arr { st, count, .. }) => {
            *st = Arr::After;
            *count += 1;
        }
        _ => {}
    }
}

fn push(s: &mut Stack, f: Frame) -> Step {
    if s.frames.len() >= MAX_DEPTH {
        return Step::Dead;
    }
    s.frames.push(f);
    Step::Ok
}

/// Whether the top frame takes whitespace here; if so, counts it against the run's budget.
fn whitespace(s: &mut Stack, b: u8) -> Step {
    if (b == b'\n' && s.ws > 0) || s.ws > MAX_WS_RUN {
        return Step::Dead;
    }
    s.ws += 1;
    Step::Ok
}

fn step(g: &Grammar, s: &mut Stack, b: u8) -> Step {
    loop {
        let depth = s.frames.len();
        let Some(top) = s.frames.last_mut() else {
            return Step::Dead; // the value is complete: nothing may follow
        };
        let structural = !matches!(
            top,
            Frame::Str { .. } | Frame::Lit { .. } | Frame::Key { .. }
        );
        if structural && !is_ws(b) {
            s.ws = 0;
        }
        match top {
            Frame::Str { min, max, len, st } => {
                return match str_next(*min, *max, len, *st, b) {
                    None => Step::Dead,
                    Some(Some(next)) => {
                        *st = next;
                        Step::Ok
                    }
                    Some(None) => {
                        s.frames.pop();
                        child_done(s);
                        Step::Ok
                    }
                };
            }
            Frame::Num { int, st } => match num_next(*int, *st, b) {
                Some(next) => {
                    *st = next;
                    return Step::Ok;
                }
                None if num_accepting(*st) => {
                    s.frames.pop();
                    child_done(s);
                    if s.frames.is_empty() {
                        return Step::Dead;
                    }
                }
                None => return Step::Dead,
            },
            Frame::Lit { node, rep, pos } => {
                let lits = g.literals(*node);
                let (r, p) = (*rep as usize, *pos as usize);
                match extend(lits, 0, lits.len().saturating_sub(1), r, p, b) {
                    Some(j) => {
                        *rep = j as u16;
                        *pos += 1;
                        if !lit_longer(lits, j, p + 1) {
                            s.frames.pop();
                            child_done(s);
                        }
                        return Step::Ok;
                    }
                    None if p > 0 && lit_complete(lits, r, p) => {
                        s.frames.pop();
                        child_done(s);
                        if s.frames.is_empty() {
                            return Step::Dead;
                        }
                    }
                    None => return Step::Dead,
                }
            }
            Frame::Key {
                node,
                lo,
                hi,
                rep,
                pos,
            } => {
                let props = g.props(*node);
                let keys: Vec<&[u8]> = props.iter().map(|p| p.key.as_slice()).collect();
                let (r, p) = (*rep as usize, *pos as usize);
                let found =
                    (*lo as usize..=(*hi as usize).min(keys.len().saturating_sub(1))).find(|&j| {
                        keys[j].len() > p && keys[j][..p] == keys[r][..p] && keys[j][p] == b
                    });
                let Some(j) = found else {
                    return Step::Dead;
                };
                *rep = j as u16;
                *pos += 1;
                if keys[j].len() == p + 1 {
                    s.frames.pop();
                    if let Some(Frame::Obj { next, st, .. }) = s.frames.last_mut() {
                        *next = j as u16 + 1;
                        *st = Obj::Colon;
                    }
                }
                return Step::Ok;
            }
            Frame::Value(node) => {
                if is_ws(b) {
                    return if depth == 1 {
                        Step::Dead
                    } else {
                        whitespace(s, b)
                    };
                }
                let node = *node;
                let replace = match (g.node(node), b) {
                    (Node::AnyOf(alts), _) => return Step::Fork(alts.clone()),
                    (Node::Any, b'{') | (Node::AnyObject, b'{') => Frame::Obj {
                        node: ANY_OBJECT,
                        next: 0,
                        st: Obj::Open,
                    },
                    (Node::Object(_), b'{') => Frame::Obj {
                        node,
                        next: 0,
                        st: Obj::Open,
                    },
                    (Node::Any, b'[') => Frame::Arr {
                        items: ANY,
                        min: 0,
                        max: UNBOUNDED,
                        count: 0,
                        st: Arr::Open,
                    },
                    (&Node::Array { items, min, max }, b'[') => Frame::Arr {
                        items,
                        min,
                        max,
                        count: 0,
                        st: Arr::Open,
                    },
                    (Node::Any, b'"') => Frame::Str {
                        min: 0,
                        max: UNBOUNDED,
                        len: 0,
                        st: Str::Normal,
                    },
                    (&Node::String { min, max }, b'"') => Frame::Str {
                        min,
                        max,
                        len: 0,
                        st: Str::Normal,
                    },
                    (Node::Any | Node::Number, b'-' | b'0'..=b'9') => {
                        *top = Frame::Num {
                            int: false,
                            st: Num::Start,
                        };
                        continue;
                    }
                    (Node::Integer, b'-' | b'0'..=b'9') => {
                        *top = Frame::Num {
                            int: true,
                            st: Num::Start,
                        };
                        continue;
                    }
                    (Node::Any, b't' | b'f' | b'n') => {
                        let node = if b == b'n' { NULL } else { BOOLEAN };
                        *top = Frame::Lit {
                            node,
                            rep: 0,
                            pos: 0,
                        };
                        continue;
                    }
                    (Node::Literals(_), _) => {
                        *top = Frame::Lit {
                            node,
                            rep: 0,
                            pos: 0,
                        };
                        continue;
                    }
                    _ => return Step::Dead,
                };
                *top = replace;
                return Step::Ok;
            }
            Frame::Obj { node, next, st } => {
                let (node, n) = (*node, *next as usize);
                if is_ws(b) && *st != Obj::Key && *st != Obj::Val {
                    return whitespace(s, b);
                }
                match (*st, b) {
                    (Obj::Open | Obj::After, b'}') if can_close(g, node, n) => {
                        s.frames.pop();
                        child_done(s);
                        return Step::Ok;
                    }
                    (Obj::After, b',') => {
                        if node != ANY_OBJECT && n >= g.props(node).len() {
                            return Step::Dead;
                        }
                        *st = Obj::Comma;
                        return Step::Ok;
                    }
                    (Obj::Open | Obj::Comma, b'"') => {
                        *st = Obj::Key;
                        if node == ANY_OBJECT {
                            let key = Frame::Str {
                                min: 0,
                                max: UNBOUNDED,
                                len: 0,
                                st: Str::Normal,
                            };
                            return push(s, key);
                        }
                        let Some((lo, hi)) = key_range(g.props(node), n) else {
                            return Step::Dead;
                        };
                        let (lo, hi) = (lo as u16, hi as u16);
                        let key = Frame::Key {
                            node,
                            lo,
                            hi,
                            rep: lo,
                            pos: 0,
                        };
                        if let Step::Dead = push(s, key) {
                            return Step::Dead;
                        }
                    }
                    (Obj::Colon, b':') => {
                        *st = Obj::Val;
                        let value = match node {
                            ANY_OBJECT => ANY,
                            _ => g.props(node)[n - 1].value,
                        };
                        return push(s, Frame::Value(value));
                    }
                    _ => return Step::Dead,
                }
            }
            Frame::Arr {
                items,
                min,
                max,
                count,
                st,
            } => {
                let items = *items;
                if is_ws(b) && *st != Arr::Val {
                    return whitespace(s, b);
                }
                match (*st, b) {
                    (Arr::Open | Arr::After, b']') if *count >= *min => {
                        s.frames.pop();
                        child_done(s);
                        return Step::Ok;
                    }
                    (Arr::After, b',') if *count < *max => {
                        *st = Arr::Comma;
                        return Step::Ok;
                    }
                    (Arr::Open | Arr::Comma, _) if *count < *max => {
                        *st = Arr::Val;
                        if let Step::Dead = push(s, Frame::Value(items)) {
                            return Step::Dead;
                        }
                    }
                    _ => return Step::Dead,
                }
            }
        }
    }
}

/// Feed `b` to `s`, pushing what survives (several stacks after an `anyOf`) to `out`.
fn feed_stack(g: &Grammar, mut s: Stack, b: u8, out: &mut Vec<Stack>, expansion: usize) {
    match step(g, &mut s, b) {
        Step::Ok => out.push(s),
        Step::Dead => {}
        Step::Fork(alts) => {
            if expansion >= MAX_EXPANSION {
                return;
            }
            for alt in alts {
                let mut branch = s.clone();
                if let Some(top) = branch.frames.last_mut() {
                    *top = Frame::Value(alt);
                }
                feed_stack(g, branch, b, out, expansion + 1);
            }
        }
    }
}

fn stack_complete(g: &Grammar, s: &Stack) -> bool {
    match s.frames.as_slice() {
        [] => true,
        [Frame::Num { st, .. }] => num_accepting(*st),
        [Frame::Lit { node, rep, pos }] => {
            *pos > 0 && lit_complete(g.literals(*node), *rep as usize, *pos as usize)
        }
        _ => false,
    }
}

impl Recognizer {
    /// At the start of a value of `g`'s root.
    pub fn new(g: Arc<Grammar>) -> Recognizer {
        let root = g.root();
        Recognizer {
            g,
            stacks: vec![Stack {
                frames: vec![Frame::Value(root)],
                ws: 0,
            }],
        }
    }

    /// Feed bytes; `false` when they are not a valid continuation (the state is then dead).
    pub fn feed(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            let mut next = Vec::with_capacity(self.stacks.len());
            for s in self.stacks.drain(..) {
                feed_stack(&self.g, s, b, &mut next, 0);
            }
            next.dedup();
            next.truncate(MAX_STACKS);
            self.stacks = next;
            if self.stacks.is_empty() {
                return false;
            }
        }
        true
    }

    /// Whether `bytes` would be a valid continuation (the state is left as it is).
    pub fn accepts(&self, bytes: &[u8]) -> bool {
        self.clone().feed(bytes)
    }

    /// Whether what was fed is a whole value (the output may end here).
    pub fn is_complete(&self) -> bool {
        self.stacks.iter().any(|s| stack_complete(&self.g, s))
    }

    /// Whether the value is complete and nothing may follow (a number could still grow).
    pub fn is_done(&self) -> bool {
        self.stacks.iter().any(|s| s.frames.is_empty())
    }

    /// Whether an invalid byte was fed.
    pub fn is_dead(&self) -> bool {
        self.stacks.is_empty()
    }
}
