#![no_main]
//! See airlock::fuzz_targets::manifest for what this target checks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| airlock::fuzz_targets::manifest(data));
