use super::*;

const HELLO: [u8; 8] = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B];

#[test]
fn rfc32_vector_encodes() {
    assert_eq!(encode(&HELLO).unwrap(), "HelloWorld");
}

#[test]
fn rfc32_vector_decodes() {
    assert_eq!(decode("HelloWorld").unwrap(), HELLO);
}

#[test]
fn libzmq_test_key_pair_round_trips() {
    // The key pair from libzmq's tests (testutil_security: valid_client_public
    // and its secret); checks the alphabet end to end on real keys.
    for text in [
        "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID",
        "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs",
    ] {
        let key = decode_key(text).unwrap();
        assert_eq!(encode_key(&key), text);
    }
}

#[test]
fn all_byte_values_round_trip() {
    let data: Vec<u8> = (0..=255u8).collect();
    let text = encode(&data).unwrap();
    assert_eq!(text.len(), 320);
    assert_eq!(decode(&text).unwrap(), data);
    let max = [0xFF; 4];
    assert_eq!(encode(&max).unwrap(), "%nSc0");
    assert_eq!(encode(&[0; 4]).unwrap(), "00000");
}

#[test]
fn bad_lengths_are_refused() {
    assert_eq!(encode(&[1, 2, 3]), Err(Z85Error::BinaryLength(3)));
    assert_eq!(decode("Hell"), Err(Z85Error::TextLength(4)));
    assert_eq!(decode_key("HelloWorld"), Err(Z85Error::TextLength(10)));
    assert_eq!(decode(""), Ok(Vec::new()));
}

#[test]
fn bad_characters_are_refused() {
    assert_eq!(decode("Hello Worl"), Err(Z85Error::InvalidChar(5)));
    assert_eq!(decode("Hell\"World"), Err(Z85Error::InvalidChar(4)));
    assert_eq!(decode("héllo"), Err(Z85Error::TextLength(6)));
    assert_eq!(decode("héll"), Err(Z85Error::InvalidChar(1)));
}

#[test]
fn overflowing_group_is_refused() {
    // "%nSc0" is 0xFFFFFFFF; "%nSc1" is one more.
    assert_eq!(decode("%nSc0").unwrap(), [0xFF; 4]);
    assert_eq!(decode("00000%nSc1"), Err(Z85Error::Overflow(5)));
    assert_eq!(decode("#####"), Err(Z85Error::Overflow(0)));
}
