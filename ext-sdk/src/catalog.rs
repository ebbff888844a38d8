//! What an extension offers, declared once as data: its actions (CloudStack's built-in ones
//! and custom actions with their parameters) and how it is registered with CloudStack.
//!
//! The same declaration feeds `--help`, the "unknown action" error and `--register`, which
//! creates the custom actions in CloudStack with exactly these names, parameter names, types
//! and required flags. Adding a custom action is one [`ActionSpec::custom`] line (plus its
//! handler).

use std::fmt;

use crate::action::Action;

/// A custom action parameter's type, as CloudStack validates it before running the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// Any text.
    String,
    /// A whole number (CloudStack passes it as a JSON number).
    Number,
    /// Exactly `true` or `false` (CloudStack passes a JSON boolean).
    Boolean,
    /// A date (CloudStack passes it in Gson's default date format).
    Date,
}

impl ParamType {
    /// The name CloudStack's API uses (`parameters[i].type`).
    pub fn api_name(self) -> &'static str {
        match self {
            ParamType::String => "STRING",
            ParamType::Number => "NUMBER",
            ParamType::Boolean => "BOOLEAN",
            ParamType::Date => "DATE",
        }
    }
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.api_name())
    }
}

/// One parameter of a custom action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parameter {
    /// The name, as the handler reads it (usually a [`crate::Detail`]'s key).
    pub name: &'static str,
    /// Its type.
    pub kind: ParamType,
    /// Whether CloudStack refuses to run the action without it.
    pub required: bool,
}

impl Parameter {
    /// An optional text parameter.
    pub const fn string(name: &'static str) -> Parameter {
        Parameter {
            name,
            kind: ParamType::String,
            required: false,
        }
    }

    /// An optional boolean parameter.
    pub const fn boolean(name: &'static str) -> Parameter {
        Parameter {
            name,
            kind: ParamType::Boolean,
            required: false,
        }
    }

    /// An optional number parameter.
    pub const fn number(name: &'static str) -> Parameter {
        Parameter {
            name,
            kind: ParamType::Number,
            required: false,
        }
    }

    /// Makes the parameter required.
    pub const fn required(mut self) -> Parameter {
        self.required = true;
        self
    }
}

/// What CloudStack needs to offer a custom action (`addCustomAction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomActionSpec {
    /// Shown in CloudStack's UI and API.
    pub description: &'static str,
    /// Seconds CloudStack gives the action (it becomes argv\[3\]).
    pub timeout_secs: u32,
    /// The parameters, in the order the UI shows them.
    pub parameters: &'static [Parameter],
}

/// One action an extension answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionSpec {
    /// The name CloudStack sends in argv\[1\].
    pub name: &'static str,
    /// `Some` for a custom action (registered with CloudStack), `None` for one of CloudStack's
    /// own actions (`prepare`, `create`, ... `getconsole`).
    pub custom: Option<CustomActionSpec>,
}

/// The roles a registered custom action is offered to: all of them, as for the built-in
/// extensions' actions (role mask 15).
pub const ALLOWED_ROLE_TYPES: &[&str] = &["Admin", "ResourceAdmin", "DomainAdmin", "User"];

/// The resource type of every custom action of an Orchestrator extension.
pub const RESOURCE_TYPE: &str = "VirtualMachine";

impl ActionSpec {
    /// One of CloudStack's own actions.
    pub const fn built_in(name: &'static str) -> ActionSpec {
        ActionSpec { name, custom: None }
    }

    /// A custom action without parameters.
    pub const fn custom(
        name: &'static str,
        description: &'static str,
        timeout_secs: u32,
    ) -> ActionSpec {
        ActionSpec {
            name,
            custom: Some(CustomActionSpec {
                description,
                timeout_secs,
                parameters: &[],
            }),
        }
    }

    /// Sets a custom action's parameters.
    pub const fn parameters(mut self, parameters: &'static [Parameter]) -> ActionSpec {
        if let Some(custom) = &mut self.custom {
            custom.parameters = parameters;
        }
        self
    }
}

/// The names of `actions`, for help texts and errors.
pub fn names(actions: &[ActionSpec]) -> Vec<&'static str> {
    actions.iter().map(|a| a.name).collect()
}

/// How the extension is registered in CloudStack (`createExtension`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    /// The extension name used when `--register` gets no `--name`.
    pub default_name: &'static str,
    /// Shown in CloudStack's UI and API.
    pub description: &'static str,
    /// `orchestratorrequirespreparevm`: CloudStack runs `prepare` before `create` and stores
    /// the details it answers.
    pub requires_prepare_vm: bool,
    /// `reservedresourcedetails`: VM detail keys end users may neither see nor change (such as
    /// an id `prepare` wrote that names the hypervisor's VM).
    pub reserved_resource_details: &'static [&'static str],
}

/// Checks a catalog against CloudStack's rules: built-ins are CloudStack's action names,
/// custom action names match `^[a-zA-Z0-9 _-]+$` and are unique ignoring case, parameter
/// names are unique and non-empty, and timeouts are positive.
pub fn check(actions: &[ActionSpec]) -> Result<(), String> {
    let mut seen: Vec<&str> = Vec::new();
    for action in actions {
        if seen.iter().any(|s| s.eq_ignore_ascii_case(action.name)) {
            return Err(format!("action '{}' is declared twice", action.name));
        }
        seen.push(action.name);
        match &action.custom {
            None => {
                if !Action::built_in_names().any(|b| b == action.name) {
                    return Err(format!(
                        "'{}' is declared as a built-in action but CloudStack has no such action",
                        action.name
                    ));
                }
            }
            Some(custom) => {
                let valid_name = !action.name.is_empty()
                    && action
                        .name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '-'));
                if !valid_name {
                    return Err(format!(
                        "custom action name '{}' is not accepted by CloudStack (letters, digits, space, '_' and '-' only)",
                        action.name
                    ));
                }
                if Action::built_in_names().any(|b| b.eq_ignore_ascii_case(action.name)) {
                    return Err(format!(
                        "custom action '{}' has the name of a built-in action",
                        action.name
                    ));
                }
                if custom.timeout_secs == 0 {
                    return Err(format!("custom action '{}' has no timeout", action.name));
                }
                for (i, p) in custom.parameters.iter().enumerate() {
                    if p.name.trim().is_empty() {
                        return Err(format!(
                            "custom action '{}' has a parameter without a name",
                            action.name
                        ));
                    }
                    if custom.parameters[..i].iter().any(|q| q.name == p.name) {
                        return Err(format!(
                            "custom action '{}' declares parameter '{}' twice",
                            action.name, p.name
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &[ActionSpec] = &[
        ActionSpec::built_in("create"),
        ActionSpec::custom("ListSnapshots", "List snapshots", 60),
        ActionSpec::custom("CreateSnapshot", "Take a snapshot", 600).parameters(&[
            Parameter::string("snap_name").required(),
            Parameter::boolean("snap_save_memory"),
        ]),
    ];

    #[test]
    fn a_catalog_is_data() {
        assert_eq!(check(GOOD), Ok(()));
        assert_eq!(names(GOOD), ["create", "ListSnapshots", "CreateSnapshot"]);
        let create = GOOD[2].custom.unwrap();
        assert_eq!(create.parameters[0].kind.api_name(), "STRING");
        assert!(create.parameters[0].required && !create.parameters[1].required);
        assert_eq!(GOOD[0].custom, None);
        // parameters() on a built-in leaves it a built-in.
        assert_eq!(ActionSpec::built_in("stop").parameters(&[]).custom, None);
    }

    const TWICE: &[Parameter] = &[Parameter::string("a"), Parameter::number("a")];

    #[test]
    fn catalogs_cloudstack_would_refuse() {
        let cases: &[(&[ActionSpec], &str)] = &[
            (&[ActionSpec::built_in("snapshot")], "no such action"),
            (
                &[ActionSpec::custom("List.Snapshots", "", 60)],
                "not accepted",
            ),
            (&[ActionSpec::custom("", "", 60)], "not accepted"),
            (&[ActionSpec::custom("Stop", "", 60)], "built-in action"),
            (&[ActionSpec::custom("Suspend", "", 0)], "no timeout"),
            (
                &[
                    ActionSpec::custom("Suspend", "", 60),
                    ActionSpec::custom("suspend", "", 60),
                ],
                "declared twice",
            ),
            (
                &[ActionSpec::custom("X", "", 60).parameters(TWICE)],
                "parameter 'a' twice",
            ),
        ];
        for (actions, problem) in cases {
            let err = check(actions).unwrap_err();
            assert!(err.contains(problem), "{err}");
        }
    }
}
