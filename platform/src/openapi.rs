//! The OpenAPI document as served at `/openapi.json` and shown at `/docs`: poem-openapi's,
//! finished with what its derives cannot express.
//!
//! - Request bodies refuse unknown fields ([`crate::http::JsonBody`] with
//!   `deny_unknown_fields`), so every schema named `*Request` gets `additionalProperties: false`.
//! - A success response without a description (poem-openapi leaves JSON payloads' empty, which
//!   OpenAPI does not allow) gets one.

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

/// Applies the finishing rules (module docs) to an OpenAPI JSON document.
pub fn finish(spec: &str) -> String {
    let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(spec) else {
        return spec.to_owned();
    };
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
