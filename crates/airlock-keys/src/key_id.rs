//! The minisign key id of a key that was not made by minisign.

use airlock_bundle::minisign::{blake2b512, KeyId};
use ed25519_dalek::VerifyingKey;

/// A token's or agent's key has no minisign key id of its own (minisign draws one at
/// random when it makes a key), so airlock derives one from the public key alone: the
/// first 8 bytes of BLAKE2b-512 of the 32 public key bytes, stored in that order (as
/// minisign stores its ids, shown as the little-endian u64 in upper-case hex). The same
/// key gives the same id on every machine, every time.
pub fn key_id_of(key: &VerifyingKey) -> KeyId {
    let hash = blake2b512(key.as_bytes());
    let mut id = [0u8; 8];
    id.copy_from_slice(&hash[..8]);
    KeyId(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_id_is_the_first_eight_bytes_of_blake2b_512_of_the_key() {
        // RFC 8032's first test vector's public key.
        let pk: [u8; 32] = [
            0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64,
            0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68,
            0xf7, 0x07, 0x51, 0x1a,
        ];
        let vk = VerifyingKey::from_bytes(&pk).unwrap();
        let id = key_id_of(&vk);
        assert_eq!(id.0, blake2b512(&pk)[..8]);
        assert_eq!(key_id_of(&vk), id, "stable");
    }
}
