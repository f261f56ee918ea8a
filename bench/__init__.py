"""The benchmark harness behind ``switchyard bench``: side-by-side ratios on one broker, never timing asserts."""
