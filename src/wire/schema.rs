//! JSON Schema conventions for everything basis publishes (MCP tool schemas, `schemas/`, the
//! `OpenAPI` components): JSON Schema 2020-12 with only the formats that draft defines.
//!
//! schemars annotates integers with `format: "uint64"`, `"int32"`, `"double"` and the like.
//! Those are not JSON Schema formats: strict validators (Ajv, which the TypeScript MCP SDK
//! uses) warn once per occurrence. [`StandardFormats`] drops them; the ranges they imply stay
//! as `minimum`/`maximum`, which schemars writes beside them.

use schemars::Schema;
use schemars::transform::{Transform, transform_subschemas};
use serde_json::{Map, Value};

/// The `format` values JSON Schema 2020-12 defines (its Validation vocabulary, section 7.3).
pub const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// A schemars transform that removes every `format` keyword whose value is not one of
/// [`STANDARD_FORMATS`], in the schema and all its subschemas (`$defs` included). Property
/// names are never touched: only keyword positions are visited.
#[derive(Debug, Clone, Copy, Default)]
pub struct StandardFormats;

impl Transform for StandardFormats {
    fn transform(&mut self, schema: &mut Schema) {
        if let Some(object) = schema.as_object_mut() {
            let non_standard = object
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|format| !STANDARD_FORMATS.contains(&format));
            if non_standard {
                object.remove("format");
            }
        }
        transform_subschemas(self, schema);
    }
}

/// [`StandardFormats`] applied to a schema held as a JSON object (rmcp's tool schemas).
pub fn standard_formats(object: Map<String, Value>) -> Map<String, Value> {
    let mut schema = Schema::from(object);
    StandardFormats.transform(&mut schema);
    match schema.to_value() {
        Value::Object(object) => object,
        // A `Schema` built from an object stays an object; nothing else can come back.
        other => {
            let mut object = Map::new();
            object.insert("allOf".into(), Value::Array(vec![other]));
            object
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn non_standard_formats_go_and_standard_ones_and_ranges_stay() {
        let Value::Object(object) = json!({
            "type": "object",
            "properties": {
                "format": { "type": "string", "format": "uri" },
                "count": { "type": "integer", "format": "uint64", "minimum": 0 },
                "list": { "type": "array", "items": { "type": "integer", "format": "uint8", "maximum": 255 } },
                "ratio": { "anyOf": [{ "type": "number", "format": "double" }, { "type": "null" }] }
            },
            "$defs": { "Small": { "type": "integer", "format": "uint16", "minimum": 0, "maximum": 65535 } }
        }) else {
            unreachable!("a JSON object literal")
        };
        let out = Value::Object(standard_formats(object));
        assert_eq!(out["properties"]["format"]["format"], "uri");
        assert_eq!(
            out["properties"]["count"],
            json!({ "type": "integer", "minimum": 0 })
        );
        assert_eq!(
            out["properties"]["list"]["items"],
            json!({ "type": "integer", "maximum": 255 })
        );
        assert_eq!(
            out["properties"]["ratio"]["anyOf"][0],
            json!({ "type": "number" })
        );
        assert_eq!(
            out["$defs"]["Small"],
            json!({ "type": "integer", "minimum": 0, "maximum": 65535 })
        );
    }
}
