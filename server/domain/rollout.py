"""Gradual rollout of template versions: the sticky split and the failure guard."""

import hashlib

from contracts.policies import RolloutPolicy


def bucket(template_id: str, recipient_key: str) -> int:
    """0-99, stable for a template and recipient across processes and restarts."""
    digest = hashlib.sha256(f"{template_id}\x00{recipient_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def choose_version(
    *,
    template_id: str,
    recipient_key: str,
    active_version: int,
    rollout_version: int | None,
    rollout_percent: int,
) -> int:
    if rollout_version is not None and bucket(template_id, recipient_key) < rollout_percent:
        return rollout_version
    return active_version


def stop_reason(
    policy: RolloutPolicy,
    *,
    candidate_version: int,
    candidate_final: int,
    candidate_failed: int,
    active_version: int,
    active_final: int,
    active_failed: int,
) -> str | None:
    """Why the rollout should stop, or None while it may go on."""
    if candidate_final < policy.min_sends:
        return None
    candidate_rate = candidate_failed / candidate_final
    active_rate = active_failed / active_final if active_final else 0.0
    if candidate_rate - active_rate <= policy.failure_margin:
        return None
    return (
        f"version {candidate_version} failed {candidate_failed} of {candidate_final} deliveries "
        f"({candidate_rate:.0%}) against {active_failed} of {active_final} "
        f"({active_rate:.0%}) for version {active_version}, more than the "
        f"{policy.failure_margin:.0%} margin"
    )
