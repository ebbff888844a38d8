//! The action named in argv\[1\].

use std::fmt;

/// An action CloudStack asks an extension to perform.
///
/// Built-in names are matched case-insensitively. Custom actions keep the name CloudStack sent
/// (`CreateSnapshot`) and compare case-insensitively, since upstream scripts lower-case it and
/// operators register names in any case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Deploy preparation; its answer is merged into the VM (e.g. a VMID).
    Prepare,
    /// First start of a new VM: create it and leave it running.
    Create,
    /// Start an existing VM.
    Start,
    /// Stop a VM (also on host maintenance and before destroy).
    Stop,
    /// Reboot a VM.
    Reboot,
    /// Expunge: remove the VM.
    Delete,
    /// Power state of one VM.
    Status,
    /// Power state of every VM on the host, keyed by CloudStack instance name.
    Statuses,
    /// Console access details.
    GetConsole,
    /// A custom action such as `CreateSnapshot`.
    Custom(CustomAction),
}

/// A custom action's name as CloudStack sent it.
#[derive(Debug, Clone)]
pub struct CustomAction(String);

impl CustomAction {
    /// The name as sent.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// Whether this is the custom action `name`, ignoring ASCII case.
    pub fn is(&self, name: &str) -> bool {
        self.0.eq_ignore_ascii_case(name)
    }
}

impl PartialEq for CustomAction {
    fn eq(&self, other: &Self) -> bool {
        self.is(&other.0)
    }
}

impl Eq for CustomAction {}

const BUILT_INS: [(&str, Action); 9] = [
    ("prepare", Action::Prepare),
    ("create", Action::Create),
    ("start", Action::Start),
    ("stop", Action::Stop),
    ("reboot", Action::Reboot),
    ("delete", Action::Delete),
    ("status", Action::Status),
    ("statuses", Action::Statuses),
    ("getconsole", Action::GetConsole),
];

impl Action {
    /// Interprets argv\[1\].
    pub fn parse(name: &str) -> Action {
        BUILT_INS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, a)| a.clone())
            .unwrap_or_else(|| Action::Custom(CustomAction(name.to_owned())))
    }

    /// The canonical name: lower case for built-ins, as sent for custom actions.
    pub fn name(&self) -> &str {
        match self {
            Action::Custom(c) => c.name(),
            built_in => BUILT_INS
                .iter()
                .find(|(_, a)| a == built_in)
                .map(|(n, _)| *n)
                .unwrap_or("unknown"),
        }
    }

    /// Whether the action concerns one VM (everything but `statuses`).
    pub fn is_vm_scoped(&self) -> bool {
        !matches!(self, Action::Statuses)
    }

    /// The built-in action names.
    pub fn built_in_names() -> impl Iterator<Item = &'static str> {
        BUILT_INS.iter().map(|(n, _)| *n)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for an action this extension does not know. Lists what it supports.
pub fn unsupported_action(action: &Action, supported: &[crate::ActionSpec]) -> anyhow::Error {
    anyhow::anyhow!(
        "unknown action '{}': this extension supports {}",
        action.name(),
        crate::catalog::names(supported).join(", ")
    )
}

/// The error for an action this extension knows but does not implement yet.
pub fn not_implemented(action: &Action) -> anyhow::Error {
    anyhow::anyhow!(
        "action '{}' is not implemented yet in this version of the extension",
        action.name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_ignore_case_and_customs_keep_their_name() {
        assert_eq!(Action::parse("STOP"), Action::Stop);
        assert_eq!(Action::parse("GetConsole"), Action::GetConsole);
        let a = Action::parse("CREATESNAPSHOT");
        let Action::Custom(c) = &a else {
            panic!("{a:?}")
        };
        assert!(c.is("CreateSnapshot") && c.is("createsnapshot"));
        assert_eq!(a.name(), "CREATESNAPSHOT");
        assert_eq!(Action::parse("createsnapshot"), a);
        assert_eq!(Action::Statuses.name(), "statuses");
        assert!(!Action::Statuses.is_vm_scoped());
    }
}
