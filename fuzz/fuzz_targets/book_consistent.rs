#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wildbot::devtools::fuzzing::consistent_book(data);
});
