//! The agent's checkpoint file: read back or refused as invalid, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(checkpoint) = kubetrail_tail::Checkpoint::parse(text) {
        let again = kubetrail_tail::Checkpoint::parse(&checkpoint.to_json())
            .unwrap_or_else(|e| panic!("a checkpoint's own text is refused: {e}"));
        assert_eq!(again, checkpoint);
    }
});
