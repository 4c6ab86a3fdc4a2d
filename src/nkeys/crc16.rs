//! CRC-16/XMODEM (polynomial 0x1021, initial value 0), the checksum of
//! nkeys' text form.

/// The checksum of `bytes`.
pub(super) fn checksum(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    #[test]
    fn xmodem_check_value() {
        // The catalogue's check value: CRC-16/XMODEM of "123456789".
        assert_eq!(super::checksum(b"123456789"), 0x31C3);
        assert_eq!(super::checksum(b""), 0);
    }
}
