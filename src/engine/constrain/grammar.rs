//! What a constrained output may be: nodes in one arena, referring to each other by id (so
//! recursive schemas are graphs, not trees).

/// Index of a node in its [`Grammar`].
pub type NodeId = u32;

/// Built-in nodes every grammar starts with.
pub const ANY: NodeId = 0;
pub const ANY_OBJECT: NodeId = 1;
pub const BOOLEAN: NodeId = 2;
pub const NULL: NodeId = 3;
pub const NUMBER: NodeId = 4;
pub const INTEGER: NodeId = 5;
pub const ANY_STRING: NodeId = 6;
pub const ANY_ARRAY: NodeId = 7;

/// "No upper bound" for lengths and counts.
pub const UNBOUNDED: u32 = u32::MAX;

/// One kind of JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// Any JSON value.
    Any,
    /// Any JSON object (any keys, any values).
    AnyObject,
    /// An object with exactly these keys, in this order; optional ones may be left out.
    Object(Vec<Prop>),
    /// An array of `items`, between `min` and `max` of them.
    Array {
        items: NodeId,
        min: u32,
        max: u32,
    },
    /// A string of `min..=max` characters (code points; an escape counts as one).
    String {
        min: u32,
        max: u32,
    },
    Number,
    Integer,
    /// One of these exact JSON texts (compact: no whitespace), e.g. `enum` and `const`.
    Literals(Vec<Vec<u8>>),
    /// Any one of these.
    AnyOf(Vec<NodeId>),
}

/// A property of an [`Node::Object`].
#[derive(Clone, Debug, PartialEq)]
pub struct Prop {
    /// The key as JSON text, quotes included (`"name"`).
    pub key: Vec<u8>,
    pub value: NodeId,
    pub required: bool,
}

/// The nodes, and the one the output must match.
#[derive(Clone, Debug, PartialEq)]
pub struct Grammar {
    nodes: Vec<Node>,
    root: NodeId,
}

impl Default for Grammar {
    fn default() -> Self {
        Self::new()
    }
}

impl Grammar {
    /// The built-in nodes; the root is [`ANY`].
    pub fn new() -> Grammar {
        let lits = |l: &[&str]| Node::Literals(l.iter().map(|s| s.as_bytes().to_vec()).collect());
        Grammar {
            nodes: vec![
                Node::Any,
                Node::AnyObject,
                lits(&["true", "false"]),
                lits(&["null"]),
                Node::Number,
                Node::Integer,
                Node::String {
                    min: 0,
                    max: UNBOUNDED,
                },
                Node::Array {
                    items: ANY,
                    min: 0,
                    max: UNBOUNDED,
                },
            ],
            root: ANY,
        }
    }

    /// Any JSON object.
    pub fn json_object() -> Grammar {
        let mut g = Grammar::new();
        g.root = ANY_OBJECT;
        g
    }

    pub fn push(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        (self.nodes.len() - 1) as NodeId
    }

    /// Replace a node (fills a placeholder pushed before its target was compiled).
    pub fn set(&mut self, id: NodeId, node: Node) {
        self.nodes[id as usize] = node;
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    pub fn root(&self) -> NodeId {
        self.root
    }

    pub fn set_root(&mut self, root: NodeId) {
        self.root = root;
    }

    /// The literals of a [`Node::Literals`] node (empty for any other).
    pub(crate) fn literals(&self, id: NodeId) -> &[Vec<u8>] {
        match self.node(id) {
            Node::Literals(l) => l,
            _ => &[],
        }
    }

    /// The properties of a [`Node::Object`] node (empty for any other).
    pub(crate) fn props(&self, id: NodeId) -> &[Prop] {
        match self.node(id) {
            Node::Object(p) => p,
            _ => &[],
        }
    }
}
