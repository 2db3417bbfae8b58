#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pneumoscope::fuzzing::decode_bytes(data));
