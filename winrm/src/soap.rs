//! The WS-Management messages of the Windows Remote Shell ([MS-WSMV] 3.1.4): Create, Command,
//! Receive, Signal and Delete, written as text, and their replies read with `roxmltree`.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

const NS_SOAP: &str = "http://www.w3.org/2003/05/soap-envelope";
const NS_ADDRESSING: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
const NS_WSMAN: &str = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd";
const NS_SHELL: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell";
const NS_FAULT: &str = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault";
const SHELL_CMD: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd";
const ACTION_CREATE: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create";
const ACTION_DELETE: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete";
const ACTION_COMMAND: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command";
const ACTION_RECEIVE: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive";
const ACTION_SIGNAL: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal";
const SIGNAL_TERMINATE: &str =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate";
const STATE_DONE: &str =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done";
/// The WSManFault code of a Receive whose OperationTimeout passed without output: not an
/// error, the caller polls again.
const TIMED_OUT: u64 = 2_150_858_793;
/// Largest reply we let the server send (`MaxEnvelopeSize`, bytes).
const MAX_ENVELOPE: usize = 153_600;

/// A message ready to send, with the id its reply must relate to.
pub(crate) struct Message {
    pub id: String,
    pub body: String,
}

pub(crate) struct Writer<'a> {
    /// The endpoint URL (`a:To`).
    pub to: &'a str,
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// `PT<seconds>.<millis>S`, as Windows' own client writes durations.
fn duration(d: Duration) -> String {
    format!("PT{}.{:03}S", d.as_secs(), d.subsec_millis())
}

impl Writer<'_> {
    fn envelope(
        &self,
        action: &str,
        shell_id: Option<&str>,
        options: &[(&str, &str)],
        timeout: Duration,
        body: &str,
    ) -> Message {
        let id = format!(
            "uuid:{}",
            uuid::Uuid::new_v4()
                .as_hyphenated()
                .to_string()
                .to_uppercase()
        );
        let selector = shell_id.map_or_else(String::new, |s| {
            format!(
                "<w:SelectorSet><w:Selector Name=\"ShellId\">{}</w:Selector></w:SelectorSet>",
                escape(s)
            )
        });
        let options = if options.is_empty() {
            String::new()
        } else {
            let items: String = options
                .iter()
                .map(|(k, v)| format!("<w:Option Name=\"{k}\">{v}</w:Option>"))
                .collect();
            format!("<w:OptionSet>{items}</w:OptionSet>")
        };
        let body = format!(
            "<s:Envelope xmlns:s=\"{NS_SOAP}\" xmlns:a=\"{NS_ADDRESSING}\" xmlns:w=\"{NS_WSMAN}\" \
             xmlns:rsp=\"{NS_SHELL}\"><s:Header>\
             <a:To>{to}</a:To>\
             <a:ReplyTo><a:Address s:mustUnderstand=\"true\">\
             http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>\
             <w:MaxEnvelopeSize s:mustUnderstand=\"true\">{MAX_ENVELOPE}</w:MaxEnvelopeSize>\
             <a:MessageID>{id}</a:MessageID>\
             <w:Locale xml:lang=\"en-US\" s:mustUnderstand=\"false\"/>\
             <w:OperationTimeout>{timeout}</w:OperationTimeout>\
             <w:ResourceURI s:mustUnderstand=\"true\">{SHELL_CMD}</w:ResourceURI>\
             <a:Action s:mustUnderstand=\"true\">{action}</a:Action>\
             {selector}{options}</s:Header><s:Body>{body}</s:Body></s:Envelope>",
            to = escape(self.to),
            timeout = duration(timeout),
        );
        Message { id, body }
    }

    /// A new `cmd` shell the service deletes by itself once no request has touched it for
    /// `idle` ([MS-WSMV] 2.2.4.37 IdleTimeOut, in the schema's order: before the streams).
    pub fn create_shell(&self, idle: Duration, timeout: Duration) -> Message {
        self.envelope(
            ACTION_CREATE,
            None,
            &[("WINRS_NOPROFILE", "FALSE"), ("WINRS_CODEPAGE", "437")],
            timeout,
            &format!(
                "<rsp:Shell><rsp:IdleTimeOut>{}</rsp:IdleTimeOut>\
                 <rsp:InputStreams>stdin</rsp:InputStreams>\
                 <rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>",
                duration(idle)
            ),
        )
    }

    pub fn command(
        &self,
        shell_id: &str,
        command_line: &str,
        skip_cmd_shell: bool,
        timeout: Duration,
    ) -> Message {
        self.envelope(
            ACTION_COMMAND,
            Some(shell_id),
            &[
                ("WINRS_CONSOLEMODE_STDIN", "TRUE"),
                (
                    "WINRS_SKIP_CMD_SHELL",
                    if skip_cmd_shell { "TRUE" } else { "FALSE" },
                ),
            ],
            timeout,
            &format!(
                "<rsp:CommandLine><rsp:Command>{}</rsp:Command></rsp:CommandLine>",
                escape(command_line)
            ),
        )
    }

    pub fn receive(&self, shell_id: &str, command_id: &str, timeout: Duration) -> Message {
        self.envelope(
            ACTION_RECEIVE,
            Some(shell_id),
            &[],
            timeout,
            &format!(
                "<rsp:Receive><rsp:DesiredStream CommandId=\"{}\">stdout stderr</rsp:DesiredStream></rsp:Receive>",
                escape(command_id)
            ),
        )
    }

    pub fn signal_terminate(&self, shell_id: &str, command_id: &str, timeout: Duration) -> Message {
        self.envelope(
            ACTION_SIGNAL,
            Some(shell_id),
            &[],
            timeout,
            &format!(
                "<rsp:Signal CommandId=\"{}\"><rsp:Code>{SIGNAL_TERMINATE}</rsp:Code></rsp:Signal>",
                escape(command_id)
            ),
        )
    }

    pub fn delete_shell(&self, shell_id: &str, timeout: Duration) -> Message {
        self.envelope(ACTION_DELETE, Some(shell_id), &[], timeout, "")
    }
}

/// A SOAP fault from the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `s:Code/s:Value`, e.g. `s:Receiver`.
    pub code: String,
    /// `s:Code/s:Subcode/s:Value`, e.g. `w:TimedOut`.
    pub subcode: String,
    /// `s:Reason/s:Text` (or the WSManFault message).
    pub reason: String,
    /// The WSManFault `Code` (a Windows error number), when given.
    pub wsman_code: Option<u64>,
}

impl Fault {
    pub fn is_timed_out(&self) -> bool {
        self.wsman_code == Some(TIMED_OUT) || self.subcode.ends_with(":TimedOut")
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.reason.trim())?;
        let sub = self.subcode.rsplit(':').next().unwrap_or_default();
        match (self.wsman_code, sub) {
            (Some(code), "") => write!(f, " (WSManFault {code})"),
            (Some(code), sub) => write!(f, " ({sub}, WSManFault {code})"),
            (None, "") => Ok(()),
            (None, sub) => write!(f, " ({sub})"),
        }
    }
}

/// Why a reply could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReplyError {
    Fault(Fault),
    /// Not the SOAP the operation answers with.
    Garbage(String),
}

fn is(node: &roxmltree::Node, ns: &str, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && node.tag_name().namespace() == Some(ns)
}

fn child<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    ns: &str,
    name: &str,
) -> Option<roxmltree::Node<'a, 'i>> {
    node.children().find(|c| is(c, ns, name))
}

fn text(node: Option<roxmltree::Node>) -> String {
    node.and_then(|n| n.text())
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The fault in `body`, if it is a SOAP fault.
pub(crate) fn fault(body: &[u8]) -> Option<Fault> {
    let doc = roxmltree::Document::parse(std::str::from_utf8(body).ok()?).ok()?;
    let fault = doc.descendants().find(|n| is(n, NS_SOAP, "Fault"))?;
    let code = child(fault, NS_SOAP, "Code");
    let wsman = fault.descendants().find(|n| is(n, NS_FAULT, "WSManFault"));
    let mut reason = text(child(fault, NS_SOAP, "Reason").and_then(|r| child(r, NS_SOAP, "Text")));
    if reason.is_empty() {
        reason = text(wsman.and_then(|w| child(w, NS_FAULT, "Message")));
    }
    Some(Fault {
        code: text(code.and_then(|c| child(c, NS_SOAP, "Value"))),
        subcode: text(
            code.and_then(|c| child(c, NS_SOAP, "Subcode"))
                .and_then(|s| child(s, NS_SOAP, "Value")),
        ),
        reason: if reason.is_empty() {
            "(no message in the fault)".into()
        } else {
            reason
        },
        wsman_code: wsman
            .and_then(|w| w.attribute("Code"))
            .and_then(|c| c.parse().ok()),
    })
}

/// The SOAP body of a successful reply to message `id`.
fn body<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
    id: &str,
) -> Result<roxmltree::Node<'a, 'i>, ReplyError> {
    let envelope = doc.root_element();
    if !is(&envelope, NS_SOAP, "Envelope") {
        return Err(ReplyError::Garbage(
            "the reply is not a SOAP envelope".into(),
        ));
    }
    if envelope.descendants().any(|n| is(&n, NS_SOAP, "Fault")) {
        let text = doc.input_text().as_bytes();
        return Err(ReplyError::Fault(
            fault(text).expect("a document with a Fault element"),
        ));
    }
    if let Some(relates) =
        child(envelope, NS_SOAP, "Header").and_then(|h| child(h, NS_ADDRESSING, "RelatesTo"))
    {
        let relates = text(Some(relates));
        if !relates.eq_ignore_ascii_case(id) {
            return Err(ReplyError::Garbage(format!(
                "the reply relates to message {relates}, not to {id}"
            )));
        }
    }
    child(envelope, NS_SOAP, "Body")
        .ok_or_else(|| ReplyError::Garbage("the reply has no SOAP body".into()))
}

fn parse(bytes: &[u8]) -> Result<roxmltree::Document<'_>, ReplyError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ReplyError::Garbage("the reply is not UTF-8 text".into()))?;
    roxmltree::Document::parse(text).map_err(|e| {
        ReplyError::Garbage(format!(
            "the reply is not XML ({e}): {}",
            text.chars()
                .take(120)
                .filter(|c| !c.is_control())
                .collect::<String>()
        ))
    })
}

/// The ShellId of a Create reply (`rsp:Shell/rsp:ShellId`, or the `ShellId` selector).
pub(crate) fn shell_id(reply: &[u8], id: &str) -> Result<String, ReplyError> {
    let doc = parse(reply)?;
    let body = body(&doc, id)?;
    let found = body
        .descendants()
        .find(|n| is(n, NS_SHELL, "ShellId"))
        .map(|n| text(Some(n)))
        .or_else(|| {
            body.descendants()
                .find(|n| is(n, NS_WSMAN, "Selector") && n.attribute("Name") == Some("ShellId"))
                .map(|n| text(Some(n)))
        })
        .filter(|s| !s.is_empty());
    found.ok_or_else(|| ReplyError::Garbage("the Create reply names no ShellId".into()))
}

/// The CommandId of a Command reply.
pub(crate) fn command_id(reply: &[u8], id: &str) -> Result<String, ReplyError> {
    let doc = parse(reply)?;
    let body = body(&doc, id)?;
    body.descendants()
        .find(|n| is(n, NS_SHELL, "CommandId"))
        .map(|n| text(Some(n)))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ReplyError::Garbage("the Command reply names no CommandId".into()))
}

/// What one Receive brought.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Received {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The exit code once the command is done.
    pub done: Option<i32>,
}

pub(crate) fn received(reply: &[u8], id: &str, command_id: &str) -> Result<Received, ReplyError> {
    let doc = parse(reply)?;
    let body = body(&doc, id)?;
    let response = child(body, NS_SHELL, "ReceiveResponse")
        .ok_or_else(|| ReplyError::Garbage("the Receive reply has no ReceiveResponse".into()))?;
    let mut out = Received::default();
    let ours = |n: &roxmltree::Node| {
        n.attribute("CommandId")
            .is_none_or(|c| c.eq_ignore_ascii_case(command_id))
    };
    for stream in response
        .children()
        .filter(|n| is(n, NS_SHELL, "Stream") && ours(n))
    {
        let data = stream.text().unwrap_or_default().trim();
        if data.is_empty() {
            continue;
        }
        let bytes = STANDARD
            .decode(data)
            .map_err(|e| ReplyError::Garbage(format!("a Stream is not base64: {e}")))?;
        match stream.attribute("Name") {
            Some("stdout") => out.stdout.extend(bytes),
            Some("stderr") => out.stderr.extend(bytes),
            _ => {}
        }
    }
    if let Some(state) = response
        .children()
        .find(|n| is(n, NS_SHELL, "CommandState") && ours(n))
        && state.attribute("State") == Some(STATE_DONE)
    {
        let code = text(child(state, NS_SHELL, "ExitCode"));
        // Windows exit codes are DWORDs, which the service may print unsigned (NTSTATUS-style
        // ones beyond i32::MAX): the same 32 bits as an i32, as Windows shows them.
        let code = code
            .parse::<i64>()
            .ok()
            .and_then(|c| {
                i32::try_from(c).ok().or_else(|| {
                    u32::try_from(c)
                        .ok()
                        .map(|dword| i32::from_ne_bytes(dword.to_ne_bytes()))
                })
            })
            .ok_or_else(|| {
                ReplyError::Garbage(format!("the exit code '{code}' is not a 32-bit number"))
            })?;
        out.done = Some(code);
    }
    Ok(out)
}

/// A reply with no content to read (Signal, Delete): only that it is SOAP, ours and no fault.
pub(crate) fn acknowledged(reply: &[u8], id: &str) -> Result<(), ReplyError> {
    let doc = parse(reply)?;
    body(&doc, id).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "uuid:0AB58087-C2C3-4A13-B7DD-B2B4C4D11F44";

    fn reply(body: &str) -> Vec<u8> {
        format!(
            "<s:Envelope xmlns:s=\"{NS_SOAP}\" xmlns:a=\"{NS_ADDRESSING}\" xmlns:w=\"{NS_WSMAN}\" \
             xmlns:rsp=\"{NS_SHELL}\"><s:Header><a:RelatesTo>{ID}</a:RelatesTo></s:Header>\
             <s:Body>{body}</s:Body></s:Envelope>"
        )
        .into_bytes()
    }

    #[test]
    fn messages_carry_action_selector_options_and_escaped_command() {
        let w = Writer {
            to: "https://hv1:5986/wsman",
        };
        let m = w.command(
            "SHELL-1",
            "powershell.exe -X a<b&c",
            false,
            Duration::from_millis(20_500),
        );
        assert!(m.id.starts_with("uuid:"));
        assert!(
            m.body
                .contains(&format!("<a:MessageID>{}</a:MessageID>", m.id))
        );
        assert!(m.body.contains(ACTION_COMMAND));
        assert!(
            m.body
                .contains("<w:Selector Name=\"ShellId\">SHELL-1</w:Selector>")
        );
        assert!(
            m.body
                .contains("<w:Option Name=\"WINRS_SKIP_CMD_SHELL\">FALSE</w:Option>")
        );
        assert!(
            m.body
                .contains("<rsp:Command>powershell.exe -X a&lt;b&amp;c</rsp:Command>")
        );
        assert!(
            m.body
                .contains("<w:OperationTimeout>PT20.500S</w:OperationTimeout>")
        );
        roxmltree::Document::parse(&m.body).unwrap();
        let create = w.create_shell(Duration::from_secs(60), Duration::from_secs(30));
        assert!(
            create.body.contains(
                "<rsp:Shell><rsp:IdleTimeOut>PT60.000S</rsp:IdleTimeOut><rsp:InputStreams>"
            ),
            "{}",
            create.body
        );
        for m in [
            create,
            w.receive("S", "C", Duration::from_secs(1)),
            w.signal_terminate("S", "C", Duration::from_secs(1)),
            w.delete_shell("S", Duration::from_secs(1)),
        ] {
            roxmltree::Document::parse(&m.body).unwrap();
        }
    }

    #[test]
    fn reads_shell_and_command_ids() {
        let r = reply("<rsp:Shell><rsp:ShellId>ABC</rsp:ShellId></rsp:Shell>");
        assert_eq!(shell_id(&r, ID).unwrap(), "ABC");
        let r = reply(
            "<x:ResourceCreated xmlns:x=\"t\"><a:ReferenceParameters><w:SelectorSet>\
             <w:Selector Name=\"ShellId\">DEF</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>",
        );
        assert_eq!(shell_id(&r, ID).unwrap(), "DEF");
        let r =
            reply("<rsp:CommandResponse><rsp:CommandId>C1</rsp:CommandId></rsp:CommandResponse>");
        assert_eq!(command_id(&r, ID).unwrap(), "C1");
        assert!(matches!(
            command_id(&reply(""), ID),
            Err(ReplyError::Garbage(_))
        ));
        assert!(matches!(
            shell_id(&reply("<rsp:Shell><rsp:ShellId>X</rsp:ShellId></rsp:Shell>"), "uuid:other"),
            Err(ReplyError::Garbage(m)) if m.contains("relates to")
        ));
    }

    #[test]
    fn reads_streams_and_the_exit_code() {
        let r = reply(
            "<rsp:ReceiveResponse>\
             <rsp:Stream Name=\"stdout\" CommandId=\"C1\">aGVsbG8=</rsp:Stream>\
             <rsp:Stream Name=\"stdout\" CommandId=\"other\">eA==</rsp:Stream>\
             <rsp:Stream Name=\"stderr\" CommandId=\"C1\">ZXJy</rsp:Stream>\
             <rsp:Stream Name=\"stdout\" CommandId=\"C1\" End=\"true\"></rsp:Stream>\
             <rsp:CommandState CommandId=\"C1\" State=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done\">\
             <rsp:ExitCode>4294967295</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>",
        );
        let got = received(&r, ID, "c1").unwrap();
        assert_eq!(got.stdout, b"hello");
        assert_eq!(got.stderr, b"err");
        assert_eq!(got.done, Some(-1));
        let running = reply(
            "<rsp:ReceiveResponse><rsp:CommandState CommandId=\"C1\" \
             State=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running\"/>\
             </rsp:ReceiveResponse>",
        );
        assert_eq!(received(&running, ID, "C1").unwrap(), Received::default());
    }

    #[test]
    fn faults_and_garbage() {
        let f = format!(
            "<s:Envelope xmlns:s=\"{NS_SOAP}\"><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value>\
             <s:Subcode><s:Value>w:TimedOut</s:Value></s:Subcode></s:Code><s:Reason>\
             <s:Text xml:lang=\"en-US\">The operation timed out.</s:Text></s:Reason><s:Detail>\
             <f:WSManFault xmlns:f=\"{NS_FAULT}\" Code=\"2150858793\"/></s:Detail></s:Fault></s:Body></s:Envelope>"
        );
        let fault = fault(f.as_bytes()).unwrap();
        assert!(fault.is_timed_out());
        assert_eq!(
            fault.to_string(),
            "The operation timed out. (TimedOut, WSManFault 2150858793)"
        );
        assert!(matches!(
            acknowledged(f.as_bytes(), ID),
            Err(ReplyError::Fault(_))
        ));
        assert!(matches!(
            acknowledged(b"\xff\x00junk", ID),
            Err(ReplyError::Garbage(_))
        ));
        assert!(matches!(
            acknowledged(b"<html>no</html>", ID),
            Err(ReplyError::Garbage(_))
        ));
        assert!(super::fault(b"<html/>").is_none());
        acknowledged(&reply(""), ID).unwrap();
    }
}
