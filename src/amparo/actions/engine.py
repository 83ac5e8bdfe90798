"""The actioner: evaluates the current rules on each find and carries out their actions.

``amparo.actions.handle(content, media=...)`` runs every enabled rule that matches the find, in
priority order, and each distinct action once (two rules asking for a review open one case;
two rules sending to one endpoint send one event). Every action is recorded, with its outcome,
in the actions-taken log; an action that fails is recorded as failed and the others still run:
a find is never lost because one of its actions could not be done.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from amparo.actions.outbox import new_event_id
from amparo.actions.quarantine import move_to_quarantine
from amparo.actions.records import ActionRecord
from amparo.actions.rules import ActionSpec, Rule, matching_rules
from amparo.actions.webhooks import encode, event_payload
from amparo.clock import Monotonic, monotonic
from amparo.config import LOCAL_ACTOR
from amparo.errors import AmparoError
from amparo.events import MatchedContent
from amparo.store.rules import ActionLog, RuleRepository
from amparo.store.webhooks import Outbox

if TYPE_CHECKING:
    from amparo.config import Settings
    from amparo.store import Store

log = logging.getLogger("amparo.actions")


# -- what the actioner needs of the other services (the seams tests fill with small fakes) ---


class Preserved(Protocol):
    """A preserved copy, as the actioner sees it: its id in the evidence store."""

    @property
    def id(self) -> int: ...


class EvidenceKeeper(Protocol):
    """Preserves a find's media (:class:`amparo.evidence.EvidenceStore`)."""

    def preserve(
        self, data: bytes | Path, *, content: MatchedContent, reason: str, actor: str
    ) -> Preserved: ...


class CaseOpener(Protocol):
    """Puts a find in front of a reviewer (:class:`amparo.review.CaseService`)."""

    def open_or_extend(
        self, content: MatchedContent, *, evidence_id: int | None, rule: str, actor: str
    ) -> int: ...


class DraftQueue(Protocol):
    """Queues a report draft for a case (:class:`amparo.reports.ReportService`)."""

    def queue_draft(self, case_id: int, *, rule: str, actor: str) -> int: ...


@dataclass(frozen=True)
class TakenAction:
    """What one action did for one find."""

    rule: str
    rule_version: int
    action: str
    """``review``, ``webhook``, ``quarantine`` or ``report``."""
    outcome: str
    """``done``, ``failed`` (``error`` says why) or ``skipped`` (not applicable here)."""
    detail: dict[str, Any] = field(default_factory=dict)
    """case_id, evidence_id, draft_id, endpoint and event_id, quarantined_to..."""
    error: str | None = None
    record_id: int | None = None
    """The row in the actions-taken log."""

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "rule_version": self.rule_version,
            "action": self.action,
            "outcome": self.outcome,
            "detail": self.detail,
            "error": self.error,
        }


class _Failed(Exception):
    """An action could not be done; the message is what the log records.

    Control flow inside one action, not an error of the tree in ``amparo.errors``: raised
    only by ``_Run``'s action methods and always caught in ``_Run.do``, which records it as
    the action's outcome; it never escapes this module."""

    def __init__(self, message: str, outcome: str = "failed") -> None:
        super().__init__(message)
        self.outcome = outcome


class Actioner:
    """Rules and what they do: ``handle`` a find; manage rules; read the actions-taken log."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        evidence: EvidenceKeeper,
        cases: CaseOpener,
        reports: DraftQueue,
        clock: Monotonic = monotonic,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.store = store
        self.evidence = evidence
        self.cases = cases
        self.reports = reports
        self.rules = RuleRepository(store.db)
        self.taken = ActionLog(store.db)
        self.outbox = Outbox(store)
        self._lock = threading.Lock()
        self._cached: list[Rule] | None = None
        self._generation = -1
        self._store_generation = -1
        self._checked_at = 0.0

    # -- the rule set ---------------------------------------------------------------------------

    def current_rules(self, *, recheck: bool = False) -> list[Rule]:
        """The enabled rules in run order. Cached: re-read when a rule changed, which this
        process sees at once and other processes within ``index_refresh_seconds``.
        ``recheck``: ask the database now even when the cache is fresh (a service's background
        refresh, so the cache never lapses between lookups)."""
        now = self.clock()
        with self._lock:
            if not recheck and self._cached is not None and self._fresh(now):
                return self._cached
            store_generation = self.store.generation
            generation = self.rules.generation()
            if self._cached is None or generation != self._generation:
                self._cached = [r for r in self.rules.current() if r.enabled]
                self._generation = generation
            self._store_generation = store_generation
            self._checked_at = now
            return self._cached

    def active(self) -> bool:
        """Whether any rule is enabled (so callers can skip reading media when none is)."""
        return bool(self.current_rules())

    def known_active(self) -> bool | None:
        """:meth:`active` from the cache alone, never reading the database (for callers on
        an event loop); None when the cache is due for a re-read."""
        now = self.clock()
        with self._lock:
            if self._cached is None or not self._fresh(now):
                return None
            return bool(self._cached)

    def _fresh(self, now: float) -> bool:
        """The cached rule set is current: no write in this process since it was read, and
        read within ``index_refresh_seconds`` (other processes' changes)."""
        return (
            self._store_generation == self.store.generation
            and now - self._checked_at < self.settings.index_refresh_seconds
        )

    # -- acting ---------------------------------------------------------------------------------

    def handle(
        self,
        content: MatchedContent,
        *,
        media: bytes | Path | None = None,
        actor: str = LOCAL_ACTOR,
    ) -> list[TakenAction]:
        """Run the rules on one find; return what was done (empty when no rule matched).

        ``media`` is the content itself when the caller has it (an upload's bytes, a scanned
        file's path, an archive member's bytes); it is used only to preserve evidence or to
        quarantine, never kept otherwise.
        """
        rules = matching_rules(self.current_rules(), content)
        if not rules:
            return []
        run = _Find(self, content, media, actor)
        taken: list[TakenAction] = []
        seen: set[tuple[str, str | None]] = set()
        for rule in rules:
            for spec in rule.actions:
                if spec.key in seen:
                    continue
                seen.add(spec.key)
                taken.append(run.do(rule, spec))
        return taken

    # -- rules (what the API and the CLI call) --------------------------------------------------

    def list_rules(self) -> list[Rule]:
        return self.rules.current()

    def get_rule(self, name: str, version: int | None = None) -> Rule:
        return self.rules.get(name, version)

    def add_rule(self, rule: Rule, *, actor: str) -> Rule:
        return self.rules.create(rule, actor=actor)

    def set_rule(self, rule: Rule, *, actor: str) -> Rule:
        return self.rules.replace(rule, actor=actor)

    def remove_rule(self, name: str, *, actor: str) -> Rule:
        return self.rules.delete(name, actor=actor)

    def rule_history(self, name: str) -> list[Rule]:
        return self.rules.history(name)

    def log(
        self,
        *,
        limit: int = 100,
        sha256: str | None = None,
        rule: str | None = None,
        outcome: str | None = None,
    ) -> list[ActionRecord]:
        """The actions-taken log, newest first."""
        return self.taken.log(limit=limit, sha256=sha256, rule=rule, outcome=outcome)


class _Find:
    """One find being acted on: shares one case and one evidence copy among its actions."""

    def __init__(
        self, actioner: Actioner, content: MatchedContent, media: bytes | Path | None, actor: str
    ) -> None:
        self.actioner = actioner
        self.content = content
        self.media = media
        self.actor = actor
        self.case_id: int | None = None
        self.evidence_id: int | None = None
        self.evidence_error: str | None = None

    def do(self, rule: Rule, spec: ActionSpec) -> TakenAction:
        detail: dict[str, Any] = {}
        webhook: tuple[str, str, str] | None = None
        outcome, error = "done", None
        try:
            if spec.type == "review":
                detail = self._review(rule)
            elif spec.type == "report":
                detail = self._report(rule)
            elif spec.type == "quarantine":
                detail = self._quarantine(rule, spec.mode or "copy")
            elif spec.type == "webhook":
                assert spec.endpoint is not None
                detail, webhook = self._webhook(rule, spec.endpoint)
        except _Failed as exc:
            outcome, error = exc.outcome, str(exc)
        except AmparoError as exc:
            outcome, error = "failed", exc.message
        except OSError as exc:
            # An operator's problem (permissions, a full disk), not a bug: no traceback.
            outcome, error = "failed", f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
        except Exception as exc:
            log.exception("action %s of rule %s failed", spec.type, rule.name)
            outcome, error = "failed", f"unexpected error: {exc!r}"
        if spec.mode is not None:
            detail.setdefault("mode", spec.mode)
        if error is not None:
            log.warning(
                "rule %s: %s on %s %s: %s",
                rule.name,
                spec.type,
                self.content.sha256,
                outcome,
                error,
            )
        record_id = self.actioner.taken.record(
            actor=self.actor,
            rule=rule,
            action=spec.type,
            sha256=self.content.sha256,
            source=self.content.source.as_dict(),
            outcome=outcome,
            detail=detail,
            error=error,
            webhook=webhook,
        )
        return TakenAction(rule.name, rule.version, spec.type, outcome, detail, error, record_id)

    def _preserve(self, rule: Rule) -> int | None:
        """Preserve the media once per find; None (with the reason kept) when not possible."""
        if self.evidence_id is not None or self.evidence_error is not None:
            return self.evidence_id
        if self.media is None:
            return None
        try:
            item = self.actioner.evidence.preserve(
                self.media, content=self.content, reason=f"rule:{rule.name}", actor=self.actor
            )
            self.evidence_id = item.id
        except AmparoError as exc:
            self.evidence_error = exc.message
        except OSError as exc:
            self.evidence_error = f"could not read the media: {exc}"
        return self.evidence_id

    def _case(self, rule: Rule) -> int:
        if self.case_id is None:
            evidence_id = self._preserve(rule)
            self.case_id = self.actioner.cases.open_or_extend(
                self.content, evidence_id=evidence_id, rule=rule.name, actor=self.actor
            )
        return self.case_id

    def _evidence_detail(self) -> dict[str, Any]:
        detail: dict[str, Any] = {}
        if self.evidence_id is not None:
            detail["evidence_id"] = self.evidence_id
        if self.evidence_error is not None:
            detail["evidence_error"] = self.evidence_error
        return detail

    def _review(self, rule: Rule) -> dict[str, Any]:
        case_id = self._case(rule)
        return {"case_id": case_id, **self._evidence_detail()}

    def _report(self, rule: Rule) -> dict[str, Any]:
        case_id = self._case(rule)
        draft_id = self.actioner.reports.queue_draft(case_id, rule=rule.name, actor=self.actor)
        return {"case_id": case_id, "draft_id": draft_id, **self._evidence_detail()}

    def _quarantine(self, rule: Rule, mode: str) -> dict[str, Any]:
        if mode == "copy":
            if self.media is None:
                raise _Failed("no media to preserve (a lookup by hashes)", "skipped")
            if self._preserve(rule) is None:
                raise _Failed(self.evidence_error or "the media could not be preserved")
            return self._evidence_detail()
        media = self.media
        if self.content.source.kind != "scan" or not isinstance(media, Path):
            raise _Failed(
                "move applies to scanned files on disk only; nothing was moved", "skipped"
            )
        target = move_to_quarantine(
            media,
            sha256=self.content.sha256,
            quarantine_dir=self.actioner.settings.quarantine_dir,
        )
        self.media = target  # later actions (evidence) read the file where it now is
        return {"moved_from": str(media), "moved_to": str(target)}

    def _webhook(self, rule: Rule, endpoint: str) -> tuple[dict[str, Any], tuple[str, str, str]]:
        try:
            self.actioner.outbox.get_endpoint(endpoint)
        except AmparoError:
            raise _Failed(f"webhook endpoint {endpoint!r} does not exist") from None
        source = self.content.source
        replay = None
        if source.kind == "scan" and source.scan_id and source.path:
            # A resumed scan may act on the same file again: same find, same event id.
            replay = "|".join(
                (source.scan_id, source.path, self.content.sha256, rule.name, str(rule.version),
                 endpoint)
            )  # fmt: skip
        event_id = new_event_id(replay)
        payload = event_payload(
            self.content, rule=rule.name, rule_version=rule.version, event_id=event_id
        )
        return {"endpoint": endpoint, "event_id": event_id}, (event_id, endpoint, encode(payload))
