//! [`crc32_ieee`]: the checksum of FORMAT.md computed without any flashlog code
//! (nor `crc32fast`), for tests that check bytes against the format itself.

/// CRC-32/IEEE (reflected polynomial 0xEDB88320), bit by bit: Go's
/// `crc32.ChecksumIEEE`. Slow, and independent of the library's codec.
///
/// ```
/// assert_eq!(flashlog_testkit::crc32_ieee(b"123456789"), 0xCBF4_3926);
/// ```
pub fn crc32_ieee(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
