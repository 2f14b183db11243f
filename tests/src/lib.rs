//! Test harness: writes Iggy 0.6 data directories of any shape and injects faults.
