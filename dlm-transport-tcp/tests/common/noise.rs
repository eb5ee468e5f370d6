//! Garbage for bad-input tests, the same on every run.

/// Bytes from a fixed-seed xorshift generator: the same "random" garbage on every run.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
