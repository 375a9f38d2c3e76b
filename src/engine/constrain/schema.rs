//! JSON Schema → [`Grammar`], for the subset lmwb can enforce while generating:
//!
//! `type` (object, array, string, number, integer, boolean, null, or a list of them),
//! `properties`, `required`, `additionalProperties` (`false`, `true` or absent: only the
//! listed properties are generated), `enum`, `const`, `items`, `minItems`, `maxItems`,
//! `minLength`, `maxLength`, `anyOf`, `oneOf` (generated as `anyOf`: a value matching
//! several branches is not refused), `$ref` to `#`, `#/$defs/…` or `#/definitions/…`.
//! Annotations are ignored: `title`, `description`, `default`, `examples`, `$comment`,
//! `$schema`. An object without `properties` is any object (or only `{}` with
//! `additionalProperties: false`). `enum`/`const` values are generated as compact JSON.
//!
//! Every other keyword (`pattern`, `format`, `minimum`, `allOf`, `not`, …) is refused with
//! its path, never ignored.

use super::grammar::*;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// A schema lmwb cannot enforce, or one that is malformed.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
#[error("{message}")]
pub struct SchemaError {
    /// Where, as a dotted path from the request's field (`….properties.age.minimum`).
    pub path: String,
    pub message: String,
}

/// Keywords that only describe: accepted and ignored.
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "default",
    "examples",
    "$comment",
    "$schema",
];

/// Keywords that constrain and are enforced.
const SUPPORTED: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "const",
    "items",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "anyOf",
    "oneOf",
    "$ref",
    "$defs",
    "definitions",
];

/// The supported keywords, for messages.
pub const SUPPORTED_LIST: &str = "type, properties, required, additionalProperties, enum, const, items, minItems, maxItems, minLength, maxLength, anyOf, oneOf, $ref, $defs/definitions (and the annotations title, description, default, examples)";

struct Compiler<'a> {
    root: &'a Value,
    base: &'a str,
    g: Grammar,
    refs: HashMap<String, NodeId>,
}

fn err(path: &str, message: impl Into<String>) -> SchemaError {
    SchemaError {
        path: path.to_string(),
        message: message.into(),
    }
}

/// Compile `schema`; errors name their path under `base` (e.g. `response_format.json_schema.schema`).
pub fn compile(schema: &Value, base: &str) -> Result<Grammar, SchemaError> {
    let mut c = Compiler {
        root: schema,
        base,
        g: Grammar::new(),
        refs: HashMap::new(),
    };
    let root = c.node(schema, base)?;
    c.g.set_root(root);
    Ok(c.g)
}

fn count(map: &Map<String, Value>, key: &str, path: &str) -> Result<Option<u32>, SchemaError> {
    match map.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(|n| Some(n.min(u64::from(UNBOUNDED - 1)) as u32))
            .ok_or_else(|| {
                err(
                    &format!("{path}.{key}"),
                    format!("`{path}.{key}` must be a non-negative integer"),
                )
            }),
    }
}

fn bounds(
    map: &Map<String, Value>,
    lo: &str,
    hi: &str,
    path: &str,
) -> Result<(u32, u32), SchemaError> {
    let min = count(map, lo, path)?.unwrap_or(0);
    let max = count(map, hi, path)?.unwrap_or(UNBOUNDED);
    if min > max {
        return Err(err(
            &format!("{path}.{lo}"),
            format!("`{path}.{lo}` ({min}) is larger than `{hi}` ({max})"),
        ));
    }
    Ok((min, max))
}

fn literal(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

impl Compiler<'_> {
    fn node(&mut self, v: &Value, path: &str) -> Result<NodeId, SchemaError> {
        let map = match v {
            Value::Bool(true) => return Ok(ANY),
            Value::Object(m) => m,
            _ => {
                return Err(err(path, format!("`{path}` must be a JSON Schema object")));
            }
        };
        for key in map.keys() {
            if !SUPPORTED.contains(&key.as_str()) && !ANNOTATIONS.contains(&key.as_str()) {
                let at = format!("{path}.{key}");
                return Err(err(
                    &at,
                    format!("`{at}`: the JSON Schema keyword `{key}` cannot be enforced by lmwb; remove it (supported: {SUPPORTED_LIST})"),
                ));
            }
        }
        let constraining = |skip: &[&str]| {
            map.keys()
                .find(|k| {
                    !ANNOTATIONS.contains(&k.as_str())
                        && !["$defs", "definitions"].contains(&k.as_str())
                        && !skip.contains(&k.as_str())
                })
                .cloned()
        };
        if let Some(r) = map.get("$ref") {
            if let Some(other) = constraining(&["$ref"]) {
                let at = format!("{path}.{other}");
                return Err(err(&at, format!("`{at}` next to `$ref` is not supported; move it into the referenced schema")));
            }
            return self.reference(r, &format!("{path}.$ref"));
        }
        if let Some(c) = map.get("const") {
            return Ok(self.g.push(Node::Literals(vec![literal(c)])));
        }
        if let Some(e) = map.get("enum") {
            let at = format!("{path}.enum");
            let values = e
                .as_array()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| err(&at, format!("`{at}` must be a non-empty array")))?;
            let mut lits: Vec<Vec<u8>> = values.iter().map(literal).collect();
            lits.dedup();
            return Ok(self.g.push(Node::Literals(lits)));
        }
        for key in ["anyOf", "oneOf"] {
            let Some(alts) = map.get(key) else { continue };
            let at = format!("{path}.{key}");
            if let Some(other) = constraining(&[key]) {
                let at = format!("{path}.{other}");
                return Err(err(
                    &at,
                    format!(
                        "`{at}` next to `{key}` is not supported; repeat it inside each branch"
                    ),
                ));
            }
            let alts = alts
                .as_array()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| err(&at, format!("`{at}` must be a non-empty array of schemas")))?;
            let ids = alts
                .iter()
                .enumerate()
                .map(|(i, a)| self.node(a, &format!("{at}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(self.g.push(Node::AnyOf(ids)));
        }
        match map.get("type") {
            None => {
                let inferred =
                    if map.contains_key("properties") || map.contains_key("additionalProperties") {
                        "object"
                    } else if map.contains_key("items")
                        || map.contains_key("minItems")
                        || map.contains_key("maxItems")
                    {
                        "array"
                    } else if map.contains_key("minLength") || map.contains_key("maxLength") {
                        "string"
                    } else {
                        return Ok(ANY);
                    };
                self.typed(inferred, map, path)
            }
            Some(Value::String(t)) => self.typed(t, map, path),
            Some(Value::Array(ts)) if !ts.is_empty() => {
                let mut ids = Vec::with_capacity(ts.len());
                for (i, t) in ts.iter().enumerate() {
                    let Some(t) = t.as_str() else {
                        return Err(err(
                            &format!("{path}.type[{i}]"),
                            format!("`{path}.type[{i}]` must be a type name"),
                        ));
                    };
                    ids.push(self.typed(t, map, &format!("{path}.type[{i}]"))?);
                }
                Ok(self.g.push(Node::AnyOf(ids)))
            }
            Some(_) => Err(err(
                &format!("{path}.type"),
                format!("`{path}.type` must be a type name or a non-empty list of them"),
            )),
        }
    }

    fn typed(
        &mut self,
        t: &str,
        map: &Map<String, Value>,
        path: &str,
    ) -> Result<NodeId, SchemaError> {
        Ok(match t {
            "object" => self.object(map, path)?,
            "array" => {
                let (min, max) = bounds(map, "minItems", "maxItems", path)?;
                let items = match map.get("items") {
                    None => ANY,
                    Some(Value::Array(_)) => {
                        let at = format!("{path}.items");
                        return Err(err(&at, format!("`{at}`: tuple items (a list of schemas) cannot be enforced; give one schema")));
                    }
                    Some(v) => self.node(v, &format!("{path}.items"))?,
                };
                self.g.push(Node::Array { items, min, max })
            }
            "string" => {
                let (min, max) = bounds(map, "minLength", "maxLength", path)?;
                if (min, max) == (0, UNBOUNDED) {
                    ANY_STRING
                } else {
                    self.g.push(Node::String { min, max })
                }
            }
            "number" => NUMBER,
            "integer" => INTEGER,
            "boolean" => BOOLEAN,
            "null" => NULL,
            other => {
                let at = format!("{path}.type");
                return Err(err(&at, format!("`{at}`: unknown type `{other}`; use object, array, string, number, integer, boolean or null")));
            }
        })
    }

    fn object(&mut self, map: &Map<String, Value>, path: &str) -> Result<NodeId, SchemaError> {
        let extra = match map.get("additionalProperties") {
            None | Some(Value::Bool(true)) => true,
            Some(Value::Bool(false)) => false,
            Some(_) => {
                let at = format!("{path}.additionalProperties");
                return Err(err(
                    &at,
                    format!(
                        "`{at}`: a schema for additional properties cannot be enforced; use false"
                    ),
                ));
            }
        };
        let props = match map.get("properties") {
            None => None,
            Some(Value::Object(p)) => Some(p),
            Some(_) => {
                let at = format!("{path}.properties");
                return Err(err(&at, format!("`{at}` must be an object of schemas")));
            }
        };
        let required: Vec<&str> = match map.get("required") {
            None => vec![],
            Some(Value::Array(r)) => r
                .iter()
                .map(|v| v.as_str())
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    err(
                        &format!("{path}.required"),
                        format!("`{path}.required` must be a list of property names"),
                    )
                })?,
            Some(_) => {
                return Err(err(
                    &format!("{path}.required"),
                    format!("`{path}.required` must be a list of property names"),
                ))
            }
        };
        let Some(props) = props.filter(|p| !p.is_empty()) else {
            if let Some(name) = required.first() {
                let at = format!("{path}.required");
                return Err(err(
                    &at,
                    format!("`{at}` names `{name}`, which `properties` does not define"),
                ));
            }
            return Ok(if extra {
                ANY_OBJECT
            } else {
                self.g.push(Node::Object(vec![]))
            });
        };
        if let Some(name) = required.iter().find(|r| !props.contains_key(**r)) {
            let at = format!("{path}.required");
            return Err(err(&at, format!("`{at}` names `{name}`, which `properties` does not define; lmwb generates only the listed properties")));
        }
        let mut out = Vec::with_capacity(props.len());
        for (name, schema) in props {
            let value = self.node(schema, &format!("{path}.properties.{name}"))?;
            out.push(Prop {
                key: literal(&Value::String(name.clone())),
                value,
                required: required.contains(&name.as_str()),
            });
        }
        Ok(self.g.push(Node::Object(out)))
    }

    fn reference(&mut self, r: &Value, path: &str) -> Result<NodeId, SchemaError> {
        let Some(r) = r.as_str() else {
            return Err(err(path, format!("`{path}` must be a string")));
        };
        if let Some(&id) = self.refs.get(r) {
            return Ok(id);
        }
        let (target, at) = if r == "#" {
            (Some(self.root), self.base.to_string())
        } else {
            let name = r.strip_prefix("#/$defs/").map(|n| ("$defs", n));
            let name =
                name.or_else(|| r.strip_prefix("#/definitions/").map(|n| ("definitions", n)));
            match name {
                Some((defs, n)) => (
                    self.root.get(defs).and_then(|d| d.get(n)),
                    format!("{}.{defs}.{n}", self.base),
                ),
                None => {
                    return Err(err(path, format!("`{path}` = `{r}`: only references to `#`, `#/$defs/NAME` and `#/definitions/NAME` are supported")));
                }
            }
        };
        let Some(target) = target else {
            return Err(err(
                path,
                format!("`{path}` = `{r}` points to nothing in the schema"),
            ));
        };
        let slot = self.g.push(Node::AnyOf(vec![]));
        self.refs.insert(r.to_string(), slot);
        let id = self.node(target, &at)?;
        self.g.set(slot, Node::AnyOf(vec![id]));
        Ok(slot)
    }
}
