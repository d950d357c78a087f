//! Security-test files (ours and Metlo's), identities files, templates and JSON paths on
//! arbitrary text: an error or a plan, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = tapline_sectest::load::parse_any(Path::new("fuzz.yaml"), text);
    let vars: HashMap<String, String> = [("a".to_string(), "eyJhbGciOiJIUzI1NiJ9.e30.x".to_string())].into();
    let _ = tapline_sectest::template::render(text, &vars);
    if let Ok(p) = tapline_sectest::jsonpath::JsonPath::parse(text) {
        let _ = p.select(&serde_json::json!({"a": [1, {"b": [2, 3]}], "c": {"d": null}}));
    }
});
