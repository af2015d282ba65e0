"""Property: whatever the input, the loader returns a Config or raises its own
ConfigError whose every problem names a path. Nothing else ever escapes."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maglev.config import Config, ConfigError, load_config

from .helpers import EXAMPLE, MINIMAL

SETTINGS = settings(derandomize=True, deadline=None, max_examples=400, suppress_health_check=[HealthCheck.too_slow])
SEEDS: list[Any] = [yaml.safe_load(MINIMAL), yaml.safe_load(EXAMPLE.read_text())]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        ["2s", "500ms", "1m", "0", "-1s", "1e9h", "192.0.2.1", "::1", "any", "gre6", "http", "icmp", "/x", "(", ""]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=8,
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, prefix + (i,))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> str:
    doc = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        candidates = paths(doc)[1:]
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        parent: Any = doc
        for k in path[:-1]:
            parent = parent[k]
        key = path[-1]
        action = draw(st.sampled_from(["drop", "replace", "rename", "duplicate"]))
        if action == "drop":
            del parent[key]
        elif action == "replace":
            parent[key] = draw(values)
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = parent.pop(key)
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
    return yaml.safe_dump(doc, sort_keys=False)


def outcome(text: str) -> None:
    try:
        cfg = load_config(text)
    except ConfigError as e:
        assert e.problems
        for p in e.problems:
            assert p.path and p.message, p
        return
    assert isinstance(cfg, Config)


@SETTINGS
@given(mutated())
def test_mutated_configs_only_raise_config_error(text: str) -> None:
    outcome(text)


@SETTINGS
@given(st.text(max_size=300))
def test_random_text_only_raises_config_error(text: str) -> None:
    outcome(text)


@SETTINGS
@given(st.text(alphabet=st.sampled_from(list("maglev:{}[]-&*!|>#'\"\n 0123456789.,?")), max_size=200))
def test_yaml_punctuation_only_raises_config_error(text: str) -> None:
    outcome(text)
