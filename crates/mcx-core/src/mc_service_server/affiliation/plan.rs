//! The N2 check and the writes of step 4, as a pure function of the user's state.

use std::collections::{BTreeMap, BTreeSet};

use mcx_model::flows::affiliation::*;
use mcx_model::{ClientId, McService, McServiceGroupId, McServiceId, SystemDomain};

use crate::ports::{AffiliationWrite, ClientAffiliation, UserAffiliationState};

use super::*;

/// What affiliating `clients` of `user` to `candidates` does, given the rows the user
/// holds: the N2 check and the writes of step 4 (a pending reservation for a partner
/// group). Pure, so it is the same whatever the transport and measurable on its own.
#[derive(Debug, Clone, Default)]
pub struct AffiliationPlan {
    /// Rows to write, in one commit with the GMS update.
    pub writes: Vec<AffiliationWrite>,
    /// The status of each candidate decided here (groups defined here, refusals).
    pub outcome: BTreeMap<McServiceGroupId, GroupAffiliationStatus>,
    /// Partner groups reserved: their hosts are asked next.
    pub pending: Vec<McServiceGroupId>,
    /// Groups defined here the user now holds: the GMS learns them (step 5b).
    pub newly_local: Vec<McServiceGroupId>,
}

/// A client's affiliation row at the serving server.
pub(super) fn served(
    user: &McServiceId,
    service: McService,
    group: &McServiceGroupId,
    client: &ClientId,
    pending: Option<u64>,
) -> AffiliationWrite {
    AffiliationWrite::Served {
        user: user.clone(),
        row: ClientAffiliation {
            mc_service: service,
            group: group.clone(),
            client: client.clone(),
            pending,
        },
    }
}

/// The group policy's refusal of an affiliation for `service`, if any (step 3).
pub(super) fn policy_refusal(
    config: &mcx_model::group::GroupConfiguration,
    service: McService,
) -> Option<AffiliationCause> {
    if config.on_network_disabled {
        Some(AffiliationCause::GroupDisabled)
    } else if !config.supports(service) {
        Some(AffiliationCause::ServiceNotSupported)
    } else if config.preconfigured_group_use_only {
        Some(AffiliationCause::PreconfiguredGroupUseOnly)
    } else {
        None
    }
}

/// Plans an affiliation from the user's state as read; see [`AffiliationPlan`]. `n2` is
/// the user's limit for `service`. A partner group's reservation carries the generation
/// the plan's commit gives the user: only the answer to that request settles it.
pub fn plan_affiliation(
    system: &SystemDomain,
    user: &McServiceId,
    state: &UserAffiliationState,
    clients: &[ClientId],
    service: McService,
    candidates: &[McServiceGroupId],
    n2: usize,
) -> AffiliationPlan {
    let rows = &state.rows;
    let generation = state.generation + 1;
    let mut writes = Vec::new();
    let mut outcome = BTreeMap::new();
    let mut pending = Vec::new();
    let mut held: BTreeSet<&McServiceGroupId> = rows
        .iter()
        .filter(|r| r.mc_service == service)
        .map(|r| &r.group)
        .collect();
    let mut newly_local = Vec::new();
    for group in candidates {
        let held_rows: Vec<_> = rows
            .iter()
            .filter(|r| r.mc_service == service && &r.group == group)
            .collect();
        let missing: Vec<&ClientId> = clients
            .iter()
            .filter(|c| !held_rows.iter().any(|r| &r.client == *c))
            .collect();
        if !held_rows.is_empty() {
            if held_rows.iter().all(|r| r.pending.is_some()) {
                outcome.insert(group.clone(), refused(group, AffiliationCause::InProgress));
                continue;
            }
            // The user holds it already: the missing clients join, no N2 change.
            for client in missing {
                writes.push(served(user, service, group, client, None));
            }
            outcome.insert(
                group.clone(),
                status(group, AffiliationStatus::Affiliated, None),
            );
            continue;
        }
        if held.len() >= n2 {
            outcome.insert(
                group.clone(),
                refused(group, AffiliationCause::N2LimitReached),
            );
            continue;
        }
        held.insert(group);
        let is_local = group.home_system() == *system;
        for client in clients {
            writes.push(served(
                user,
                service,
                group,
                client,
                (!is_local).then_some(generation),
            ));
        }
        if is_local {
            writes.push(AffiliationWrite::Hosted {
                user: user.clone(),
                mc_service: service,
                group: group.clone(),
            });
            newly_local.push(group.clone());
            outcome.insert(
                group.clone(),
                status(group, AffiliationStatus::Affiliated, None),
            );
        } else {
            pending.push(group.clone());
        }
    }
    AffiliationPlan {
        writes,
        outcome,
        pending,
        newly_local,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gid(text: &str) -> McServiceGroupId {
        McServiceGroupId::parse(text).expect("a valid group ID")
    }

    fn held(group: &str, client: &ClientId, pending: Option<u64>) -> ClientAffiliation {
        ClientAffiliation {
            mc_service: McService::Mcptt,
            group: gid(group),
            client: client.clone(),
            pending,
        }
    }

    #[test]
    fn n2_counts_held_and_reserved_groups_and_a_held_group_costs_nothing() {
        let system = SystemDomain::parse("police.example").expect("a valid domain");
        let user = McServiceId::parse("sip:bob@police.example").expect("a valid user ID");
        let phone = ClientId::parse("phone").expect("a valid client ID");
        let radio = ClientId::parse("radio").expect("a valid client ID");
        // Bob holds ops (from his radio) and a reservation for a partner group: N2 = 3
        // leaves room for one more distinct group.
        let rows = vec![
            held("sip:ops@police.example", &radio, None),
            held("sip:harbour@fire.example", &radio, Some(4)),
        ];
        let plan = plan_affiliation(
            &system,
            &user,
            &UserAffiliationState {
                generation: 4,
                rows,
            },
            std::slice::from_ref(&phone),
            McService::Mcptt,
            &[
                gid("sip:ops@police.example"),
                gid("sip:dock@fire.example"),
                gid("sip:patrol@police.example"),
            ],
            3,
        );
        let cause = |g: &str| plan.outcome.get(&gid(g)).and_then(|s| s.cause.clone());
        // ops is held: the phone joins without using N2.
        assert_eq!(
            plan.outcome[&gid("sip:ops@police.example")].status,
            AffiliationStatus::Affiliated
        );
        // dock takes the last place, as a reservation to confirm with fire.example.
        assert_eq!(plan.pending, vec![gid("sip:dock@fire.example")]);
        assert!(!plan.outcome.contains_key(&gid("sip:dock@fire.example")));
        // patrol would be a fourth group.
        assert_eq!(
            cause("sip:patrol@police.example"),
            Some(AffiliationCause::N2LimitReached)
        );
        assert!(plan.newly_local.is_empty());
    }

    #[test]
    fn a_group_only_reserved_is_in_progress() {
        let system = SystemDomain::parse("police.example").expect("a valid domain");
        let user = McServiceId::parse("sip:bob@police.example").expect("a valid user ID");
        let radio = ClientId::parse("radio").expect("a valid client ID");
        let rows = vec![held("sip:harbour@fire.example", &radio, Some(4))];
        let plan = plan_affiliation(
            &system,
            &user,
            &UserAffiliationState {
                generation: 4,
                rows,
            },
            std::slice::from_ref(&radio),
            McService::Mcptt,
            &[
                gid("sip:harbour@fire.example"),
                gid("sip:ops@police.example"),
            ],
            4,
        );
        assert_eq!(
            plan.outcome[&gid("sip:harbour@fire.example")].cause,
            Some(AffiliationCause::InProgress)
        );
        assert_eq!(plan.newly_local, vec![gid("sip:ops@police.example")]);
        assert!(
            plan.writes
                .iter()
                .any(|w| matches!(w, AffiliationWrite::Hosted { .. }))
        );
    }
}
