//! Local policy of a partner GMS (TS 23.280 §10.2.7.2 step 2, §10.2.7.3 step 4): the
//! partner modifies configuration received from a group's primary "according to the
//! partner MC system's policies and local configuration information" before storing it.

use mcx_model::NonEmpty;
use mcx_model::group::GroupConfiguration;
use mcx_model::interconnection::LocalGroupPolicy;

/// Applies the policy to a received configuration; `Err` says why the group cannot be
/// used in this system at all.
pub fn apply_local_policy(
    policy: &LocalGroupPolicy,
    received: &GroupConfiguration,
) -> Result<GroupConfiguration, String> {
    let mut config = received.clone();
    if let Some(priority) = policy.group_priority {
        config.on_network_group_priority = Some(priority);
    }
    if let (Some(cap), Some(priority)) =
        (policy.max_group_priority, config.on_network_group_priority)
        && priority > cap
    {
        config.on_network_group_priority = Some(cap);
    }
    if let Some(allowed) = &policy.permitted_locations {
        config.permitted_locations = if config.permitted_locations.is_empty() {
            allowed.clone()
        } else {
            config
                .permitted_locations
                .iter()
                .filter(|place| allowed.contains(place))
                .cloned()
                .collect()
        };
        if config.permitted_locations.is_empty() {
            return Err(format!(
                "none of the group's permitted locations ({}) is permitted in this system",
                received.permitted_locations.join(", ")
            ));
        }
    }
    if !policy.drop_services.is_empty() {
        let kept: Vec<_> = config
            .supported_services
            .iter()
            .copied()
            .filter(|s| !policy.drop_services.contains(s))
            .collect();
        config.supported_services = NonEmpty::new(kept)
            .map_err(|_| "this system offers none of the group's MC services".to_string())?;
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcx_model::McService;

    fn received() -> GroupConfiguration {
        serde_json::from_value(serde_json::json!({
            "display-name": "Joint ops",
            "supported-services": ["mcptt", "mcvideo"],
            "on-network-group-priority": 7,
            "permitted-locations": ["harbour", "airport"],
        }))
        .unwrap()
    }

    #[test]
    fn caps_or_sets_priority() {
        let cap = LocalGroupPolicy {
            max_group_priority: Some(4),
            ..Default::default()
        };
        assert_eq!(
            apply_local_policy(&cap, &received())
                .unwrap()
                .on_network_group_priority,
            Some(4)
        );
        let low = LocalGroupPolicy {
            max_group_priority: Some(9),
            ..Default::default()
        };
        assert_eq!(
            apply_local_policy(&low, &received())
                .unwrap()
                .on_network_group_priority,
            Some(7)
        );
        let set = LocalGroupPolicy {
            group_priority: Some(2),
            ..Default::default()
        };
        assert_eq!(
            apply_local_policy(&set, &received())
                .unwrap()
                .on_network_group_priority,
            Some(2)
        );
    }

    #[test]
    fn restricts_locations_and_drops_services() {
        let policy = LocalGroupPolicy {
            permitted_locations: Some(vec!["harbour".into(), "station".into()]),
            drop_services: vec![McService::Mcvideo],
            ..Default::default()
        };
        let applied = apply_local_policy(&policy, &received()).unwrap();
        assert_eq!(applied.permitted_locations, ["harbour"]);
        assert_eq!(applied.supported_services.as_slice(), [McService::Mcptt]);
        assert_eq!(applied.display_name, "Joint ops", "the rest is kept");

        let mut anywhere = received();
        anywhere.permitted_locations.clear();
        assert_eq!(
            apply_local_policy(&policy, &anywhere)
                .unwrap()
                .permitted_locations,
            ["harbour", "station"]
        );
    }

    #[test]
    fn refuses_what_cannot_be_used_here() {
        let nowhere = LocalGroupPolicy {
            permitted_locations: Some(vec!["mars".into()]),
            ..Default::default()
        };
        assert!(
            apply_local_policy(&nowhere, &received())
                .unwrap_err()
                .contains("permitted locations")
        );
        let none = LocalGroupPolicy {
            drop_services: McService::ALL.to_vec(),
            ..Default::default()
        };
        assert!(
            apply_local_policy(&none, &received())
                .unwrap_err()
                .contains("MC services")
        );
    }
}
