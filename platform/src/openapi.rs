//! The OpenAPI document as served at `/openapi.json` and shown at `/docs`: poem-openapi's,
//! finished with what its derives cannot express.
//!
//! - Request bodies refuse unknown fields ([`crate::http::JsonBody`] with
//!   `deny_unknown_fields`), so every schema named `*Request` gets `additionalProperties: false`.
//! - A success response without a description (poem-openapi leaves JSON payloads' empty, which
//!   OpenAPI does not allow) gets one.
//! - Integer fields and parameters whose values are a closed set get an `enum` ([`ENUMS`]),
//!   which poem-openapi's validators cannot state.

use poem::endpoint::make_sync;
use poem::web::Html;
use poem::{Endpoint, Response};

/// The finished document and the Swagger UI page that shows it.
#[derive(Debug, Clone)]
pub struct Docs {
    json: String,
    html: String,
}

impl Docs {
    /// Finishes `spec` (poem-openapi's `OpenApiService::spec`) and rewrites `swagger_html`
    /// (`OpenApiService::swagger_ui_html`, which embeds `spec`) to embed the finished one.
    pub fn new(spec: &str, swagger_html: &str) -> Self {
        let json = finish(spec);
        Self {
            html: swagger_html.replacen(spec, &json, 1),
            json,
        }
    }

    /// The finished document.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// `GET /openapi.json`.
    pub fn spec_endpoint(&self) -> impl Endpoint {
        let json = self.json.clone();
        make_sync(move |_| {
            Response::builder()
                .content_type("application/json; charset=utf-8")
                .body(json.clone())
        })
    }

    /// `GET /docs`: Swagger UI.
    pub fn ui_endpoint(&self) -> impl Endpoint {
        let html = self.html.clone();
        make_sync(move |_| Html(html.clone()))
    }
}

/// Fields and parameters (by name) with a closed set of integer values.
pub const ENUMS: &[(&str, &[u8])] = &[("channel_type", &[1, 2]), ("device_flag", &[0, 1, 2])];

fn enum_of(name: &str) -> Option<serde_json::Value> {
    ENUMS.iter().find(|(n, _)| *n == name).map(|(_, values)| {
        values
            .iter()
            .copied()
            .map(serde_json::Value::from)
            .collect()
    })
}

/// Adds [`ENUMS`] to every property and parameter of those names, anywhere in `v`.
fn add_enums(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            if let Some(props) = map
                .get_mut("properties")
                .and_then(serde_json::Value::as_object_mut)
            {
                for (name, schema) in props.iter_mut() {
                    if let (Some(values), Some(obj)) = (enum_of(name), schema.as_object_mut()) {
                        obj.insert("enum".into(), values);
                    }
                }
            }
            let param = map.get("in").is_some() && map.get("name").is_some();
            if param {
                let name = map
                    .get("name")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if let (Some(values), Some(schema)) = (
                    enum_of(&name),
                    map.get_mut("schema")
                        .and_then(serde_json::Value::as_object_mut),
                ) {
                    schema.insert("enum".into(), values);
                }
            }
            for child in map.values_mut() {
                add_enums(child);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(add_enums),
        _ => {}
    }
}

/// Applies the finishing rules (module docs) to an OpenAPI JSON document.
pub fn finish(spec: &str) -> String {
    let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(spec) else {
        return spec.to_owned();
    };
    add_enums(&mut doc);
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(serde_json::Value::as_object_mut)
    {
        for (name, schema) in schemas.iter_mut() {
            if name.ends_with("Request") {
                if let Some(obj) = schema.as_object_mut() {
                    obj.insert(
                        "additionalProperties".into(),
                        serde_json::Value::Bool(false),
                    );
                }
            }
        }
    }
    if let Some(paths) = doc
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
    {
        for op in paths
            .values_mut()
            .filter_map(serde_json::Value::as_object_mut)
        {
            for operation in op.values_mut() {
                let Some(responses) = operation
                    .get_mut("responses")
                    .and_then(serde_json::Value::as_object_mut)
                else {
                    continue;
                };
                for (status, response) in responses.iter_mut() {
                    let empty = response
                        .get("description")
                        .and_then(serde_json::Value::as_str)
                        .is_none_or(str::is_empty);
                    if empty && status.starts_with('2') {
                        response["description"] = serde_json::Value::from("Success.");
                    }
                }
            }
        }
    }
    doc.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn closed_sets_become_enums() {
        let spec = r#"{"paths":{"/x/{channel_type}":{"get":{"parameters":[{"in":"path","name":"channel_type","schema":{"type":"integer"}}]}}},
            "components":{"schemas":{"A":{"properties":{"channel_type":{"type":"integer"},"other":{"type":"integer"}}}}}}"#;
        let v: serde_json::Value = serde_json::from_str(&super::finish(spec)).expect("json");
        assert_eq!(
            v["components"]["schemas"]["A"]["properties"]["channel_type"]["enum"],
            serde_json::json!([1, 2])
        );
        assert!(v["components"]["schemas"]["A"]["properties"]["other"]
            .get("enum")
            .is_none());
        assert_eq!(
            v["paths"]["/x/{channel_type}"]["get"]["parameters"][0]["schema"]["enum"],
            serde_json::json!([1, 2])
        );
    }

    #[test]
    fn request_schemas_refuse_unknown_fields() {
        let spec = r#"{"components":{"schemas":{"SendMessageRequest":{"type":"object"},"SendMessageResult":{"type":"object"}}}}"#;
        let v: serde_json::Value = serde_json::from_str(&super::finish(spec)).expect("json");
        assert_eq!(
            v["components"]["schemas"]["SendMessageRequest"]["additionalProperties"],
            false
        );
        assert!(v["components"]["schemas"]["SendMessageResult"]
            .get("additionalProperties")
            .is_none());
    }
}
