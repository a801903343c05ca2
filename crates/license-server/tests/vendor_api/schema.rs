//! A small checker of answers against the OpenAPI document: the path and
//! method are documented, the status code is documented for them, the
//! content type is the documented one, and the JSON body matches the
//! documented schema (types, required and undocumented properties, enums,
//! items, `$ref`, `oneOf`/`anyOf`/`allOf`).

use serde_json::Value;

/// The documented path template that `path` (no query) matches.
pub fn template<'a>(doc: &'a Value, path: &str) -> Option<&'a str> {
    let parts: Vec<&str> = path.split('/').collect();
    doc["paths"]
        .as_object()?
        .keys()
        .map(String::as_str)
        .find(|t| {
            let tparts: Vec<&str> = t.split('/').collect();
            tparts.len() == parts.len()
                && tparts
                    .iter()
                    .zip(&parts)
                    .all(|(t, p)| t == p || (t.starts_with('{') && t.ends_with('}')))
        })
}

/// Checks an answer; `Err` says what differs from the document.
pub fn check_answer(
    doc: &Value,
    method: &str,
    path: &str,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(), String> {
    let path = path.split('?').next().unwrap_or(path);
    let t = template(doc, path).ok_or_else(|| format!("{path} is not in the document"))?;
    let op = &doc["paths"][t][method.to_lowercase()];
    if op.is_null() {
        return Err(format!("{method} {t} is not in the document"));
    }
    let response = op["responses"]
        .get(status.to_string())
        .ok_or_else(|| format!("{method} {t}: status {status} is not documented"))?;
    let response = resolve(doc, response);
    let Some(content) = response["content"].as_object() else {
        return if body.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{method} {t} {status}: a body where none is documented"
            ))
        };
    };
    let ct = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    let media = content
        .get(ct)
        .ok_or_else(|| format!("{method} {t} {status}: content type {ct:?} is not documented"))?;
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| format!("{method} {t} {status}: body is not JSON: {e}"))?;
    check(doc, &media["schema"], &value, "$").map_err(|e| format!("{method} {t} {status}: {e}"))
}

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v["$ref"].as_str() {
        Some(r) => {
            let pointer = r.trim_start_matches('#');
            resolve(doc, doc.pointer(pointer).unwrap_or(&Value::Null))
        }
        None => v,
    }
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks `value` against `schema`; `at` is where in the body it is.
pub fn check(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    if schema.is_null() {
        return Err(format!("{at}: unresolved schema"));
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = schema[key].as_array() {
            let ok = options.iter().any(|s| check(doc, s, value, at).is_ok());
            if !ok {
                return Err(format!("{at}: {value} matches none of {key}"));
            }
        }
    }
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            check(doc, s, value, at)?;
        }
    }
    let actual = type_of(value);
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let type_ok = types.is_empty()
        || types.contains(&actual)
        || (actual == "integer" && types.contains(&"number"));
    if !type_ok {
        return Err(format!("{at}: {actual} where {types:?} is documented"));
    }
    if let Some(options) = schema["enum"].as_array() {
        if !options.contains(value) {
            return Err(format!("{at}: {value} is not one of {options:?}"));
        }
    }
    if schema["format"] == "date-time" {
        if let Some(s) = value.as_str() {
            let rfc3339 = time::format_description::well_known::Rfc3339;
            time::OffsetDateTime::parse(s, &rfc3339)
                .map_err(|_| format!("{at}: {s:?} is not an RFC 3339 date-time"))?;
        }
    }
    if let Value::Object(map) = value {
        let props = schema["properties"].as_object();
        for r in schema["required"].as_array().into_iter().flatten() {
            let r = r.as_str().unwrap_or_default();
            if !map.contains_key(r) {
                return Err(format!("{at}: required property {r:?} is missing"));
            }
        }
        for (k, v) in map {
            match props.and_then(|p| p.get(k)) {
                Some(s) => check(doc, s, v, &format!("{at}.{k}"))?,
                None => match &schema["additionalProperties"] {
                    Value::Object(_) => check(
                        doc,
                        &schema["additionalProperties"],
                        v,
                        &format!("{at}.{k}"),
                    )?,
                    Value::Bool(true) => {}
                    _ if props.is_some() => {
                        return Err(format!("{at}: property {k:?} is not documented"))
                    }
                    _ => {}
                },
            }
        }
    }
    if let (Value::Array(items), Some(s)) = (value, schema.get("items")) {
        for (i, v) in items.iter().enumerate() {
            check(doc, s, v, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}
