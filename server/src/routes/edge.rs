//! The edge: what every request must satisfy before the Driver sees it.
//! Bodies are JSON, fields have the protocol's types (an error names the
//! field by its path and says what it should be, never a Rust type), and
//! every network and endpoint ID looks like one dockerd sends.

use serde::de::DeserializeOwned;
use serde_json::Value;
use switchyard_core::ids::check_id;
use switchyard_core::quote::quote;

/// The fields that carry IDs, wherever a request has them.
const ID_FIELDS: [&str; 2] = ["NetworkID", "EndpointID"];

/// A request the edge refused, with the text the caller gets.
pub struct Refused(pub String);

/// The body as JSON (`null` for an empty body: calls without arguments
/// send none, Go's encoder ends bodies with a newline).
pub fn parse(method: &str, body: &[u8]) -> Result<Value, Refused> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| {
        Refused(format!(
            "{}: the request body is not valid JSON: {e}",
            quote_method(method)
        ))
    })
}

/// The IDs a method cannot do without.
fn required_ids(method: &str) -> &'static [&'static str] {
    match method.strip_prefix("NetworkDriver.") {
        Some(
            "CreateEndpoint"
            | "DeleteEndpoint"
            | "EndpointOperInfo"
            | "Join"
            | "Leave"
            | "ProgramExternalConnectivity"
            | "RevokeExternalConnectivity",
        ) => &ID_FIELDS,
        Some("CreateNetwork" | "DeleteNetwork" | "AllocateNetwork" | "FreeNetwork") => {
            &ID_FIELDS[..1]
        }
        _ => &[],
    }
}

/// The IDs of a request, checked before any work. Every plugin call's
/// body is a JSON object.
pub fn check_ids(method: &str, body: &Value) -> Result<(), Refused> {
    if !body.is_object() {
        return Err(Refused(format!(
            "{}: the request body does not match the protocol: the body must be a JSON object, got {}",
            quote_method(method),
            kind_of(body)
        )));
    }
    for field in ID_FIELDS {
        match body.get(field) {
            None | Some(Value::Null) if required_ids(method).contains(&field) => {
                return Err(Refused(format!(
                    "{}: {field} is missing; it must be {}",
                    quote_method(method),
                    switchyard_core::ids::ID_RULE
                )));
            }
            None | Some(Value::Null) => {}
            Some(Value::String(id)) => check_id(field, id)
                .map_err(|e| Refused(format!("{}: {e}", quote_method(method))))?,
            Some(other) => {
                return Err(Refused(format!(
                    "{}: the request body does not match the protocol: field {field} must be a string, got {}",
                    quote_method(method),
                    kind_of(other)
                )));
            }
        }
    }
    Ok(())
}

/// Decodes a request, naming the offending field by its path.
pub fn decode<T: DeserializeOwned>(method: &str, body: &Value) -> Result<T, Refused> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let what = humane(&e.into_inner().to_string());
        let field = if path == "." || path.is_empty() {
            "the body".to_string()
        } else {
            format!("field {path}")
        };
        Refused(format!(
            "{}: the request body does not match the protocol: {field}: {what}",
            quote_method(method)
        ))
    })
}

/// serde's message in a user's words: no Rust type names, values escaped
/// and cut short.
fn humane(msg: &str) -> String {
    let mut out = String::new();
    let mut rest = msg;
    while let Some(i) = rest.find("struct ") {
        out.push_str(&rest[..i]);
        let after = &rest[i + "struct ".len()..];
        let end = after
            .find(|c: char| !c.is_alphanumeric() && c != '_')
            .unwrap_or(after.len());
        out.push_str("an object");
        rest = &after[end..];
    }
    out.push_str(rest);
    let out = out
        .replace("a map", "an object")
        .replace("a sequence", "a list")
        .replace("unit value", "null")
        .replace("i64", "an integer")
        .replace("u64", "a non-negative integer")
        .replace("u32", "a non-negative integer")
        .replace("u16", "a port number");
    const MAX: usize = 200;
    if out.chars().count() > MAX {
        let cut: String = out.chars().take(MAX).collect();
        format!("{}…", cut.escape_debug())
    } else {
        out.escape_debug().to_string()
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The method as the caller named it (from the URL), safe to show.
pub fn quote_method(method: &str) -> String {
    if method
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
        && method.len() <= 64
    {
        method.to_string()
    } else {
        quote(method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchyard_core::protocol::{CreateNetworkRequest, JoinRequest};

    #[test]
    fn a_wrong_type_names_the_field_and_no_rust_type() {
        let Err(Refused(e)) = decode::<CreateNetworkRequest>(
            "NetworkDriver.CreateNetwork",
            &json!({"NetworkID": "x", "IPv4Data": [{"Pool": 123}]}),
        ) else {
            panic!("accepted")
        };
        assert!(e.contains("IPv4Data[0].Pool"), "{e}");
        assert!(e.contains("does not match the protocol"), "{e}");
        let Err(Refused(e)) = decode::<CreateNetworkRequest>(
            "NetworkDriver.CreateNetwork",
            &json!({"NetworkID": "x", "IPv4Data": ["nope"]}),
        ) else {
            panic!("accepted")
        };
        assert!(!e.contains("struct") && !e.contains("IpamData"), "{e}");
        assert!(e.contains("an object"), "{e}");
    }

    #[test]
    fn ids_are_checked_whatever_the_method() {
        let good = "ab".repeat(32);
        check_ids(
            "NetworkDriver.Join",
            &json!({"NetworkID": good, "EndpointID": good}),
        )
        .ok()
        .unwrap();
        for body in [
            json!({"NetworkID": "aééééééééééé"}),
            json!({"EndpointID": "a:b"}),
            json!({"NetworkID": "x".repeat(100_000)}),
            json!({"NetworkID": 5}),
            json!({"EndpointID": ""}),
        ] {
            let Err(Refused(e)) = check_ids("NetworkDriver.Leave", &body) else {
                panic!("accepted {body}")
            };
            assert!(e.len() < 400, "{e}");
            assert!(!e.contains('\n'));
        }
        let _ = decode::<JoinRequest>("x", &json!({}));
    }

    #[test]
    fn hostile_values_are_escaped_and_cut() {
        let Err(Refused(e)) = parse("NetworkDriver.Join\n\u{1b}[2J", b"{\"a\":") else {
            panic!("accepted")
        };
        assert!(!e.contains('\n') && !e.contains('\u{1b}'), "{e}");
        let long = format!("{{\"NetworkID\": {}}}", "1".repeat(5000));
        let v: Value = serde_json::from_str(&long).unwrap_or(Value::Null);
        let r = decode::<JoinRequest>("NetworkDriver.Join", &v);
        if let Err(Refused(e)) = r {
            assert!(e.len() < 600, "{e}");
        }
    }
}
