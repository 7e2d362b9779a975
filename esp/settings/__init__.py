"""Settings package: `base` is what runs everywhere; `test` only speeds up the test suite."""
