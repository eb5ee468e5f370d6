//! A quick pass of pseudo-random inputs through the storage targets' logic, without libFuzzer:
//! `cargo test` in this directory. Not a substitute for fuzzing; it shows the oracles hold on
//! ordinary runs.

fn inputs(seed: u64, count: usize, len: usize) -> Vec<Vec<u8>> {
    let mut x = seed;
    (0..count)
        .map(|_| {
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        })
        .collect()
}

#[test]
fn wal_ops_runs_hold() {
    for input in inputs(0x9e37_79b9_7f4a_7c15, 300, 600) {
        dlm_fuzz::wal_ops::run(&input);
    }
}

#[test]
fn wal_raw_runs_hold_with_preallocated_framed_segments() {
    for mut input in inputs(0x2545_f491_4f6c_dd1d, 2000, 300) {
        // Framed, preallocated, one to three segments, hard state and snapshot as they come.
        input[0] = (input[0] & 0b1111) | 0b11_0000;
        dlm_fuzz::wal_raw::run(&input);
    }
}
