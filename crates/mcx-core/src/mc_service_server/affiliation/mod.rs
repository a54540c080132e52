//! Affiliation and de-affiliation (TS 23.280 §10.8.3, §10.8.4), for groups defined here
//! and groups defined in partner systems.
//!
//! The user's serving server records which of the user's clients hold each affiliation;
//! the user is affiliated to a group while any of them does. It checks the user's profile
//! and N2 for every group, and the group policy for groups defined here; it asks the
//! partner server hosting a partner group (server to server) only when the user as a whole
//! affiliates or de-affiliates. N2 counts distinct groups of one MC service across all the
//! user's clients and all systems; a partner group counts from the moment it is requested
//! (a pending reservation), so concurrent requests can never exceed it.
//!
//! The server hosting a group records the users affiliated to it (served here or by a
//! partner) and updates its GMS with their status in the same commit.

use std::collections::{BTreeMap, BTreeSet};

use mcx_model::flows::affiliation::*;
use mcx_model::flows::partner::{PartnerRequest, PartnerResponse};
use mcx_model::{McService, McServiceGroupId, McServiceId, NonEmpty, SystemDomain};

use super::McServiceServer;
use crate::ports::{Effects, LinkError};

mod answer_waits;
mod host_plan;
mod hosting;
mod lifecycle;
mod plan;
mod serving;
mod set;

pub(super) use answer_waits::AnswerWaits;
pub use plan::{AffiliationPlan, plan_affiliation};

/// How a partner host is asked to affiliate a user.
#[derive(Debug, Clone, Copy)]
pub(super) enum Via<'a> {
    /// The user's own request: MC service group affiliation request (server–server).
    Own,
    /// An authorised user's mandatory remote change: MC service group affiliation change
    /// request to the group's host (§10.8.5.2.1 step 3).
    Remote(&'a McServiceId),
}

fn status(
    group: &McServiceGroupId,
    status: AffiliationStatus,
    cause: Option<AffiliationCause>,
) -> GroupAffiliationStatus {
    GroupAffiliationStatus {
        mc_service_group_id: group.clone(),
        status,
        cause,
    }
}

/// A user's affiliations changed under every attempt to decide about them (other nodes
/// or requests kept moving the generation): nothing was done.
fn kept_changing(user: &McServiceId) -> crate::error::Error {
    crate::error::Error::refused(
        crate::error::ErrorKind::Unavailable,
        crate::error::codes::STORAGE_FAILURE,
        format!("the affiliations of {user} kept changing concurrently; retry"),
    )
}

fn refused(group: &McServiceGroupId, cause: AffiliationCause) -> GroupAffiliationStatus {
    status(group, AffiliationStatus::NotAffiliated, Some(cause))
}

/// The groups of a list, without repeats, in first-seen order.
fn distinct(groups: &[McServiceGroupId]) -> Vec<McServiceGroupId> {
    let mut seen = BTreeSet::new();
    groups
        .iter()
        .filter(|g| seen.insert((*g).clone()))
        .cloned()
        .collect()
}

fn by_host(groups: &[McServiceGroupId]) -> BTreeMap<SystemDomain, NonEmpty<McServiceGroupId>> {
    let mut map: BTreeMap<SystemDomain, Vec<McServiceGroupId>> = BTreeMap::new();
    for group in groups {
        map.entry(group.home_system())
            .or_default()
            .push(group.clone());
    }
    map.into_iter()
        .filter_map(|(host, list)| NonEmpty::new(list).ok().map(|l| (host, l)))
        .collect()
}

/// A reservation whose host's answer a client's request waits for: user, service, group
/// and the generation of the request.
pub(super) type WaitKey = (McServiceId, McService, McServiceGroupId, u64);

/// The request asking a host to affiliate the user to `groups` (§10.8.3.2 step 3, or
/// §10.8.5.2.1 step 3 for a mandatory remote change).
fn ask_host(
    via: Via<'_>,
    user: &McServiceId,
    groups: NonEmpty<McServiceGroupId>,
    service: McService,
    generation: u64,
) -> Option<PartnerRequest> {
    Some(match via {
        Via::Own => PartnerRequest::GroupAffiliation(ServerGroupAffiliationRequest {
            mc_service_id: user.clone(),
            mc_service_group_id_list: groups,
            mc_service: service,
            generation: Some(generation),
        }),
        Via::Remote(requester) => PartnerRequest::GroupAffiliationChange(change_to_host(
            requester,
            user,
            groups.as_slice(),
            AffiliationChangeAction::Affiliate,
            service,
            generation,
        )?),
    })
}

/// Whom and what an affiliation request to a host was about: the user, the service, the
/// groups to affiliate and the request's generation. `None` for other flows.
fn asked_of_host(
    request: &PartnerRequest,
) -> Option<(McServiceId, McService, Vec<McServiceGroupId>, Option<u64>)> {
    match request {
        PartnerRequest::GroupAffiliation(r) => Some((
            r.mc_service_id.clone(),
            r.mc_service,
            r.mc_service_group_id_list.iter().cloned().collect(),
            r.generation,
        )),
        PartnerRequest::GroupAffiliationChange(r) => Some((
            r.mc_service_id_list.first().clone(),
            r.mc_service,
            r.mc_service_group_id_list
                .iter()
                .filter(|c| c.action == AffiliationChangeAction::Affiliate)
                .map(|c| c.mc_service_group_id.clone())
                .collect(),
            r.generation,
        )),
        _ => None,
    }
}

fn change_to_host(
    requester: &McServiceId,
    target: &McServiceId,
    groups: &[McServiceGroupId],
    action: AffiliationChangeAction,
    service: McService,
    generation: u64,
) -> Option<GroupAffiliationChangeRequest> {
    let changes: Vec<_> = groups
        .iter()
        .map(|g| GroupAffiliationChange {
            mc_service_group_id: g.clone(),
            action,
        })
        .collect();
    Some(GroupAffiliationChangeRequest {
        mc_service_id: requester.clone(),
        mc_service_id_list: NonEmpty::one(target.clone()),
        mc_service_group_id_list: NonEmpty::new(changes).ok()?,
        change_request_type: ChangeRequestType::Mandatory,
        mc_service: service,
        generation: Some(generation),
    })
}

/// A group's status from a host's answer (or from the failure to get one).
fn status_from_host(
    user: &McServiceId,
    group: &McServiceGroupId,
    answered: &std::result::Result<PartnerResponse, LinkError>,
) -> GroupAffiliationStatus {
    match answered {
        Ok(PartnerResponse::GroupAffiliation(r)) => r
            .status_per_mc_service_group_id
            .iter()
            .find(|s| &s.mc_service_group_id == group)
            .cloned()
            .unwrap_or_else(|| refused(group, AffiliationCause::PartnerRefused)),
        Ok(PartnerResponse::GroupAffiliationChange(r)) => r
            .affiliation_status_per_mc_service_group_id
            .iter()
            .find(|s| &s.mc_service_group_id == group && &s.mc_service_id == user)
            .map(|s| status(group, s.status, s.cause.clone()))
            .unwrap_or_else(|| refused(group, AffiliationCause::PartnerRefused)),
        Ok(_) => refused(group, AffiliationCause::PartnerRefused),
        Err(LinkError::Unreachable { .. }) => refused(group, AffiliationCause::PartnerUnreachable),
        Err(LinkError::Refused { .. }) => refused(group, AffiliationCause::PartnerRefused),
    }
}

fn build_response(
    user: McServiceId,
    service: McService,
    requested: &[McServiceGroupId],
    statuses: Vec<GroupAffiliationStatus>,
) -> GroupAffiliationResponse {
    let list = NonEmpty::new(distinct(requested))
        .unwrap_or_else(|_| unreachable!("requests list one group or more"));
    GroupAffiliationResponse {
        mc_service_id: user,
        mc_service_group_id_list: list,
        status_per_mc_service_group_id: statuses,
        mc_service: service,
    }
}

fn merge(into: &mut Effects, part: Effects) {
    into.client_events.extend(part.client_events);
    into.outbox.extend(part.outbox);
    into.service.affiliations.extend(part.service.affiliations);
    into.gms
        .affiliation_status
        .extend(part.gms.affiliation_status);
    into.gms.partner_records.extend(part.gms.partner_records);
}
