"""Action rules: which finds a rule acts on, how rules are validated, and webhook signing."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amparo.actions import ActionSpec, Conditions, Rule, matching_rules, sign, verify_signature
from amparo.actions.webhooks import DeliveryPolicy
from amparo.errors import InputError
from amparo.events import MatchedContent, Source
from amparo.matching import PATHS, Match

SHA = "ab" * 32


def find(*matches: Match, kind: str = "api") -> MatchedContent:
    return MatchedContent(sha256=SHA, matches=tuple(matches), source=Source(kind=kind))


def m(bank: str = "known", category: str | None = "A1", st_: str = "pdq", d: int = 10) -> Match:
    return Match(bank=bank, entry_id=1, signal_type=st_, distance=d, category=category)


def rule(conditions: dict[str, object] | None = None, **kw: object) -> Rule:
    data: dict[str, object] = {"name": "r", "actions": [{"type": "review"}], **kw}
    if conditions is not None:
        data["conditions"] = conditions
    return Rule.from_json(data)


def test_a_rule_without_conditions_matches_every_find() -> None:
    r = rule()
    assert r.matches(find(m()))
    assert r.matches(find(m(bank="other", category=None, st_="md5", d=0), kind="scan"))


@pytest.mark.parametrize(
    ("conditions", "hit", "miss"),
    [
        ({"banks": ["known"]}, m(bank="known"), m(bank="other")),
        ({"categories": ["A1", "A2"]}, m(category="A2"), m(category="B1")),
        ({"categories": ["A1"]}, m(category="A1"), m(category=None)),
        ({"signal_types": ["md5"]}, m(st_="md5", d=0), m(st_="pdq")),
        ({"max_distance": 10}, m(d=10), m(d=11)),
        ({"max_distance": 0}, m(st_="sha256", d=0), m(d=1)),
    ],
)
def test_each_match_condition_restricts(
    conditions: dict[str, object], hit: Match, miss: Match
) -> None:
    r = rule(conditions)
    assert r.matches(find(hit))
    assert not r.matches(find(miss))


def found(path: str, transform: str | None = None, variant: str | None = None) -> Match:
    return Match("known", 1, "pdq", 10, "A1", transform=transform, path=path, variant=variant)


def test_paths_condition_acts_only_on_matches_found_those_ways() -> None:
    r = rule({"paths": ["plain", "trimmed"]})
    assert r.conditions.paths == ("plain", "trimmed")
    assert r.matches(find(found("plain"))) and r.matches(find(found("trimmed")))
    assert not r.matches(find(found("dihedral", transform="flipx")))
    assert not r.matches(find(found("variant", variant="crop5-left")))
    # One match found plainly is enough for a find that was also found mirrored.
    assert r.matches(find(found("dihedral", transform="flipx"), found("plain")))
    # With the other conditions: one match must satisfy them all.
    both = rule({"paths": ["dihedral"], "max_distance": 5})
    assert not both.matches(find(found("dihedral", transform="flipx"), m(d=3)))
    assert rule({"paths": list(PATHS)}).matches(find(found("variant", variant="v")))


@pytest.mark.parametrize("bad", [["mirror"], ["plain", "rotated"], [1], "sideways"])
def test_an_unknown_path_is_refused_naming_the_field_and_the_ways(bad: object) -> None:
    with pytest.raises(InputError) as info:
        rule({"paths": bad})
    text = info.value.message + " " + (info.value.hint or "")
    assert "paths" in text
    if bad != [1]:
        assert all(p in text for p in PATHS), text


def test_source_kind_condition() -> None:
    r = rule({"source_kinds": ["scan"]})
    assert r.matches(find(m(), kind="scan"))
    assert not r.matches(find(m(), kind="api"))


def test_one_match_must_satisfy_every_condition() -> None:
    """Bank from one match and category from another do not add up to a hit."""
    r = rule({"banks": ["known"], "categories": ["B1"]})
    content = find(m(bank="known", category="A1"), m(bank="other", category="B1"))
    assert not r.matches(content)
    assert r.matches(find(m(bank="other", category="B1"), m(bank="known", category="B1")))


def test_disabled_rules_do_not_match_and_order_is_priority_then_name() -> None:
    rules = [
        rule(name="b", priority=5),
        rule(name="a", priority=5),
        rule(name="first", priority=1),
        rule(name="off", enabled=False),
    ]
    assert [r.name for r in matching_rules(rules, find(m()))] == ["first", "a", "b"]


def test_empty_condition_lists_mean_no_condition() -> None:
    assert rule({"banks": [], "categories": []}).conditions == Conditions()


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"name": "r", "actions": []}, "no actions"),
        ({"name": "r"}, "list of actions"),
        ({"name": "r", "actions": [{"type": "delete"}]}, "unknown action"),
        ({"name": "r", "actions": [{"type": "webhook"}]}, "endpoint"),
        ({"name": "r", "actions": [{"type": "quarantine", "mode": "shred"}]}, "quarantine mode"),
        ({"name": "r", "actions": [{"type": "review", "mode": "copy"}]}, "takes no"),
        ({"name": "r", "actions": ["review"], "conditions": {"bank": ["x"]}}, "unknown rule cond"),
        ({"name": "r", "actions": ["review"], "conditions": {"max_distance": -1}}, "distance"),
        ({"name": "r", "actions": ["review"], "conditions": {"max_distance": True}}, "distance"),
        ({"name": "r", "actions": ["review"], "conditions": {"source_kinds": ["x"]}}, "kind"),
        ({"name": "r", "actions": ["review"], "conditions": {"banks": [1]}}, "list of names"),
        ({"name": "bad name", "actions": ["review"]}, "invalid rule name"),
        ({"name": "r", "actions": ["review"], "priority": "1"}, "priority"),
        ({"name": "r", "actions": ["review"], "priority": 10**20}, "priority"),
        ({"name": "r", "actions": ["review"], "colour": "red"}, "unknown rule field"),
    ],
)
def test_invalid_rules_are_refused_with_a_reason(data: dict[str, object], needle: str) -> None:
    with pytest.raises(InputError) as info:
        Rule.from_json(data)
    assert needle in info.value.message


def test_actions_dedupe_key() -> None:
    assert ActionSpec.from_json("review").key == ActionSpec("review").key
    a = ActionSpec.from_json({"type": "webhook", "endpoint": "p"})
    b = ActionSpec.from_json({"type": "webhook", "endpoint": "q"})
    assert a.key != b.key
    assert ActionSpec.from_json({"type": "quarantine"}).mode == "copy"


names = st.lists(st.sampled_from(["a", "b", "known", "A1", "x.y"]), max_size=3, unique=True)


@given(
    banks=names,
    categories=names,
    kinds=st.lists(st.sampled_from(["api", "scan", "cli"]), max_size=3, unique=True),
    paths=st.lists(st.sampled_from(PATHS), max_size=4, unique=True),
    max_distance=st.none() | st.integers(0, 256),
    priority=st.integers(-1000, 1000),
    enabled=st.booleans(),
)
def test_rules_round_trip_through_json(
    banks: list[str],
    categories: list[str],
    kinds: list[str],
    paths: list[str],
    max_distance: int | None,
    priority: int,
    enabled: bool,
) -> None:
    r = Rule.from_json(
        {
            "name": "rt",
            "priority": priority,
            "enabled": enabled,
            "conditions": {
                "banks": banks,
                "categories": categories,
                "source_kinds": kinds,
                "paths": paths,
                "max_distance": max_distance,
            },
            "actions": [
                {"type": "review"},
                {"type": "webhook", "endpoint": "p"},
                {"type": "quarantine", "mode": "move"},
            ],
        }
    )
    assert Rule.from_json(r.to_json()) == r
    assert r.to_json()["conditions"].get("paths", []) == paths


def test_signature_verifies_only_the_exact_body_and_secret() -> None:
    body = b'{"event_id":"x"}'
    header = sign("s3cret-s3cret-s3cret", body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_signature("s3cret-s3cret-s3cret", body, header)
    assert not verify_signature("other-secret-xxxxxx", body, header)
    assert not verify_signature("s3cret-s3cret-s3cret", body + b" ", header)
    assert not verify_signature("s3cret-s3cret-s3cret", body, None)
    assert not verify_signature("s3cret-s3cret-s3cret", body, header.removeprefix("sha256="))


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    policy = DeliveryPolicy(backoff_seconds=2.0, backoff_max_seconds=60.0)
    rng = random.Random(1)
    for attempts, base in [(1, 2.0), (2, 4.0), (3, 8.0), (5, 32.0), (6, 60.0), (40, 60.0)]:
        wait = policy.backoff(attempts, rng)
        assert base / 2 <= wait <= base


def test_the_api_names_the_same_match_paths_as_the_matcher() -> None:
    from typing import get_args

    from amparo.api.schemas import MatchPath

    assert get_args(MatchPath) == PATHS
