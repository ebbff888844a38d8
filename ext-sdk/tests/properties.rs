//! Property tests: the payload parser and the result writer never panic and keep their
//! promises on arbitrary input.

use ext_sdk::output::to_ascii_json;
use ext_sdk::{Detail, Level, MacAddress, Payload, PowerState, Response, Vlan};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Arbitrary JSON, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".*".prop_map(Value::from),
        "[0-9]{1,12}".prop_map(Value::from),
        prop_oneof!["true", "false", "yes", "1", "0", "untagged", "vlan://42"]
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(any_key(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Keys CloudStack uses, mixed with arbitrary ones, so the fuzzing reaches typed fields.
fn any_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop_oneof![
            "caller",
            "externaldetails",
            "host",
            "extension",
            "resourcemap",
            "virtualmachine",
            "action",
            "virtualmachineid",
            "virtualmachinename",
            "cloudstack.vm.details",
            "parameters",
            "id",
            "name",
            "uuid",
            "state",
            "cpus",
            "minRam",
            "maxRam",
            "vncPassword",
            "details",
            "nics",
            "deviceId",
            "nicUuid",
            "mac",
            "ip",
            "broadcastUri",
            "defaultNic",
            "enableHA",
            "url",
            "secret",
            "snap_name",
        ]
        .prop_map(String::from),
        ".{0,12}",
    ]
}

/// A payload-shaped document with arbitrary values in the typed places.
fn payload_shaped() -> impl Strategy<Value = Value> {
    (
        any_json(),
        any_json(),
        any_json(),
        any_json(),
        any_json(),
        any_json(),
    )
        .prop_map(|(host, vm, cpus, ram, nic, params)| {
            json!({
                "externaldetails": {"host": host, "virtualmachine": {"template_id": "101"}},
                "virtualmachinename": vm,
                "cloudstack.vm.details": {"cpus": cpus, "minRam": ram, "nics": [nic],
                                          "details": {"proxmox_vmid": "103"}},
                "parameters": params,
            })
        })
}

const DETAILS: [Detail; 4] = [
    Detail::new("url", &[Level::Host, Level::Extension]),
    Detail::new("secret", &[Level::Host]).secret(),
    Detail::new("template_id", &[Level::VirtualMachine]),
    Detail::new("snap_name", &[Level::Parameter]),
];

fn exercise(payload: &Payload) {
    let _ = (payload.vm_name(), payload.vm_uuid());
    for nic in payload.nics() {
        let _ = nic.vlan();
        if let Some(mac) = &nic.mac {
            let _ = MacAddress::parse_nic(mac);
        }
    }
    let mut reader = payload.details();
    for d in &DETAILS {
        let _: Option<u16> = reader.optional(d);
        let _: String = reader.required(d);
    }
    if let Err(e) = reader.finish() {
        assert!(!e.to_string().is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(p) = Payload::from_slice(&bytes, "fuzz") {
            exercise(&p);
        }
    }

    #[test]
    fn arbitrary_json_never_panics(doc in any_json()) {
        let bytes = serde_json::to_vec(&doc).unwrap();
        match Payload::from_slice(&bytes, "fuzz") {
            Ok(p) => {
                prop_assert!(doc.is_object());
                exercise(&p);
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn payload_shaped_json_parses_or_names_the_field(doc in payload_shaped()) {
        let bytes = serde_json::to_vec(&doc).unwrap();
        match Payload::from_slice(&bytes, "fuzz") {
            Ok(p) => exercise(&p),
            Err(e) => {
                let text = e.to_string();
                prop_assert!(text.contains("field '"), "{}", text);
            }
        }
    }

    #[test]
    fn results_are_ascii_and_round_trip(message in ".*", rows in prop::collection::vec(any_json(), 0..6)) {
        for response in [
            Response::success(message.clone()),
            Response::table(rows.clone()),
            Response::statuses([(message.clone(), PowerState::On)]),
        ] {
            let doc = response.to_json();
            let text = to_ascii_json(&doc);
            prop_assert!(text.is_ascii());
            prop_assert!(!text.contains('\n'));
            let back: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(back, doc);
        }
    }

    #[test]
    fn mac_and_vlan_parsers_are_total(text in ".{0,24}") {
        if let Ok(mac) = text.parse::<MacAddress>() {
            prop_assert_eq!(mac.to_colon_string().parse::<MacAddress>().unwrap(), mac);
            prop_assert_eq!(mac.to_bare_upper().parse::<MacAddress>().unwrap(), mac);
        }
        if let Ok(Vlan::Tag(t)) = Vlan::from_broadcast_uri(Some(&text)) {
            prop_assert!((1..=4094).contains(&t));
        }
    }

    /// Whatever a parser or a rejection says, a secret detail's value never reaches the error:
    /// not quoted as the value, not inside the problem text (masked, or for a value too short
    /// to mask the problem is withheld), at any level, for secrets and for values a
    /// `secret_when` test calls secret; a value it calls public is shown as before.
    #[test]
    fn a_secret_details_value_never_reaches_an_error(
        // Upper case, digits and symbols: none of the message's own words can contain it
        // (an optional leading 'k' makes `looks_secret` call it secret).
        value in "k?[A-Z0-9#%&+=@^_|~]{1,40}( [A-Z0-9]{1,10})?",
        level in prop_oneof![Just("host"), Just("extension"), Just("parameter")],
        echo_in_reject in any::<bool>(),
    ) {
        fn looks_secret(v: &str) -> bool {
            v.starts_with('k')
        }
        const LEVELS: &[Level] = &[Level::Host, Level::Extension, Level::Parameter];
        let details = [
            Detail::new("pin", LEVELS).secret(),
            Detail::new("pin", LEVELS).secret().exact(),
            Detail::new("pin", LEVELS).secret_when(looks_secret),
        ];
        let doc = match level {
            "parameter" => json!({"parameters": {"pin": value}}),
            level => json!({"externaldetails": {level: {"pin": value}}}),
        };
        let payload = Payload::from_slice(doc.to_string().as_bytes(), "prop").unwrap();
        let trimmed = value.trim();
        for detail in details {
            let mut reader = payload.details();
            let parsed: Option<u8> =
                reader.optional_with(&detail, |v| Err(format!("'{v}' is not valid: {v}!")));
            prop_assert!(parsed.is_none());
            if echo_in_reject {
                reader.reject(&detail, format!("{value} disagrees with {trimmed}"));
            }
            let err = reader.finish().unwrap_err();
            if !detail.is_secret(trimmed) {
                prop_assert!(err.invalid.iter().all(|i| i.value.as_deref() == Some(trimmed)));
                continue;
            }
            for invalid in &err.invalid {
                prop_assert_eq!(invalid.value.as_deref(), None);
                prop_assert!(
                    invalid.problem == ext_sdk::details::WITHHELD_PROBLEM
                        || !invalid.problem.contains(trimmed),
                    "{}",
                    invalid.problem
                );
            }
            // The whole message may contain a 1-3 character value by chance ("k" in
            // "talking"); a longer one only if it were leaked.
            if trimmed.chars().count() >= ext_sdk::redact::MIN_SECRET_LEN {
                let text = err.to_string();
                prop_assert!(!text.contains(trimmed), "{}", text);
            }
        }
    }
}
