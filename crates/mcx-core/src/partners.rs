//! The partner systems this system is interconnected with, and what each may do.

use std::collections::{BTreeMap, BTreeSet};

use mcx_model::SystemDomain;
use mcx_model::interconnection::{Capability, LocalGroupPolicy};

use crate::error::{Error, ErrorKind, Result, codes};

/// One partner system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerSettings {
    /// Its domain.
    pub domain: SystemDomain,
    /// What it may ask of this system.
    pub inbound: BTreeSet<Capability>,
    /// What this system may ask of it.
    pub outbound: BTreeSet<Capability>,
    /// How this system modifies group configuration received from it.
    pub policy: LocalGroupPolicy,
}

/// The configured partners.
#[derive(Debug, Clone, Default)]
pub struct Partners {
    by_domain: BTreeMap<SystemDomain, PartnerSettings>,
}

impl Partners {
    /// The partners.
    pub fn new(partners: impl IntoIterator<Item = PartnerSettings>) -> Self {
        Self {
            by_domain: partners
                .into_iter()
                .map(|p| (p.domain.clone(), p))
                .collect(),
        }
    }

    /// One partner's settings.
    pub fn get(&self, domain: &SystemDomain) -> Option<&PartnerSettings> {
        self.by_domain.get(domain)
    }

    /// Every partner.
    pub fn all(&self) -> impl Iterator<Item = &PartnerSettings> {
        self.by_domain.values()
    }

    /// Whether this system may send flows of the capability to the partner.
    pub fn may_send(&self, to: &SystemDomain, capability: Capability) -> bool {
        self.get(to)
            .is_some_and(|p| p.outbound.contains(&capability))
    }

    /// Refuses unless the partner may send flows of the capability to this system.
    pub fn check_inbound(
        &self,
        from: &SystemDomain,
        capability: Capability,
    ) -> Result<&PartnerSettings> {
        let partner = self.get(from).ok_or_else(|| {
            Error::refused(
                ErrorKind::Forbidden,
                codes::NOT_A_PARTNER,
                format!("'{from}' is not a partner of this system"),
            )
        })?;
        if partner.inbound.contains(&capability) {
            Ok(partner)
        } else {
            Err(Error::refused(
                ErrorKind::Forbidden,
                codes::PARTNER_NOT_AUTHORIZED,
                format!(
                    "partner '{from}' is not authorised for '{capability}' flows with this system"
                ),
            ))
        }
    }

    /// Refuses unless this system may send flows of the capability to the partner.
    pub fn check_outbound(
        &self,
        to: &SystemDomain,
        capability: Capability,
    ) -> Result<&PartnerSettings> {
        let partner = self.get(to).ok_or_else(|| {
            Error::refused(
                ErrorKind::Invalid,
                codes::NOT_A_PARTNER,
                format!("'{to}' is not a partner of this system"),
            )
        })?;
        if partner.outbound.contains(&capability) {
            Ok(partner)
        } else {
            Err(Error::refused(
                ErrorKind::Forbidden,
                codes::PARTNER_NOT_AUTHORIZED,
                format!("this system is not authorised to send '{capability}' flows to '{to}'"),
            ))
        }
    }
}
