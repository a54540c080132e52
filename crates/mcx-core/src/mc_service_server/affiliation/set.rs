//! A client's complete list of groups (an affiliation PUBLISH, TS 24.379 §9.2.2.2.3,
//! lists every group the client wants): the groups it no longer lists are released and
//! the new ones affiliated in one commit, with the row its door keeps alongside, instead
//! of a de-affiliation, an affiliation and the door's row one after the other.

use std::collections::{BTreeMap, BTreeSet};

use mcx_model::McService;
use mcx_model::McServiceGroupId;
use mcx_model::flows::affiliation::*;

use super::McServiceServer;
use super::plan::plan_affiliation;
use super::*;
use crate::error::Result;
use crate::identity::Requester;
use crate::ports::{SipStateChange, UserAffiliationState};

impl McServiceServer {
    /// Makes the requester's client's affiliations for `service` exactly `groups`: the
    /// de-affiliation of the groups it no longer lists (§10.8.4.2 / §10.8.4.3) and the
    /// affiliation to the new ones (§10.8.3.1 / §10.8.3.2), with the checks each makes
    /// alone, decided on one reading of the user's state and committed together with
    /// `door` (the door's own rows, such as the SIP publication). N2 is checked against
    /// what the user holds once the released groups are gone. Returns the status of each
    /// group released, then of each group newly asked for; groups already held are left
    /// as they are and not listed.
    pub async fn set_affiliations(
        &self,
        requester: &Requester,
        service: McService,
        groups: &[McServiceGroupId],
        door: Vec<SipStateChange>,
    ) -> Result<Vec<GroupAffiliationStatus>> {
        self.gms
            .limits()
            .list("mc-service-group-id-list", groups.len())?;
        let profile = &requester.profile;
        let user = &requester.mc_service_id;
        let client = &requester.client_id;
        let clients = std::slice::from_ref(client);
        let groups = distinct(groups);
        let n2 = profile
            .services
            .get(&service)
            .map(|p| p.max_affiliations_n2)
            .unwrap_or(0) as usize;
        // Step 2 (and 3 for groups defined here) for each group asked for, once.
        let mut refusals: BTreeMap<McServiceGroupId, Option<AffiliationCause>> = BTreeMap::new();
        let guard = self.user_locks.lock(user).await;
        for _ in 0..16 {
            let state = self.store.user_affiliations(user).await?;
            let generation = state.generation + 1;
            let held: BTreeSet<&McServiceGroupId> = state
                .rows
                .iter()
                .filter(|r| r.mc_service == service && &r.client == client)
                .map(|r| &r.group)
                .collect();
            let gone: Vec<McServiceGroupId> = held
                .iter()
                .filter(|g| !groups.contains(g))
                .map(|g| (*g).clone())
                .collect();
            let new: Vec<McServiceGroupId> = groups
                .iter()
                .filter(|g| !held.contains(g))
                .cloned()
                .collect();
            for group in &new {
                if !refusals.contains_key(group) {
                    let cause = self.affiliation_refusal(profile, service, group).await?;
                    refusals.insert(group.clone(), cause);
                }
            }
            let mut decided: BTreeMap<McServiceGroupId, GroupAffiliationStatus> = new
                .iter()
                .filter_map(|g| {
                    refusals
                        .get(g)
                        .cloned()
                        .flatten()
                        .map(|cause| (g.clone(), refused(g, cause)))
                })
                .collect();
            let candidates: Vec<_> = new
                .iter()
                .filter(|g| !decided.contains_key(*g))
                .cloned()
                .collect();

            // The release, and on what remains of the user's state, the affiliation.
            let (mut effects, mut statuses, _) = self.release(
                user,
                clients,
                service,
                &gone,
                &state.rows,
                Some((Via::Own, generation)),
            );
            let remaining = UserAffiliationState {
                generation: state.generation,
                rows: state
                    .rows
                    .iter()
                    .filter(|r| {
                        !(r.mc_service == service && &r.client == client && gone.contains(&r.group))
                    })
                    .cloned()
                    .collect(),
            };
            let plan = plan_affiliation(
                &self.system,
                user,
                &remaining,
                clients,
                service,
                &candidates,
                n2,
            );
            self.plan_into(user, service, Via::Own, generation, &plan, &mut effects);
            effects.door = door.clone();
            let Some(waits) = self
                .commit_plan(user, service, &state, &plan, &mut effects)
                .await?
            else {
                continue;
            };
            drop(guard);
            decided.extend(plan.outcome);
            if !gone.is_empty() {
                // A client no longer affiliated to any regrouped group leaves the regroup.
                self.leave_regroups(user, clients, true).await?;
            }
            super::serving::count_answers("deaffiliate", &statuses);
            if !new.is_empty() {
                let asked = self
                    .settle_affiliation(
                        profile,
                        clients,
                        service,
                        &new,
                        Via::Own,
                        super::serving::Asked {
                            decided,
                            pending: plan.pending,
                            waits,
                        },
                    )
                    .await?;
                super::serving::count_answers("affiliate", &asked);
                statuses.extend(asked);
            }
            return Ok(statuses);
        }
        Err(kept_changing(user))
    }
}
