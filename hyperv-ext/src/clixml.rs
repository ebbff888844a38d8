//! Windows PowerShell writes its error stream as CLIXML (`#< CLIXML` + `<Objs>` blocks) when
//! stderr is redirected. We never decide anything from it; this only makes it readable in
//! the log: the text of `<S S="Error">` records, with `_xHHHH_` escapes and XML entities
//! decoded.

/// Readable text of `stderr` for the log, at most `limit` characters.
pub fn decode_for_log(stderr: &[u8], limit: usize) -> String {
    let raw = String::from_utf8_lossy(stderr);
    let text = if raw.trim_start().starts_with("#< CLIXML") {
        let records = error_records(&raw);
        if records.is_empty() {
            format!("(CLIXML without error records, {} bytes)", stderr.len())
        } else {
            records.join(" | ")
        }
    } else {
        raw.trim().to_string()
    };
    ext_sdk::text::truncate(&text, limit).into_owned()
}

fn error_records(xml: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<S S=\"Error\">") {
        rest = &rest[start + "<S S=\"Error\">".len()..];
        let Some(end) = rest.find("</S>") else { break };
        let record = unescape(&rest[..end]);
        let record = record.trim();
        if !record.is_empty() {
            out.push(record.to_string());
        }
        rest = &rest[end..];
    }
    out
}

/// `_xHHHH_` is a UTF-16 code unit (pairs form surrogates); then the five XML entities.
fn unescape(s: &str) -> String {
    let mut units: Vec<u16> = Vec::with_capacity(s.len());
    let mut i = 0;
    let bytes = s.as_bytes();
    while i < s.len() {
        if bytes[i] == b'_'
            && i + 7 <= s.len()
            && bytes[i + 1] == b'x'
            && bytes[i + 6] == b'_'
            && let Ok(unit) = u16::from_str_radix(&s[i + 2..i + 6], 16)
        {
            units.push(unit);
            i += 7;
            continue;
        }
        // `i` is always on a character boundary below `s.len()`.
        let Some(c) = s[i..].chars().next() else {
            break;
        };
        let mut buf = [0u16; 2];
        units.extend_from_slice(c.encode_utf16(&mut buf));
        i += c.len_utf8();
    }
    String::from_utf16_lossy(&units)
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_error_records_across_blocks() {
        let stderr = "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\"><Obj S=\"progress\" RefId=\"0\"><TN RefId=\"0\"><T>System.Management.Automation.PSCustomObject</T></TN></Obj><S S=\"Error\">Start-VM : caf\u{e9} &lt;x&gt;_x000D__x000A_</S></Objs><Objs><S S=\"Error\">line _xD83D__xDE00_</S></Objs>";
        assert_eq!(
            decode_for_log(stderr.as_bytes(), 200),
            "Start-VM : caf\u{e9} <x> | line \u{1F600}"
        );
    }

    #[test]
    fn progress_only_and_plain_text() {
        let progress = b"#< CLIXML\r\n<Objs><Obj S=\"progress\"></Obj></Objs>";
        assert!(decode_for_log(progress, 100).starts_with("(CLIXML without error records"));
        assert_eq!(decode_for_log(b"  plain\n", 100), "plain");
        assert_eq!(
            decode_for_log("\u{e9}\u{e9}\u{e9}".as_bytes(), 2),
            "\u{e9}\u{e9}..."
        );
    }
}
