"""What the benchmark scripts share; nothing here is a benchmark of its own."""
