//! Messages stay plain ASCII: CloudStack's UI shows an extension's message as it is, and the
//! SDK escapes every non-ASCII character (`\u2014` for an em dash), so a curly quote or a dash
//! typed into a message reaches the operator as an escape sequence. This test reads every
//! string literal of the product's sources (tests excluded) and every PowerShell script, and
//! fails on any non-ASCII character or `\u{...}` escape above ASCII. (Text that comes from
//! peers or users is still escaped by the SDK; that is not a literal.)

use std::path::{Path, PathBuf};

use e2e::repo_root;

/// The crates whose text reaches CloudStack.
const PRODUCT_SOURCES: &[&str] = &[
    "ext-sdk/src",
    "ext-tls/src",
    "proxmox-ext/src",
    "hyperv-ext/src",
    "hyperv-protocol/src",
];
/// Files inside those trees that only tests compile.
const TEST_ONLY_FILES: &[&str] = &["testing.rs", "fake.rs", "test_support.rs", "tests.rs"];

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

/// The source up to its `#[cfg(test)] mod ...` (by convention the last item of a file).
fn without_tests(source: &str) -> &str {
    let mut offset = 0;
    let lines: Vec<&str> = source.split_inclusive('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim() == "#[cfg(test)]"
            && lines
                .get(i + 1)
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            return &source[..offset];
        }
        offset += line.len();
    }
    source
}

/// Every string literal of a Rust source, with its line: normal, byte and raw strings.
/// Comments, character literals and lifetimes are skipped.
fn string_literals(source: &str) -> Vec<(usize, String)> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if c == 'r'
            && (at(i + 1) == '"' || at(i + 1) == '#')
            && !is_ident(at(i.wrapping_sub(1)))
        {
            // r"...", r#"..."#
            let mut j = i + 1;
            let mut hashes = 0;
            while at(j) == '#' {
                hashes += 1;
                j += 1;
            }
            if at(j) != '"' {
                i += 1;
                continue;
            }
            let start_line = line;
            let mut text = String::new();
            j += 1;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|h| at(j + 1 + h) == '#') {
                    j += 1 + hashes;
                    break;
                }
                if chars[j] == '\n' {
                    line += 1;
                }
                text.push(chars[j]);
                j += 1;
            }
            out.push((start_line, text));
            i = j;
        } else if c == '"' {
            let start_line = line;
            let mut text = String::new();
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    text.push(chars[i]);
                    i += 1;
                }
                if i < chars.len() {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    text.push(chars[i]);
                    i += 1;
                }
            }
            out.push((start_line, text));
            i += 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{2019}') or a lifetime ('a).
            if at(i + 1) == '\\' {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// What is not plain ASCII in a literal's text: a non-ASCII character, or a `\u{...}` escape
/// of one.
fn non_ascii(text: &str) -> Option<String> {
    if let Some(c) = text.chars().find(|c| !c.is_ascii()) {
        return Some(format!("{c:?} (U+{:04X})", c as u32));
    }
    let mut rest = text;
    while let Some(at) = rest.find("\\u{") {
        let tail = &rest[at + 3..];
        let hex: String = tail.chars().take_while(char::is_ascii_hexdigit).collect();
        if u32::from_str_radix(&hex, 16).is_ok_and(|v| v > 0x7F) {
            return Some(format!("the escape \\u{{{hex}}}"));
        }
        rest = tail;
    }
    None
}

#[test]
fn product_string_literals_and_scripts_are_plain_ascii() {
    let root = repo_root();
    let mut sources = Vec::new();
    for dir in PRODUCT_SOURCES {
        files(&root.join(dir), "rs", &mut sources);
    }
    sources.retain(|p| {
        !p.file_name()
            .is_some_and(|n| TEST_ONLY_FILES.contains(&n.to_string_lossy().as_ref()))
    });
    assert!(sources.len() > 40, "found the sources: {}", sources.len());
    let mut problems = Vec::new();
    let mut literals = 0;
    for path in &sources {
        let text = std::fs::read_to_string(path).unwrap();
        for (line, literal) in string_literals(without_tests(&text)) {
            literals += 1;
            if let Some(what) = non_ascii(&literal) {
                problems.push(format!(
                    "{}:{line}: {what} in \"{literal}\"",
                    path.strip_prefix(&root).unwrap().display()
                ));
            }
        }
    }
    assert!(literals > 1000, "read the literals: {literals}");
    let mut scripts = Vec::new();
    files(&root.join("hyperv-protocol/scripts"), "ps1", &mut scripts);
    assert!(!scripts.is_empty(), "found the PowerShell scripts");
    for path in &scripts {
        let text = std::fs::read_to_string(path).unwrap();
        for (n, line) in text.lines().enumerate() {
            if let Some(what) = non_ascii(line) {
                problems.push(format!(
                    "{}:{}: {what}",
                    path.strip_prefix(&root).unwrap().display(),
                    n + 1
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "messages must be plain ASCII (CloudStack shows \\u2014 literally):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_scanner_finds_what_it_must_and_nothing_else() {
    let source = concat!(
        "// a comment with \u{2014} is fine\n",
        "let a = \"plain\"; let b = 'x'; let c = '\\u{2019}'; fn f<'a>(x: &'a str) {}\n",
        "let d = \"dash \u{2014} here\";\n",
        "let e = r#\"raw \"quoted\" \u{201C}\"#;\n",
        "let f = \"escaped \\u{2014} dash\"; let g = \"ok \\u{41}\";\n",
        "/* block \u{2014} */ let h = b\"bytes\";\n",
        "#[cfg(test)]\nmod tests { const T: &str = \"\u{e9}\"; }\n",
    );
    let found: Vec<(usize, String)> = string_literals(without_tests(source))
        .into_iter()
        .filter(|(_, t)| non_ascii(t).is_some())
        .collect();
    assert_eq!(
        found,
        [
            (3, "dash \u{2014} here".to_string()),
            (4, "raw \"quoted\" \u{201C}".to_string()),
            (5, "escaped \\u{2014} dash".to_string()),
        ]
    );
}
