//! The GMS's part of a preconfigured regroup (TS 23.280 §10.15.3.3.1): the regroup group
//! takes the configuration and security parameters of the preconfigured group and is
//! shared with the partner GMSs involved through the §10.2.7 procedures, so partner users
//! get it from their own GMS; each regrouped group defined here records the regroup in
//! its configuration, which every subscriber (MC service servers, clients, partner GMSs)
//! is notified of. Used by the MC service server; no administrator is involved.

use std::sync::Arc;

use mcx_model::group::{GroupOrigin, GroupRecord, OnNetworkRegrouped};
use mcx_model::interconnection::Capability;
use mcx_model::{McServiceGroupId, SystemDomain};

use super::{GroupConfigurationNotification, GroupManagementServer, not_found};
use crate::error::{Error, ErrorKind, Result, codes};
use crate::ports::{Effects, PartnerRecordChange, PartnerRecordUpdate, WriteOutcome};

impl GroupManagementServer {
    /// Defines the regroup group from the preconfigured group and provides it, with the
    /// preconfigured group's key material, to `partners`.
    pub(crate) async fn create_regroup_group(
        &self,
        regroup: &McServiceGroupId,
        preconfigured: &GroupRecord,
        constituents: &[McServiceGroupId],
        partners: &[SystemDomain],
    ) -> Result<GroupRecord> {
        let mut configuration = preconfigured.configuration.clone();
        // TS 24.379 §16.1: everything is taken but preconfigured-group-use-only.
        configuration.preconfigured_group_use_only = false;
        configuration.regrouped_into = None;
        configuration.on_network_regrouped = Some(OnNetworkRegrouped {
            constituent_group_ids: constituents.to_vec(),
            preconfigured_group_id: preconfigured.mc_service_group_id.clone(),
        });
        let now = self.clock.now();
        let record = GroupRecord {
            mc_service_group_id: regroup.clone(),
            configuration,
            key_material: preconfigured.key_material.clone(),
            version: 1,
            origin: GroupOrigin::Local,
            updated_at: now,
        };
        let mut effects = Effects::none();
        for partner in partners {
            // Every partner taking part may obtain it; those this system may push to get
            // it at once (§10.2.7.2), the others ask for it (§10.2.7.3).
            effects.gms.partner_records.push(PartnerRecordUpdate::One {
                partner: partner.clone(),
                group: regroup.clone(),
                change: PartnerRecordChange::Shared,
            });
            if self
                .partners
                .may_send(partner, Capability::ProvideGroupConfiguration)
            {
                self.provide(&record, partner, &mut effects);
            }
        }
        match self.store.insert_group(&record, &effects).await? {
            WriteOutcome::Done(committed) => {
                self.after_commit(
                    &committed,
                    Some(GroupConfigurationNotification::Changed(Arc::new(
                        record.clone(),
                    ))),
                );
                tracing::info!(group = %regroup, "regroup group defined");
                Ok(record)
            }
            _ => Err(Error::refused(
                ErrorKind::Conflict,
                codes::GROUP_EXISTS,
                format!("group '{regroup}' exists already"),
            )),
        }
    }

    /// Records in a group defined here that it is regrouped into `regroup` (`on`), or
    /// that it no longer is (only if it was `regroup`'s: another regroup's mark stays). A
    /// new version, notified to every subscriber.
    pub(crate) async fn set_regrouped(
        &self,
        group: &McServiceGroupId,
        regroup: &McServiceGroupId,
        on: bool,
    ) -> Result<()> {
        for _ in 0..8 {
            let Some(current) = self.store.group(group).await? else {
                // Released by a regroup whose group is gone: nothing to clear.
                return if on { Err(not_found(group)) } else { Ok(()) };
            };
            let marked = current.configuration.regrouped_into.as_ref();
            if (marked == Some(regroup)) == on {
                return Ok(());
            }
            let next = on.then(|| regroup.clone());
            let mut record = current.clone();
            record.configuration.regrouped_into = next;
            record.version += 1;
            record.updated_at = self.clock.now();
            match self.replace(&record, &current, false).await {
                Ok(()) => return Ok(()),
                Err(Error::Refused { code, .. }) if code == codes::VERSION_MISMATCH => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::refused(
            ErrorKind::Unavailable,
            codes::STORAGE_FAILURE,
            format!("group '{group}' kept changing while recording its regroup"),
        ))
    }

    /// Deletes the regroup group; partners it was shared with are told.
    pub(crate) async fn delete_regroup_group(&self, regroup: &McServiceGroupId) -> Result<()> {
        let Some(current) = self.store.group(regroup).await? else {
            return Ok(());
        };
        if current.configuration.on_network_regrouped.is_none() {
            return Ok(());
        }
        self.delete_local(regroup, current.version).await
    }
}
