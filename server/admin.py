"""Operator commands on one tenant, against DATABASE_URL like the server:

    python -m server admin show TENANT
    python -m server admin set-limit TENANT send --per-second 50 --burst 100
    python -m server admin set-limit TENANT send --default
    python -m server admin set-quota TENANT 5000        # 0 = no quota; "default"
    python -m server admin suspend TENANT --reason "unpaid invoice"
    python -m server admin unsuspend TENANT

TENANT is a tenant id or the account's email. API servers apply a change
within CLARION_API_KEY_CACHE_SECONDS."""

import argparse
import asyncio
import json
import sys
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from server.domain.limits import LIMIT_SCOPES, LimitName, RateLimit
from server.services.limits import Limiter
from server.settings import Settings
from server.store import limits as store
from server.store.db import Database, create_engine


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m server admin", description="Set a tenant's limits, quota or suspension."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("show", help="print the tenant's limits and today's usage (JSON)")
    show.add_argument("tenant", help="tenant id or account email")

    limit = commands.add_parser("set-limit", help="override one rate limit")
    limit.add_argument("tenant")
    limit.add_argument("limit", choices=[n.value for n in LimitName])
    limit.add_argument("--per-second", type=float)
    limit.add_argument("--burst", type=int)
    limit.add_argument("--default", action="store_true", help="remove the override")

    quota = commands.add_parser("set-quota", help="notifications per UTC day; 0 = none")
    quota.add_argument("tenant")
    quota.add_argument("quota", help='a number >= 0, or "default" for the deployment\'s')

    suspend = commands.add_parser("suspend", help="refuse the tenant's API keys with 403")
    suspend.add_argument("tenant")
    suspend.add_argument("--reason", default="", help="shown to the tenant in the 403")

    unsuspend = commands.add_parser("unsuspend", help="lift a suspension")
    unsuspend.add_argument("tenant")
    return parser


def _quota(value: str) -> int | None:
    if value == "default":
        return None
    if not value.isdigit():
        raise SystemExit(f'quota must be a whole number >= 0 or "default", not {value!r}')
    return int(value)


def _rate(args: argparse.Namespace) -> dict[str, float] | None:
    if args.default:
        return None
    if args.per_second is None or args.burst is None:
        raise SystemExit("set-limit needs --per-second and --burst (or --default)")
    try:
        RateLimit(args.per_second, args.burst)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    return {"per_second": args.per_second, "burst": args.burst}


async def _run(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    if not settings.database_url:
        raise SystemExit("DATABASE_URL is not set")
    db = Database(create_engine(settings.database_url))
    limiter = Limiter(db, settings.default_limits())
    try:
        async with db.transaction() as session:
            tenant_id = await store.find_tenant(session, tenant=args.tenant)
            if tenant_id is None:
                raise SystemExit(f"no tenant with id or email {args.tenant!r}")
            if args.command != "show":
                await _change(session, tenant_id, args)
        return await _report(limiter, tenant_id)
    finally:
        await db.close()


async def _change(session: Any, tenant_id: str, args: argparse.Namespace) -> None:
    overrides = await store.get_overrides(session, tenant_id=tenant_id)
    now = datetime.now(UTC)
    if args.command == "set-limit":
        rates = dict(overrides.rates)
        rate = _rate(args)
        if rate is None:
            rates.pop(args.limit, None)
        else:
            rates[args.limit] = rate
        overrides = replace(overrides, rates=rates)
    elif args.command == "set-quota":
        overrides = replace(overrides, daily_quota=_quota(args.quota))
    elif args.command == "suspend":
        overrides = replace(overrides, suspended_at=now, suspended_reason=args.reason)
    elif args.command == "unsuspend":
        overrides = replace(overrides, suspended_at=None, suspended_reason="")
    await store.save_overrides(session, tenant_id=tenant_id, overrides=overrides, now=now)


async def _report(limiter: Limiter, tenant_id: str) -> dict[str, Any]:
    limits = await limiter.limits_for(tenant_id)
    usage = await limiter.usage(tenant_id, limits)
    return {
        "tenant_id": tenant_id,
        "suspended": limits.suspended_reason is not None,
        "suspended_reason": limits.suspended_reason or "",
        "daily_quota": limits.daily_quota,
        "day": usage.day.isoformat(),
        "sent_today": usage.sent,
        "sent_today_by_channel": usage.sent_by_channel,
        "quota_remaining": usage.quota_remaining,
        "rate_limits": {
            name.value: {
                "per_second": rate.per_second,
                "burst": rate.burst,
                "applies_to": LIMIT_SCOPES[name],
            }
            for name, rate in limits.rates.items()
        },
    }


def main(argv: list[str]) -> None:
    args = _parser().parse_args(argv)
    report = asyncio.run(_run(args, Settings()))
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
