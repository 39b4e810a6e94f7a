#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wildbot::fuzzing::consistent_book(data);
});
