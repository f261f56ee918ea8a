"""A test-only domain: proves the runtime's dead-letter, dedupe and table paths without any real domain.

Records are JSON objects {"id": str, "n": int}; ``n`` must be >= 0. Accepted records are routed to
``testdomain.out`` and into a per-id counter table fed by ``testdomain.feed``.

It is also the sixth domain that proves the contract: with ``SWITCHYARD_EXTRA_CATALOGS`` naming its
``catalog.yaml`` it joins the real five in the worker, the demo, the bench, the reliability mix, the hostile
fuzzer and the AsyncAPI document, and nothing outside this folder names it.
"""

from app.core.domain import Domain

from .rules import RULES

DOMAIN = Domain(RULES, views=f"{__name__}.views", traffic=f"{__name__}.traffic")
