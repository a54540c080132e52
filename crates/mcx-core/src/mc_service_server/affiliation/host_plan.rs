//! The host's decision on a partner user's (de-)affiliation request (§10.8.3.2 steps
//! 4–7, §10.8.4.3 steps 4–6, and the mandatory remote change's steps 4–8), as a pure
//! function of what the host read.

use mcx_model::flows::affiliation::*;
use mcx_model::{McService, McServiceGroupId, McServiceId, SystemDomain};

use crate::ports::{AffiliationWrite, GmsStatusUpdate};

use super::*;

/// A partner's request about one of its users, as the host decides on it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostedRequest<'a> {
    /// This system (the host).
    pub system: &'a SystemDomain,
    /// The sending partner.
    pub from: &'a SystemDomain,
    /// The user the request is about.
    pub user: &'a McServiceId,
    /// The MC service.
    pub service: McService,
    /// Affiliate or de-affiliate.
    pub action: AffiliationChangeAction,
    /// The user's generation at the sender when it decided (older releases send none).
    pub generation: Option<u64>,
}

impl HostedRequest<'_> {
    /// Only a partner's own users: a system may not (de-)affiliate another's.
    pub(crate) fn sender_refusal(&self) -> Option<AffiliationCause> {
        (self.user.domain() != *self.from).then_some(AffiliationCause::NotAuthorized)
    }
}

/// What the host read about one group of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostedGroupFacts {
    /// The group.
    pub group: McServiceGroupId,
    /// The generation of the last request applied here for the user and group, when
    /// read (`None` also when not read: the commit's guard then finds an overtaken
    /// request).
    pub last_generation: Option<u64>,
    /// Whether the user holds the group here (read for an overtaken request only).
    pub held: bool,
    /// The group policy's refusal of the user's affiliation, if any (affiliation only).
    pub refusal: Option<AffiliationCause>,
}

/// What the host does: its writes, what its GMS learns, the answer per group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HostedPlan {
    /// Affiliation records (and the generation applied), committed with the answer.
    pub writes: Vec<AffiliationWrite>,
    /// Step 7b (6b of de-affiliation): the group affiliation status update to the GMS.
    pub gms: Option<GmsStatusUpdate>,
    /// The answer, one status per group.
    pub statuses: Vec<GroupAffiliationStatus>,
    /// Groups for which the request was overtaken by a newer one already applied.
    pub overtaken: Vec<McServiceGroupId>,
}

/// Decides on `request` for each group of `facts` (distinct, in the request's order).
/// An overtaken request is answered with the state held and changes nothing; a request
/// about a group defined elsewhere, or from a partner about a user not its own, is
/// refused; otherwise the record is written and the generation applied remembered.
pub(crate) fn plan_hosted_change(
    request: &HostedRequest<'_>,
    facts: &[HostedGroupFacts],
) -> HostedPlan {
    let mut plan = HostedPlan::default();
    let mut learned = Vec::new();
    let user = request.user;
    let service = request.service;
    for fact in facts {
        let group = &fact.group;
        if let Some(generation) = request.generation {
            if fact.last_generation.is_some_and(|last| generation < last) {
                let held = if fact.held {
                    AffiliationStatus::Affiliated
                } else {
                    AffiliationStatus::NotAffiliated
                };
                plan.statuses.push(status(group, held, None));
                plan.overtaken.push(group.clone());
                continue;
            }
            if request.sender_refusal().is_none() && group.home_system() == *request.system {
                plan.writes.push(AffiliationWrite::HostedGeneration {
                    user: user.clone(),
                    mc_service: service,
                    group: group.clone(),
                    generation,
                });
            }
        }
        let cause = if let Some(cause) = request.sender_refusal() {
            Some(cause)
        } else if group.home_system() != *request.system {
            Some(AffiliationCause::UnknownGroup)
        } else if request.action == AffiliationChangeAction::Affiliate {
            fact.refusal.clone()
        } else {
            None
        };
        if let Some(cause) = cause {
            plan.statuses.push(refused(group, cause));
            continue;
        }
        let (write, now) = match request.action {
            AffiliationChangeAction::Affiliate => (
                AffiliationWrite::Hosted {
                    user: user.clone(),
                    mc_service: service,
                    group: group.clone(),
                },
                AffiliationStatus::Affiliated,
            ),
            AffiliationChangeAction::Deaffiliate => (
                AffiliationWrite::HostedRemoved {
                    user: user.clone(),
                    mc_service: service,
                    group: group.clone(),
                },
                AffiliationStatus::NotAffiliated,
            ),
        };
        plan.writes.push(write);
        learned.push((group.clone(), now));
        plan.statuses.push(status(group, now, None));
    }
    if !learned.is_empty() {
        plan.gms = Some(GmsStatusUpdate {
            user: user.clone(),
            mc_service: service,
            statuses: learned,
        });
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gid(text: &str) -> McServiceGroupId {
        McServiceGroupId::parse(text).expect("a valid group ID")
    }

    fn facts(group: &str, last: Option<u64>, held: bool) -> HostedGroupFacts {
        HostedGroupFacts {
            group: gid(group),
            last_generation: last,
            held,
            refusal: None,
        }
    }

    fn domains() -> (SystemDomain, SystemDomain, McServiceId) {
        (
            SystemDomain::parse("fire.example").expect("a valid domain"),
            SystemDomain::parse("police.example").expect("a valid domain"),
            McServiceId::parse("sip:bob@police.example").expect("a valid user ID"),
        )
    }

    #[test]
    fn an_overtaken_request_changes_nothing_and_answers_the_state_held() {
        let (fire, police, bob) = domains();
        let request = HostedRequest {
            system: &fire,
            from: &police,
            user: &bob,
            service: McService::Mcptt,
            action: AffiliationChangeAction::Deaffiliate,
            generation: Some(3),
        };
        let plan = plan_hosted_change(
            &request,
            &[
                facts("sip:harbour@fire.example", Some(5), true),
                facts("sip:dock@fire.example", Some(2), true),
            ],
        );
        // harbour: a newer affiliation (5) was applied; the old de-affiliation (3) is
        // answered with the affiliation held and removes nothing.
        assert_eq!(plan.overtaken, vec![gid("sip:harbour@fire.example")]);
        assert_eq!(plan.statuses[0].status, AffiliationStatus::Affiliated);
        // dock: applied, with its generation remembered, and the GMS told.
        assert_eq!(plan.statuses[1].status, AffiliationStatus::NotAffiliated);
        assert!(plan.writes.contains(&AffiliationWrite::HostedGeneration {
            user: bob.clone(),
            mc_service: McService::Mcptt,
            group: gid("sip:dock@fire.example"),
            generation: 3,
        }));
        assert!(plan.writes.contains(&AffiliationWrite::HostedRemoved {
            user: bob.clone(),
            mc_service: McService::Mcptt,
            group: gid("sip:dock@fire.example"),
        }));
        assert_eq!(plan.writes.len(), 2);
        let gms = plan.gms.expect("the GMS learns dock's status");
        assert_eq!(
            gms.statuses,
            vec![(
                gid("sip:dock@fire.example"),
                AffiliationStatus::NotAffiliated
            )]
        );
    }

    #[test]
    fn a_partner_cannot_affiliate_another_systems_user_nor_to_a_group_defined_elsewhere() {
        let (fire, police, _) = domains();
        let ambulance_user =
            McServiceId::parse("sip:ann@ambulance.example").expect("a valid user ID");
        let foreign = HostedRequest {
            system: &fire,
            from: &police,
            user: &ambulance_user,
            service: McService::Mcptt,
            action: AffiliationChangeAction::Affiliate,
            generation: Some(1),
        };
        let plan = plan_hosted_change(&foreign, &[facts("sip:harbour@fire.example", None, false)]);
        assert!(plan.writes.is_empty() && plan.gms.is_none());
        assert_eq!(
            plan.statuses[0].cause,
            Some(AffiliationCause::NotAuthorized)
        );

        let (_, _, bob) = domains();
        let elsewhere = HostedRequest {
            user: &bob,
            ..foreign
        };
        let mut refused_here = facts("sip:harbour@fire.example", None, false);
        refused_here.refusal = Some(AffiliationCause::GroupDisabled);
        let plan = plan_hosted_change(
            &elsewhere,
            &[
                facts("sip:ops@ambulance.example", None, false),
                refused_here,
            ],
        );
        assert_eq!(plan.statuses[0].cause, Some(AffiliationCause::UnknownGroup));
        assert_eq!(
            plan.statuses[1].cause,
            Some(AffiliationCause::GroupDisabled)
        );
        // Nothing affiliated, but harbour's generation is applied (a later, older
        // request about it is still overtaken).
        assert!(plan.gms.is_none());
        assert_eq!(plan.writes.len(), 1);
    }
}
