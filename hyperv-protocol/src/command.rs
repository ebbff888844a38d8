//! How a script reaches Windows PowerShell 5.1: one command line built only from
//! `[A-Za-z0-9+/= -.]`, so it passes unchanged through whichever outer shell the host uses
//! (cmd.exe by default with Windows OpenSSH, or PowerShell as `DefaultShell`; WinRM's cmd
//! shell likewise).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::Script;

/// Everything before the encoded script, exactly as sent.
pub const COMMAND_PREFIX: &str = "powershell.exe -NoLogo -NoProfile -NonInteractive \
     -ExecutionPolicy Bypass -InputFormat None -EncodedCommand ";

/// cmd.exe (Windows OpenSSH's default shell) refuses command lines over 8191 characters; it
/// runs `"<cmd.exe path>" /c "<our line>"`, so keep a margin for that wrapper.
pub const MAX_COMMAND_LINE: usize = 8100;

/// The command line would not survive cmd.exe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTooLong {
    pub script: &'static str,
    pub length: usize,
}

impl std::fmt::Display for CommandTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the PowerShell command line for '{}' would be {} characters, more than the {} \
             that cmd.exe accepts; shorten the paths or names in the host/template details",
            self.script, self.length, MAX_COMMAND_LINE
        )
    }
}

impl std::error::Error for CommandTooLong {}

/// `-EncodedCommand` takes base64 of the script's UTF-16LE bytes.
pub fn encode_command(script_text: &str) -> String {
    let bytes: Vec<u8> = script_text
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    STANDARD.encode(bytes)
}

/// A command line ready to send: our prefix and an encoded script, short enough for cmd.exe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    script: Script,
    line: String,
}

impl CommandLine {
    /// The script it runs.
    pub fn script(&self) -> Script {
        self.script
    }

    /// The whole line, as the transport hands it to the host's shell.
    pub fn as_str(&self) -> &str {
        &self.line
    }
}

impl std::fmt::Display for CommandLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.line)
    }
}

/// The full command line for `script_text`, refused when too long for cmd.exe.
pub fn command_line(script: Script, script_text: &str) -> Result<CommandLine, CommandTooLong> {
    let line = format!("{COMMAND_PREFIX}{}", encode_command(script_text));
    if line.len() > MAX_COMMAND_LINE {
        return Err(CommandTooLong {
            script: script.name(),
            length: line.len(),
        });
    }
    Ok(CommandLine { script, line })
}

/// A PowerShell single-quoted literal. PowerShell treats all five of `'` U+2018 U+2019
/// U+201A U+201B as single quotes and each is escaped by doubling it. Defence in depth only:
/// scripts receive data through the base64 blob, never through literals built from it.
pub fn ps_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        out.push(c);
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_doubles_all_five_single_quotes_and_nothing_else() {
        assert_eq!(ps_quote("it's"), "'it''s'");
        assert_eq!(
            ps_quote("x\u{2019};\u{2018}"),
            "'x\u{2019}\u{2019};\u{2018}\u{2018}'"
        );
        assert_eq!(
            ps_quote("\u{201A}\u{201B}"),
            "'\u{201A}\u{201A}\u{201B}\u{201B}'"
        );
        assert_eq!(
            ps_quote("$(Stop-Computer) `\"; "),
            "'$(Stop-Computer) `\"; '"
        );
        assert_eq!(ps_quote(""), "''");
    }

    #[test]
    fn encoded_command_is_base64_of_utf16le() {
        // "A\u{e9}" -> 41 00 E9 00
        assert_eq!(encode_command("A\u{e9}"), "QQDpAA==");
        // Non-BMP characters become surrogate pairs.
        let decoded = STANDARD.decode(encode_command("\u{1F600}")).unwrap();
        assert_eq!(decoded, [0x3D, 0xD8, 0x00, 0xDE]);
    }

    #[test]
    fn command_line_uses_only_shell_neutral_characters() {
        let text = Script::Status
            .render(&serde_json::json!({"name": "a'\"&|<>^%!"}), "0a1b2c3d")
            .unwrap();
        let line = command_line(Script::Status, &text).unwrap();
        assert_eq!(line.script(), Script::Status);
        let line = line.as_str();
        assert!(line.starts_with(COMMAND_PREFIX));
        assert!(
            line.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b" +/=.-".contains(&b)),
            "{line}"
        );
    }

    // Each script's realistic worst case is measured in `call::tests`
    // (`a_large_realistic_create_fits_cmd_exe`, `every_vm_script_fits_cmd_exe_with_the_longest_values`).

    #[test]
    fn command_line_refuses_what_cmd_exe_would_cut() {
        let long = "x".repeat(3000);
        let text = Script::Status
            .render(&serde_json::json!({ "name": long }), "0a1b2c3d")
            .unwrap();
        let err = command_line(Script::Status, &text).unwrap_err();
        assert!(err.length > MAX_COMMAND_LINE);
        assert!(err.to_string().contains("cmd.exe"));
    }
}
