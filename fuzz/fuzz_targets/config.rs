#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    wildbot::devtools::fuzzing::config_text(data);
});
