//! Group key material generation. The GMS of a group's primary system generates a new
//! group master key (GMK) when the group is created and at every rekey; mcx treats the
//! key as opaque bytes and only moves it to those entitled to it.

use base64::Engine as _;
use mcx_model::group::GroupKeyMaterial;
use rand::RngCore as _;
use time::OffsetDateTime;

/// A fresh 256-bit GMK with a random GMK-ID.
pub fn generate_key_material(generation: u32, now: OffsetDateTime) -> GroupKeyMaterial {
    let mut rng = rand::rng();
    let mut key = [0u8; 32];
    rng.fill_bytes(&mut key);
    GroupKeyMaterial {
        generation,
        gmk_id: format!("{:08x}", rng.next_u32()),
        gmk: base64::engine::general_purpose::STANDARD.encode(key),
        generated_at: now,
    }
}
