//! cmirrord as a library: the daemon's state and request handlers, free of I/O where possible, so that
//! tests, benchmarks and fuzz targets drive the same code as the binary. SKELETON, being written.
