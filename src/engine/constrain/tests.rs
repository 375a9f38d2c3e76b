use super::*;
use serde_json::json;

fn any() -> Recognizer {
    let mut g = Grammar::new();
    g.set_root(grammar::ANY);
    Recognizer::new(Arc::new(g))
}

fn schema(s: serde_json::Value) -> Recognizer {
    Recognizer::new(Arc::new(compile(&s, "schema").unwrap()))
}

fn fed(mut r: Recognizer, text: &str) -> Option<Recognizer> {
    r.feed(text.as_bytes()).then_some(r)
}

/// Every cut of `doc` is a valid prefix, and the whole is complete.
fn every_cut_valid(r: &Recognizer, doc: &str) {
    let bytes = doc.as_bytes();
    for cut in 0..=bytes.len() {
        let mut x = r.clone();
        assert!(x.feed(&bytes[..cut]), "cut {cut} of {doc:?} refused");
    }
    let mut x = r.clone();
    x.feed(bytes);
    assert!(x.is_complete(), "{doc:?} not complete");
}

fn refused(r: &Recognizer, doc: &str) -> bool {
    !r.accepts(doc.as_bytes())
}

#[test]
fn valid_documents_are_valid_prefixes_at_every_cut() {
    let docs = [
        r#"{"a": 1, "b": [true, false, null], "c": {"d": "e"}}"#,
        r#"[1, -0, 0.5, -12.25e+3, 3E-2, 7e9]"#,
        r#""esc \" \\ \/ \b \f \n \r \t \u00e9 \u20AC""#,
        "\"Grüße 🌍 日本\"",
        "{\n  \"k\": [\n    {}, []\n  ]\n}",
        "[[[[[]]]]]",
        "-3.5",
        "true",
        "null",
    ];
    for d in docs {
        every_cut_valid(&any(), d);
        serde_json::from_str::<serde_json::Value>(d).expect("test documents are JSON");
    }
}

#[test]
fn invalid_prefixes_are_refused() {
    let r = any();
    for bad in [
        "{a",
        "{\"a\" 1",
        "[1,]",
        "[,",
        "01",
        "1.e5",
        "1.]",
        "--1",
        "+1",
        "\"\\x\"",
        "\"\\u12G\"",
        "\"\\uD800\"",
        "\"a\nb\"",
        "{\"a\":1,}",
        "tru e",
        "nul1",
        "{}}",
        "[1 2]",
        "\u{1}",
        " {}",
        "{}  ",
    ] {
        assert!(refused(&r, bad), "{bad:?} accepted");
    }
    // Broken UTF-8 inside strings: a lone continuation byte, an overlong form, a surrogate.
    for bytes in [&b"\"\x80"[..], b"\"\xC0\xAF", b"\"\xED\xA0\x80", b"\"\xF5"] {
        assert!(!r.accepts(bytes), "{bytes:?}");
    }
    assert!(r.accepts("\"\u{10FFFF}\"".as_bytes()));
}

#[test]
fn completeness_and_done() {
    let r = fed(any(), "12").unwrap();
    assert!(r.is_complete() && !r.is_done(), "a number may still grow");
    let r = fed(any(), "{\"a\":").unwrap();
    assert!(!r.is_complete());
    let r = fed(any(), "{\"a\":[]}").unwrap();
    assert!(r.is_complete() && r.is_done());
    assert!(!r.accepts(b" "), "nothing after the value");
}

#[test]
fn whitespace_runs_are_bounded() {
    let r = any();
    assert!(r.accepts(b"{\n                \"a\": 1}"));
    assert!(!r.accepts(b"{\n\n\"a\": 1}"), "two newlines in one run");
    assert!(!r.accepts(b"{ \n\"a\": 1}"), "a newline after spaces");
    let long = format!("{{{}\"a\":1}}", " ".repeat(18));
    assert!(!r.accepts(long.as_bytes()));
    assert!(!r.accepts(b"\n{}"), "nothing before the top-level value");
}

#[test]
fn json_object_must_be_an_object_and_nesting_is_bounded() {
    let r = Constraint::Json.recognizer();
    assert!(r.accepts(b"{\"x\": [1]}"));
    for bad in ["[1]", "\"s\"", "1", "true"] {
        assert!(refused(&r, bad), "{bad}");
    }
    let deep = "[".repeat(json::MAX_DEPTH + 1);
    assert!(!any().accepts(deep.as_bytes()));
}

#[test]
fn schema_objects_follow_property_order_and_required() {
    let r = schema(json!({
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}}},
        "required": ["name", "age"],
        "additionalProperties": false
    }));
    every_cut_valid(&r, r#"{"name": "Ann", "age": 3, "tags": ["a", "b"]}"#);
    every_cut_valid(&r, r#"{"name":"Ann","age":-3}"#);
    for bad in [
        r#"{"age": 3"#,                   // out of order / required name skipped
        r#"{"name": "Ann"}"#,             // age required
        r#"{"name": "Ann", "age": 3.5"#,  // integer
        r#"{"name": 1"#,                  // string
        r#"{"name": "A", "age": 1, "x""#, // not a listed property
        r#"{"name": "A", "age": 1, "tags": [1"#,
        "{}",
    ] {
        assert!(refused(&r, bad), "{bad}");
    }
    // Optional properties may be skipped; the object then closes.
    let r = schema(json!({"properties": {"a": {"type": "null"}, "b": {"type": "boolean"}}}));
    every_cut_valid(&r, "{}");
    every_cut_valid(&r, r#"{"b": true}"#);
    every_cut_valid(&r, r#"{"a": null, "b": false}"#);
    assert!(refused(&r, r#"{"b": true, "a""#));
}

#[test]
fn enum_const_and_literal_prefixes() {
    let r = schema(json!({"enum": ["red", "green", 1, 10, null, {"a": [1]}]}));
    for ok in [r#""red""#, r#""green""#, "1", "10", "null", r#"{"a":[1]}"#] {
        every_cut_valid(&r, ok);
    }
    assert!(r.clone().feed(b"\"red\"") && fed(r.clone(), "\"red\"").unwrap().is_done());
    let one = fed(r.clone(), "1").unwrap();
    assert!(one.is_complete() && !one.is_done(), "1 may still become 10");
    for bad in [r#""blue""#, "2", "100", r#"{"a": [1]}"#] {
        assert!(refused(&r, bad), "{bad}");
    }
    let r = schema(json!({"const": "x"}));
    every_cut_valid(&r, r#""x""#);
    assert!(refused(&r, r#""y""#));
}

#[test]
fn arrays_strings_and_types_lists() {
    let r =
        schema(json!({"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": 2}));
    every_cut_valid(&r, "[1]");
    every_cut_valid(&r, "[1, 2.5]");
    assert!(refused(&r, "[]") && refused(&r, "[1,2,3"));
    let r = schema(json!({"type": "string", "minLength": 2, "maxLength": 3}));
    every_cut_valid(&r, r#""ab""#);
    every_cut_valid(&r, r#""é\n€""#);
    assert!(refused(&r, r#""a""#) && refused(&r, r#""abcd"#));
    let r = schema(json!({"type": ["string", "null"]}));
    every_cut_valid(&r, "null");
    every_cut_valid(&r, r#""s""#);
    assert!(refused(&r, "1"));
}

#[test]
fn any_of_one_of_and_refs() {
    let r = schema(json!({
        "$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"}, "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}}, "required": ["v", "next"]}},
        "$ref": "#/$defs/node"
    }));
    every_cut_valid(&r, r#"{"v": 1, "next": {"v": 2, "next": null}}"#);
    assert!(refused(&r, r#"{"v": 1, "next": 3"#));
    let r = schema(
        json!({"oneOf": [{"type": "integer"}, {"type": "object", "properties": {"a": {"type": "string"}}}], "definitions": {}}),
    );
    every_cut_valid(&r, "42");
    every_cut_valid(&r, r#"{"a": "b"}"#);
    assert!(refused(&r, "4.5"));
    let r = schema(
        json!({"definitions": {"s": {"type": "string"}}, "type": "array", "items": {"$ref": "#/definitions/s"}}),
    );
    every_cut_valid(&r, r#"["a", "b"]"#);
}

#[test]
fn refused_keywords_name_their_path() {
    let cases = [
        (
            json!({"type": "object", "properties": {"age": {"type": "integer", "minimum": 0}}}),
            "s.properties.age.minimum",
        ),
        (json!({"type": "string", "pattern": "^a"}), "s.pattern"),
        (json!({"type": "string", "format": "date"}), "s.format"),
        (json!({"allOf": [{}]}), "s.allOf"),
        (
            json!({"type": "array", "items": [{"type": "string"}]}),
            "s.items",
        ),
        (
            json!({"type": "object", "additionalProperties": {"type": "string"}}),
            "s.additionalProperties",
        ),
        (
            json!({"type": "object", "properties": {"a": {}}, "required": ["b"]}),
            "s.required",
        ),
        (json!({"type": "wat"}), "s.type"),
        (json!({"$ref": "http://x/y"}), "s.$ref"),
        (json!({"$ref": "#/$defs/missing"}), "s.$ref"),
        (
            json!({"anyOf": [{"type": "string"}, {"type": "string", "not": {}}]}),
            "s.anyOf[1].not",
        ),
        (json!({"enum": []}), "s.enum"),
        (
            json!({"type": "string", "minLength": 3, "maxLength": 2}),
            "s.minLength",
        ),
        (json!("string"), "s"),
        (
            json!({"$defs": {"a": {"type": "string", "multipleOf": 2}}, "$ref": "#/$defs/a"}),
            "s.$defs.a.multipleOf",
        ),
    ];
    for (s, path) in cases {
        let e = compile(&s, "s").unwrap_err();
        assert_eq!(e.path, path, "{s}: {}", e.message);
        assert!(e.message.contains(path), "{}", e.message);
    }
    assert!(compile(
        &json!({"title": "T", "description": "d", "type": "boolean", "default": true}),
        "s"
    )
    .is_ok());
}
