#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pneumoscope::fuzzing::keras_model(data));
