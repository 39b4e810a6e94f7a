#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    wildbot::fuzzing::frames(data);
});
