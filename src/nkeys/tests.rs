//! Vectors made with the `nkeys` package from PyPI (0.2.1), not with this
//! code: the seed of the 32 bytes 0..=31 for each type, its public key,
//! and its signature of `nonce-0123456789`.

use super::*;

const MESSAGE: &[u8] = b"nonce-0123456789";
const SIGNATURE: &str = "qgU0JwqSAeySQ-jDQqSGQmvdvJasPD2g_Lo_M0UK4LDll9YfL-1OuurnjzdvyEbOf1wlY5H_Y_3t-7DJBn34AQ";
const VECTORS: &[(KeyType, &str, &str)] = &[
    (
        KeyType::User,
        "SUAAAAICAMCAKBQHBAEQUCYMBUHA6EARCIJRIFIWC4MBSGQ3DQOR4H776Y",
        "UAB2CB576PHBBPQ5ODORRZ2LYCMWPZGWGCN2KDK7DXOIMZASKUY3RLKK",
    ),
    (
        KeyType::Account,
        "SAAAAAICAMCAKBQHBAEQUCYMBUHA6EARCIJRIFIWC4MBSGQ3DQOR4HYMHI",
        "AAB2CB576PHBBPQ5ODORRZ2LYCMWPZGWGCN2KDK7DXOIMZASKUY3QPZV",
    ),
    (
        KeyType::Server,
        "SNAAAAICAMCAKBQHBAEQUCYMBUHA6EARCIJRIFIWC4MBSGQ3DQOR4H2D5U",
        "NAB2CB576PHBBPQ5ODORRZ2LYCMWPZGWGCN2KDK7DXOIMZASKUY3RSWB",
    ),
    (
        KeyType::Operator,
        "SOAAAAICAMCAKBQHBAEQUCYMBUHA6EARCIJRIFIWC4MBSGQ3DQOR4H2AJA",
        "OAB2CB576PHBBPQ5ODORRZ2LYCMWPZGWGCN2KDK7DXOIMZASKUY3QZVT",
    ),
];

#[test]
fn seeds_public_keys_and_signatures_match_the_reference_library() {
    let signature = decode_signature(SIGNATURE).unwrap();
    for (kind, seed, public) in VECTORS {
        let pair = KeyPair::from_seed(seed).unwrap();
        assert_eq!(pair.public().as_str(), *public, "{kind}");
        assert_eq!(pair.public().kind(), *kind);
        assert_eq!(pair.seed().expose(), *seed, "the seed encodes back to the same text");
        assert_eq!(pair.sign(MESSAGE).to_vec(), signature, "{kind}: ring signs as the reference does");
        let key = PublicKey::parse_as(public, *kind).unwrap();
        assert!(key.verify(MESSAGE, &signature));
        assert!(!key.verify(b"another nonce", &signature));
    }
}

#[test]
fn bad_keys_are_refused_with_the_reason() {
    let (_, seed, public) = VECTORS[0];
    let mut flipped = public.to_string();
    flipped.replace_range(10..11, if &public[10..11] == "A" { "B" } else { "A" });
    assert_eq!(PublicKey::parse(&flipped), Err(NkeyError::Checksum));
    assert_eq!(PublicKey::parse(&public[..55]), Err(NkeyError::Encoding));
    assert_eq!(PublicKey::parse("not a key"), Err(NkeyError::Encoding));
    assert!(matches!(PublicKey::parse_as(public, KeyType::Account), Err(NkeyError::WrongType { .. })));
    assert!(matches!(PublicKey::parse(seed), Err(NkeyError::WrongType { .. })), "a seed is not a public key");
    assert!(matches!(KeyPair::from_seed(public), Err(NkeyError::WrongType { .. })), "a public key is not a seed");
    assert!(!format!("{:?}", KeyPair::from_seed(seed).unwrap()).contains(seed), "Debug never shows the seed");
}

#[test]
fn generated_keys_round_trip_and_nonces_are_fresh() {
    let pair = KeyPair::generate(KeyType::Server).unwrap();
    assert!(pair.public().as_str().starts_with('N') && pair.public().as_str().len() == 56);
    let again = KeyPair::from_seed(pair.seed().expose()).unwrap();
    assert_eq!(again.public(), pair.public());
    let sig = pair.sign(b"x");
    assert!(again.public().verify(b"x", &sig));
    let (a, b) = (new_nonce(), new_nonce());
    assert_eq!(a.len(), 15);
    assert_ne!(a, b);
    use base64::Engine;
    let standard = base64::engine::general_purpose::STANDARD.encode(sig);
    assert_eq!(decode_signature(&standard).as_deref(), Some(&sig[..]), "standard base64 is accepted too");
    assert_eq!(decode_signature("c2hvcnQ"), None, "a signature is 64 bytes");
}
