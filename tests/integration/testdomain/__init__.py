"""A test-only domain: proves the runtime's dead-letter, dedupe and table paths without any real domain.

Records are JSON objects {"id": str, "n": int}; ``n`` must be >= 0. Accepted records are routed to
``testdomain.out`` and into a per-id counter table fed by ``testdomain.feed``.
"""
