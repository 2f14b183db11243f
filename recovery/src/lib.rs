//! Iggy 0.6 data directories: read, judge, repair.
