//! Quoting user-supplied values in errors and logs: escaped (no control
//! character, terminal escape or newline survives) and truncated, so a
//! hostile value can neither forge a log line nor flood an answer.

/// At most this many characters of a value are shown.
pub const SHOWN: usize = 64;

/// `value` in double quotes, escaped as Rust escapes strings, cut to
/// `SHOWN` characters with the full length noted.
pub fn quote(value: &str) -> String {
    let total = value.chars().count();
    let shown: String = value.chars().take(SHOWN).collect();
    let escaped: String = shown.chars().flat_map(char::escape_debug).collect();
    if total > SHOWN {
        format!("\"{escaped}…\" ({total} characters)")
    } else {
        format!("\"{escaped}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_long_values_cut() {
        assert_eq!(quote("eth0"), "\"eth0\"");
        assert_eq!(quote("a\nb"), "\"a\\nb\"");
        assert_eq!(quote("\u{1b}[31mred"), "\"\\u{1b}[31mred\"");
        let q = quote(&"x".repeat(100_000));
        assert!(q.len() < 100 && q.ends_with("(100000 characters)"), "{q}");
        assert_eq!(quote("aé"), "\"aé\"");
    }
}
