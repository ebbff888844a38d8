//! CloudMonkey (`cmk`) as an API client: one `cmk -o json <api> key=value...` process per
//! call, its JSON answer parsed, and every way it can fail turned into a sentence.
//!
//! What cmk does that matters here: it prints the API's answer without the
//! `<api>response` wrapper, prints **nothing** for an empty answer (a list with no match),
//! prints errors on stdout (`Error: (HTTP 431, error code 9999) ...`) with exit status 1, and
//! prints "Missing required parameters" with exit status 0.

use std::fmt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Map, Value};

/// One API argument, `key=value`.
pub type Arg = (String, String);

/// Something that answers CloudStack API calls: [`Cmk`], or a fake in tests.
pub trait Api {
    /// Runs `api` with `args` and returns its answer (an object, empty when cmk printed
    /// nothing).
    fn call(&mut self, api: &str, args: &[Arg]) -> Result<Map<String, Value>, CmkError>;

    /// The command line that [`Api::call`] runs, for `--dry-run` and messages.
    fn command_line(&self, api: &str, args: &[Arg]) -> Vec<String>;
}

/// Why a cmk call failed.
#[derive(Debug)]
pub enum CmkError {
    /// The program could not be started.
    NotRunnable {
        /// The program tried.
        program: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// cmk exited with a failure status.
    Failed {
        /// The API called.
        api: String,
        /// The exit status, as text.
        status: String,
        /// What it printed (stdout, then stderr), trimmed.
        output: String,
    },
    /// cmk succeeded but printed something other than one JSON object.
    NotJson {
        /// The API called.
        api: String,
        /// What it printed, trimmed.
        output: String,
    },
    /// The answer is JSON but lacks what the call must return.
    Unexpected {
        /// The API called.
        api: String,
        /// What is missing or wrong.
        problem: String,
    },
}

/// At most this much of cmk's output is quoted in an error.
const MAX_QUOTED: usize = 2000;

fn quote(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(MAX_QUOTED) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

impl fmt::Display for CmkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmkError::NotRunnable { program, source } => write!(
                f,
                "cannot run CloudMonkey '{}': {source}; install cmk and configure it for this CloudStack (cmk set url/apikey/secretkey), or name it with --cmk PATH",
                program.display()
            ),
            CmkError::Failed {
                api,
                status,
                output,
            } => {
                write!(f, "cmk {api} failed ({status})")?;
                if output.is_empty() {
                    write!(f, " without saying why")?;
                } else {
                    write!(f, ": {output}")?;
                }
                if output.contains("unknown command or API")
                    || output.contains("unknown or unauthorized API")
                {
                    write!(
                        f,
                        " (cmk does not know this API: run 'cmk sync' so it learns this CloudStack's APIs; extensions need CloudStack 4.21 or later and an admin account)"
                    )?;
                }
                Ok(())
            }
            CmkError::NotJson { api, output } => write!(
                f,
                "cmk {api} printed something that is not a JSON object (it is run with '-o json'): {output}"
            ),
            CmkError::Unexpected { api, problem } => {
                write!(f, "cmk {api} answered unexpectedly: {problem}")
            }
        }
    }
}

impl std::error::Error for CmkError {}

/// The real CloudMonkey.
#[derive(Debug, Clone)]
pub struct Cmk {
    program: PathBuf,
}

impl Cmk {
    /// cmk at `program` (a path, or a name looked up in `PATH`).
    pub fn new(program: impl Into<PathBuf>) -> Cmk {
        Cmk {
            program: program.into(),
        }
    }
}

/// Parses what cmk printed for a successful call.
pub fn parse_answer(api: &str, stdout: &str) -> Result<Map<String, Value>, CmkError> {
    let text = stdout.trim();
    if text.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(CmkError::NotJson {
            api: api.to_owned(),
            output: quote(text),
        }),
    }
}

impl Api for Cmk {
    fn call(&mut self, api: &str, args: &[Arg]) -> Result<Map<String, Value>, CmkError> {
        let line = self.command_line(api, args);
        let output = Command::new(&self.program)
            .args(&line[1..])
            .stdin(Stdio::null())
            .output()
            .map_err(|source| CmkError::NotRunnable {
                program: self.program.clone(),
                source,
            })?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let text = format!("{}\n{}", stdout.trim(), stderr.trim());
            return Err(CmkError::Failed {
                api: api.to_owned(),
                status: match output.status.code() {
                    Some(code) => format!("exit status {code}"),
                    None => "killed by a signal".to_owned(),
                },
                output: quote(&text),
            });
        }
        parse_answer(api, &stdout)
    }

    fn command_line(&self, api: &str, args: &[Arg]) -> Vec<String> {
        let mut line = vec![
            self.program.to_string_lossy().into_owned(),
            "-o".to_owned(),
            "json".to_owned(),
            api.to_owned(),
        ];
        line.extend(args.iter().map(|(k, v)| format!("{k}={v}")));
        line
    }
}

/// `word` as an operator can paste it into a shell: single-quoted when it holds anything but
/// plain characters (brackets included: they are glob patterns).
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-=.,/:@%+".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `line` as one shell command an operator can paste.
pub fn shell_words(line: &[String]) -> String {
    line.iter()
        .map(|w| shell_word(w))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_cmk_prints() {
        assert!(parse_answer("listExtensions", "").unwrap().is_empty());
        assert!(parse_answer("listExtensions", " \n").unwrap().is_empty());
        let map = parse_answer("listExtensions", "{\n  \"count\": 1\n}\n").unwrap();
        assert_eq!(map["count"], 1);
        let err =
            parse_answer("addCustomAction", "Missing required parameters:  name").unwrap_err();
        assert!(
            err.to_string()
                .contains("cmk addCustomAction printed something that is not a JSON object"),
            "{err}"
        );
        assert!(parse_answer("x", "[1]").is_err());
    }

    #[test]
    fn failures_say_what_to_do() {
        let unknown = CmkError::Failed {
            api: "listExtensions".into(),
            status: "exit status 1".into(),
            output: "Error: unknown command or API requested".into(),
        };
        assert!(unknown.to_string().contains("run 'cmk sync'"), "{unknown}");
        let missing = CmkError::NotRunnable {
            program: "/nowhere/cmk".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert!(missing.to_string().contains("--cmk PATH"), "{missing}");
        assert_eq!(quote(&"x".repeat(3000)).len(), MAX_QUOTED + 3);
    }

    #[test]
    fn commands_are_pasteable() {
        let cmk = Cmk::new("cmk");
        let line = cmk.command_line(
            "addCustomAction",
            &[
                ("name".into(), "CreateSnapshot".into()),
                ("description".into(), "Take a snapshot, it's quick".into()),
                ("parameters[0].name".into(), "snap_name".into()),
            ],
        );
        assert_eq!(
            shell_words(&line),
            r"cmk -o json addCustomAction name=CreateSnapshot 'description=Take a snapshot, it'\''s quick' 'parameters[0].name=snap_name'"
        );
    }
}
