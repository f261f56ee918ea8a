"""Hostile raw records for every domain, and the verdict the pure rules owe each of them.

A hostile record starts from a valid document of its domain (a seed sample or a generator's document) and is
broken in one of the ways upstream systems and attackers break things: truncated JSON, invalid UTF-8, huge
bodies, deep nesting, wrong types, numbers as strings, huge arrays, NaN and infinities, duplicate keys, missing
or garbage headers, random bytes. Some records stay valid and are only re-keyed, so good records travel
interleaved with the bad. Hypothesis draws only small integers (which seed, which mutation, a seed for the
mutation's own ``random.Random``) plus the odd JSON value, so a batch of a hundred records stays within its
budget and a failure still shrinks to one record and reproduces byte for byte.

:func:`verdict` runs a record through ``RULES.process``, ``route``, the JSON encoding every emit gets, and the
folds of the tables fed by those emits, exactly as the worker would, and names what happened: accepted, a
dead-letter code, or a crash (anything that is not a :class:`RecordError`, and the ``INTERNAL-ERROR`` the runtime
would turn it into).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import strategies as st

from app.core.catalog import catalog_of
from app.core.domain import Domain, domains
from app.core.engine import encode_value
from app.core.errors import RecordError
from app.core.records import EVENT_TYPE_HEADER, DomainRules, RawRecord
from app.settings import Settings

#: Every catalog domain (``SWITCHYARD_EXTRA_CATALOGS`` adds test-only ones), by name.
CATALOG_DOMAINS: dict[str, Domain] = {d.name: d for d in domains(catalog_of(Settings()))}
DOMAINS: dict[str, DomainRules] = {name: d.rules for name, d in CATALOG_DOMAINS.items()}
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
STABLE_CODE = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")
INTERNAL = "INTERNAL-ERROR"
ACCEPTED = "accepted"

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class Seed:
    event_type: str | None
    doc: dict[str, Any]


@dataclass(frozen=True)
class Hostile:
    """One record to throw at a domain, and which mutation made it (for reports and shrunk failures)."""

    domain: str
    mutation: str
    value: bytes | None
    key: bytes | None
    headers: Headers
    #: the draw that rebuilds this record: ``build(domain, *recipe)``
    recipe: tuple[Any, ...] = ()

    def raw(self, topic: str = "", offset: int = 0) -> RawRecord:
        return RawRecord(self.value, self.key, self.headers, topic or f"{self.domain}.raw", 0, offset)


def _seed_docs(domain: Domain, rng: random.Random) -> list[Seed]:
    """The domain's seed samples, then the valid documents of its traffic source."""
    samples = [Seed(s.event_type, orjson.loads(s.value)) for s in domain.samples()]
    made = [Seed(t, d) for t, d in domain.traffic_source().documents(rng)] if domain.traffic else []
    return samples + made


_SEEDS: dict[str, list[Seed]] = {
    name: _seed_docs(d, random.Random(f"hostile-{name}")) for name, d in CATALOG_DOMAINS.items()
}


def seeds(domain: str) -> list[Seed]:
    return _SEEDS[domain]


# ---- raw JSON text with holes --------------------------------------------------------------------------------
HOLE = "\x00hostile-hole\x00"


def _paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every node's path (the root excluded), in document order."""
    out: list[tuple[Any, ...]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        out.append((*at, k))
        out.extend(_paths(v, (*at, k)))
    return out


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        return {k: (_replace(v, rest, value) if k == head else v) for k, v in doc.items()}
    return [_replace(v, rest, value) if i == head else v for i, v in enumerate(doc)]


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _with_text(doc: Any, path: tuple[Any, ...], text: bytes) -> bytes:
    """``doc`` serialised with the node at ``path`` replaced by raw JSON ``text`` (which may be invalid JSON,
    deeper than any encoder allows, or a duplicate key's worth of pairs)."""
    return orjson.dumps(_replace(doc, path, HOLE)).replace(orjson.dumps(HOLE), text, 1)


def _pick(rng: random.Random, doc: dict[str, Any]) -> tuple[Any, ...]:
    paths = _paths(doc)
    return rng.choice(paths) if paths else ()


def _leaf_paths(doc: Any, kinds: tuple[type, ...]) -> list[tuple[Any, ...]]:
    return [p for p in _paths(doc) if isinstance(_get(doc, p), kinds) and not isinstance(_get(doc, p), bool)]


# ---- mutations: (rng, seed, a JSON value from hypothesis) -> (value bytes, headers override or None) --------
Mutation = Callable[[random.Random, Seed, Any], bytes | None]


def _valid(rng: random.Random, seed: Seed, _: Any) -> bytes:
    return orjson.dumps(seed.doc)


def _truncated(rng: random.Random, seed: Seed, _: Any) -> bytes:
    body = orjson.dumps(seed.doc)
    return body[: rng.randrange(0, len(body))]


def _invalid_utf8(rng: random.Random, seed: Seed, _: Any) -> bytes:
    body = orjson.dumps(seed.doc)
    junk = rng.choice([b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"])
    strings = [m.start() + 1 for m in re.finditer(rb'"[^"\\]', body)]
    at = rng.choice(strings) if strings and rng.random() < 0.8 else rng.randrange(len(body) + 1)
    return body[:at] + junk + body[at:]


def _huge_string(rng: random.Random, seed: Seed, _: Any) -> bytes:
    strings = _leaf_paths(seed.doc, (str,))
    size = rng.choice([70_000, 300_000, 1_100_000])
    where = rng.choice(strings) if strings else ("padding",)
    return orjson.dumps(
        _replace(seed.doc, where, "x" * size) if strings else {**seed.doc, "padding": "x" * size}
    )


def _deep(rng: random.Random, seed: Seed, _: Any) -> bytes:
    depth = rng.choice([40, 200, 1000, 1100, 5000])
    opener, closer = (b"[", b"]") if rng.random() < 0.5 else (b'{"a":', b"}")
    return _with_text(seed.doc, _pick(rng, seed.doc), opener * depth + b"1" + closer * depth)


def _wrong_type(rng: random.Random, seed: Seed, value: Any) -> bytes:
    return orjson.dumps(_replace(seed.doc, _pick(rng, seed.doc), value))


def _every_node_wrong(rng: random.Random, seed: Seed, value: Any) -> bytes:
    """Wrong types everywhere: each scalar swapped for a value of another JSON type."""
    swap: dict[type, list[Any]] = {
        str: [1, True, None, [], {}],
        int: ["1", True, 1.5, None, []],
        float: ["1.5", False, None, {}],
        bool: ["true", 1, None],
        type(None): ["", 0, False, []],
    }

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return rng.choice(swap.get(type(node), [value]))

    return orjson.dumps(walk(seed.doc))


def _numbers_as_strings(rng: random.Random, seed: Seed, _: Any) -> bytes:
    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, (int, float)) and not isinstance(node, bool):
            return str(node)
        return node

    return orjson.dumps(walk(seed.doc))


def _huge_array(rng: random.Random, seed: Seed, value: Any) -> bytes:
    lists = _leaf_paths(seed.doc, (list,))
    where = rng.choice(lists) if lists and rng.random() < 0.7 else _pick(rng, seed.doc)
    current = _get(seed.doc, where) if where else None
    item = current[0] if isinstance(current, list) and current else value
    return orjson.dumps(_replace(seed.doc, where, [item] * rng.choice([1_000, 5_000, 20_000])))


def _non_finite(rng: random.Random, seed: Seed, _: Any) -> bytes:
    numbers = _leaf_paths(seed.doc, (int, float))
    where = rng.choice(numbers) if numbers and rng.random() < 0.7 else _pick(rng, seed.doc)
    token = rng.choice([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"nan", b"inf"])
    return _with_text(seed.doc, where, token)


def _odd_numbers(rng: random.Random, seed: Seed, _: Any) -> bytes:
    numbers = _leaf_paths(seed.doc, (int, float))
    where = rng.choice(numbers) if numbers and rng.random() < 0.8 else _pick(rng, seed.doc)
    token = rng.choice(
        [
            b"1e23",
            b"18446744073709551615",
            b"-9223372036854775809",
            b"123456789012345678901234567890",
            b"-0",
            b"1e-400",
            b"0.1e1",
            b"1E2",
            b"2.0",
            b"-1",
            b"9007199254740993",
        ]
    )
    return _with_text(seed.doc, where, token)


def _duplicate_keys(rng: random.Random, seed: Seed, value: Any) -> bytes:
    objects = [p for p in _paths(seed.doc) if isinstance(_get(seed.doc, p), dict) and _get(seed.doc, p)]
    where = rng.choice(objects) if objects and rng.random() < 0.5 else ()
    node = _get(seed.doc, where)
    key = rng.choice(list(node))
    again = node[key] if rng.random() < 0.3 else value
    pairs = b",".join(orjson.dumps(k) + b":" + orjson.dumps(v) for k, v in node.items())
    extra = orjson.dumps(key) + b":" + orjson.dumps(again)
    text = b"{" + (extra + b"," + pairs if rng.random() < 0.5 else pairs + b"," + extra) + b"}"
    return text if not where else _with_text(seed.doc, where, text)


def _dropped_or_extra(rng: random.Random, seed: Seed, value: Any) -> bytes:
    where = _pick(rng, seed.doc)
    if not where:
        return orjson.dumps(seed.doc)
    parent = _get(seed.doc, where[:-1])
    if rng.random() < 0.5 and isinstance(parent, dict):
        return orjson.dumps(
            _replace(seed.doc, where[:-1], {k: v for k, v in parent.items() if k != where[-1]})
        )
    if isinstance(parent, dict):
        return orjson.dumps(_replace(seed.doc, where[:-1], {**parent, "unexpectedField": value}))
    return orjson.dumps(_replace(seed.doc, where[:-1], [*parent, value]))


def _odd_strings(rng: random.Random, seed: Seed, _: Any) -> bytes:
    strings = _leaf_paths(seed.doc, (str,))
    if not strings:
        return orjson.dumps(seed.doc)
    text = rng.choice(
        [
            "",
            " ",
            "\u0000",
            "\n\t",
            "\u202e",
            "😀" * 300,
            "a" * 256,
            "-" * 5000,
            "../../etc/passwd",
            "2025-02-30T25:61:00Z",
            "1e400",
            "NaN",
            "null",
            "\ufffd",
            "<script>",
        ]
    )
    if rng.random() < 0.2:
        return _with_text(seed.doc, rng.choice(strings), rb'"\ud800"')
    return orjson.dumps(_replace(seed.doc, rng.choice(strings), text))


def _not_an_object(rng: random.Random, seed: Seed, value: Any) -> bytes:
    return rng.choice(
        [orjson.dumps([seed.doc]), orjson.dumps(value), b"null", b"  ", b"\xef\xbb\xbf{}", b"{}"]
    )


def _random_bytes(rng: random.Random, seed: Seed, _: Any) -> bytes | None:
    if rng.random() < 0.1:
        return None  # a tombstone on a raw topic
    return rng.randbytes(rng.randrange(0, 200))


MUTATIONS: dict[str, Mutation] = {
    "valid": _valid,
    "truncated": _truncated,
    "invalid-utf8": _invalid_utf8,
    "huge-string": _huge_string,
    "deep-nesting": _deep,
    "wrong-type": _wrong_type,
    "wrong-types-everywhere": _every_node_wrong,
    "numbers-as-strings": _numbers_as_strings,
    "huge-array": _huge_array,
    "nan-infinity": _non_finite,
    "odd-numbers": _odd_numbers,
    "duplicate-keys": _duplicate_keys,
    "dropped-or-extra-field": _dropped_or_extra,
    "odd-strings": _odd_strings,
    "not-an-object": _not_an_object,
    "random-bytes": _random_bytes,
}
#: Big bodies cost time in every parser; they are drawn less often than the cheap breaks.
_BIG = {"huge-string", "huge-array"}


def _headers(rng: random.Random, domain: str, seed: Seed) -> tuple[str, Headers]:
    """The headers a record travels with: mostly right, sometimes missing, garbage or contradictory."""
    right: Headers = ((EVENT_TYPE_HEADER, seed.event_type.encode()),) if seed.event_type else ()
    roll = rng.random()
    if roll < 0.75:
        return "", right
    others = DOMAINS[domain].event_types
    choices: list[tuple[str, Headers]] = [
        ("headers-missing", ()),
        ("header-garbage", ((EVENT_TYPE_HEADER, rng.randbytes(rng.randrange(1, 40))),)),
        ("header-empty", ((EVENT_TYPE_HEADER, b""),)),
        ("header-invalid-utf8", ((EVENT_TYPE_HEADER, b"\xff\xfe" + (seed.event_type or "x").encode()),)),
        ("header-twice", (*right, (EVENT_TYPE_HEADER, rng.choice([*others, "nope"]).encode()))),
        ("header-other-type", ((EVENT_TYPE_HEADER, rng.choice([*others, "x"]).encode()),)),
        ("header-junk-extra", (*right, ("\x00junk", rng.randbytes(30)), ("", b""))),
        ("header-huge", (*right, ("big", b"h" * 100_000))),
    ]
    return choices[rng.randrange(len(choices))]


def _key(rng: random.Random, domain: str, value: bytes | None) -> bytes | None:
    roll = rng.random()
    if roll < 0.1:
        return None
    if roll < 0.2:
        return rng.randbytes(rng.randrange(1, 30))
    return DOMAINS[domain].key_of(value, None) if value else None


def build(domain: str, seed_index: int, mutation: str, salt: int, value: Any) -> Hostile:
    rng = random.Random(salt)
    seed = seeds(domain)[seed_index % len(seeds(domain))]
    body = MUTATIONS[mutation](rng, seed, value)
    header_label, headers = _headers(rng, domain, seed)
    label = f"{mutation}+{header_label}" if header_label else mutation
    return Hostile(domain, label, body, _key(rng, domain, body), headers, (seed_index, mutation, salt, value))


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=3,
)
_CHEAP = sorted(m for m in MUTATIONS if m not in _BIG)


def mutation_names(big_share: float) -> st.SearchStrategy[str]:
    """Cheap mutations uniformly; the big-body ones with probability about ``big_share``."""
    return st.integers(0, 999).flatmap(
        lambda roll: st.sampled_from(sorted(_BIG)) if roll < big_share * 1000 else st.sampled_from(_CHEAP)
    )


def hostile_records(domain: str, *, big_share: float = 0.005) -> st.SearchStrategy[Hostile]:
    return st.builds(
        build,
        st.just(domain),
        st.integers(0, 10_000),
        mutation_names(big_share),
        st.integers(0, 2**32),
        JSON_VALUES,
    )


# ---- the verdict ------------------------------------------------------------------------------------------------
@dataclass
class Verdict:
    outcome: str  # ACCEPTED, a dead-letter code, or INTERNAL-ERROR
    crash: str = ""  # the unexpected exception's type and where, when the outcome is INTERNAL-ERROR
    table_outcomes: list[str] = field(default_factory=list)


def verdict(domain: str, record: Hostile, now: datetime = NOW) -> Verdict:
    """What the worker's stage one and table folds would do with ``record`` (see the module docstring)."""
    rules = DOMAINS[domain]
    try:
        processed = rules.process(record.raw(), now)
    except RecordError as err:
        return Verdict(err.code)
    except Exception as exc:  # the bug this suite hunts
        return Verdict(INTERNAL, f"process: {type(exc).__name__}: {str(exc)[:200]}")
    try:
        emits = list(rules.route(processed, now))
    except RecordError as err:
        return Verdict(err.code)
    except Exception as exc:
        return Verdict(INTERNAL, f"route: {type(exc).__name__}: {str(exc)[:200]}")
    folds = {t.source_topic: t for t in rules.tables}
    result = Verdict(ACCEPTED)
    pending = list(emits)
    while pending:
        e = pending.pop(0)
        try:
            encoded = encode_value(e.value)
        except Exception as exc:  # the runtime encodes outside its error handling: this would stop the agent
            return Verdict(INTERNAL, f"encode {e.topic}: {type(exc).__name__}: {str(exc)[:200]}")
        rule = folds.get(e.topic)
        if rule is None:
            continue
        try:
            folded = rule.fold(None, orjson.loads(encoded) if encoded else None, now)
            if folded.state is not None:
                encode_value(folded.state)
        except RecordError as err:
            result.table_outcomes.append(err.code)
            continue
        except Exception as exc:
            return Verdict(INTERNAL, f"fold {rule.name}: {type(exc).__name__}: {str(exc)[:200]}")
        result.table_outcomes.append(folded.outcome or "applied")
        pending.extend(folded.emits)
    return result
