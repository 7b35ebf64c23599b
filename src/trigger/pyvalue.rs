//! How Python sees a JSON value: its type name, its truthiness and its `str()`.
//!
//! The reference's messages embed both (`Unsupported type for run_date: float`, `Unrecognized
//! expression "5.0" for field "hour"`), and a cron field given as a number is compiled from its
//! `str()`, so these must read exactly as CPython writes them.

use serde_json::Value;

/// The name of the Python type `json.loads` gives for `value`.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Python's truthiness (`bool(value)`), as APScheduler coerces `coalesce` and as the triggers
/// test `timezone` and `start_date`.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Python's `str(value)`.
pub(crate) fn str_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => repr_of(other),
    }
}

/// Python's `repr(value)`: what `str()` shows for the elements of a list or dict.
fn repr_of(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (None, None, Some(f)) => float_repr(f),
            (None, None, None) => n.to_string(),
        },
        Value::String(s) => string_repr(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(repr_of).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", string_repr(k), repr_of(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// Python's quoting of a `str`: single quotes unless the text holds one and no double quote.
fn string_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr(float)`: the shortest round-trip digits, positional for exponents −4..15,
/// scientific (`1e-06`, `1.5e+16`) otherwise, and always a `.0` on whole positional values.
pub(crate) fn float_repr(value: f64) -> String {
    if value.is_nan() {
        return "nan".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .to_owned();
    }
    // `{:e}` gives the shortest round-trip digits as `d.ddde±x`.
    let sci = format!("{:e}", value.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if value < 0.0 { "-" } else { "" };
    if (-4..16).contains(&exponent) {
        let point = exponent + 1;
        let body = if point <= 0 {
            format!("0.{}{}", "0".repeat(point.unsigned_abs() as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            let (whole, frac) = digits.split_at(point as usize);
            format!("{whole}.{frac}")
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1);
        let mantissa = if rest.is_empty() {
            first.to_owned()
        } else {
            format!("{first}.{rest}")
        };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exponent.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_print_as_python_repr() {
        assert_eq!(float_repr(5.0), "5.0");
        assert_eq!(float_repr(1.5), "1.5");
        assert_eq!(float_repr(1e-6), "1e-06");
        assert_eq!(float_repr(0.0001), "0.0001");
        assert_eq!(float_repr(1e16), "1e+16");
        assert_eq!(float_repr(1e15), "1000000000000000.0");
        assert_eq!(float_repr(-2.25), "-2.25");
        assert_eq!(float_repr(123.456), "123.456");
    }

    #[test]
    fn str_matches_python() {
        assert_eq!(str_of(&json!(30)), "30");
        assert_eq!(str_of(&json!("mon")), "mon");
        assert_eq!(str_of(&json!(true)), "True");
        assert_eq!(str_of(&json!(5.0)), "5.0");
        assert_eq!(str_of(&json!([1, "a"])), "[1, 'a']");
        assert_eq!(str_of(&json!({"a": null})), "{'a': None}");
    }

    #[test]
    fn type_names_match_python() {
        assert_eq!(type_name(&json!(1)), "int");
        assert_eq!(type_name(&json!(1.5)), "float");
        assert_eq!(type_name(&json!("x")), "str");
        assert_eq!(type_name(&json!(null)), "NoneType");
        assert_eq!(type_name(&json!(false)), "bool");
    }
}
