//! Group key material generation. The GMS of a group's primary system generates a new
//! group master key (GMK) when the group is created and at every rekey; mcx treats the
//! key as opaque bytes and only moves it to those entitled to it.

use base64::Engine as _;
use mcx_model::group::GroupKeyMaterial;
use time::OffsetDateTime;

use crate::ports::Entropy;

/// A fresh 256-bit GMK with a random GMK-ID.
pub fn generate_key_material(
    generation: u32,
    now: OffsetDateTime,
    entropy: &dyn Entropy,
) -> GroupKeyMaterial {
    let mut key = [0u8; 32];
    entropy.fill(&mut key);
    let mut id = [0u8; 4];
    entropy.fill(&mut id);
    GroupKeyMaterial {
        generation,
        gmk_id: format!("{:08x}", u32::from_le_bytes(id)),
        gmk: base64::engine::general_purpose::STANDARD.encode(key),
        generated_at: now,
    }
}
