//! Measuring and proving the core: the benchmark driver, the heap-allocation counter and the
//! invariants shared by the fuzz targets and the property tests.

pub mod alloc;
pub mod bench;
pub mod fuzzing;
