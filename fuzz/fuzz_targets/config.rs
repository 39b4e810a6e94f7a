#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    wildbot::app::config::check_arbitrary_text(data);
});
