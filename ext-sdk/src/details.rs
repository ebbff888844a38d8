//! Reading configuration details with a declared precedence per key.
//!
//! CloudStack hands an extension several separate detail maps (host, cluster mapping,
//! extension, template/instance, custom action, parameters) and never merges them. Each
//! extension declares, per key, which levels it is read from and in which order, as a
//! [`Detail`] constant. A [`DetailReader`] then reads all of an action's settings and collects
//! every problem, so the operator gets **one** error naming all missing or invalid details and
//! where to set each of them, instead of fixing them one failed deploy at a time.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::path::PathBuf;

use crate::lenient;
use crate::payload::Payload;
use crate::redact::Secret;

/// Where a detail can come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// `externaldetails.host`: set with `addHost`/`updateHost` `externaldetails`.
    Host,
    /// `externaldetails.resourcemap`: details of the cluster↔extension mapping.
    ResourceMap,
    /// `externaldetails.extension`: set with `updateExtension` `details`.
    Extension,
    /// `externaldetails.virtualmachine` (template, offering and instance details), falling
    /// back to `cloudstack.vm.details.details["External:<key>"]`.
    VirtualMachine,
    /// `cloudstack.vm.details.details[<key>]`: unprefixed VM details, such as the ones a
    /// `prepare` answer wrote back.
    VmDetail,
    /// `externaldetails.action`: the custom action's own details.
    Action,
    /// The custom action's `parameters`.
    Parameter,
}

impl Level {
    /// How an operator sets a detail at this level.
    pub fn describe(self) -> &'static str {
        match self {
            Level::Host => "host detail",
            Level::ResourceMap => "cluster mapping detail",
            Level::Extension => "extension detail",
            Level::VirtualMachine => "template or instance detail",
            Level::VmDetail => "instance detail",
            Level::Action => "custom action detail",
            Level::Parameter => "action parameter",
        }
    }

    /// Who holds a detail of this level, for "the host has 'x'".
    pub fn holder(self) -> &'static str {
        match self {
            Level::Host => "the host has",
            Level::ResourceMap => "the cluster mapping has",
            Level::Extension => "the extension has",
            Level::VirtualMachine => "the template or instance has",
            Level::VmDetail => "the instance has",
            Level::Action => "the custom action has",
            Level::Parameter => "the action's parameters have",
        }
    }

    /// The key of this level in the payload: `host`, `resourcemap`, `extension`,
    /// `virtualmachine` (under `externaldetails`), `vm_details` (`cloudstack.vm.details.details`),
    /// `action` or `parameters`.
    pub fn payload_name(self) -> &'static str {
        match self {
            Level::Host => "host",
            Level::ResourceMap => "resourcemap",
            Level::Extension => "extension",
            Level::VirtualMachine => "virtualmachine",
            Level::VmDetail => "vm_details",
            Level::Action => "action",
            Level::Parameter => "parameters",
        }
    }

    /// Every level, in the order a settings reference lists them.
    pub const ALL: [Level; 7] = [
        Level::Host,
        Level::ResourceMap,
        Level::Extension,
        Level::VirtualMachine,
        Level::VmDetail,
        Level::Action,
        Level::Parameter,
    ];
}

/// A test telling a secret value from one that is not, for a detail that holds either (a
/// private key given inline, or the path of its file).
#[derive(Clone, Copy)]
pub struct SecretTest(pub fn(&str) -> bool);

impl fmt::Debug for SecretTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretTest(..)")
    }
}

impl PartialEq for SecretTest {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::fn_addr_eq(self.0, other.0)
    }
}

impl Eq for SecretTest {}

/// What kind of value a detail holds: shown in the settings reference, and for [`Kind::Bool`]
/// and [`Kind::Choice`] what values are checked against (a misspelt value is reported with the
/// allowed ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free text.
    Text,
    /// `true` or `false` (also `yes`/`no`, `1`/`0`).
    Bool,
    /// A whole number.
    Number,
    /// A path on the management server.
    Path,
    /// One of these words, compared without regard to case.
    Choice(&'static [&'static str]),
    /// Text of this shape, e.g. `"URL"` or `"VMID range, e.g. 20000-29999"`.
    Format(&'static str),
}

impl Kind {
    /// The type column of a settings reference.
    pub fn describe(self) -> String {
        match self {
            Kind::Text => "text".to_owned(),
            Kind::Bool => "true or false".to_owned(),
            Kind::Number => "number".to_owned(),
            Kind::Path => "path".to_owned(),
            Kind::Choice(words) => format!("one of {}", words.join(", ")),
            Kind::Format(shape) => shape.to_owned(),
        }
    }

    /// The values a value of this kind must be one of, when there is such a list.
    pub fn choices(self) -> Option<&'static [&'static str]> {
        match self {
            Kind::Bool => Some(&["true", "false"]),
            Kind::Choice(words) => Some(words),
            _ => None,
        }
    }
}

/// Whether an action fails without a detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// It has a default or is not needed.
    Optional,
    /// The actions that read it fail without it.
    Required,
    /// Required in this case only, e.g. `"when the VM has NICs"`.
    RequiredWhen(&'static str),
}

/// Which actions read a detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsedBy {
    /// Every action.
    Every,
    /// Only these actions (names as in [`crate::Meta::actions`]).
    Only(&'static [&'static str]),
    /// Every action but these.
    AllBut(&'static [&'static str]),
}

/// A detail's value when it is not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// None: the detail is required, or optional without a value.
    None,
    /// This literal value, e.g. `8006`.
    Value(&'static str),
    /// Described in words, e.g. "the instance name".
    Described(&'static str),
}

/// A declared configuration key: its name, accepted aliases, levels in precedence order,
/// whether it is a secret, and what a settings reference says about it (kind, default, need,
/// the actions that read it, and its meaning in [`Detail::hint`]).
///
/// The value of a secret detail never reaches an error or a log through the SDK: it is
/// registered for redaction when it is looked up, an invalid value is reported without it, and
/// a parser's or [`DetailReader::reject`]'s message that contains it has it masked (or, for a
/// value too short to mask, is replaced by a message that does not quote it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detail {
    /// The key operators are told to set.
    pub key: &'static str,
    /// Other spellings accepted, tried after `key` at each level (e.g. documented names that
    /// differ from upstream code).
    pub aliases: &'static [&'static str],
    /// Levels searched, highest precedence first.
    pub levels: &'static [Level],
    /// Secret values are registered for redaction and never shown in errors.
    pub secret: bool,
    /// For a detail that is secret only for some values: which ones (see
    /// [`Detail::secret_when`]).
    pub secret_when: Option<SecretTest>,
    /// The value names an object (a snapshot, a VM, a switch) and is used exactly as given:
    /// never trimmed, and refused when it has leading or trailing whitespace (which would
    /// otherwise make ` k1` address `k1`). Other values are trimmed.
    pub exact: bool,
    /// What the value is, in one line: shown when it is missing or invalid, and as its
    /// meaning in the settings reference.
    pub hint: &'static str,
    /// What kind of value it holds.
    pub kind: Kind,
    /// Its value when not set.
    pub default: DefaultValue,
    /// Whether the actions that read it fail without it.
    pub need: Need,
    /// Which actions read it.
    pub used_by: UsedBy,
}

impl Detail {
    /// A detail read from `levels`, highest precedence first.
    pub const fn new(key: &'static str, levels: &'static [Level]) -> Detail {
        Detail {
            key,
            aliases: &[],
            levels,
            secret: false,
            secret_when: None,
            exact: false,
            hint: "",
            kind: Kind::Text,
            default: DefaultValue::None,
            need: Need::Optional,
            used_by: UsedBy::Every,
        }
    }

    /// What kind of value it holds (text when not said).
    pub const fn kind(mut self, kind: Kind) -> Detail {
        self.kind = kind;
        self
    }

    /// Its value when not set, a literal (`"8006"`).
    pub const fn default_value(mut self, value: &'static str) -> Detail {
        self.default = DefaultValue::Value(value);
        self
    }

    /// Its value when not set, in words ("the instance name").
    pub const fn default_described(mut self, words: &'static str) -> Detail {
        self.default = DefaultValue::Described(words);
        self
    }

    /// The actions that read it fail without it.
    pub const fn required(mut self) -> Detail {
        self.need = Need::Required;
        self
    }

    /// Required in one case only, e.g. `"when the VM has NICs"`.
    pub const fn required_when(mut self, case: &'static str) -> Detail {
        self.need = Need::RequiredWhen(case);
        self
    }

    /// Only these actions read it (every action when not said).
    pub const fn used_by(mut self, actions: &'static [&'static str]) -> Detail {
        self.used_by = UsedBy::Only(actions);
        self
    }

    /// Every action but these reads it.
    pub const fn used_by_all_but(mut self, actions: &'static [&'static str]) -> Detail {
        self.used_by = UsedBy::AllBut(actions);
        self
    }

    /// The key and its aliases.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + Clone {
        std::iter::once(self.key).chain(self.aliases.iter().copied())
    }

    /// Accepts other spellings of the key.
    pub const fn alias(mut self, aliases: &'static [&'static str]) -> Detail {
        self.aliases = aliases;
        self
    }

    /// Marks the detail as a secret.
    pub const fn secret(mut self) -> Detail {
        self.secret = true;
        self
    }

    /// Marks the values for which `test` is true as secrets (e.g. a private key pasted inline,
    /// where the path of a key file is not): those are treated as [`Detail::secret`] values.
    pub const fn secret_when(mut self, test: fn(&str) -> bool) -> Detail {
        self.secret_when = Some(SecretTest(test));
        self
    }

    /// Whether `value` of this detail is a secret.
    pub fn is_secret(&self, value: &str) -> bool {
        self.secret || self.secret_when.is_some_and(|test| (test.0)(value))
    }

    /// Marks the detail as a name used exactly as given (see [`Detail::exact`]).
    pub const fn exact(mut self) -> Detail {
        self.exact = true;
        self
    }

    /// Describes the value for error messages, e.g. `"Proxmox API URL, e.g. https://pve1:8006"`.
    pub const fn hint(mut self, hint: &'static str) -> Detail {
        self.hint = hint;
        self
    }

    fn where_to_set(&self) -> String {
        let mut levels: Vec<&str> = self.levels.iter().map(|l| l.describe()).collect();
        levels.dedup();
        let places = match levels.as_slice() {
            [] => String::from("nowhere"),
            [one] => (*one).to_owned(),
            [init @ .., last] => format!("{} or {}", init.join(", "), last),
        };
        if self.hint.is_empty() {
            places
        } else {
            format!("{places}; {}", self.hint)
        }
    }
}

/// Whether no key or alias is declared twice across `tables`: an extension's declarations
/// ([`crate::logging::DETAILS`] among them) must name each key once, or a settings reference
/// would list it twice and typo detection could not tell which is meant. A `const fn`, so an
/// extension checks its table when it compiles:
///
/// ```
/// # use ext_sdk::{Detail, Level};
/// const DETAILS: &[Detail] = &[Detail::new("url", &[Level::Host])];
/// const _: () = assert!(ext_sdk::details::keys_are_unique(&[DETAILS, ext_sdk::logging::DETAILS]));
/// ```
pub const fn keys_are_unique(tables: &[&[Detail]]) -> bool {
    let mut seen = 0;
    let total = count_keys(tables);
    while seen < total {
        let mut other = seen + 1;
        while other < total {
            if str_eq(key_at(tables, seen), key_at(tables, other)) {
                return false;
            }
            other += 1;
        }
        seen += 1;
    }
    true
}

/// How many keys and aliases `tables` declare.
const fn count_keys(tables: &[&[Detail]]) -> usize {
    let (mut count, mut t) = (0, 0);
    while t < tables.len() {
        let mut d = 0;
        while d < tables[t].len() {
            count += 1 + tables[t][d].aliases.len();
            d += 1;
        }
        t += 1;
    }
    count
}

/// The `index`-th key or alias of `tables`, each detail's key before its aliases.
const fn key_at(tables: &[&[Detail]], mut index: usize) -> &'static str {
    let mut t = 0;
    while t < tables.len() {
        let mut d = 0;
        while d < tables[t].len() {
            let detail = &tables[t][d];
            if index == 0 {
                return detail.key;
            }
            if index <= detail.aliases.len() {
                return detail.aliases[index - 1];
            }
            index -= 1 + detail.aliases.len();
            d += 1;
        }
        t += 1;
    }
    ""
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// A value found for a [`Detail`], with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<'p> {
    /// The value, trimmed unless the detail is [`Detail::exact`].
    pub value: Cow<'p, str>,
    /// The level it was read from.
    pub level: Level,
    /// The spelling of the key that matched.
    pub key: &'static str,
}

/// `key`'s value in one detail map, if the map and the key are there.
fn get<'a>(map: Option<&'a BTreeMap<String, String>>, key: &str) -> Option<Cow<'a, str>> {
    map.and_then(|m| m.get(key))
        .map(|s| Cow::Borrowed(s.as_str()))
}

impl Payload {
    /// Starts reading details with declared precedence; see [`DetailReader`].
    pub fn details(&self) -> DetailReader<'_> {
        DetailReader::new(self)
    }

    /// Reads an action's settings with one [`DetailReader`] and fails with every problem at
    /// once: what an action does before it connects anywhere.
    ///
    /// ```
    /// # use ext_sdk::{Detail, Level, Payload};
    /// const NODE: Detail = Detail::new("node", &[Level::Host]);
    /// let payload = Payload::from_slice(br#"{"externaldetails":{"host":{}}}"#, "p")?;
    /// let problems = payload
    ///     .read(|d| {
    ///         let node: String = d.required(&NODE);
    ///         let name = d.check(payload.vm_name().ok_or("the payload names no VM"));
    ///         (node, name)
    ///     })
    ///     .unwrap_err();
    /// assert_eq!(
    ///     problems.to_string(),
    ///     "missing required details: 'node' (host detail); the payload names no VM"
    /// );
    /// # Ok::<(), ext_sdk::PayloadError>(())
    /// ```
    pub fn read<T>(
        &self,
        read: impl FnOnce(&mut DetailReader<'_>) -> T,
    ) -> Result<T, DetailsError> {
        let mut d = self.details();
        let settings = read(&mut d);
        d.finish()?;
        Ok(settings)
    }

    /// Looks a detail up across its levels. Empty or blank values count as absent; other values
    /// are trimmed, except those of an [`Detail::exact`] detail, which come as they are.
    pub fn lookup(&self, detail: &Detail) -> Option<Found<'_>> {
        let names = std::iter::once(detail.key).chain(detail.aliases.iter().copied());
        let vm_details = self.vm.as_ref().map(|vm| &vm.details);
        for &level in detail.levels {
            for name in names.clone() {
                let external = &self.externaldetails;
                let raw: Option<Cow<'_, str>> = match level {
                    Level::Host => get(Some(&external.host), name),
                    Level::ResourceMap => get(Some(&external.resourcemap), name),
                    Level::Extension => get(Some(&external.extension), name),
                    Level::VirtualMachine => get(Some(&external.virtualmachine), name)
                        .or_else(|| get(vm_details, &format!("External:{name}"))),
                    Level::VmDetail => get(vm_details, name),
                    Level::Action => get(Some(&external.action), name),
                    Level::Parameter => self
                        .parameters
                        .get(name)
                        .and_then(lenient::scalar_text)
                        .map(Cow::Owned),
                };
                let Some(raw) = raw else { continue };
                if raw.trim().is_empty() {
                    continue;
                }
                let value = match raw {
                    _ if detail.exact => raw,
                    Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
                    Cow::Owned(s) => Cow::Owned(s.trim().to_owned()),
                };
                if detail.is_secret(&value) {
                    crate::redact::register_all(&value);
                }
                return Some(Found {
                    value,
                    level,
                    key: name,
                });
            }
        }
        None
    }
}

/// Converts a detail's text into a typed value; the error says what was expected.
pub trait FromDetail: Sized {
    /// Parses the non-empty value (trimmed, unless the detail is [`Detail::exact`]).
    fn from_detail(value: &str) -> Result<Self, String>;
}

impl FromDetail for String {
    fn from_detail(value: &str) -> Result<Self, String> {
        Ok(value.to_owned())
    }
}

impl FromDetail for Secret {
    fn from_detail(value: &str) -> Result<Self, String> {
        Ok(Secret::new(value))
    }
}

impl FromDetail for PathBuf {
    fn from_detail(value: &str) -> Result<Self, String> {
        Ok(PathBuf::from(value))
    }
}

impl FromDetail for bool {
    fn from_detail(value: &str) -> Result<Self, String> {
        lenient::parse_bool(value).ok_or_else(|| "expected true or false".to_owned())
    }
}

macro_rules! from_detail_int {
    ($($t:ty),*) => {$(
        impl FromDetail for $t {
            fn from_detail(value: &str) -> Result<Self, String> {
                lenient::parse_i64(value)
                    .and_then(|n| <$t>::try_from(n).ok())
                    .ok_or_else(|| format!(
                        "expected a whole number between {} and {}",
                        <$t>::MIN,
                        <$t>::MAX
                    ))
            }
        }
    )*};
}
from_detail_int!(u8, u16, u32, u64, i32, i64);

/// A detail whose value could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidDetail {
    /// The key as it was found.
    pub key: &'static str,
    /// Where it was found.
    pub level: Level,
    /// The value, or `None` for secrets.
    pub value: Option<String>,
    /// What is wrong with it.
    pub problem: String,
}

/// Every missing and invalid detail of one action, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetailsError {
    /// Required details that were not set anywhere.
    pub missing: Vec<Detail>,
    /// Details set to unusable values.
    pub invalid: Vec<InvalidDetail>,
    /// Other input problems found while reading the details (a NIC without a MAC, ...).
    pub other: Vec<String>,
    /// What may explain a missing detail: a misspelt or misplaced key of the payload
    /// ([`crate::typos`]), e.g. "the host has 'netwrok_bridge': did you mean network_bridge?".
    pub hints: Vec<String>,
}

impl fmt::Display for DetailsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (params, details): (Vec<&Detail>, Vec<&Detail>) = self
            .missing
            .iter()
            .partition(|d| d.levels == [Level::Parameter]);
        let mut parts = Vec::new();
        if !details.is_empty() {
            let list: Vec<String> = details
                .iter()
                .map(|d| format!("'{}' ({})", d.key, d.where_to_set()))
                .collect();
            parts.push(format!("missing required details: {}", list.join(", ")));
        }
        parts.extend(self.hints.iter().cloned());
        if !params.is_empty() {
            let list: Vec<String> = params
                .iter()
                .map(|d| {
                    if d.hint.is_empty() {
                        format!("'{}'", d.key)
                    } else {
                        format!("'{}' ({})", d.key, d.hint)
                    }
                })
                .collect();
            parts.push(format!("missing required parameters: {}", list.join(", ")));
        }
        if !self.invalid.is_empty() {
            let list: Vec<String> = self
                .invalid
                .iter()
                .map(|i| match &i.value {
                    Some(v) => format!(
                        "'{}' = '{}' ({}): {}",
                        i.key,
                        v,
                        i.level.describe(),
                        i.problem
                    ),
                    None => format!("'{}' ({}): {}", i.key, i.level.describe(), i.problem),
                })
                .collect();
            parts.push(format!("invalid details: {}", list.join("; ")));
        }
        parts.extend(self.other.iter().cloned());
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for DetailsError {}

/// Reads an action's details and collects every problem; see the module docs.
///
/// Getters return a usable value even when the detail is missing or invalid (the type's
/// default), so a settings struct can be built in one expression; [`DetailReader::finish`]
/// then fails if anything was wrong, and the defaults are never used.
#[must_use = "call finish() to learn about missing or invalid details"]
pub struct DetailReader<'p> {
    payload: &'p Payload,
    missing: Vec<Detail>,
    invalid: Vec<InvalidDetail>,
    other: Vec<String>,
}

impl<'p> DetailReader<'p> {
    pub(crate) fn new(payload: &'p Payload) -> Self {
        DetailReader {
            payload,
            missing: Vec::new(),
            invalid: Vec::new(),
            other: Vec::new(),
        }
    }

    /// The payload being read.
    pub fn payload(&self) -> &'p Payload {
        self.payload
    }

    /// A detail that may be absent; an unusable value is recorded and `None` returned.
    pub fn optional<T: FromDetail>(&mut self, detail: &Detail) -> Option<T> {
        self.optional_with(detail, T::from_detail)
    }

    /// A detail that must be set; a missing or unusable value is recorded.
    pub fn required<T: FromDetail + Default>(&mut self, detail: &Detail) -> T {
        self.required_with(detail, T::from_detail)
    }

    /// Like [`DetailReader::optional`] with a custom parser.
    pub fn optional_with<T>(
        &mut self,
        detail: &Detail,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let found = self.payload.lookup(detail)?;
        let secret = detail.is_secret(&found.value);
        if detail.exact && found.value.trim() != found.value {
            self.invalid.push(InvalidDetail {
                key: found.key,
                level: found.level,
                value: (!secret).then(|| found.value.into_owned()),
                problem: "has leading or trailing whitespace; it names an object exactly, so it \
                          is refused rather than trimmed (remove the spaces)"
                    .to_owned(),
            });
            return None;
        }
        match parse(&found.value) {
            Ok(v) => Some(v),
            Err(problem) if secret => {
                self.invalid.push(InvalidDetail {
                    key: found.key,
                    level: found.level,
                    value: None,
                    problem: without_secret(problem, &found.value),
                });
                None
            }
            Err(mut problem) => {
                if let Some(choices) = detail.kind.choices()
                    && !detail.secret
                    && let Some(close) = crate::typos::suggest(&found.value, choices)
                {
                    let _ = write!(problem, "; did you mean {close}?");
                }
                self.invalid.push(InvalidDetail {
                    key: found.key,
                    level: found.level,
                    value: Some(found.value.into_owned()),
                    problem,
                });
                None
            }
        }
    }

    /// Like [`DetailReader::required`] with a custom parser.
    pub fn required_with<T: Default>(
        &mut self,
        detail: &Detail,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        if self.payload.lookup(detail).is_none() {
            self.missing.push(*detail);
            return T::default();
        }
        self.optional_with(detail, parse).unwrap_or_default()
    }

    /// Records a problem found by cross-checking settings (e.g. "`iso_path` is required when
    /// `template_type` is iso"), so it is reported with the rest.
    pub fn require_if(&mut self, condition: bool, detail: &Detail) {
        if condition && self.payload.lookup(detail).is_none() {
            self.missing.push(*detail);
        }
    }

    /// Records a problem with a value that parsed but does not fit with the others.
    pub fn reject(&mut self, detail: &Detail, problem: impl Into<String>) {
        let problem = problem.into();
        let (key, level, value, problem) = match self.payload.lookup(detail) {
            Some(f) if detail.is_secret(&f.value) => {
                let problem = without_secret(problem, &f.value);
                (f.key, f.level, None, problem)
            }
            Some(f) => (f.key, f.level, Some(f.value.into_owned()), problem),
            None => (
                detail.key,
                detail.levels.first().copied().unwrap_or(Level::Host),
                None,
                problem,
            ),
        };
        self.invalid.push(InvalidDetail {
            key,
            level,
            value,
            problem,
        });
    }

    /// Records the problem of a failed check and goes on: the value, or `None` once the
    /// problem is recorded (so one error names it with every other problem).
    pub fn check<T, E: fmt::Display>(&mut self, result: Result<T, E>) -> Option<T> {
        result
            .map_err(|problem| self.problem(problem.to_string()))
            .ok()
    }

    /// Records an input problem that is not about one detail (a NIC without a MAC address,
    /// a payload without a CPU count), so it is reported together with the details' problems.
    pub fn problem(&mut self, message: impl Into<String>) {
        self.other.push(message.into());
    }

    /// Whether any problem has been recorded so far.
    pub fn has_problems(&self) -> bool {
        !self.missing.is_empty() || !self.invalid.is_empty() || !self.other.is_empty()
    }

    /// Fails with every recorded problem, or succeeds when there were none.
    pub fn finish(self) -> Result<(), DetailsError> {
        if self.has_problems() {
            let mut missing = self.missing;
            missing.dedup_by_key(|d| d.key);
            let hints = if missing.is_empty() {
                Vec::new()
            } else {
                crate::typos::scan(self.payload)
                    .into_iter()
                    .filter(|f| missing.iter().any(|d| f.explains(d)))
                    .map(|f| f.as_hint())
                    .collect()
            };
            Err(DetailsError {
                missing,
                invalid: self.invalid,
                other: self.other,
                hints,
            })
        } else {
            Ok(())
        }
    }
}

/// `problem` without `secret` in it: masked where it is long enough to mask, else the whole
/// message is withheld (masking every "ab" of a sentence would not hide a two-letter secret).
fn without_secret(problem: String, secret: &str) -> String {
    let mut problem = problem;
    for piece in crate::redact::secret_pieces(secret) {
        if problem.contains(piece) {
            problem = problem.replace(piece, crate::redact::MASK);
        }
    }
    let short = secret.trim();
    if !short.is_empty() && problem.contains(short) {
        return WITHHELD_PROBLEM.to_owned();
    }
    problem
}

/// The problem reported for a secret value when what a parser said about it would quote it.
pub const WITHHELD_PROBLEM: &str = "the value is not valid (what is wrong with it is not shown, since that would reveal the secret)";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const URL: Detail = Detail::new("url", &[Level::Host, Level::Extension]).hint("the API URL");
    const SECRET: Detail = Detail::new("secret", &[Level::Host, Level::Extension]).secret();
    const SWITCH: Detail = Detail::new("network_switch", &[Level::Host]).alias(&["network_bridge"]);
    const PORT: Detail = Detail::new("port", &[Level::Host]);
    const TEMPLATE: Detail = Detail::new("template_id", &[Level::VirtualMachine]);
    const VMID: Detail = Detail::new("proxmox_vmid", &[Level::VmDetail]);
    const SNAP: Detail = Detail::new("snap_name", &[Level::Parameter]);
    const SAVE_MEM: Detail = Detail::new("snap_save_memory", &[Level::Parameter]);

    fn payload(json: &str) -> Payload {
        Payload::from_slice(json.as_bytes(), "test").unwrap()
    }

    #[test]
    fn precedence_aliases_and_fallbacks() {
        let p = payload(
            r#"{"externaldetails":{"host":{"url":" https://h ","network_bridge":"vmbr1"},
                "extension":{"url":"https://e","secret":"s3cret-value"}},
               "cloudstack.vm.details":{"details":{"External:template_id":"101","proxmox_vmid":"103"}},
               "parameters":{"snap_name":"before","snap_save_memory":true}}"#,
        );
        let found = p.lookup(&URL).unwrap();
        assert_eq!(
            (found.value.as_ref(), found.level),
            ("https://h", Level::Host)
        );
        assert_eq!(p.lookup(&SECRET).unwrap().level, Level::Extension);
        assert_eq!(p.lookup(&SWITCH).unwrap().key, "network_bridge");
        assert_eq!(p.lookup(&TEMPLATE).unwrap().value, "101");
        assert_eq!(p.lookup(&VMID).unwrap().value, "103");
        let mut d = p.details();
        assert_eq!(d.required::<String>(&SNAP), "before");
        assert_eq!(d.optional::<bool>(&SAVE_MEM), Some(true));
        d.finish().unwrap();
        assert_eq!(crate::redact::redact("x s3cret-value"), "x ***");
    }

    #[test]
    fn one_error_names_every_problem() {
        let p = payload(r#"{"externaldetails":{"host":{"port":"abc","secret":"  "}}}"#);
        let mut d = p.details();
        let _: String = d.required(&URL);
        let _: String = d.required(&SECRET);
        let _: Option<u16> = d.optional(&PORT);
        let _: String = d.required(&SNAP);
        d.problem("NIC 1: no MAC address in the payload");
        let err = d.finish().unwrap_err();
        let text = err.to_string();
        assert!(
            text.ends_with("; NIC 1: no MAC address in the payload"),
            "{text}"
        );
        assert_eq!(err.missing.len(), 3);
        assert!(
            text.contains("'url' (host detail or extension detail; the API URL)"),
            "{text}"
        );
        assert!(
            text.contains("'secret' (host detail or extension detail)"),
            "{text}"
        );
        assert!(
            text.contains("missing required parameters: 'snap_name'"),
            "{text}"
        );
        assert!(
            text.contains("'port' = 'abc' (host detail): expected a whole number"),
            "{text}"
        );
    }

    #[test]
    fn keys_declared_twice_are_found() {
        const OTHER_BRIDGE: Detail =
            Detail::new("bridge", &[Level::Host]).alias(&["network_bridge"]);
        assert!(keys_are_unique(&[
            &[URL, SECRET, SWITCH, PORT],
            crate::logging::DETAILS
        ]));
        assert!(
            !keys_are_unique(&[&[URL, SWITCH], &[OTHER_BRIDGE]]),
            "an alias twice"
        );
        assert!(!keys_are_unique(&[&[URL], &[PORT, URL]]), "a key twice");
        assert!(keys_are_unique(&[]));
    }

    #[test]
    fn exact_names_are_never_trimmed_and_surrounding_whitespace_is_refused() {
        const NAME: Detail = Detail::new("snapshot_name", &[Level::Parameter]).exact();
        let read = |value: Value| {
            let p = payload(&json!({"parameters": {"snapshot_name": value}}).to_string());
            let mut d = p.details();
            let name: Option<String> = d.optional(&NAME);
            d.finish().map(|()| name).map_err(|e| e.to_string())
        };
        assert_eq!(read(json!("k1")), Ok(Some("k1".to_owned())));
        assert_eq!(read(json!("a b")), Ok(Some("a b".to_owned())));
        for spaced in [" k1", "k1 ", "\tk1", "k1\u{a0}", "\nk1"] {
            let err = read(json!(spaced)).unwrap_err();
            assert!(
                err.contains("'snapshot_name' = '")
                    && err.contains("(action parameter): has leading or trailing whitespace")
                    && err.contains("refused rather than trimmed"),
                "{spaced:?}: {err}"
            );
        }
        // Blank is absent, as for every detail.
        assert_eq!(read(json!("  ")), Ok(None));
        // A number given for a name is its text.
        assert_eq!(read(json!(12)), Ok(Some("12".to_owned())));
        // Not exact: trimmed as before.
        let p = payload(r#"{"externaldetails":{"host":{"url":" https://h "}}}"#);
        assert_eq!(p.lookup(&URL).unwrap().value, "https://h");
    }

    #[test]
    fn the_payloads_vm_name_and_uuid_are_exact() {
        let p = payload(r#"{"virtualmachinename":" i-2-45-VM","virtualmachineid":"u1 "}"#);
        assert_eq!(
            (p.vm_name(), p.vm_uuid()),
            (Some(" i-2-45-VM"), Some("u1 "))
        );
        let blank =
            payload(r#"{"virtualmachinename":"  ","cloudstack.vm.details":{"name":"i-1-VM"}}"#);
        assert_eq!(blank.vm_name(), Some("i-1-VM"));
    }

    #[test]
    fn a_missing_detail_names_the_key_that_was_probably_meant() {
        const BRIDGE: Detail = Detail::new("network_bridge", &[Level::Host]).hint("the bridge");
        const NODE: Detail = Detail::new("node", &[Level::Host]);
        const KIND: Detail = Detail::new("template_type", &[Level::VirtualMachine])
            .kind(Kind::Choice(&["template", "iso"]));
        crate::typos::declare(&[BRIDGE, NODE, KIND]);
        let p = payload(
            r#"{"externaldetails":{"host":{"netwrok_bridge":"vmbr0"},"extension":{"node":"pve1"},
                "virtualmachine":{"template_type":"tempalte"}}}"#,
        );
        let mut d = p.details();
        let _: String = d.required(&BRIDGE);
        let _: String = d.required(&NODE);
        let _: Option<String> = d.optional_with(&KIND, |_| Err("expected template or iso".into()));
        assert_eq!(
            d.finish().unwrap_err().to_string(),
            "missing required details: 'network_bridge' (host detail; the bridge), 'node' (host detail); \
             the host has 'netwrok_bridge': did you mean network_bridge?; \
             'node' is set as an extension detail, but it is read only as a host detail, so it is ignored there; \
             invalid details: 'template_type' = 'tempalte' (template or instance detail): expected template or iso; did you mean template?"
        );
    }

    #[test]
    fn invalid_secrets_are_not_echoed() {
        const SECRET_NUM: Detail = Detail::new("pin", &[Level::Host]).secret();
        let p = payload(r#"{"externaldetails":{"host":{"pin":"not-a-number"}}}"#);
        let mut d = p.details();
        let _: Option<u32> = d.optional(&SECRET_NUM);
        let text = d.finish().unwrap_err().to_string();
        assert!(!text.contains("not-a-number"), "{text}");
    }
}
