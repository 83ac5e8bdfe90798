"""Action rules and what they do with a find.

Contract::

    taken = amparo.actions.handle(content, media=bytes_or_path_or_None)   # list[TakenAction]

Rules (``rules``) say which finds to act on and how: ``review`` (open or extend a case),
``webhook`` (a signed event through the persistent outbox, ``outbox`` and ``webhooks``),
``quarantine`` (preserve a copy, or move a scanned file into ``quarantine_dir``) and
``report`` (queue a report draft). See ``docs/actions.md``.
"""

from amparo.actions.engine import Actioner, TakenAction
from amparo.actions.outbox import ClaimedEvent, Endpoint, NewEndpoint, OutboxEvent
from amparo.actions.records import ActionRecord
from amparo.actions.rules import ACTION_TYPES, ActionSpec, Conditions, Rule, matching_rules
from amparo.actions.webhooks import (
    Deliverer,
    DeliveryPolicy,
    DeliveryResult,
    sign,
    verify_signature,
)

__all__ = [
    "ACTION_TYPES",
    "ActionRecord",
    "ActionSpec",
    "Actioner",
    "ClaimedEvent",
    "Conditions",
    "Deliverer",
    "DeliveryPolicy",
    "DeliveryResult",
    "Endpoint",
    "NewEndpoint",
    "OutboxEvent",
    "Rule",
    "TakenAction",
    "matching_rules",
    "sign",
    "verify_signature",
]
